// The operator with the rest of a control plane: kube-controller-manager (DaemonSet controller,
// garbage collector), kube-scheduler, and kwok's fake nodes, some KubeVirt nodes and some not.
// Reports are written as agents write them (server-side apply, then /status).
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fromValues, merge, summarize } from '../../src/api/histogram.js';
import type { Trace } from '../../src/api/reports.js';
import type { RawDirections } from '../../src/api/v1alpha1.js';
import { applyAll, eventually, fakeNode, renderChart, startCluster, writeReport, type Cluster } from '../harness/cluster.js';
import { podCgroup, recording, startAgent, type AgentProcess, type Workload } from '../harness/agents.js';
import { logTail } from '../harness/controlplane.js';
import type { TestClient } from '../harness/kube.js';

const INSTALL = 'vhosttrace-system';
const NS = 'vms';
const API = '/apis/vhosttrace.io/v1alpha1';
const DS = `/apis/apps/v1/namespaces/${INSTALL}/daemonsets/vhosttrace-agent`;
const KV = { 'kubevirt.io/schedulable': 'true' };
const NODES: Record<string, Record<string, string>> = {
  'kv-1': { ...KV, zone: 'a' },
  'kv-2': { ...KV, zone: 'a' },
  'kv-3': { ...KV, zone: 'b' },
  'kv-off': { 'kubevirt.io/schedulable': 'false', zone: 'a' },
  plain: { zone: 'a' },
};

let cluster: Cluster;
let c: TestClient;
const REPO = join(import.meta.dirname, '../..');

const h = (buckets: number[]) => ({ count: buckets.reduce((a, b) => a + b, 0), sum: buckets.reduce((a, b, i) => a + b * 2 ** i, 0), buckets });
const dirs = (k: number): RawDirections => ({
  rx: { packets: h([k, 2 * k, 3]), bytes: h([0, 0, 0, 0, 0, 0, k, 1]) },
  tx: { packets: h([5, k]), bytes: h([0, 0, 0, 0, 0, 0, 0, k]) },
});
const now = () => new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');

async function agentPods(): Promise<Record<string, string>> {
  const pods = (await c.request('GET', `/api/v1/namespaces/${INSTALL}/pods?labelSelector=app.kubernetes.io/component%3Dagent`)).body.items ?? [];
  return Object.fromEntries(pods.filter((p: any) => !p.metadata.deletionTimestamp).map((p: any) => [p.spec.nodeName, p.status.phase]));
}

beforeAll(async () => {
  cluster = await startCluster({ extras: ['kube-controller-manager', 'kube-scheduler', 'kwok'], log: (l) => console.log(`[cluster] ${l}`) });
  c = cluster.client;
  await c.request('POST', '/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: NS } });
  // The install as the chart renders it, but the operator Deployment: the operator runs in the
  // test process (kwok would only pretend to run its pods).
  const { docs } = await renderChart(INSTALL, ['createNamespace=true']);
  await applyAll(c, [...docs.filter((d) => d.kind === 'Namespace'), ...docs.filter((d) => d.kind !== 'Namespace' && d.kind !== 'Deployment')]);
  for (const [n, labels] of Object.entries(NODES)) {
    const r = await c.request('POST', '/api/v1/nodes', fakeNode(n, labels));
    expect(r.status, JSON.stringify(r.body)).toBe(201);
  }
  // kwok makes them Ready
  await eventually(async () => {
    const items = (await c.request('GET', '/api/v1/nodes')).body.items;
    return items.every((n: any) => n.status?.conditions?.some((x: any) => x.type === 'Ready' && x.status === 'True'));
  }, 60_000, 'kwok nodes Ready');
  // Two operator processes from the build, run as the chart runs them (node --optimize-for-size
  // dist/operator/main.js).
  execFileSync('npx', ['tsc', '-p', 'tsconfig.build.json'], { cwd: REPO, stdio: 'ignore' });
  for (const name of ['op-a', 'op-b']) startOperator(name);
}, 1_800_000);

afterAll(async () => {
  for (const p of Object.values(operators)) p.kill('SIGKILL');
  await cluster?.stop();
});

const operators: Record<string, ChildProcess> = {};
const ports: Record<string, number> = { 'op-a': 18181, 'op-b': 18182 };

function startOperator(name: string): void {
  const cfgFile = join(cluster.cp.dir, `${name}.yaml`);
  writeFileSync(cfgFile, `metricsPort: ${ports[name]}\nstatusMinIntervalMs: 300\nleaseDurationMs: 4000\nrenewDeadlineMs: 3000\nretryPeriodMs: 500\n`);
  const fd = openSync(join(cluster.cp.dir, `${name}.log`), 'a');
  operators[name] = spawn('node', ['--optimize-for-size', join(REPO, 'dist/operator/main.js')], {
    env: { ...process.env, KUBECONFIG: cluster.kubeconfig, POD_NAMESPACE: INSTALL, POD_NAME: name, VHOSTTRACE_OPERATOR_CONFIG: cfgFile },
    stdio: ['ignore', fd, fd],
  });
  closeSync(fd);
}

const holder = async () => (await c.request('GET', `/apis/coordination.k8s.io/v1/namespaces/${INSTALL}/leases/vhosttrace-operator`)).body.spec?.holderIdentity as string | undefined;

describe('operator with controller-manager, scheduler and kwok nodes', () => {
  let trace: Trace;

  it('the admission policy type-checks without warnings', async () => {
    const vap = await eventually(async () => {
      const r = (await c.request('GET', '/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicies/vhosttrace-agent-own-node')).body;
      return r.status?.typeChecking && r;
    }, 60_000, 'policy type-checked');
    expect(vap.status.typeChecking.expressionWarnings ?? []).toEqual([]);
  });

  it('the agent pods land exactly on the KubeVirt nodes the trace selects', async () => {
    expect((await c.request('GET', DS)).status).toBe(404);
    trace = (await c.request('POST', `${API}/namespaces/${NS}/vhosttraces`, {
      apiVersion: 'vhosttrace.io/v1alpha1',
      kind: 'VhostTrace',
      metadata: { name: 'zone-a' },
      spec: { interval: '2s', nodeSelector: { matchLabels: { zone: 'a' } } },
    })).body;
    const pods = await eventually(async () => {
      const p = await agentPods();
      return Object.keys(p).length === 2 && Object.values(p).every((s) => s === 'Running') && p;
    }, 60_000, 'two Running agent pods');
    expect(Object.keys(pods).sort()).toEqual(['kv-1', 'kv-2']);
    // a second trace on zone b adds kv-3, never kv-off or plain
    await c.request('POST', `${API}/namespaces/${NS}/vhosttraces`, {
      apiVersion: 'vhosttrace.io/v1alpha1',
      kind: 'VhostTrace',
      metadata: { name: 'zone-b' },
      spec: { interval: '2s', duration: '20s', nodeSelector: { matchLabels: { zone: 'b' } } },
    });
    const three = await eventually(async () => {
      const p = await agentPods();
      return Object.keys(p).length === 3 && Object.values(p).every((s) => s === 'Running') && p;
    }, 60_000, 'three Running agent pods');
    expect(Object.keys(three).sort()).toEqual(['kv-1', 'kv-2', 'kv-3']);
  });

  it('reports roll up into the exact merge; a node without the tracepoint is named', async () => {
    await writeReport(c, trace, 'kv-1', { state: 'Reporting', observedTime: now(), total: dirs(10) }, INSTALL);
    await writeReport(c, trace, 'kv-2', { state: 'Reporting', observedTime: now(), total: dirs(32) }, INSTALL);
    const st = await eventually(async () => {
      const s = (await c.request('GET', `${API}/namespaces/${NS}/vhosttraces/zone-a`)).body.status;
      return s?.nodesReporting === '2/2' && s;
    }, 15_000, 'both reports in');
    expect(st.phase).toBe('Running');
    expect(st.summary.rx.packets).toEqual(summarize(merge(dirs(10).rx!.packets, dirs(32).rx!.packets)));
    expect(st.summary.tx.bytes).toEqual(summarize(merge(dirs(10).tx!.bytes, dirs(32).tx!.bytes)));
    await writeReport(c, trace, 'kv-2', { state: 'Failed', reason: 'TracepointMissing', message: 'no vhost_net:vhost_net_rx_end' }, INSTALL);
    const cond = await eventually(async () => {
      const s = (await c.request('GET', `${API}/namespaces/${NS}/vhosttraces/zone-a`)).body.status;
      return s?.conditions?.find((x: any) => x.type === 'NodesReady' && x.reason === 'TracepointMissing');
    }, 15_000, 'TracepointMissing condition');
    expect(cond.message).toBe('1 of 2 nodes cannot trace: kv-2 (TracepointMissing)');
  });

  it('the zone-b trace completes, keeps its numbers, and its node loses its agent', async () => {
    const zb = (await c.request('GET', `${API}/namespaces/${NS}/vhosttraces/zone-b`)).body;
    await writeReport(c, zb, 'kv-3', { state: 'Reporting', observedTime: now(), total: dirs(7) }, INSTALL);
    const done = await eventually(async () => {
      const s = (await c.request('GET', `${API}/namespaces/${NS}/vhosttraces/zone-b`)).body.status;
      return s?.phase === 'Completed' && s;
    }, 40_000, 'zone-b Completed');
    expect(done.summary.rx.packets).toEqual(summarize(dirs(7).rx!.packets));
    const pods = await eventually(async () => {
      const p = await agentPods();
      // The trace's end changes the DaemonSet's template: a replacement pod is briefly
      // unscheduled (no nodeName yet), so wait for two pods that are both on a node.
      return Object.keys(p).length === 2 && !('undefined' in p) && p;
    }, 60_000, 'kv-3 agent gone');
    expect(Object.keys(pods).sort()).toEqual(['kv-1', 'kv-2']);
  });

  it('deleting the last active trace removes its reports (garbage collector) and the DaemonSet and pods', async () => {
    await c.request('DELETE', `${API}/namespaces/${NS}/vhosttraces/zone-a`);
    await eventually(async () => (await c.request('GET', DS)).status === 404, 20_000, 'DaemonSet deleted');
    await eventually(async () => Object.keys(await agentPods()).length === 0, 60_000, 'agent pods gone');
    await eventually(async () => {
      const items = (await c.request('GET', `${API}/namespaces/${NS}/vhosttracereports?labelSelector=vhosttrace.io/trace%3Dzone-a`)).body.items;
      return items.length === 0;
    }, 60_000, 'zone-a reports garbage-collected');
    // the completed zone-b keeps its report and its numbers until it is deleted
    const zb = (await c.request('GET', `${API}/namespaces/${NS}/vhosttracereports?labelSelector=vhosttrace.io/trace%3Dzone-b`)).body.items;
    expect(zb).toHaveLength(1);
  });

  it('real agent processes (recorded snapshots) report, and the summary is the exact merge of their recordings', async () => {
    const truth: Record<string, Workload[]> = {};
    const agents: AgentProcess[] = [];
    const work = join(cluster.cp.dir, 'agents');
    let seed = 11;
    const rnd = (m: number) => ((seed = (seed * 1103515245 + 12345) % 2147483648), seed % m);
    for (const node of ['kv-1', 'kv-2']) {
      const cg = join(work, node, 'cg');
      // QEMU processes outside any VMI pod: a ClusterVhostTrace counts them (includeUnattributed)
      const ids = [1, 2].map((i) => podCgroup(cg, `00000000-0000-4000-8000-00000000000${i}`));
      truth[node] = ids.flatMap((cgroupId) => [
        { cgroupId, direction: 'rx' as const, runs: Array.from({ length: 200 + rnd(300) }, () => rnd(257)), frameBytes: 1514 },
        { cgroupId, direction: 'tx' as const, runs: Array.from({ length: 100 + rnd(200) }, () => rnd(64)), frameBytes: 66 },
      ]);
    }
    const created = await c.request('POST', `${API}/clustervhosttraces`, {
      apiVersion: 'vhosttrace.io/v1alpha1',
      kind: 'ClusterVhostTrace',
      metadata: { name: 'recorded' },
      spec: { interval: '1s', nodeSelector: { matchLabels: { zone: 'a' } } },
    });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    try {
      for (const node of ['kv-1', 'kv-2']) {
        agents.push(startAgent({ node, dir: join(work, node), kubeconfig: cluster.kubeconfig, frames: recording(truth[node]!, 8, 6), frameSeconds: 0.4 }));
      }
      const all = (dir: 'rx' | 'tx') => Object.values(truth).flat().filter((w) => w.direction === dir);
      const want = (dir: 'rx' | 'tx') => ({
        packets: summarize(fromValues(all(dir).flatMap((w) => w.runs))),
        bytes: summarize(fromValues(all(dir).flatMap((w) => w.runs.map((r) => r * w.frameBytes)))),
      });
      const st = await eventually(async () => {
        const s = (await c.request('GET', `${API}/clustervhosttraces/recorded`)).body.status;
        return s?.summary?.rx?.packets.count === want('rx').packets.count && s?.summary?.tx?.packets.count === want('tx').packets.count && s;
      }, 90_000, 'the agents\' final counts rolled up').catch((e: Error) => {
        throw new Error(`${e.message}\n${agents.map((a) => `--- ${a.node}\n${logTail(a.logFile, 15)}`).join('\n')}`);
      });
      expect(st.summary.rx).toEqual(want('rx'));
      expect(st.summary.tx).toEqual(want('tx'));
      expect(st.nodesReporting).toBe('2/2');
      expect(st.phase).toBe('Running');
    } finally {
      for (const a of agents) await a.kill();
      await c.request('DELETE', `${API}/clustervhosttraces/recorded`);
    }
  });

  it('two operator processes: one leads; SIGKILL it mid-trace and the other takes over with nothing lost', async () => {
    const leader = await eventually(holder, 20_000, 'a leader');
    const standby = leader === 'op-a' ? 'op-b' : 'op-a';
    const m = await (await fetch(`http://127.0.0.1:${ports[standby]}/metrics`)).text();
    expect(m).toMatch(/^vhosttrace_operator_leader 0$/m);
    const t = (await c.request('POST', `${API}/namespaces/${NS}/vhosttraces`, {
      apiVersion: 'vhosttrace.io/v1alpha1',
      kind: 'VhostTrace',
      metadata: { name: 'failover' },
      spec: { interval: '2s', nodeSelector: { matchLabels: { zone: 'b' } } },
    })).body;
    await writeReport(c, t, 'kv-3', { state: 'Reporting', observedTime: now(), total: dirs(3) }, INSTALL);
    const path = `${API}/namespaces/${NS}/vhosttraces/failover`;
    const before = await eventually(async () => (await c.request('GET', path)).body.status?.summary?.rx?.packets.count === dirs(3).rx!.packets.count && (await c.request('GET', path)).body.status, 15_000, 'first report in');
    operators[leader]!.kill('SIGKILL');
    await writeReport(c, t, 'kv-3', { state: 'Reporting', observedTime: now(), total: dirs(40) }, INSTALL);
    await eventually(async () => (await holder()) === standby, 20_000, 'standby holds the lease');
    const after = await eventually(async () => {
      const s = (await c.request('GET', path)).body.status;
      return s?.summary?.rx?.packets.count === dirs(40).rx!.packets.count && s;
    }, 20_000, 'new leader rolled up the later report');
    expect(after.startTime).toBe(before.startTime);
    expect(after.summary.rx.packets).toEqual(summarize(dirs(40).rx!.packets));
    const m2 = await (await fetch(`http://127.0.0.1:${ports[standby]}/metrics`)).text();
    expect(m2).toMatch(/^vhosttrace_operator_leader 1$/m);
    startOperator(leader); // back to two replicas
    await c.request('DELETE', path);
  });
});
