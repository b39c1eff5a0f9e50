import { describe, expect, it } from 'vitest';
import { fromValues, merge, summarize } from '../../src/api/histogram.js';
import type { Trace } from '../../src/api/reports.js';
import type { RawDirections, ReportStatus, VhostTraceReport } from '../../src/api/v1alpha1.js';
import { LIMITS, nextTimedChange, rollUp } from '../../src/operator/rollup.js';
import { rng } from './prng.js';

const T0 = Date.parse('2026-11-24T12:00:00Z');
const iso = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');

function trace(spec: Partial<Trace['spec']> = {}, status?: Trace['status']): Trace {
  return {
    apiVersion: 'vhosttrace.io/v1alpha1',
    kind: 'VhostTrace',
    metadata: { name: 't', namespace: 'ns', uid: 'uid-t', generation: 1, creationTimestamp: iso(T0) },
    spec: { interval: '10s', ...spec },
    ...(status ? { status } : {}),
  } as Trace;
}

function report(node: string, status: ReportStatus): VhostTraceReport {
  return {
    apiVersion: 'vhosttrace.io/v1alpha1',
    kind: 'VhostTraceReport',
    metadata: { name: `t.${node}`, namespace: 'ns' },
    spec: { trace: { kind: 'VhostTrace', name: 't', namespace: 'ns', uid: 'uid-t' }, nodeName: node },
    status,
  };
}

const dirs = (rx: number[], rxb: number[], tx: number[], txb: number[]): RawDirections => ({
  rx: { packets: fromValues(rx), bytes: fromValues(rxb) },
  tx: { packets: fromValues(tx), bytes: fromValues(txb) },
});

describe('roll-up of reports into a trace status', () => {
  it('summary is the exact merge of the reports (and of all the values they counted)', () => {
    const r = rng(7);
    const all = { rx: [] as number[], rxb: [] as number[], tx: [] as number[], txb: [] as number[] };
    const reports: VhostTraceReport[] = [];
    for (let n = 0; n < 40; n++) {
      const v = { rx: [] as number[], rxb: [] as number[], tx: [] as number[], txb: [] as number[] };
      for (let i = 0; i < 200; i++) {
        const p = Math.floor(r() * 257);
        v.rx.push(p);
        v.rxb.push(p * Math.floor(r() * 1500));
        const q = Math.floor(r() * 64);
        v.tx.push(q);
        v.txb.push(q * Math.floor(r() * 9000));
      }
      for (const k of ['rx', 'rxb', 'tx', 'txb'] as const) all[k].push(...v[k]);
      reports.push(report(`node-${n}`, { state: 'Reporting', observedTime: iso(T0 + 5000), total: dirs(v.rx, v.rxb, v.tx, v.txb) }));
    }
    const s = rollUp({ trace: trace(), reports, selectedNodes: reports.map((x) => x.spec.nodeName), now: T0 + 6000 });
    expect(s.summary!.rx!.packets).toEqual(summarize(fromValues(all.rx)));
    expect(s.summary!.rx!.bytes).toEqual(summarize(fromValues(all.rxb)));
    expect(s.summary!.tx!.packets).toEqual(summarize(fromValues(all.tx)));
    expect(s.summary!.tx!.bytes).toEqual(summarize(fromValues(all.txb)));
    expect(s.summary!.rx!.packets).toEqual(summarize(reports.map((x) => x.status!.total!.rx!.packets).reduce(merge)));
    expect(s.phase).toBe('Running');
    expect(s.nodesReporting).toBe('40/40');
    expect(s.nodeCounts).toEqual({ selected: 40, reporting: 40, pending: 0, failed: 0 });
  });

  it('is Pending until the selected nodes report, then Running; names the missing ones', () => {
    const ok = report('a', { state: 'Reporting', observedTime: iso(T0 + 1000), total: dirs([1], [100], [2], [200]) });
    const s0 = rollUp({ trace: trace(), reports: [], selectedNodes: ['a', 'b'], now: T0 });
    expect(s0.phase).toBe('Pending');
    expect(s0.startTime).toBe(iso(T0));
    const s1 = rollUp({ trace: trace({}, s0), reports: [ok], selectedNodes: ['a', 'b'], now: T0 + 2000 });
    expect(s1.phase).toBe('Pending');
    const nr = s1.conditions!.find((c) => c.type === 'NodesReady')!;
    expect(nr).toMatchObject({ status: 'False', reason: 'NodesPending', message: '1 of 2 nodes have not reported: b' });
    // after the start grace (30 s at a 10 s interval) a silent node no longer holds the trace
    expect(rollUp({ trace: trace({}, s0), reports: [ok], selectedNodes: ['a', 'b'], now: T0 + 31_000 }).phase).toBe('Running');
    const s2 = rollUp({ trace: trace({}, s1), reports: [ok, { ...ok, spec: { ...ok.spec, nodeName: 'b' } }], selectedNodes: ['a', 'b'], now: T0 + 3000 });
    expect(s2.phase).toBe('Running');
    expect(s2.conditions!.find((c) => c.type === 'NodesReady')).toMatchObject({ status: 'True', reason: 'AllNodesReporting' });
  });

  it('names the nodes that cannot trace and why, failing nodes first', () => {
    const reports = [
      report('n1', { state: 'Reporting', observedTime: iso(T0), total: dirs([1], [1], [1], [1]) }),
      report('n2', { state: 'Failed', reason: 'TracepointMissing', message: 'vhost_net has no vhost_net_rx_end tracepoint' }),
      report('n3', { state: 'Failed', reason: 'TracepointMissing', message: 'same' }),
      report('n0', { state: 'Failed', reason: 'BTFMissing', message: 'no /sys/kernel/btf/vmlinux' }),
    ];
    const s = rollUp({ trace: trace(), reports, selectedNodes: ['n0', 'n1', 'n2', 'n3'], now: T0 + 1000 });
    const c = s.conditions!.find((x) => x.type === 'NodesReady')!;
    expect(c.status).toBe('False');
    expect(c.reason).toBe('TracepointMissing');
    expect(c.message).toBe('3 of 4 nodes cannot trace: n0 (BTFMissing), n2 (TracepointMissing), n3 (TracepointMissing)');
    expect(s.nodes!.map((n) => `${n.name}:${n.state}`)).toEqual(['n0:Failed', 'n2:Failed', 'n3:Failed', 'n1:Reporting']);
    expect(s.nodes![1]).toMatchObject({ reason: 'TracepointMissing', message: 'vhost_net has no vhost_net_rx_end tracepoint' });
    expect(s.phase).toBe('Running');
    const allFailed = rollUp({ trace: trace(), reports: reports.slice(1), selectedNodes: ['n0', 'n2', 'n3'], now: T0 + 1000 });
    expect(allFailed.phase).toBe('Failed');
  });

  it('marks a node whose reports stopped as ReportStale after three intervals', () => {
    const r = report('a', { state: 'Reporting', observedTime: iso(T0), total: dirs([1], [1], [1], [1]) });
    const input = { trace: trace(), reports: [r], selectedNodes: ['a'], now: T0 + 1000 };
    const fresh = rollUp(input);
    expect(fresh.nodes![0]!.state).toBe('Reporting');
    expect(nextTimedChange(input, fresh)).toBe(T0 + 30_001);
    const stale = rollUp({ ...input, now: T0 + 30_001 });
    expect(stale.nodes![0]).toMatchObject({ state: 'Failed', reason: 'ReportStale' });
    expect(stale.summary!.rx!.packets.count).toBe(1); // numbers are kept
  });

  it("says why a node's agent pod cannot run, for a node without a current report only", () => {
    const problem = { pod: 'vhosttrace-agent-x', waiting: 'CreateContainerError', message: 'agent pod vhosttrace-agent-x cannot start: /sys/fs/bpf is not a shared mount' };
    const ok = report('a', { state: 'Reporting', observedTime: iso(T0), total: dirs([1], [1], [1], [1]) });
    const agentProblems = new Map([['a', problem], ['b', problem], ['c', problem]]);
    // a reports (its agent runs, whatever an old pod said); b has no report; c is not selected.
    const s = rollUp({ trace: trace(), reports: [ok], selectedNodes: ['a', 'b'], now: T0 + 1000, agentProblems });
    expect(s.nodes!.map((n) => `${n.name}:${n.state}:${n.reason ?? ''}`)).toEqual(['b:Failed:AgentNotRunning', 'a:Reporting:']);
    expect(s.nodes![0]!.message).toBe(problem.message);
    expect(s.conditions!.find((c) => c.type === 'NodesReady')).toMatchObject({ reason: 'AgentNotRunning', message: '1 of 2 nodes cannot trace: b (AgentNotRunning)' });
    // a stale report with a failing pod: the pod's problem is the better explanation.
    const stale = rollUp({ trace: trace(), reports: [ok], selectedNodes: ['a'], now: T0 + 31_000, agentProblems });
    expect(stale.nodes![0]).toMatchObject({ name: 'a', state: 'Failed', reason: 'AgentNotRunning' });
    // without problems, b is just Pending.
    expect(rollUp({ trace: trace(), reports: [ok], selectedNodes: ['a', 'b'], now: T0 + 1000 }).nodes!.find((n) => n.name === 'b')).toMatchObject({ state: 'Pending' });
  });

  it('completes after its duration and keeps its final numbers', () => {
    const r = report('a', { state: 'Reporting', observedTime: iso(T0 + 50_000), total: dirs([3, 4], [10, 20], [5], [50]) });
    const t = trace({ duration: '1m' }, { startTime: iso(T0) });
    const input = { trace: t, reports: [r], selectedNodes: ['a'], now: T0 + 55_000 };
    expect(nextTimedChange(input, rollUp(input))).toBe(T0 + 60_000);
    const done = rollUp({ ...input, now: T0 + 60_000 });
    expect(done.phase).toBe('Completed');
    expect(done.endTime).toBe(iso(T0 + 60_000));
    expect(done.conditions!.find((c) => c.type === 'Completed')).toMatchObject({ status: 'True', reason: 'DurationElapsed' });
    expect(done.summary!.rx!.packets.count).toBe(2);
    // later: reports gone or changed, the trace keeps what it completed with
    expect(rollUp({ trace: { ...t, status: done }, reports: [], selectedNodes: [], now: T0 + 3_600_000 })).toBe(done);
  });

  it('keeps lastTransitionTime while a condition holds, and is stable when nothing changed', () => {
    const r = report('a', { state: 'Reporting', observedTime: iso(T0), total: dirs([1], [1], [1], [1]) });
    const s1 = rollUp({ trace: trace(), reports: [r], selectedNodes: ['a'], now: T0 + 1000 });
    const s2 = rollUp({ trace: trace({}, s1), reports: [r], selectedNodes: ['a'], now: T0 + 9000 });
    expect(s2).toEqual(s1);
  });

  it('lists the top VMs by runs and counts the rest', () => {
    const vms = Array.from({ length: 60 }, (_, i) => ({
      namespace: 'ns',
      name: `vm-${String(i).padStart(2, '0')}`,
      ...dirs(Array(i + 1).fill(1), Array(i + 1).fill(100), [2], [200]),
    }));
    // vm-59 also ran on node b (it migrated): its rows add up, shown on the node with most runs
    const a = report('a', { state: 'Reporting', observedTime: iso(T0), total: dirs([1], [1], [1], [1]), vms });
    const b = report('b', { state: 'Reporting', observedTime: iso(T0), total: dirs([1], [1], [1], [1]), vms: [{ ...vms[59]!, ...dirs(Array(100).fill(1), [1], [], []) }] });
    const s = rollUp({ trace: trace(), reports: [a, b], selectedNodes: ['a', 'b'], now: T0 + 1000 });
    expect(s.vms).toHaveLength(50);
    expect(s.vms![0]).toMatchObject({ name: 'vm-59', node: 'b' });
    expect(s.vms![0]!.rx!.packets.count).toBe(160);
    expect(s.vms!.slice(1).map((v) => v.name)).toEqual(Array.from({ length: 49 }, (_, i) => `vm-${58 - i}`));
    // the ten with the fewest runs: vm-00..vm-09, 1..10 RX runs and 1 TX run each
    expect(s.otherVMs).toEqual({ count: 10, rxRuns: 55, txRuns: 10 });
  });

  it('stays under 64 KiB at any node and VM count', () => {
    const long = (p: string, i: number) => `${p}-${String(i).padStart(6, '0')}-${'x'.repeat(200)}`;
    const reports: VhostTraceReport[] = [];
    for (let n = 0; n < 5000; n++) {
      const vms = Array.from({ length: 2 }, (_, i) => ({ namespace: 'n'.repeat(63), name: long(`vm${n}`, i), ...dirs([n + i], [n], [n], [n]) }));
      reports.push(
        report(long('node', n), n % 2
          ? { state: 'Failed', reason: 'TracepointMissing', message: 'm'.repeat(1024) }
          : { state: 'Reporting', observedTime: iso(T0), kernel: 'k'.repeat(128), mode: 'tracepoint', total: dirs([n], [n * 1000], [n], [n * 1000]), vms }),
      );
    }
    const s = rollUp({ trace: trace(), reports, selectedNodes: [], now: T0 + 1000 });
    const size = Buffer.byteLength(JSON.stringify(s));
    expect(size).toBeLessThanOrEqual(64 * 1024);
    expect(size).toBeLessThanOrEqual(LIMITS.statusBytes);
    expect(s.nodeCounts).toEqual({ selected: 5000, reporting: 2500, pending: 0, failed: 2500 });
    expect(s.nodes!.length).toBeGreaterThan(10);
    expect(s.nodes!.length + s.vms!.length).toBeGreaterThan(20);
    expect(s.vms!.length + s.otherVMs!.count!).toBe(5000);
    expect(s.conditions![0]!.message.length).toBeLessThan(10_000);
  });

  it('uses the default interval for the node count when the trace sets none', () => {
    const t = trace({ interval: undefined });
    const nodes = Array.from({ length: 1000 }, (_, i) => `n${i}`);
    expect(rollUp({ trace: t, reports: [], selectedNodes: nodes, now: T0 }).interval).toBe('20s');
    expect(rollUp({ trace: t, reports: [], selectedNodes: nodes.slice(0, 3), now: T0 }).interval).toBe('10s');
  });

  it('leaves out the directions the trace does not trace', () => {
    const r = report('a', { state: 'Reporting', observedTime: iso(T0), total: dirs([1], [1], [1], [1]) });
    const s = rollUp({ trace: trace({ directions: ['tx'] }), reports: [r], selectedNodes: ['a'], now: T0 });
    expect(Object.keys(s.summary!)).toEqual(['tx']);
  });
});
