// Real agent processes, one per simulated node, against a real API server: recorded loader
// snapshots stand in for the kernel. Every total is compared with the recording exactly.
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fromValues, merge } from '../../src/api/histogram.js';
import type { VhostTraceReport } from '../../src/api/v1alpha1.js';
import { recording, podCgroup, startAgent, type AgentProcess, type Workload } from '../harness/agents.js';
import { startControlPlane, logTail, type ControlPlane } from '../harness/controlplane.js';
import { installCRDs, TestClient } from '../harness/kube.js';
import { createVmi, launcherPod, VMI_CRD } from '../harness/kubevirt.js';

const FRAME_S = 0.4;
const IDLE = 8; // frames of zeros before traffic: the agents open their ledgers then
const STEPS = 6;

let cp: ControlPlane;
let c: TestClient;
let work: string;
const agents: AgentProcess[] = [];

async function until<T>(what: string, get: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: T | undefined;
  for (;;) {
    last = await get().catch(() => undefined);
    if (last !== undefined) return last;
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${what}\n${agents.map((a) => `--- ${a.node}\n${logTail(a.logFile, 15)}`).join('\n')}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}

const reportsPath = (ns: string) => `/apis/vhosttrace.io/v1alpha1/namespaces/${ns}/vhosttracereports`;

/** A VMI and its virt-launcher pod on a node, shaped as KubeVirt makes them; the pod's UID. */
async function createVm(ns: string, node: string, name: string, labels: Record<string, string> = {}): Promise<string> {
  const vmi = await createVmi(c, ns, name, labels);
  const r = await c.request('POST', `/api/v1/namespaces/${ns}/pods`, launcherPod(vmi, node));
  if (r.status !== 201) throw new Error(`pod of ${ns}/${name}: ${JSON.stringify(r.body)}`);
  return r.body.metadata.uid;
}

// Ground truth: node-1 runs vm-a1 (ns-a) and vm-b1 (ns-b); node-2 runs vm-a2 (ns-a); node-3 is
// not a KubeVirt node. Plus on node-1 a cgroup of no pod (a QEMU outside Kubernetes).
const truth: Record<string, Workload[]> = {};
const vmOfCgroup: Record<string, Record<number, string>> = {};

beforeAll(async () => {
  cp = await startControlPlane();
  c = new TestClient(cp.kubeconfig);
  await installCRDs(c);
  await installCRDs(c, 30_000, [VMI_CRD]);
  work = mkdtempSync(join(tmpdir(), 'vhosttrace-agents-'));
  for (const ns of ['ns-a', 'ns-b', 'vhosttrace-system']) {
    await c.request('POST', '/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns, labels: { team: ns } } });
    await c.request('POST', `/api/v1/namespaces/${ns}/serviceaccounts`, { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'default' } });
  }
  for (const [node, kubevirt] of [['node-1', true], ['node-2', true], ['node-3', false]] as const) {
    const labels = kubevirt ? { 'kubevirt.io/schedulable': 'true' } : {};
    await c.request('POST', '/api/v1/nodes', { apiVersion: 'v1', kind: 'Node', metadata: { name: node, labels } });
  }
  const a1 = await createVm('ns-a', 'node-1', 'vm-a1', { app: 'db' });
  const b1 = await createVm('ns-b', 'node-1', 'vm-b1', { app: 'db' });
  const a2 = await createVm('ns-a', 'node-2', 'vm-a2', { app: 'web' });
  const cg = (node: string) => join(work, node, 'cg');
  const ids = {
    a1: podCgroup(cg('node-1'), a1),
    b1: podCgroup(cg('node-1'), b1),
    stray: podCgroup(cg('node-1'), '00000000-0000-4000-8000-000000000000'),
    a2: podCgroup(cg('node-2'), a2),
    n3: podCgroup(cg('node-3'), '00000000-0000-4000-8000-000000000003'),
  };
  const runs = (n: number, f: (i: number) => number) => Array.from({ length: n }, (_, i) => f(i));
  truth['node-1'] = [
    { cgroupId: ids.a1, direction: 'rx', runs: runs(600, (i) => (i % 7) + 1), frameBytes: 1514 },
    { cgroupId: ids.a1, direction: 'tx', runs: runs(300, (i) => (i % 3) * 64), frameBytes: 66 },
    { cgroupId: ids.b1, direction: 'rx', runs: runs(250, () => 256), frameBytes: 2048 },
    { cgroupId: ids.stray, direction: 'rx', runs: runs(40, (i) => i), frameBytes: 100 },
    { cgroupId: 0, direction: 'tx', runs: runs(5, () => 1), frameBytes: 60 },
  ];
  truth['node-2'] = [{ cgroupId: ids.a2, direction: 'rx', runs: runs(1000, (i) => 1 + (i % 32)), frameBytes: 512 }];
  truth['node-3'] = [{ cgroupId: ids.n3, direction: 'rx', runs: [1, 2, 3], frameBytes: 60 }];
  vmOfCgroup['node-1'] = { [ids.a1]: 'vm-a1', [ids.b1]: 'vm-b1' };
  vmOfCgroup['node-2'] = { [ids.a2]: 'vm-a2' };

  // The traces exist before the agents start, so their ledgers open on the idle frames.
  const trace = (kind: string, name: string, spec: object, ns?: string) =>
    c.request('POST', `/apis/vhosttrace.io/v1alpha1${ns ? `/namespaces/${ns}` : ''}/${kind === 'VhostTrace' ? 'vhosttraces' : 'clustervhosttraces'}`, {
      apiVersion: 'vhosttrace.io/v1alpha1', kind, metadata: { name }, spec,
    });
  expect((await trace('VhostTrace', 'a-all', { interval: '1s' }, 'ns-a')).status).toBe(201);
  expect((await trace('VhostTrace', 'b-db', { interval: '1s', vmSelector: { matchLabels: { app: 'db' } }, directions: ['rx'] }, 'ns-b')).status).toBe(201);
  expect((await trace('ClusterVhostTrace', 'everything', { interval: '1s' })).status).toBe(201);

  for (const node of ['node-1', 'node-2', 'node-3']) {
    agents.push(startAgent({ node, dir: join(work, node), kubeconfig: cp.kubeconfig, frames: recording(truth[node]!, IDLE, STEPS), frameSeconds: FRAME_S }));
  }
}, 120_000);

afterAll(async () => {
  await Promise.all(agents.map((a) => a.stop().catch(() => {})));
  await cp?.stop();
  if (work && !process.env.VHOSTTRACE_KEEP_CONTROL_PLANE) rmSync(work, { recursive: true, force: true });
});

/** Expected counts of one VM (or of everything matching) on a node, by direction. */
function expected(node: string, pick: (w: Workload) => boolean, direction: 'rx' | 'tx') {
  const ws = truth[node]!.filter((w) => w.direction === direction && pick(w));
  return {
    packets: fromValues(ws.flatMap((w) => w.runs)),
    bytes: fromValues(ws.flatMap((w) => w.runs.map((r) => r * w.frameBytes))),
  };
}

async function finalReport(ns: string, name: string, done: (r: VhostTraceReport) => boolean): Promise<VhostTraceReport> {
  return until(`report ${ns}/${name}`, async () => {
    const r = await c.request<VhostTraceReport>('GET', `${reportsPath(ns)}/${name}`);
    return r.status === 200 && r.body.status && done(r.body) ? r.body : undefined;
  });
}

/** Prometheus text (0.0.4) samples; label values unescaped. */
function parseExposition(text: string): { name: string; labels: Record<string, string>; value: number }[] {
  return text
    .split('\n')
    .filter((l) => l && !l.startsWith('#'))
    .map((l) => {
      const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(l);
      if (!m) throw new Error(`not a sample line: ${l}`);
      const labels: Record<string, string> = {};
      for (const [, k, v] of (m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[k!] = v!.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
      return { name: m[1]!, labels, value: Number(m[3]) };
    });
}

const vmNamed = (node: string, name: string) => (w: Workload) => vmOfCgroup[node]?.[w.cgroupId] === name;
const totalRuns = (node: string) => truth[node]!.reduce((n, w) => n + w.runs.length, 0);

describe('agents', () => {
  it('write one report per trace and node, owned by the trace, for KubeVirt nodes only', async () => {
    await finalReport('ns-a', 'a-all.node-1', () => true);
    await finalReport('ns-a', 'a-all.node-2', () => true);
    const r = await c.request('GET', reportsPath('ns-a'));
    expect(r.body.items.map((x: any) => x.metadata.name).sort()).toEqual(['a-all.node-1', 'a-all.node-2']);
    const rep = r.body.items[0];
    expect(rep.metadata.ownerReferences[0]).toMatchObject({ kind: 'VhostTrace', name: 'a-all' });
    expect(rep.metadata.labels['vhosttrace.io/node']).toMatch(/^node-[12]$/);
    expect(rep.status).toMatchObject({ state: 'Reporting', mode: 'tracepoint', kernel: expect.any(String) });
    // node-3 is not labelled kubevirt.io/schedulable=true: the default node selector skips it.
    await finalReport('vhosttrace-system', 'cluster.everything.node-2', () => true);
    const cluster = await c.request('GET', reportsPath('vhosttrace-system'));
    expect(cluster.body.items.map((x: any) => x.spec.nodeName).sort()).toEqual(['node-1', 'node-2']);
  });

  it('a namespaced trace holds exactly its own namespace VMs, equal to the ground truth', async () => {
    const r1 = await finalReport('ns-a', 'a-all.node-1', (r) => r.status?.total?.rx?.packets.count === 600);
    expect(r1.status!.vms!.map((v) => `${v.namespace}/${v.name}`)).toEqual(['ns-a/vm-a1']);
    // The VMI itself, found through the pod's ownerReference.
    const vmi = await c.request('GET', '/apis/kubevirt.io/v1/namespaces/ns-a/virtualmachineinstances/vm-a1');
    expect(r1.status!.vms![0]!.uid).toBe(vmi.body.metadata.uid);
    expect(r1.status!.vms![0]!.rx).toEqual(expected('node-1', vmNamed('node-1', 'vm-a1'), 'rx'));
    expect(r1.status!.vms![0]!.tx).toEqual(expected('node-1', vmNamed('node-1', 'vm-a1'), 'tx'));
    expect(r1.status!.total).toEqual({ rx: expected('node-1', vmNamed('node-1', 'vm-a1'), 'rx'), tx: expected('node-1', vmNamed('node-1', 'vm-a1'), 'tx') });
    expect(r1.status!.unattributed).toBeUndefined();
    const r2 = await finalReport('ns-a', 'a-all.node-2', (r) => r.status?.total?.rx?.packets.count === 1000);
    expect(r2.status!.vms![0]!.rx).toEqual(expected('node-2', () => true, 'rx'));
  });

  it('a vmSelector and directions narrow the report', async () => {
    const r = await finalReport('ns-b', 'b-db.node-1', (x) => x.status?.total?.rx?.packets.count === 250);
    expect(r.status!.vms!.map((v) => v.name)).toEqual(['vm-b1']);
    expect(Object.keys(r.status!.total!)).toEqual(['rx']);
    expect(r.status!.total!.rx).toEqual(expected('node-1', vmNamed('node-1', 'vm-b1'), 'rx'));
  });

  it('a cluster trace counts every VM and the unattributed workers, in the install namespace', async () => {
    const r = await finalReport('vhosttrace-system', 'cluster.everything.node-1', (x) => x.status?.total?.rx?.packets.count === 890);
    expect(r.status!.vms!.map((v) => v.name)).toEqual(['vm-a1', 'vm-b1']);
    const unattributed = (w: Workload) => !vmOfCgroup['node-1']![w.cgroupId];
    expect(r.status!.unattributed).toEqual({ rx: expected('node-1', unattributed, 'rx'), tx: expected('node-1', unattributed, 'tx') });
    expect(r.status!.total).toEqual({ rx: expected('node-1', () => true, 'rx'), tx: expected('node-1', () => true, 'tx') });
    expect(r.status!.total!.rx!.packets.count + r.status!.total!.tx!.packets.count).toBe(totalRuns('node-1'));
  });

  it('serves /metrics: per-VM Prometheus histograms whose buckets count the ground truth\'s runs, and the loader is up', async () => {
    // Wait for the whole recording (its totals in the cluster trace's report), then scrape.
    await finalReport('vhosttrace-system', 'cluster.everything.node-1', (x) => x.status?.total?.rx?.packets.count === 890);
    const port = agents[0]!.port();
    expect(port).toBeGreaterThan(0);
    const res = await fetch(`http://127.0.0.1:${port}/metrics?scrape=1`);
    expect(res.status).toBe(200);
    const samples = parseExposition(await res.text());
    const value = (name: string, labels: Record<string, string>) =>
      samples.find((s) => s.name === name && JSON.stringify(Object.entries(s.labels).sort()) === JSON.stringify(Object.entries(labels).sort()))?.value;
    const vms = [
      { vm: 'vm-a1', namespace: 'ns-a', pick: vmNamed('node-1', 'vm-a1') },
      { vm: 'vm-b1', namespace: 'ns-b', pick: vmNamed('node-1', 'vm-b1') },
      // The stray cgroup and cgroup 0: no VM, one series.
      { vm: '', namespace: '', pick: (w: Workload) => !vmOfCgroup['node-1']![w.cgroupId] },
    ];
    let series = 0;
    for (const { vm, namespace, pick } of vms) {
      for (const direction of ['rx', 'tx'] as const) {
        const ws = truth['node-1']!.filter((w) => w.direction === direction && pick(w));
        if (ws.length === 0) continue;
        series++;
        for (const [metric, values, slots] of [
          ['vhosttrace_vhost_run_packets', ws.flatMap((w) => w.runs), 10],
          ['vhosttrace_vhost_run_bytes', ws.flatMap((w) => w.runs.map((r) => r * w.frameBytes)), 21],
        ] as const) {
          const labels = { direction, namespace, vm };
          expect(value(`${metric}_count`, labels), `${metric} ${vm} ${direction}`).toBe(values.length);
          expect(value(`${metric}_sum`, labels)).toBe(values.reduce((a, b) => a + b, 0));
          // le = 1, 3, 7, ...: each bucket counts the runs up to it, straight from the truth.
          for (let k = 0; k < slots; k++) {
            const le = 2 ** (k + 1) - 1;
            expect(value(`${metric}_bucket`, { ...labels, le: String(le) }), `${metric} ${vm} ${direction} le=${le}`).toBe(values.filter((v) => v <= le).length);
          }
          expect(value(`${metric}_bucket`, { ...labels, le: '+Inf' })).toBe(values.length);
        }
      }
    }
    expect(series).toBe(5); // vm-a1 rx and tx, vm-b1 rx, no VM rx (stray) and tx (cgroup 0)
    expect(samples.filter((s) => s.name === 'vhosttrace_vhost_run_packets_count')).toHaveLength(series);
    expect(value('vhosttrace_agent_loader_up', {})).toBe(1);
    expect(value('vhosttrace_agent_active_traces', {})).toBe(3); // a-all, b-db and everything all select node-1
    expect(value('vhosttrace_agent_reports_total', { result: 'ok' })).toBeGreaterThan(0);
    expect((await fetch(`http://127.0.0.1:${port}/readyz`)).status).toBe(200);
  });

  it('reports come at the trace interval, never faster', async () => {
    const times: number[] = [];
    await until('six report updates', async () => {
      const r = await c.request<VhostTraceReport>('GET', `${reportsPath('ns-a')}/a-all.node-2`);
      const t = Date.parse(r.body.status!.observedTime!);
      if (times.at(-1) !== t) times.push(t);
      return times.length >= 6 ? true : undefined;
    });
    const gaps = times.slice(1).map((t, i) => t - times[i]!);
    // observedTime has second resolution; at a 1 s interval consecutive reports are 1-2 s apart.
    for (const g of gaps) expect(g).toBeGreaterThanOrEqual(1000);
    expect(gaps.filter((g) => g <= 2000).length).toBeGreaterThanOrEqual(gaps.length - 1);
  });
});

describe('agents survive', () => {
  it('an API server restart mid-trace: reports resume and totals stay exact', async () => {
    await cp.restartApiServer();
    const before = Date.now();
    const r = await finalReport('ns-a', 'a-all.node-2', (x) => Date.parse(x.status!.observedTime!) >= before - 1000);
    expect(r.status!.total!.rx).toEqual(expected('node-2', () => true, 'rx'));
  });

  it('the loader killed: restarted, a condition says so, and totals stay exact', async () => {
    const a = agents[0]!;
    const pid = a.loaderPid();
    expect(pid).toBeGreaterThan(0);
    process.kill(pid!, 'SIGKILL');
    const r = await finalReport('ns-a', 'a-all.node-1', (x) => !!x.status?.conditions?.some((k) => k.type === 'LoaderRestarted'));
    const cond = r.status!.conditions!.find((k) => k.type === 'LoaderRestarted')!;
    expect(cond.message).toMatch(/exited 1 time\(s\), last with signal SIGKILL/);
    const after = await finalReport('ns-a', 'a-all.node-1', (x) => x.status?.state === 'Reporting' && !!x.status.conditions?.some((k) => k.type === 'LoaderRestarted'));
    expect(after.status!.total!.rx).toEqual(expected('node-1', vmNamed('node-1', 'vm-a1'), 'rx'));
    expect(a.loaderPid()).not.toBe(pid);
  });

  it('the agent killed with SIGKILL and started again: its counts come back from its state', async () => {
    const old = agents[1]!;
    await old.kill();
    const since = Date.now();
    const again = startAgent({ node: 'node-2', dir: old.dir, kubeconfig: cp.kubeconfig, frames: recording(truth['node-2']!, IDLE, STEPS), frameSeconds: FRAME_S });
    agents[1] = again;
    const r = await finalReport('ns-a', 'a-all.node-2', (x) => Date.parse(x.status!.observedTime!) >= since);
    expect(r.status!.total!.rx).toEqual(expected('node-2', () => true, 'rx'));
  });

  it('the node annotated vhosttrace.io/detach: the loader stops and unpins, the status says so and keeps the counts; unannotated, new maps count on from there', async () => {
    const annotate = (value: string | null) =>
      c.request('PATCH', '/api/v1/nodes/node-2', { metadata: { annotations: { 'vhosttrace.io/detach': value } } }, { 'content-type': 'application/merge-patch+json' });
    const once = expected('node-2', () => true, 'rx');
    await finalReport('ns-a', 'a-all.node-2', (x) => x.status?.state === 'Reporting' && x.status.total?.rx?.packets.count === once.packets.count);
    expect((await annotate('reload vhost_net')).status).toBe(200);
    const detached = await finalReport('ns-a', 'a-all.node-2', (x) => x.status?.reason === 'Detached');
    expect(detached.status).toMatchObject({ state: 'Pending', total: { rx: once } });
    expect(detached.status!.message).toMatch(/vhosttrace\.io\/detach=reload vhost_net: .*unpinned.*rmmod vhost_net/);
    expect(agents[1]!.loaderPid()).toBeUndefined();
    // The stop command ran: the replay's "pinned maps" are gone, so the next loader starts anew.
    expect(existsSync(join(agents[1]!.dir, 'pins', 'replay-state.json'))).toBe(false);

    expect((await annotate(null)).status).toBe(200);
    // The new maps replay the recording from its start: new traffic, carried on top of the old.
    const twice = { packets: merge(once.packets, once.packets), bytes: merge(once.bytes, once.bytes) };
    const after = await finalReport('ns-a', 'a-all.node-2', (x) => x.status?.state === 'Reporting' && x.status.total?.rx?.packets.count === twice.packets.count);
    expect(after.status!.total!.rx).toEqual(twice);
    expect(after.status!.conditions!.find((k) => k.type === 'Detached')).toMatchObject({ status: 'False', reason: 'Reattached' });
  });
});
