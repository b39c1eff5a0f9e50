// Where the API server is and how to authenticate: in-cluster service-account credentials or
// a kubeconfig with certificates or a token. Deliberately small: loading client-node's
// KubeConfig costs a long-running agent about 65 MiB of RSS (it pulls in every generated API
// class); the operator and the agent need none of its exec or auth-provider plugins.
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, resolve } from 'node:path';
import { parse } from 'yaml';

export interface ClusterAccess {
  server: string;
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
  insecureSkipTLSVerify?: boolean;
  /** The bearer token to send now (service-account tokens rotate: read each time, cached). */
  token?: () => string | undefined;
  /** Headers sent with every request: impersonation (a kubeconfig user's `as:`) for the kubectl plugin. */
  headers?: Record<string, string>;
  /** Where this came from, for error messages. */
  source: string;
}

const SA_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

/** A file's content, re-read at most once a minute (the kubelet rotates bound tokens). */
function rereading(path: string): () => string {
  let value = '';
  let readAt = 0;
  return () => {
    if (Date.now() - readAt > 60_000) {
      value = readFileSync(path, 'utf8').trim();
      readAt = Date.now();
    }
    return value;
  };
}

export function inCluster(env: NodeJS.ProcessEnv = process.env, dir = SA_DIR): ClusterAccess {
  const host = env.KUBERNETES_SERVICE_HOST;
  const port = env.KUBERNETES_SERVICE_PORT ?? '443';
  if (!host) throw new Error('not in a cluster: KUBERNETES_SERVICE_HOST is not set; set KUBECONFIG');
  const server = `https://${host.includes(':') ? `[${host}]` : host}:${port}`;
  return { server, ca: readFileSync(`${dir}/ca.crt`), token: rereading(`${dir}/token`), source: 'in-cluster service account' };
}

interface Named<T> {
  name: string;
  [k: string]: unknown;
  cluster?: T;
  user?: T;
  context?: T;
}

export function fromKubeconfig(path: string): ClusterAccess {
  let doc: any;
  try {
    doc = parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new Error(`reading kubeconfig ${path}: ${(err as Error).message}`, { cause: err });
  }
  const base = dirname(path);
  const find = <T>(list: Named<T>[] | undefined, name: string, what: string): T => {
    const hit = list?.find((x) => x.name === name);
    const value = hit?.[what as 'cluster' | 'user' | 'context'];
    if (!value) throw new Error(`kubeconfig ${path}: no ${what} named "${name}"`);
    return value;
  };
  const ctxName: string | undefined = doc?.['current-context'];
  if (!ctxName) throw new Error(`kubeconfig ${path} has no current-context`);
  const ctx = find<{ cluster: string; user?: string }>(doc.contexts, ctxName, 'context');
  const cluster = find<Record<string, any>>(doc.clusters, ctx.cluster, 'cluster');
  const user: Record<string, any> = ctx.user ? find<Record<string, any>>(doc.users, ctx.user, 'user') : {};
  if (user.exec || user['auth-provider']) {
    throw new Error(`kubeconfig ${path}: user "${ctx.user}" uses an exec or auth-provider plugin, which the operator and agent do not run; give them a client certificate or a token`);
  }
  const data = (inline: string | undefined, file: string | undefined) =>
    inline ? Buffer.from(inline, 'base64') : file ? readFileSync(resolve(base, file)) : undefined;
  const access: ClusterAccess = {
    server: cluster.server,
    ca: data(cluster['certificate-authority-data'], cluster['certificate-authority']),
    cert: data(user['client-certificate-data'], user['client-certificate']),
    key: data(user['client-key-data'], user['client-key']),
    insecureSkipTLSVerify: cluster['insecure-skip-tls-verify'] === true,
    source: `kubeconfig ${path}, context ${ctxName}`,
  };
  if (!access.server) throw new Error(`kubeconfig ${path}: cluster "${ctx.cluster}" has no server`);
  if (user.token) access.token = () => user.token as string;
  else if (user.tokenFile) access.token = rereading(resolve(base, user.tokenFile));
  return access;
}

/** An explicit kubeconfig path, else $KUBECONFIG, else in-cluster, else ~/.kube/config. */
export function loadKubeConfig(path?: string, env: NodeJS.ProcessEnv = process.env): ClusterAccess {
  const p = path ?? env.KUBECONFIG?.split(':')[0];
  if (p) return fromKubeconfig(p);
  if (env.KUBERNETES_SERVICE_HOST) return inCluster(env);
  return fromKubeconfig(resolve(homedir(), '.kube/config'));
}
