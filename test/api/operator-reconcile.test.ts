// The operator against a real kube-apiserver (its own, so it does not reconcile other test
// files' traces): DaemonSet lifecycle, roll-up of reports written as agents write them, the
// Completed phase, restarts, leader election, metrics and logs. No kube-controller-manager
// here: garbage collection and pods are the e2e tests' part.
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fromValues, merge, summarize } from '../../src/api/histogram.js';
import type { Trace } from '../../src/api/reports.js';
import type { RawDirections, ReportStatus } from '../../src/api/v1alpha1.js';
import { KubeClient, loadKubeConfig } from '../../src/kube/client.js';
import { defaultConfig, type OperatorConfig } from '../../src/operator/config.js';
import { Operator } from '../../src/operator/operator.js';
import { eventually, startCluster, writeReport, type Cluster } from '../harness/cluster.js';
import type { TestClient } from '../harness/kube.js';

const INSTALL = 'vhosttrace-system';
const NS = 'tenant';
const API = '/apis/vhosttrace.io/v1alpha1';
const DS = `/apis/apps/v1/namespaces/${INSTALL}/daemonsets/vhosttrace-agent`;

let cluster: Cluster;
let c: TestClient;
const logLines: any[] = [];
const running: Operator[] = [];

function startOperator(identity: string, extra: Partial<OperatorConfig> = {}): Operator {
  const cfg: OperatorConfig = {
    ...defaultConfig(),
    namespace: INSTALL,
    identity,
    metricsPort: 0,
    statusMinIntervalMs: 300,
    leaseDurationMs: 3000,
    renewDeadlineMs: 2000,
    retryPeriodMs: 500,
    ...extra,
  };
  const log = pino({ level: 'info', base: { identity } }, { write: (s: string) => void logLines.push(JSON.parse(s)) });
  const op = new Operator(new KubeClient(loadKubeConfig(cluster.kubeconfig)), cfg, log);
  running.push(op);
  return op;
}

async function leader(): Promise<Operator> {
  return eventually(async () => running.find((o) => o.elector.isLeader), 10_000, 'a leader');
}

const node = (name: string, labels: Record<string, string>) => ({ apiVersion: 'v1', kind: 'Node', metadata: { name, labels } });
const KV = { 'kubevirt.io/schedulable': 'true' };

async function create(path: string, obj: unknown) {
  const r = await c.request('POST', path, obj);
  expect(r.status, JSON.stringify(r.body)).toBe(201);
  return r.body;
}
const get = async (path: string) => (await c.request('GET', path)).body;

const vht = (name: string, spec: Record<string, unknown>) => ({ apiVersion: 'vhosttrace.io/v1alpha1', kind: 'VhostTrace', metadata: { name, namespace: NS }, spec });

/** Random cumulative totals for one node, from values, so the merge can be checked against them. */
function totals(seed: number, n: number): { dirs: RawDirections; values: number[][] } {
  let x = seed;
  const rnd = (m: number) => ((x = (x * 1103515245 + 12345) % 2147483648), x % m);
  const values = [0, 1, 2, 3].map((k) => Array.from({ length: n }, () => (k % 2 ? rnd(600_000) : rnd(300))));
  const [a, b, cc, d] = values.map(fromValues) as [any, any, any, any];
  return { dirs: { rx: { packets: a, bytes: b }, tx: { packets: cc, bytes: d } }, values };
}
const reporting = (dirs: RawDirections, vms: ReportStatus['vms'] = []): ReportStatus => ({
  state: 'Reporting',
  observedTime: new Date().toISOString().replace(/\.\d{3}Z$/, 'Z'),
  kernel: '6.1.0-47-amd64',
  mode: 'tracepoint',
  total: dirs,
  vms,
});

beforeAll(async () => {
  cluster = await startCluster();
  c = cluster.client;
  for (const ns of [INSTALL, NS]) await create('/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } });
  // the install's agent ServiceAccount: it owns the DaemonSet, and without it none is made
  await create(`/api/v1/namespaces/${INSTALL}/serviceaccounts`, { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'vhosttrace-agent' } });
  await create('/api/v1/nodes', node('kv-a', { ...KV, zone: 'a' }));
  await create('/api/v1/nodes', node('kv-b', { ...KV, zone: 'b' }));
  await create('/api/v1/nodes', node('kv-c', { ...KV, zone: 'c' }));
  await create('/api/v1/nodes', node('plain', { zone: 'a' }));
}, 180_000);

afterAll(async () => {
  for (const o of running) await o.stop(false).catch(() => {});
  await cluster?.stop();
});

describe('operator against a real API server', () => {
  let trace: Trace;

  it('creates the agent DaemonSet for the first active trace, on the nodes it selects', async () => {
    const op = startOperator('op-1');
    await op.start();
    await leader();
    expect((await c.request('GET', DS)).status).toBe(404);
    trace = await create(`${API}/namespaces/${NS}/vhosttraces`, vht('web', { nodeSelector: { matchExpressions: [{ key: 'zone', operator: 'In', values: ['a', 'b'] }] } }));
    const ds = await eventually(async () => (await c.request('GET', DS)).status === 200 && get(DS), 10_000, 'DaemonSet');
    expect(ds.spec.template.spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms).toEqual([
      { matchExpressions: [{ key: 'kubevirt.io/schedulable', operator: 'In', values: ['true'] }, { key: 'zone', operator: 'In', values: ['a', 'b'] }] },
    ]);
    expect(ds.metadata.managedFields.map((m: any) => m.manager)).toContain('vhosttrace-operator');
    const st = await eventually(async () => (await get(`${API}/namespaces/${NS}/vhosttraces/web`)).status, 10_000, 'status');
    expect(st).toMatchObject({ phase: 'Pending', nodesReporting: '0/2', nodeCounts: { selected: 2, reporting: 0, pending: 2, failed: 0 }, interval: '10s', observedGeneration: 1 });
    expect(st.conditions.find((x: any) => x.type === 'NodesReady').message).toBe('2 of 2 nodes have not reported: kv-a, kv-b');
  });

  it('rolls the reports up into the exact merge, and names a node that cannot trace', async () => {
    const a = totals(1, 500);
    const b = totals(2, 700);
    const vms = [{ namespace: NS, name: 'vm-1', uid: 'u1', ...a.dirs }];
    await writeReport(c, trace, 'kv-a', reporting(a.dirs, vms), INSTALL);
    await writeReport(c, trace, 'kv-b', reporting(b.dirs), INSTALL);
    const path = `${API}/namespaces/${NS}/vhosttraces/web`;
    const st = await eventually(async () => {
      const s = (await get(path)).status;
      return s?.phase === 'Running' && s.summary?.rx?.packets.count === 1200 && s;
    }, 10_000, 'Running with both reports');
    expect(st.summary.rx.packets).toEqual(summarize(merge(a.dirs.rx!.packets, b.dirs.rx!.packets)));
    expect(st.summary.rx.bytes).toEqual(summarize(fromValues([...a.values[1]!, ...b.values[1]!])));
    expect(st.summary.tx.packets).toEqual(summarize(fromValues([...a.values[2]!, ...b.values[2]!])));
    expect(st.summary.tx.bytes).toEqual(summarize(merge(a.dirs.tx!.bytes, b.dirs.tx!.bytes)));
    expect(st.vms).toEqual([{ namespace: NS, name: 'vm-1', node: 'kv-a', rx: expect.any(Object), tx: expect.any(Object) }]);
    expect(st.nodesReporting).toBe('2/2');

    await writeReport(c, trace, 'kv-b', { state: 'Failed', reason: 'TracepointMissing', message: 'vhost_net has no vhost_net_rx_end tracepoint', kernel: '6.12.0' }, INSTALL);
    const failed = await eventually(async () => {
      const s = (await get(path)).status;
      return s?.nodeCounts?.failed === 1 && s;
    }, 10_000, 'kv-b failed');
    const cond = failed.conditions.find((x: any) => x.type === 'NodesReady');
    expect(cond).toMatchObject({ status: 'False', reason: 'TracepointMissing', message: '1 of 2 nodes cannot trace: kv-b (TracepointMissing)' });
    expect(failed.nodes[0]).toMatchObject({ name: 'kv-b', state: 'Failed', reason: 'TracepointMissing' });
    // kv-b's report no longer carries totals: the summary is the merge of what the reports hold
    expect(failed.summary.rx.packets).toEqual(summarize(a.dirs.rx!.packets));

    // The caches hold reports and nodes trimmed by the informers' transforms, not as listed.
    const op = await leader();
    const cached = op.caches.reports.list();
    expect(cached.map((r) => r.spec.nodeName).sort()).toEqual(['kv-a', 'kv-b']);
    for (const r of cached) {
      expect(Object.keys(r).sort()).toEqual(['metadata', 'packed', 'spec', 'status', 'statusBytes']);
      expect(Object.keys(r.metadata).sort()).toEqual(['name', 'namespace', 'resourceVersion']);
    }
    expect(cached.find((r) => r.spec.nodeName === 'kv-a')!.packed.names).toEqual([NS, 'vm-1']);
    for (const n of op.caches.allNodes()) expect(Object.keys(n.metadata).sort()).toEqual(['labels', 'name', 'resourceVersion']);
  });

  it('writes nothing when nothing changed', async () => {
    const op = await leader();
    const before = op.metrics.statusWrites.get({ result: 'written' });
    const rv = (await get(`${API}/namespaces/${NS}/vhosttraces/web`)).metadata.resourceVersion;
    for (let i = 0; i < 5; i++) op.queue.add(`VhostTrace/${NS}/web`);
    await new Promise((r) => setTimeout(r, 1500));
    expect(op.metrics.statusWrites.get({ result: 'written' })).toBe(before);
    expect((await get(`${API}/namespaces/${NS}/vhosttraces/web`)).metadata.resourceVersion).toBe(rv);
  });

  it('killed mid-trace, a new operator resumes with nothing lost', async () => {
    const old = await leader();
    const path = `${API}/namespaces/${NS}/vhosttraces/web`;
    const before = (await get(path)).status;
    await old.stop(false); // as after SIGKILL: no lease release, no goodbye
    running.splice(running.indexOf(old), 1);
    // agents keep reporting while no operator runs
    const a2 = totals(3, 900);
    const b2 = totals(4, 100);
    await writeReport(c, trace, 'kv-a', reporting(a2.dirs), INSTALL);
    await writeReport(c, trace, 'kv-b', reporting(b2.dirs), INSTALL);
    const op = startOperator('op-2');
    await op.start();
    const t0 = Date.now();
    const st = await eventually(async () => {
      const s = (await get(path)).status;
      return s?.summary?.rx?.packets.count === 1000 && s;
    }, 15_000, 'caught up after restart');
    // it waited for the dead replica's lease (3 s) to run out, then caught up
    expect(Date.now() - t0).toBeGreaterThan(1000);
    expect(st.startTime).toBe(before.startTime);
    expect(st.summary.rx.packets).toEqual(summarize(merge(a2.dirs.rx!.packets, b2.dirs.rx!.packets)));
    expect(st.summary.tx.bytes).toEqual(summarize(merge(a2.dirs.tx!.bytes, b2.dirs.tx!.bytes)));
    expect(st.nodeCounts).toEqual({ selected: 2, reporting: 2, pending: 0, failed: 0 });
  });

  it('a ClusterVhostTrace adds its nodes to the DaemonSet; its reports live in the install namespace', async () => {
    const ct = await create(`${API}/clustervhosttraces`, {
      apiVersion: 'vhosttrace.io/v1alpha1',
      kind: 'ClusterVhostTrace',
      metadata: { name: 'all' },
      spec: { interval: '5s' },
    });
    const terms = await eventually(async () => {
      const t = (await get(DS)).spec?.template.spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms;
      return t?.length === 2 && t;
    }, 10_000, 'two terms');
    expect(terms).toContainEqual({ matchExpressions: [{ key: 'kubevirt.io/schedulable', operator: 'In', values: ['true'] }] });
    const x = totals(5, 50);
    for (const n of ['kv-a', 'kv-b', 'kv-c']) await writeReport(c, ct, n, reporting(x.dirs), INSTALL);
    expect((await get(`${API}/namespaces/${INSTALL}/vhosttracereports`)).items.map((r: any) => r.metadata.name).sort()).toEqual([
      'cluster.all.kv-a',
      'cluster.all.kv-b',
      'cluster.all.kv-c',
    ]);
    const st = await eventually(async () => {
      const s = (await get(`${API}/clustervhosttraces/all`)).status;
      return s?.nodesReporting === '3/3' && s;
    }, 10_000, 'cluster trace Running');
    expect(st.phase).toBe('Running');
    expect(st.summary.rx.packets.count).toBe(150);
    expect(st.interval).toBe('5s');
  });

  it('completes after its duration, keeps its numbers, and the DaemonSet goes with the last active trace', async () => {
    await c.request('DELETE', `${API}/clustervhosttraces/all`);
    const short = await create(`${API}/namespaces/${NS}/vhosttraces`, vht('short', { duration: '10s', interval: '2s', nodeSelector: { matchLabels: { zone: 'c' } } }));
    const x = totals(6, 300);
    await writeReport(c, short, 'kv-c', reporting(x.dirs), INSTALL);
    const path = `${API}/namespaces/${NS}/vhosttraces/short`;
    await eventually(async () => (await get(path)).status?.phase === 'Running', 10_000, 'short Running');
    await c.request('DELETE', `${API}/namespaces/${NS}/vhosttraces/web`);
    // only "short" is active now: one term
    await eventually(async () => (await get(DS)).spec?.template.spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms.length === 1, 10_000, 'one term');
    const done = await eventually(async () => {
      const s = (await get(path)).status;
      return s?.phase === 'Completed' && s;
    }, 20_000, 'Completed');
    expect(Date.parse(done.endTime) - Date.parse(done.startTime)).toBe(10_000);
    expect(done.summary.rx.packets).toEqual(summarize(x.dirs.rx!.packets));
    expect(done.conditions.find((k: any) => k.type === 'Completed')).toMatchObject({ status: 'True', reason: 'DurationElapsed' });
    await eventually(async () => (await c.request('GET', DS)).status === 404, 10_000, 'DaemonSet deleted');
    // a late report after the end does not change the final numbers
    await writeReport(c, short, 'kv-c', reporting(totals(7, 999).dirs), INSTALL);
    await new Promise((r) => setTimeout(r, 1500));
    expect((await get(path)).status).toEqual(done);
  });

  it('two replicas: one leads, the other takes over when it dies', async () => {
    const first = await leader();
    const second = startOperator('op-3');
    await second.start();
    await new Promise((r) => setTimeout(r, 1500));
    expect(running.filter((o) => o.elector.isLeader)).toEqual([first]);
    const lease = await get(`/apis/coordination.k8s.io/v1/namespaces/${INSTALL}/leases/vhosttrace-operator`);
    expect(lease.spec.holderIdentity).toBe(first.cfg.identity);
    await first.stop(false);
    running.splice(running.indexOf(first), 1);
    await eventually(async () => second.elector.isLeader, 10_000, 'standby took over');
    const after = await get(`/apis/coordination.k8s.io/v1/namespaces/${INSTALL}/leases/vhosttrace-operator`);
    expect(after.spec.holderIdentity).toBe('op-3');
    expect(after.spec.leaseTransitions).toBeGreaterThan(lease.spec.leaseTransitions);
    // and it works: a new trace gets a DaemonSet and a status
    await create(`${API}/namespaces/${NS}/vhosttraces`, vht('after', {}));
    await eventually(async () => (await c.request('GET', DS)).status === 200, 10_000, 'DaemonSet from the new leader');
    await eventually(async () => (await get(`${API}/namespaces/${NS}/vhosttraces/after`)).status?.nodeCounts?.selected === 3, 10_000, 'status from the new leader');
  });

  it('serves /metrics, /healthz, /readyz, and logs the trace key on every trace line', async () => {
    const op = await leader();
    const after = await get(`${API}/namespaces/${NS}/vhosttraces/after`);
    await writeReport(c, after, 'kv-a', reporting(totals(8, 10).dirs), INSTALL);
    await eventually(async () => (await get(`${API}/namespaces/${NS}/vhosttraces/after`)).status?.nodeCounts?.reporting === 1, 10_000, 'report in');
    const base = `http://127.0.0.1:${op.port}`;
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    expect((await fetch(`${base}/readyz`)).status).toBe(200);
    const text = await (await fetch(`${base}/metrics`)).text();
    expect(text).toMatch(/^vhosttrace_operator_reconciles_total\{kind="VhostTrace",result="ok"\} \d+$/m);
    expect(text).toMatch(/^vhosttrace_operator_queue_depth \d+$/m);
    expect(text).toMatch(/^vhosttrace_operator_leader 1$/m);
    expect(text).toMatch(/^vhosttrace_operator_rollup_duration_seconds_count \d+$/m);
    expect(text).toMatch(/^vhosttrace_operator_report_to_status_seconds_bucket\{le="2"\} \d+$/m);
    const statusLines = logLines.filter((l) => l.msg === 'status written');
    expect(statusLines.length).toBeGreaterThan(3);
    for (const l of statusLines) expect(l.trace).toMatch(/^(Cluster)?VhostTrace\/[a-z-]*\/[a-z-]+$/);
  });

  it('a node labelled for KubeVirt later joins the traces that select it', async () => {
    const path = `${API}/namespaces/${NS}/vhosttraces/after`;
    expect((await get(path)).status.nodeCounts.selected).toBe(3);
    const r = await c.request('PATCH', '/api/v1/nodes/plain', { metadata: { labels: KV } }, { 'content-type': 'application/merge-patch+json' });
    expect(r.status).toBe(200);
    const st = await eventually(async () => {
      const s = (await get(path)).status;
      return s?.nodeCounts?.selected === 4 && s;
    }, 10_000, 'plain selected');
    expect(st.nodes.find((n: any) => n.name === 'plain')).toEqual({ name: 'plain', state: 'Pending' });
  });
});
