// A control plane for operator tests: etcd + kube-apiserver (controlplane.ts) and, on request,
// kube-controller-manager (DaemonSet controller, garbage collector, service-account tokens),
// kube-scheduler and kwok (fake nodes that "run" the pods scheduled to them). Also what an
// agent does to a report (server-side apply, then status), for tests that stand in for agents.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { reportSkeleton, type Trace, traceRef } from '../../src/api/reports.js';
import type { ReportStatus } from '../../src/api/v1alpha1.js';
import { logTail, startControlPlane, testBinaries, type ControlPlane } from './controlplane.js';
import { installCRDs, TestClient } from './kube.js';

export type Extra = 'kube-controller-manager' | 'kube-scheduler' | 'kwok';

export interface Cluster {
  cp: ControlPlane;
  kubeconfig: string;
  client: TestClient;
  /** Kills one extra component (SIGKILL) and starts it again. */
  restart(name: Extra): Promise<void>;
  stop(): Promise<void>;
}

const procs = new Set<ChildProcess>();
process.on('exit', () => procs.forEach((p) => p.kill('SIGKILL')));

function run(bin: string, args: string[], logFile: string): ChildProcess {
  const fd = openSync(logFile, 'a');
  const p = spawn(bin, args, { stdio: ['ignore', fd, fd] });
  closeSync(fd);
  procs.add(p);
  p.on('exit', () => procs.delete(p));
  return p;
}

async function stopProc(p: ChildProcess | undefined): Promise<void> {
  if (!p || p.exitCode !== null || p.signalCode !== null) return;
  const exited = new Promise((r) => p.on('exit', r));
  p.kill('SIGTERM');
  const t = setTimeout(() => p.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(t);
}

/** kwok's stages: nodes become Ready, pods bound to its nodes become Running and Ready. */
const KWOK_CONFIG = `apiVersion: config.kwok.x-k8s.io/v1alpha1
kind: KwokConfiguration
options:
  manageAllNodes: false
  manageNodesWithAnnotationSelector: kwok.x-k8s.io/node=fake
  cidr: 10.244.0.0/16
  nodeIP: 10.0.0.1
  nodeLeaseDurationSeconds: 40
  nodeLeaseParallelism: 4
  nodePlayStageParallelism: 4
  podPlayStageParallelism: 4
  podsOnNodeSyncParallelism: 4
  enableCRDs: []
`;

/**
 * kwok does nothing without Stage objects (kwokctl adds its defaults; the bare binary does not):
 * the "fast" stages from kwok's own module (downloaded by test/tools/build kwok): nodes become
 * Ready, pods Running and Ready, deleted pods go.
 */
function kwokStages(): string {
  const repo = join(import.meta.dirname, '../..');
  const version = /sigs\.k8s\.io\/kwok (v\S+)/.exec(readFileSync(join(repo, 'test/tools/kwok/go.mod'), 'utf8'))?.[1];
  const modcache = execFileSync('go', ['env', 'GOMODCACHE'], { encoding: 'utf8' }).trim();
  const dir = join(modcache, `sigs.k8s.io/kwok@${version}/kustomize/stage`);
  return ['node/fast/node-initialize.yaml', 'pod/fast/pod-ready.yaml', 'pod/fast/pod-delete.yaml']
    .map((f) => `---\n${readFileSync(join(dir, f), 'utf8')}`)
    .join('\n');
}

/** The controllers the operator's tests need; a real node's pods need a few more (test/node). */
export const CONTROLLERS = [
  'daemonset-controller',
  'garbage-collector-controller',
  'namespace-controller',
  'serviceaccount-controller',
  'serviceaccount-token-controller',
  'validatingadmissionpolicy-status-controller',
];

export interface ClusterOptions {
  extras?: Extra[];
  log?: (l: string) => void;
  /** Extra kube-apiserver flags (startControlPlane). */
  apiServerFlags?: string[];
  /** kube-controller-manager's --controllers (default CONTROLLERS). */
  controllers?: string[];
}

export async function startCluster(opts: ClusterOptions = {}): Promise<Cluster> {
  const log = opts.log ?? (() => {});
  const extras = opts.extras ?? [];
  const bins = extras.length ? await testBinaries(extras, log) : {};
  const cp = await startControlPlane({ log, apiServerFlags: opts.apiServerFlags });
  const client = new TestClient(cp.kubeconfig);
  await installCRDs(client);
  const args: Record<Extra, string[]> = {
    'kube-controller-manager': [
      `--kubeconfig=${cp.kubeconfig}`,
      '--bind-address=127.0.0.1',
      '--secure-port=0',
      '--leader-elect=false',
      // What the tests need: DaemonSet pods, owner-reference clean-up, namespaces, and the
      // service-account controllers, and the admission policies' type checking.
      `--controllers=${(opts.controllers ?? CONTROLLERS).join(',')}`,
      `--service-account-private-key-file=${cp.pki.saPrivateKey}`,
      `--root-ca-file=${cp.pki.caCert}`,
      '--concurrent-gc-syncs=5',
    ],
    'kube-scheduler': [`--kubeconfig=${cp.kubeconfig}`, '--bind-address=127.0.0.1', '--secure-port=0', '--leader-elect=false'],
    kwok: [`--kubeconfig=${cp.kubeconfig}`, `--config=${join(cp.dir, 'kwok.yaml')}`, '--server-address=127.0.0.1:0'],
  };
  if (extras.includes('kwok')) writeFileSync(join(cp.dir, 'kwok.yaml'), KWOK_CONFIG + kwokStages());
  const running = new Map<Extra, ChildProcess>();
  const startExtra = (name: Extra) => running.set(name, run(bins[name]!, args[name], join(cp.dir, `${name}.log`)));
  for (const name of extras) startExtra(name);
  // A component that dies at start says why at once, not as a later timeout.
  await new Promise((r) => setTimeout(r, 1500));
  for (const [name, p] of running) {
    if (p.exitCode === null) continue;
    const tail = logTail(join(cp.dir, `${name}.log`));
    for (const q of running.values()) await stopProc(q);
    await cp.stop();
    throw new Error(`${name} exited ${p.exitCode}:\n${tail}`);
  }
  log(`cluster up with ${extras.join(', ') || 'no extra components'} in ${cp.dir}`);
  return {
    cp,
    kubeconfig: cp.kubeconfig,
    client,
    async restart(name) {
      const p = running.get(name);
      p?.kill('SIGKILL');
      if (p) await new Promise((r) => (p.exitCode !== null || p.signalCode !== null ? r(undefined) : p.on('exit', r)));
      startExtra(name);
    },
    async stop() {
      for (const p of running.values()) await stopProc(p);
      await cp.stop();
    },
  };
}

/** A fake node kwok manages (annotation kwok.x-k8s.io/node=fake), tainted as kwok's docs do. */
export function fakeNode(name: string, labels: Record<string, string>) {
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: {
      name,
      labels: { 'kubernetes.io/hostname': name, 'kubernetes.io/os': 'linux', type: 'kwok', ...labels },
      annotations: { 'kwok.x-k8s.io/node': 'fake', 'node.alpha.kubernetes.io/ttl': '0' },
    },
    spec: { taints: [{ key: 'kwok.x-k8s.io/node', value: 'fake', effect: 'NoSchedule' }] },
  };
}

/** Polls fn until it returns something truthy; fails with the last value after timeoutMs. */
export async function eventually<T>(fn: () => Promise<T | undefined | false | null>, timeoutMs: number, what: string, everyMs = 200): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
      last = v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms (last: ${last instanceof Error ? last.message : JSON.stringify(last)})`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/**
 * What an agent does each interval: apply the report (spec, labels, owner) with server-side
 * apply, then its status through the /status subresource. Returns the status response.
 */
export async function writeReport(c: TestClient, trace: Trace, node: string, status: ReportStatus, installNamespace: string, manager = `vhosttrace-agent-${node}`) {
  const skel = reportSkeleton(traceRef(trace), node, installNamespace);
  const path = `/apis/vhosttrace.io/v1alpha1/namespaces/${skel.metadata.namespace}/vhosttracereports/${skel.metadata.name}`;
  const r1 = await c.apply(path, skel, manager);
  if (r1.status >= 300) throw new Error(`apply report ${path}: ${r1.status} ${JSON.stringify(r1.body)}`);
  const r2 = await c.apply(`${path}/status`, { apiVersion: skel.apiVersion, kind: skel.kind, metadata: { name: skel.metadata.name, namespace: skel.metadata.namespace }, status }, manager);
  if (r2.status >= 300) throw new Error(`apply report status ${path}: ${r2.status} ${JSON.stringify(r2.body)}`);
  return r2;
}

/** The Kubernetes version of the test binaries (test/tools/kube/go.mod), for `helm --kube-version`. */
export const KUBE_VERSION = /k8s\.io\/kubernetes (v\S+)/.exec(readFileSync(join(import.meta.dirname, '../tools/kube/go.mod'), 'utf8'))![1]!;

/** Environment for the real helm: its cache and configuration inside node_modules, not $HOME. */
export const helmEnv = () => {
  const dir = join(import.meta.dirname, '../../node_modules/.cache/helm');
  return { ...process.env, HELM_CACHE_HOME: dir, HELM_CONFIG_HOME: dir, HELM_DATA_HOME: dir };
};

/**
 * `helm template` of the chart with the real helm; the objects, in order. --kube-version: without
 * it helm assumes v1.20, which the chart's kubeVersion refuses.
 */
export async function renderChart(namespace: string, set: string[] = [], log?: (l: string) => void): Promise<{ text: string; docs: any[] }> {
  const { helm } = await testBinaries(['helm'], log);
  const { parseAllDocuments } = await import('yaml');
  const repo = join(import.meta.dirname, '../..');
  const text = execFileSync(
    helm!,
    ['template', 'vhosttrace', join(repo, 'charts/vhosttrace'), '--namespace', namespace, '--kube-version', KUBE_VERSION, '--include-crds', ...set.flatMap((s) => ['--set', s])],
    { encoding: 'utf8', env: helmEnv() },
  );
  return { text, docs: parseAllDocuments(text).map((d) => d.toJS()).filter(Boolean) };
}

const PLURAL: Record<string, string> = {
  Namespace: 'namespaces',
  ServiceAccount: 'serviceaccounts',
  ConfigMap: 'configmaps',
  ClusterRole: 'clusterroles',
  ClusterRoleBinding: 'clusterrolebindings',
  Role: 'roles',
  RoleBinding: 'rolebindings',
  Deployment: 'deployments',
  ValidatingAdmissionPolicy: 'validatingadmissionpolicies',
  ValidatingAdmissionPolicyBinding: 'validatingadmissionpolicybindings',
  CustomResourceDefinition: 'customresourcedefinitions',
};

/** Server-side applies manifests as `kubectl apply --server-side` would. */
export async function applyAll(c: TestClient, docs: any[], manager = 'vhosttrace-test'): Promise<void> {
  for (const d of docs) {
    const [group, version] = d.apiVersion.includes('/') ? d.apiVersion.split('/') : ['', d.apiVersion];
    const base = group ? `/apis/${group}/${version}` : `/api/${version}`;
    const ns = d.metadata.namespace ? `/namespaces/${d.metadata.namespace}` : '';
    const plural = PLURAL[d.kind];
    if (!plural) throw new Error(`applyAll: no plural for ${d.kind}`);
    const r = await c.apply(`${base}${ns}/${plural}/${d.metadata.name}`, d, manager);
    if (r.status >= 300) throw new Error(`apply ${d.kind} ${d.metadata.name}: ${r.status} ${JSON.stringify(r.body)}`);
  }
}

/** A kubeconfig file for a bearer token (a service account's, from the TokenRequest API). */
export function tokenKubeconfig(cp: ControlPlane, name: string, token: string): string {
  const file = join(cp.dir, `${name}.kubeconfig`);
  writeFileSync(
    file,
    `apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "${cp.server}", certificate-authority-data: ${readFileSync(cp.pki.caCert).toString('base64')}}}]
users: [{name: ${name}, user: {token: "${token}"}}]
contexts: [{name: ${name}, context: {cluster: c, user: ${name}}}]
current-context: ${name}
`,
  );
  return file;
}
