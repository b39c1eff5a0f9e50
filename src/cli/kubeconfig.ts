// Where the plugin's API server is and who it is, from the user's kubeconfig as kubectl reads it
// (--kubeconfig, else $KUBECONFIG, else ~/.kube/config; --context; the context's namespace). Uses
// client-node, unlike the operator and agent, so cloud providers' exec credential plugins work.
import { KubeConfig } from '@kubernetes/client-node';
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { RequestOptions } from 'node:https';
import type { ClusterAccess } from '../kube/config.js';
import { CliError, EXIT } from './exit-codes.js';

export interface Connection {
  access: ClusterAccess;
  /** The context's namespace, or "default". */
  namespace: string;
}

function load(path: string | undefined, env: NodeJS.ProcessEnv): KubeConfig {
  const kc = new KubeConfig();
  const file = path ?? env.KUBECONFIG;
  try {
    if (file) {
      // $KUBECONFIG may list several files; client-node merges them (from process.env) as kubectl does.
      if (path || !file.includes(':')) kc.loadFromFile(file);
      else kc.loadFromDefault();
      return kc;
    }
    const home = join(homedir(), '.kube', 'config');
    if (existsSync(home)) kc.loadFromFile(home);
    else if (env.KUBERNETES_SERVICE_HOST) kc.loadFromCluster();
    else throw new Error('no kubeconfig: set KUBECONFIG, pass --kubeconfig, or create ~/.kube/config');
  } catch (e) {
    const msg = (e as Error).message;
    throw new CliError(EXIT.noCluster, file && !msg.includes(file) ? `kubeconfig ${file}: ${msg}` : msg);
  }
  return kc;
}

export async function connect(opts: { kubeconfig?: string; context?: string }, env: NodeJS.ProcessEnv = process.env): Promise<Connection> {
  const kc = load(opts.kubeconfig, env);
  if (opts.context !== undefined) {
    if (!kc.getContextObject(opts.context)) throw new CliError(EXIT.noCluster, `context "${opts.context}" does not exist in the kubeconfig`);
    kc.setCurrentContext(opts.context);
  }
  const cluster = kc.getCurrentCluster();
  if (!cluster?.server) {
    throw new CliError(EXIT.noCluster, `the kubeconfig's current context "${kc.getCurrentContext()}" names no cluster with a server: run \`kubectl config use-context\``);
  }
  const req: RequestOptions = {};
  try {
    await kc.applyToHTTPSOptions(req);
  } catch (e) {
    throw new CliError(EXIT.noCluster, `kubeconfig context "${kc.getCurrentContext()}": ${(e as Error).message}`);
  }
  // A bearer token goes through the client's token hook; anything else (basic auth, impersonation) as is.
  const headers = { ...(req.headers as Record<string, string> | undefined) };
  const auth = headers.Authorization ?? headers.authorization;
  let token: string | undefined;
  if (auth?.startsWith('Bearer ')) {
    token = auth.slice('Bearer '.length);
    delete headers.Authorization;
    delete headers.authorization;
  }
  return {
    access: {
      server: cluster.server,
      ca: req.ca as Buffer | undefined,
      cert: req.cert as Buffer | undefined,
      key: req.key as Buffer | undefined,
      insecureSkipTLSVerify: cluster.skipTLSVerify,
      token: token ? () => token : undefined,
      headers,
      source: `kubeconfig context "${kc.getCurrentContext()}"`,
    },
    namespace: kc.getContextObject(kc.getCurrentContext())?.namespace ?? 'default',
  };
}
