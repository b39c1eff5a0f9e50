// The chart, rendered by the real helm, installed into a real API server: manifests/install.yaml
// is that rendering; the operator works with only its RBAC; the admission policy lets an agent
// write only its own node's reports (a TokenRequest token bound to a pod on that node).
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { reportSkeleton, traceRef } from '../../src/api/reports.js';
import { KubeClient, loadKubeConfig } from '../../src/kube/client.js';
import { defaultConfig, loadConfig } from '../../src/operator/config.js';
import { Operator } from '../../src/operator/operator.js';
import { applyAll, eventually, KUBE_VERSION, renderChart, startCluster, tokenKubeconfig, writeReport, type Cluster } from '../harness/cluster.js';
import { TestClient } from '../harness/kube.js';

const INSTALL = 'vhosttrace-system';
const MANIFEST = join(import.meta.dirname, '../../manifests/install.yaml');
const HEADER = `# Generated from charts/vhosttrace by test/api/operator-install.test.ts:
#   helm template vhosttrace charts/vhosttrace --namespace ${INSTALL} --kube-version ${KUBE_VERSION} --include-crds --set createNamespace=true
# Regenerate: VHOSTTRACE_UPDATE_MANIFESTS=1 npx vitest run --project api test/api/operator-install.test.ts
`;

let cluster: Cluster;
let c: TestClient;
let docs: any[];
let op: Operator | undefined;

async function token(sa: string, pod?: { name: string; uid: string }): Promise<string> {
  const r = await c.request('POST', `/api/v1/namespaces/${INSTALL}/serviceaccounts/${sa}/token`, {
    apiVersion: 'authentication.k8s.io/v1',
    kind: 'TokenRequest',
    spec: { expirationSeconds: 3600, ...(pod ? { boundObjectRef: { kind: 'Pod', apiVersion: 'v1', ...pod } } : {}) },
  });
  expect(r.status, JSON.stringify(r.body)).toBe(201);
  return r.body.status.token;
}

beforeAll(async () => {
  cluster = await startCluster({ log: (l) => console.log(`[cluster] ${l}`) });
  c = cluster.client;
  const rendered = await renderChart(INSTALL, ['createNamespace=true']);
  docs = rendered.docs;
  if (process.env.VHOSTTRACE_UPDATE_MANIFESTS) writeFileSync(MANIFEST, HEADER + rendered.text);
}, 600_000);

afterAll(async () => {
  await op?.stop(false);
  await cluster?.stop();
});

describe('install', () => {
  it('manifests/install.yaml is the chart as helm renders it', async () => {
    const { text } = await renderChart(INSTALL, ['createNamespace=true']);
    expect(readFileSync(MANIFEST, 'utf8')).toBe(HEADER + text);
    const kinds = docs.map((d) => d.kind);
    expect(kinds.filter((k) => k === 'CustomResourceDefinition')).toHaveLength(3);
    expect(kinds).toContain('ValidatingAdmissionPolicy');
    expect(kinds).not.toContain('DaemonSet'); // the operator makes it, only while some trace is active
    // the operator reads the ConfigMap the chart renders
    const cm = docs.find((d) => d.kind === 'ConfigMap');
    const file = join(cluster.cp.dir, 'operator.yaml');
    writeFileSync(file, cm.data['operator.yaml']);
    const cfg = loadConfig({ POD_NAMESPACE: INSTALL, POD_NAME: 'p' }, file);
    expect(cfg.agent).toEqual({ ...defaultConfig().agent, image: 'ghcr.io/vhosttrace/vhosttrace:0.1.0' });
    expect(cfg).toMatchObject({ namespace: INSTALL, identity: 'p', metricsPort: 8080, statusMinIntervalMs: 2000, reportWritesPerSecond: 50, reportBytesPerSecond: 1_000_000, workers: 2 });
  });

  it('applies to a real API server (which compiles the policy\'s CEL on create)', async () => {
    const ordered = [...docs.filter((d) => d.kind === 'Namespace' || d.kind === 'CustomResourceDefinition'), ...docs.filter((d) => d.kind !== 'Namespace' && d.kind !== 'CustomResourceDefinition')];
    await applyAll(c, ordered);
    // Type-checking warnings (status.typeChecking) come from kube-controller-manager: e2e test.
    const vap = (await c.request('GET', '/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicies/vhosttrace-agent-own-node')).body;
    expect(vap.spec.validations).toHaveLength(1);
  });

  it('the operator does its job with only its own service account', async () => {
    for (const n of ['n1', 'n2']) {
      await c.request('POST', '/api/v1/nodes', { apiVersion: 'v1', kind: 'Node', metadata: { name: n, labels: { 'kubevirt.io/schedulable': 'true' } } });
    }
    await c.request('POST', '/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'vms' } });
    const kc = tokenKubeconfig(cluster.cp, 'operator', await token('vhosttrace-operator'));
    const cfg = { ...defaultConfig(), namespace: INSTALL, identity: 'op', metricsPort: 0, statusMinIntervalMs: 200 };
    op = new Operator(new KubeClient(loadKubeConfig(kc)), cfg, pino({ level: 'silent' }));
    await op.start();
    await c.request('POST', '/apis/vhosttrace.io/v1alpha1/namespaces/vms/vhosttraces', {
      apiVersion: 'vhosttrace.io/v1alpha1',
      kind: 'VhostTrace',
      metadata: { name: 't' },
      spec: { interval: '5s' },
    });
    await eventually(async () => (await c.request('GET', `/apis/apps/v1/namespaces/${INSTALL}/daemonsets/vhosttrace-agent`)).status === 200, 15_000, 'DaemonSet');
    const st = await eventually(async () => (await c.request('GET', '/apis/vhosttrace.io/v1alpha1/namespaces/vms/vhosttraces/t')).body.status, 15_000, 'status');
    expect(st.nodesReporting).toBe('0/2');
    expect(op.metrics.errors.get({ kind: 'VhostTrace' }) + op.metrics.errors.get({ kind: 'DaemonSet' })).toBe(0);
  });

  it('an agent writes its own node\'s report and no other node\'s', async () => {
    const pod = await c.request('POST', `/api/v1/namespaces/${INSTALL}/pods`, {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'agent-n1' },
      spec: { nodeName: 'n1', serviceAccountName: 'vhosttrace-agent', containers: [{ name: 'a', image: 'example.invalid/agent' }] },
    });
    expect(pod.status, JSON.stringify(pod.body)).toBe(201);
    const agent = new TestClient(tokenKubeconfig(cluster.cp, 'agent-n1', await token('vhosttrace-agent', { name: 'agent-n1', uid: pod.body.metadata.uid })));
    const who = await agent.request('POST', '/apis/authentication.k8s.io/v1/selfsubjectreviews', { apiVersion: 'authentication.k8s.io/v1', kind: 'SelfSubjectReview' });
    expect(who.body.status.userInfo.extra['authentication.kubernetes.io/node-name']).toEqual(['n1']);

    const trace = (await c.request('GET', '/apis/vhosttrace.io/v1alpha1/namespaces/vms/vhosttraces/t')).body;
    const status = { state: 'Reporting' as const, observedTime: new Date().toISOString().replace(/\.\d{3}Z$/, 'Z'), total: { rx: { packets: { count: 1, sum: 1, buckets: [1] }, bytes: { count: 1, sum: 64, buckets: [0, 0, 0, 0, 0, 0, 1] } } } };
    // A new policy takes effect when the API server's policy informer has it: probe with dry runs.
    const probe = reportSkeleton(traceRef(trace), 'n2', INSTALL);
    await eventually(
      async () =>
        (await agent.request('PATCH', `/apis/vhosttrace.io/v1alpha1/namespaces/vms/vhosttracereports/${probe.metadata.name}?fieldManager=probe&force=true&dryRun=All`, probe, {
          'content-type': 'application/apply-patch+yaml',
        })).status === 403,
      30_000,
      'policy enforced',
    );
    await writeReport(agent, trace, 'n1', status, INSTALL);
    const forged = writeReport(agent, trace, 'n2', status, INSTALL);
    await expect(forged).rejects.toThrow(/403.*the agent on node n1 may write only its own node's reports, not n2's/);
    // nor may it move its own report to another node, or touch the trace's status (RBAC)
    const own = '/apis/vhosttrace.io/v1alpha1/namespaces/vms/vhosttracereports/t.n1';
    const mv = await agent.request('PATCH', own, { spec: { nodeName: 'n2' } }, { 'content-type': 'application/merge-patch+json' });
    expect(mv.status).toBeGreaterThanOrEqual(400);
    const st = await agent.request('PATCH', '/apis/vhosttrace.io/v1alpha1/namespaces/vms/vhosttraces/t/status', { status: { phase: 'Failed' } }, { 'content-type': 'application/merge-patch+json' });
    expect(st.status).toBe(403);
    // a token bound to no pod carries no node: refused
    const unbound = new TestClient(tokenKubeconfig(cluster.cp, 'agent-unbound', await token('vhosttrace-agent')));
    await expect(writeReport(unbound, trace, 'n1', status, INSTALL)).rejects.toThrow(/403.*token bound to a pod on a node/);
    // and the operator rolls the agent's report up
    await eventually(async () => (await c.request('GET', '/apis/vhosttrace.io/v1alpha1/namespaces/vms/vhosttraces/t')).body.status?.nodesReporting === '1/2', 10_000, 'rolled up');
  });
});
