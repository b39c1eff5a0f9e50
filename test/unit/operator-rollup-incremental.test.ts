// The incremental roll-up gives the full roll-up's status, byte for byte, over one sequence of
// report events: nodes appearing, reporting again, vanishing, going stale and failing, VMs that
// come, go and migrate, ties in the VM ranking, more VMs than status lists, a status carried
// from call to call. Then the cases where it must not keep sums (numbers past 2^52, a report that
// is not an integer count, two reports under one name) and how it recovers from them.
import { describe, expect, it } from 'vitest';
import { fromValues } from '../../src/api/histogram.js';
import type { Trace } from '../../src/api/reports.js';
import type { RawHistogram, ReportStatus, VhostTraceReport, VMReport } from '../../src/api/v1alpha1.js';
import { compactReport, type CompactReport } from '../../src/operator/compact.js';
import { IncrementalRollup } from '../../src/operator/rollup-incremental.js';
import { rollUp, type RollupInput } from '../../src/operator/rollup.js';
import { rng } from './prng.js';

const T0 = Date.parse('2026-11-24T12:00:00Z');
const iso = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');

function trace(status?: Trace['status']): Trace {
  return {
    apiVersion: 'vhosttrace.io/v1alpha1',
    kind: 'VhostTrace',
    metadata: { name: 't', namespace: 'ns', uid: 'uid-t', generation: 1, creationTimestamp: iso(T0) },
    spec: { interval: '10s', duration: '1h' },
    ...(status ? { status } : {}),
  } as Trace;
}

function report(node: string, status?: ReportStatus): CompactReport {
  const r: VhostTraceReport = {
    apiVersion: 'vhosttrace.io/v1alpha1',
    kind: 'VhostTraceReport',
    metadata: { name: `t.${node}`, namespace: 'ns' },
    spec: { trace: { kind: 'VhostTrace', name: 't', namespace: 'ns', uid: 'uid-t' }, nodeName: node },
    ...(status ? { status } : {}),
  };
  return compactReport(r);
}

const hist = (values: number[]): RawHistogram => fromValues(values);

/** One simulated node: its VMs' cumulative run values, as an agent keeps them. */
class Node {
  vms = new Map<string, { rx: number[]; rxb: number[]; tx: number[]; txb: number[] }>();
  state: ReportStatus['state'] = 'Reporting';
  constructor(readonly name: string) {}
  status(now: number): ReportStatus {
    const all = { rx: [] as number[], rxb: [] as number[], tx: [] as number[], txb: [] as number[] };
    const vms: VMReport[] = [];
    for (const [key, v] of this.vms) {
      const [namespace, name] = key.split('/') as [string, string];
      for (const k of ['rx', 'rxb', 'tx', 'txb'] as const) all[k].push(...v[k]);
      vms.push({ namespace, name, uid: `uid-${name}`, rx: { packets: hist(v.rx), bytes: hist(v.rxb) }, tx: { packets: hist(v.tx), bytes: hist(v.txb) } });
    }
    const total = { rx: { packets: hist(all.rx), bytes: hist(all.rxb) }, tx: { packets: hist(all.tx), bytes: hist(all.txb) } };
    if (this.state === 'Failed') return { state: 'Failed', reason: 'NoTracepoints', message: `${this.name}: no vhost_net tracepoints`, observedTime: iso(now) };
    return { state: this.state, observedTime: iso(now), kernel: '6.12.0', mode: 'tracepoint', total, vms };
  }
}

/** Both roll-ups on the same input; the trace carries the last status, as the API server would. */
function both(inc: IncrementalRollup, input: Omit<RollupInput, 'trace'>, prev: Trace['status'] | undefined) {
  const full = rollUp({ ...input, trace: trace(prev) });
  const kept = inc.rollUp({ ...input, trace: trace(prev) });
  return { full: JSON.stringify(full), kept: JSON.stringify(kept), status: full };
}

describe('incremental roll-up', () => {
  it('gives the full roll-up\'s status over a long sequence of report events', () => {
    const r = rng(16);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
    const nodes = new Map<string, Node>();
    const cached = new Map<string, CompactReport>(); // the informer: node -> its report object
    const inc = new IncrementalRollup();
    let now = T0;
    let prev: Trace['status'] | undefined;
    let vmSeq = 0;
    const seen = new Set<string>();
    const publish = (n: Node) => cached.set(n.name, report(n.name, n.status(now)));
    for (let i = 0; i < 30; i++) nodes.set(`node-${i}`, new Node(`node-${i}`));
    const steps = 600;
    for (let step = 0; step < steps; step++) {
      now += Math.floor(r() * 3000);
      const x = r();
      const names = [...nodes.keys()];
      if (x < 0.45) {
        // A node reports: its VMs ran some more (small run sizes, so many VMs tie on runs).
        const n = nodes.get(pick(names))!;
        if (n.vms.size === 0 || r() < 0.15) n.vms.set(`ns-${Math.floor(r() * 4)}/vm-${vmSeq++}`, { rx: [], rxb: [], tx: [], txb: [] });
        for (const v of n.vms.values()) {
          const k = Math.floor(r() * 3);
          for (let j = 0; j < k; j++) {
            const p = Math.floor(r() * 70);
            v.rx.push(p);
            v.rxb.push(p * 1500);
            if (r() < 0.5) {
              v.tx.push(p >> 2);
              v.txb.push((p >> 2) * 9000);
            }
          }
        }
        n.state = 'Reporting';
        publish(n);
        seen.add('report');
      } else if (x < 0.55) {
        // A VM migrates: the new node reports it at once; the old one drops it at its next report.
        const from = nodes.get(pick(names))!;
        const to = nodes.get(pick(names))!;
        const key = [...from.vms.keys()][0];
        if (key && from !== to) {
          to.vms.set(key, { rx: [1, 2], rxb: [1500, 3000], tx: [], txb: [] });
          publish(to);
          if (r() < 0.5) {
            from.vms.delete(key);
            publish(from);
          }
          seen.add('migrate');
        }
      } else if (x < 0.62) {
        // A node vanishes (its report is deleted), or a new one appears.
        if (r() < 0.5 && nodes.size > 5) {
          const name = pick(names);
          nodes.delete(name);
          cached.delete(name);
          seen.add('vanish');
        } else {
          const name = `node-new-${step}`;
          nodes.set(name, new Node(name));
          seen.add('appear');
        }
      } else if (x < 0.67) {
        const n = nodes.get(pick(names))!;
        n.state = 'Failed';
        publish(n);
        seen.add('fail');
      } else if (x < 0.72) {
        now += 40_000; // every node that has not reported since goes stale
        seen.add('stale');
      } else if (x < 0.76) {
        // A VM goes away.
        const n = nodes.get(pick(names))!;
        const key = [...n.vms.keys()][Math.floor(r() * n.vms.size)];
        if (key) {
          n.vms.delete(key);
          publish(n);
          seen.add('vm gone');
        }
      } else {
        seen.add('nothing changed');
      }
      const selectedNodes = [...nodes.keys()].filter(() => r() < 0.95);
      const { full, kept, status } = both(inc, { reports: [...cached.values()], selectedNodes, now }, prev);
      expect(kept, `step ${step}`).toBe(full);
      prev = status;
    }
    expect([...seen].sort()).toEqual(['appear', 'fail', 'migrate', 'nothing changed', 'report', 'stale', 'vanish', 'vm gone']);
    // It kept its sums throughout: the equality above was not the full roll-up twice.
    expect(inc.counts).toEqual({ incremental: steps, full: 0 });
    // More VMs than the status lists, and ties among them.
    expect(prev!.otherVMs!.count).toBeGreaterThan(0);
    const runs = prev!.vms!.map((v) => (v.rx?.packets.count ?? 0) + (v.tx?.packets.count ?? 0));
    expect(new Set(runs).size).toBeLessThan(runs.length);
  });

  it('hands over to the full roll-up where its sums could be inexact, and keeps sums again after', () => {
    const inc = new IncrementalRollup();
    const ok = report('a', { state: 'Reporting', observedTime: iso(T0), total: { rx: { packets: hist([3]), bytes: hist([4500]) } } });
    const big: RawHistogram = { count: 2 ** 53, sum: 2 ** 60, buckets: [0, 2 ** 53] };
    const huge = report('b', { state: 'Reporting', observedTime: iso(T0), total: { rx: { packets: big, bytes: big } } });
    const half = report('c', { state: 'Reporting', observedTime: iso(T0), total: { rx: { packets: { count: 1, sum: 2.5, buckets: [0, 1] }, bytes: hist([1]) } } });
    const input = (reports: CompactReport[]) => ({ reports, selectedNodes: ['a', 'b', 'c'], now: T0 + 1000 });
    for (const reports of [[ok], [ok, huge], [ok], [ok, half], [ok], [ok, { ...ok }], [ok]]) {
      const { full, kept } = both(inc, input(reports), undefined);
      expect(kept).toBe(full);
    }
    // [ok] three times after a hand-over: the first rebuilds the sums, so every [ok] but the first
    // call's counts as incremental; the huge, the half and the duplicate go to the full roll-up.
    expect(inc.counts).toEqual({ incremental: 4, full: 3 });
  });

  it('keeps nothing of a report once it is gone: the sums return to zero', () => {
    const inc = new IncrementalRollup();
    const a = report('a', {
      state: 'Reporting',
      observedTime: iso(T0),
      total: { rx: { packets: hist([5, 9]), bytes: hist([7500, 13500]) } },
      vms: [{ namespace: 'ns', name: 'vm', uid: 'u', rx: { packets: hist([5, 9]), bytes: hist([7500, 13500]) } }],
    });
    const with1 = inc.rollUp({ trace: trace(), reports: [a], selectedNodes: ['a'], now: T0 + 1000 });
    expect(with1.summary!.rx!.packets.count).toBe(2);
    const none = inc.rollUp({ trace: trace(), reports: [], selectedNodes: ['a'], now: T0 + 2000 });
    expect(JSON.stringify(none)).toBe(JSON.stringify(rollUp({ trace: trace(), reports: [], selectedNodes: ['a'], now: T0 + 2000 })));
    expect(none.summary!.rx!.packets).toEqual({ count: 0, sum: 0, buckets: [], p50: 0, p90: 0, p99: 0 });
    expect(none.otherVMs).toEqual({ count: 0, rxRuns: 0, txRuns: 0 });
  });
});
