// `helm uninstall` with a trace still active leaves no agent: the real helm installs the chart
// into a control plane with kube-controller-manager (DaemonSet controller, garbage collector),
// kube-scheduler and a kwok node; the operator (in this process, as kwok only pretends to run
// its pods) makes the agent DaemonSet, and keeps running through the uninstall, the worst case:
// it would re-create the DaemonSet the moment it is gone.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KubeClient, loadKubeConfig } from '../../src/kube/client.js';
import { defaultConfig } from '../../src/operator/config.js';
import { Operator } from '../../src/operator/operator.js';
import { eventually, fakeNode, helmEnv, KUBE_VERSION, startCluster, type Cluster } from '../harness/cluster.js';
import { testBinaries } from '../harness/controlplane.js';
import type { TestClient } from '../harness/kube.js';

const INSTALL = 'vhosttrace-system';
const DS = `/apis/apps/v1/namespaces/${INSTALL}/daemonsets/vhosttrace-agent`;
const AGENT_PODS = `/api/v1/namespaces/${INSTALL}/pods?labelSelector=app.kubernetes.io%2Fcomponent%3Dagent`;
let cluster: Cluster;
let c: TestClient;
let op: Operator;
let helm: (...args: string[]) => { code: number | null; out: string };

beforeAll(async () => {
  cluster = await startCluster({ extras: ['kube-controller-manager', 'kube-scheduler', 'kwok'], log: (l) => console.log(`[cluster] ${l}`) });
  c = cluster.client;
  const bin = (await testBinaries(['helm'])).helm!;
  helm = (...args) => {
    const r = spawnSync(bin, [...args, '--kubeconfig', cluster.kubeconfig], { encoding: 'utf8', env: helmEnv() });
    return { code: r.status, out: r.stdout + r.stderr };
  };
  expect((await c.request('POST', '/api/v1/nodes', fakeNode('kv-1', { 'kubevirt.io/schedulable': 'true' }))).status).toBe(201);
  await c.request('POST', '/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'vms' } });
}, 600_000);

afterAll(async () => {
  await op?.stop(false);
  await cluster?.stop();
});

describe('helm uninstall with an active trace', () => {
  it('the agent DaemonSet is owned by the agent ServiceAccount the chart installs', async () => {
    const r = helm('install', 'vhosttrace', join(import.meta.dirname, '../../charts/vhosttrace'), '--namespace', INSTALL, '--create-namespace', '--set', 'operator.replicas=1');
    expect(r.code, r.out).toBe(0);
    expect(KUBE_VERSION).toMatch(/^v1\.(3[0-9]|[4-9][0-9])\./); // the chart's kubeVersion, checked by helm against the server
    const cfg = { ...defaultConfig(), namespace: INSTALL, identity: 'op', metricsPort: 0, statusMinIntervalMs: 200 };
    op = new Operator(new KubeClient(loadKubeConfig(cluster.kubeconfig)), cfg, pino({ level: 'silent' }));
    await op.start();
    const t = await c.request('POST', '/apis/vhosttrace.io/v1alpha1/namespaces/vms/vhosttraces', {
      apiVersion: 'vhosttrace.io/v1alpha1', kind: 'VhostTrace', metadata: { name: 'long' }, spec: { interval: '5s' },
    });
    expect(t.status, JSON.stringify(t.body)).toBe(201);
    await eventually(async () => (await c.request('GET', AGENT_PODS)).body.items?.some((p: any) => p.status?.phase === 'Running'), 90_000, 'a Running agent pod');
    const ds = (await c.request('GET', DS)).body;
    const sa = (await c.request('GET', `/api/v1/namespaces/${INSTALL}/serviceaccounts/vhosttrace-agent`)).body;
    expect(ds.metadata.ownerReferences).toEqual([{ apiVersion: 'v1', kind: 'ServiceAccount', name: 'vhosttrace-agent', uid: sa.metadata.uid }]);
  });

  it('leaves no agent DaemonSet or pod, though the trace stays and the operator still runs', async () => {
    const r = helm('uninstall', 'vhosttrace', '--namespace', INSTALL, '--wait', '--timeout', '2m');
    expect(r.code, r.out).toBe(0);
    await eventually(async () => (await c.request('GET', DS)).status === 404 && (await c.request('GET', AGENT_PODS)).body.items?.length === 0, 60_000, 'no agent DaemonSet or pod');
    // and none comes back: the operator finds no ServiceAccount to own one and makes none
    await new Promise((res) => setTimeout(res, 5000));
    expect((await c.request('GET', DS)).status).toBe(404);
    expect((await c.request('GET', AGENT_PODS)).body.items).toEqual([]);
    expect((await c.request('GET', '/apis/vhosttrace.io/v1alpha1/namespaces/vms/vhosttraces/long')).status).toBe(200);
    expect(op.metrics.errors.get({ kind: 'DaemonSet' })).toBeGreaterThan(0);
  });
});
