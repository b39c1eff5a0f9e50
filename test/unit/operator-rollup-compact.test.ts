// The roll-up's edge cases (empty and missing histograms, vanished and migrated VMs, unattributed
// counts, stale and failed nodes, many VMs with counts past 2^32, a status bounded in size), two
// ways. First checked against what the reports say, by a second path written here (merges,
// percentiles, the VM ranking, runs accounted exactly once). Then a regression pin: the snapshot
// holds the statuses the roll-up over full reports wrote before the operator cached compact ones
// (commit b8e290a), so a change of the cached form that changes a status, even a key order,
// fails. Last, the packing itself: lossless.
import { describe, expect, it } from 'vitest';
import { fromValues } from '../../src/api/histogram.js';
import type { Trace } from '../../src/api/reports.js';
import type { RawDirections, RawHistogram, ReportStatus, VhostTraceReport, VMReport } from '../../src/api/v1alpha1.js';
import { trimNode } from '../../src/operator/cache.js';
import { compactReport, unpack } from '../../src/operator/compact.js';
import { firstK, LIMITS, nextTimedChange, rollUp } from '../../src/operator/rollup.js';
import { rng } from './prng.js';

const T0 = Date.parse('2026-11-24T12:00:00Z');
const iso = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');

function trace(kind: Trace['kind'], spec: Record<string, unknown> = {}, status?: Trace['status']): Trace {
  return {
    apiVersion: 'vhosttrace.io/v1alpha1',
    kind,
    metadata: { name: 't', ...(kind === 'VhostTrace' ? { namespace: 'ns' } : {}), uid: 'uid-t', generation: 2 },
    spec: { interval: '10s', ...spec },
    ...(status ? { status } : {}),
  } as Trace;
}

function report(node: string, status?: ReportStatus): VhostTraceReport {
  return {
    apiVersion: 'vhosttrace.io/v1alpha1',
    kind: 'VhostTraceReport',
    metadata: { name: `t.${node}`, namespace: 'ns', resourceVersion: '1', managedFields: [{ manager: 'agent' }] },
    spec: { trace: { kind: 'VhostTrace', name: 't', namespace: 'ns', uid: 'uid-t' }, nodeName: node },
    ...(status ? { status } : {}),
  };
}

const EMPTY: RawHistogram = { count: 0, sum: 0, buckets: [] };
const h = (values: number[]) => fromValues(values);
const dirs = (rx: number[], rxb: number[], tx: number[], txb: number[]): RawDirections => ({
  rx: { packets: h(rx), bytes: h(rxb) },
  tx: { packets: h(tx), bytes: h(txb) },
});

/** Cumulative histograms of a random workload; `big` scales counts past 2^32 and sums past 2^53. */
function randomDirs(r: () => number, runs: number, big = false): RawDirections {
  const one = (maxPkts: number, bytesPerPkt: number) => {
    const p: number[] = [];
    const b: number[] = [];
    for (let i = 0; i < runs; i++) {
      const x = Math.floor(r() * maxPkts);
      p.push(x);
      b.push(x * Math.floor(r() * bytesPerPkt));
    }
    const scale = (x: RawHistogram): RawHistogram =>
      big ? { count: x.count * 2 ** 33, sum: x.sum * 2 ** 40 + 1, buckets: x.buckets.map((n) => n * 2 ** 33 + (n ? 7 : 0)) } : x;
    return { packets: scale(h(p)), bytes: scale(h(b)) };
  };
  return { rx: one(257, 1500), tx: one(65, 9000) };
}

type Scenario = { name: string; trace: Trace; reports: VhostTraceReport[]; selectedNodes: string[]; now: number; reportBytes?: number };

/** The edge cases: each is rolled up, and the status (and the next timed change) pinned. */
function scenarios(): Scenario[] {
  const out: Scenario[] = [];
  const vm = (ns: string, name: string, d?: Partial<RawDirections>): VMReport => ({ namespace: ns, name, uid: `uid-${name}`, ...d });

  // Empty histograms everywhere: totals, VMs, a missing direction, a report with no status.
  out.push({
    name: 'empty histograms, missing directions, no status',
    trace: trace('VhostTrace'),
    reports: [
      report('a', { state: 'Reporting', observedTime: iso(T0), total: { rx: { packets: EMPTY, bytes: EMPTY }, tx: { packets: EMPTY, bytes: EMPTY } }, vms: [vm('ns', 'idle', { rx: { packets: EMPTY, bytes: EMPTY } })] }),
      report('b', { state: 'Reporting', observedTime: iso(T0), total: { tx: { packets: h([3]), bytes: h([4500]) } }, vms: [vm('ns', 'tx-only', { tx: { packets: h([3]), bytes: h([4500]) } }), vm('ns', 'nothing')] }),
      report('c', { state: 'Reporting', observedTime: iso(T0), vms: [] }),
      report('d'),
      // buckets with trailing zeros, as an agent might write them
      report('e', { state: 'Reporting', observedTime: iso(T0), total: { rx: { packets: { count: 2, sum: 3, buckets: [1, 1, 0, 0] }, bytes: { count: 2, sum: 300, buckets: [0, 0, 0, 0, 0, 0, 1, 1, 0] } } } }),
    ],
    selectedNodes: ['a', 'b', 'c', 'd', 'e', 'f'],
    now: T0 + 1000,
  });

  // VMs that vanish: a node's later report no longer lists a VM (it stopped or migrated away).
  const r1 = rng(11);
  const v = ['alpha', 'beta', 'gamma'].map((n) => vm('ns', n, randomDirs(r1, 40)));
  const before = [report('a', { state: 'Reporting', observedTime: iso(T0), total: dirs([1, 2], [3, 4], [5], [6]), vms: v }), report('b', { state: 'Reporting', observedTime: iso(T0), total: dirs([1], [1], [1], [1]), vms: [] })];
  out.push({ name: 'VMs before one vanishes', trace: trace('VhostTrace'), reports: before, selectedNodes: ['a', 'b'], now: T0 + 1000 });
  const moved = vm('ns', 'beta', randomDirs(r1, 10));
  out.push({
    name: 'a VM vanished, another migrated',
    trace: trace('VhostTrace'),
    reports: [
      report('a', { state: 'Reporting', observedTime: iso(T0 + 10_000), total: dirs([1, 2], [3, 4], [5], [6]), vms: [v[0]!, v[1]!] }),
      report('b', { state: 'Reporting', observedTime: iso(T0 + 10_000), total: dirs([1], [1], [1], [1]), vms: [moved] }),
    ],
    selectedNodes: ['a', 'b'],
    now: T0 + 11_000,
  });

  // Unattributed counts: a ClusterVhostTrace's totals hold more than its VMs do.
  const r2 = rng(12);
  const un = randomDirs(r2, 30);
  out.push({
    name: 'unattributed counts',
    trace: trace('ClusterVhostTrace', { includeUnattributed: true }),
    reports: [
      report('a', { state: 'Reporting', observedTime: iso(T0), total: randomDirs(r2, 100), unattributed: un, vms: [vm('x', 'one', randomDirs(r2, 20)), vm('y', 'one', randomDirs(r2, 20))] }),
      report('b', { state: 'Reporting', observedTime: iso(T0), total: un, unattributed: un }),
    ],
    selectedNodes: ['a', 'b'],
    now: T0 + 1000,
  });

  // Stale reports: one node stopped reporting three intervals ago; failed nodes with long messages.
  out.push({
    name: 'stale and failed reports',
    trace: trace('VhostTrace', { duration: '10m' }, { startTime: iso(T0 - 120_000), phase: 'Running' }),
    reports: [
      report('fresh', { state: 'Reporting', observedTime: iso(T0 - 5000), kernel: '6.12.0', mode: 'fentry', total: dirs([7], [700], [8], [800]), vms: [vm('ns', 'vm', dirs([7], [700], [8], [800]))] }),
      report('stale', { state: 'Reporting', observedTime: iso(T0 - 31_000), kernel: '6.1.0', mode: 'tracepoint', total: dirs([9, 9], [90, 90], [], []), vms: [vm('ns', 'old', dirs([9, 9], [90, 90], [], []))] }),
      report('broken', { state: 'Failed', reason: 'TracepointMissing', message: 'm'.repeat(1000), kernel: '6.1.0' }),
      report('waiting', { state: 'Pending', message: 'loading' }),
    ],
    selectedNodes: ['fresh', 'stale', 'broken', 'waiting', 'silent'],
    now: T0,
  });

  // Many VMs: top 50 by runs, ties broken by namespace and name, the rest in otherVMs; one
  // direction only; counts past 2^32 and sums past 2^53; VMs on several nodes.
  for (const directions of [undefined, ['rx']]) {
    const r3 = rng(13);
    const reports: VhostTraceReport[] = [];
    for (let n = 0; n < 30; n++) {
      const vms: VMReport[] = [];
      for (let i = 0; i < 12; i++) {
        const id = Math.floor(r3() * 120);
        vms.push(vm(`tenant-${id % 3}`, `vm-${id}`, id % 10 === 0 ? dirs([1, 1], [64, 64], [1], [64]) : randomDirs(r3, 5 + (id % 7), id % 5 === 0)));
      }
      reports.push(report(`node-${String(n).padStart(2, '0')}`, { state: 'Reporting', observedTime: iso(T0 - n * 100), total: randomDirs(r3, 50, n % 4 === 0), vms }));
    }
    out.push({ name: `many VMs, directions ${directions ?? 'default'}`, trace: trace('VhostTrace', directions ? { directions } : {}), reports, selectedNodes: [], now: T0, reportBytes: 30_000 });
  }

  // Bounded: long names and messages force rows out of the status.
  const r4 = rng(14);
  const long = (p: string, i: number) => `${p}-${i}-${'x'.repeat(200)}`;
  out.push({
    name: 'bounded to 60 KiB',
    trace: trace('VhostTrace', { interval: undefined }),
    reports: Array.from({ length: 300 }, (_, n) =>
      report(long('node', n), n % 3 === 0
        ? { state: 'Failed', reason: 'LoaderFailed', message: 'y'.repeat(1024) }
        : { state: 'Reporting', observedTime: iso(T0), total: randomDirs(r4, 3), vms: [vm('n'.repeat(63), long('vm', n), randomDirs(r4, 1 + (n % 9)))] }),
    ),
    selectedNodes: [],
    now: T0 + 1000,
    reportBytes: 2000,
  });
  return out;
}

/**
 * Slot-wise sums of histograms, and the percentile rule of the status: the upper bound of the
 * first slot where the runs so far reach q of the runs in the buckets.
 */
function merged(hs: (RawHistogram | undefined)[]): RawHistogram {
  const out: RawHistogram = { count: 0, sum: 0, buckets: [] };
  for (const x of hs) {
    if (!x) continue;
    out.count += x.count;
    out.sum += x.sum;
    x.buckets.forEach((n, i) => (out.buckets[i] = (out.buckets[i] ?? 0) + n));
  }
  while (out.buckets.length && out.buckets.at(-1) === 0) out.buckets.pop();
  return out;
}
function percentile(h: RawHistogram, q: number): number {
  // The buckets' own total: the "big" scenarios' counts are not their buckets' sum.
  const total = h.buckets.reduce((a, b) => a + b, 0);
  let seen = 0;
  for (let k = 0; k < h.buckets.length; k++) {
    seen += h.buckets[k]!;
    if (seen >= q * total && seen > 0) return 2 ** (k + 1) - 1;
  }
  return 0;
}
/** Exact while both are safe integers; past 2^53 the order of additions may round differently. */
function expectSum(got: number | undefined, want: number, what: string): void {
  if (Number.isSafeInteger(want)) expect(got, what).toBe(want);
  else expect(Math.abs(got! - want) / want, what).toBeLessThan(1e-12);
}
function expectSummary(got: { count: number; sum: number; p50: number; p90: number; p99: number } | undefined, want: RawHistogram, what: string): void {
  expect(got?.count, what).toBe(want.count);
  expectSum(got?.sum, want.sum, what);
  expect([got?.p50, got?.p90, got?.p99], what).toEqual([0.5, 0.9, 0.99].map((q) => percentile(want, q)));
}

describe('roll-up output, checked against the reports by a second path', () => {
  for (const s of scenarios()) {
    it(s.name, () => {
      const status = rollUp({ trace: s.trace, reports: s.reports.map(compactReport), selectedNodes: s.selectedNodes, now: s.now, reportBytes: s.reportBytes });
      const directions = (s.trace.spec.directions ?? ['rx', 'tx']) as ('rx' | 'tx')[];
      expect(Object.keys(status.summary ?? {})).toEqual(directions);
      // The summary: every report's totals merged, slot by slot.
      for (const d of directions) {
        for (const f of ['packets', 'bytes'] as const) {
          const want = merged(s.reports.map((r) => r.status?.total?.[d]?.[f]));
          expectSummary(status.summary![d]![f], want, `summary ${d} ${f}`);
          expect(status.summary![d]![f].buckets, `summary ${d} ${f}`).toEqual(want.buckets);
        }
      }
      // The VMs: one per namespace/name however many nodes report it, ranked by runs (rx + tx),
      // ties by namespace then name; the listed ones merged over their nodes and shown on the node
      // with most runs; the rest counted in otherVMs; every run accounted for exactly once.
      const byVm = new Map<string, { namespace: string; name: string; runs: number; rows: { node: string; vm: VMReport }[] }>();
      for (const r of s.reports) {
        for (const vm of r.status?.vms ?? []) {
          const k = `${vm.namespace}/${vm.name}`;
          const e = byVm.get(k) ?? { namespace: vm.namespace, name: vm.name, runs: 0, rows: [] };
          e.runs += (vm.rx?.packets.count ?? 0) + (vm.tx?.packets.count ?? 0);
          e.rows.push({ node: r.spec.nodeName, vm });
          byVm.set(k, e);
        }
      }
      const ranked = [...byVm.values()].sort((a, b) => b.runs - a.runs || a.namespace.localeCompare(b.namespace) || a.name.localeCompare(b.name));
      const rows = status.vms ?? [];
      expect(rows.map((v) => `${v.namespace}/${v.name}`)).toEqual(ranked.slice(0, rows.length).map((e) => `${e.namespace}/${e.name}`));
      expect(rows.length + (status.otherVMs?.count ?? 0)).toBe(byVm.size);
      for (const [i, row] of rows.entries()) {
        const e = ranked[i]!;
        const runsOn = new Map<string, number>();
        for (const { node, vm } of e.rows) runsOn.set(node, (runsOn.get(node) ?? 0) + (vm.rx?.packets.count ?? 0) + (vm.tx?.packets.count ?? 0));
        expect(row.node).toBe([...runsOn].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))[0]![0]);
        for (const d of directions) {
          for (const f of ['packets', 'bytes'] as const) expectSummary(row[d]?.[f], merged(e.rows.map((x) => x.vm[d]?.[f])), `${e.name} ${d} ${f}`);
        }
      }
      for (const d of directions) {
        const all = [...byVm.values()].reduce((n, e) => n + e.rows.reduce((m, x) => m + (x.vm[d]?.packets.count ?? 0), 0), 0);
        const listed = rows.reduce((n, v) => n + (v[d]?.packets.count ?? 0), 0);
        expectSum(listed + (status.otherVMs?.[d === 'rx' ? 'rxRuns' : 'txRuns'] ?? 0), all, `${d} runs`);
      }
    });
  }
});

// (The describe and test names are the snapshot's keys: renaming them would write new snapshots.)
describe('regression pin: roll-up output as of b8e290a', () => {
  for (const s of scenarios()) {
    it(s.name, () => {
      const input = { trace: s.trace, reports: s.reports.map(compactReport), selectedNodes: s.selectedNodes, now: s.now, reportBytes: s.reportBytes };
      const status = rollUp(input);
      expect(JSON.stringify(status)).toMatchSnapshot();
      expect(nextTimedChange(input, status) ?? null).toMatchSnapshot();
      // and the compact form does not depend on being made twice or reused across roll-ups
      expect(JSON.stringify(rollUp({ ...input, reports: s.reports }))).toBe(JSON.stringify(status));
      expect(JSON.stringify(rollUp(input))).toBe(JSON.stringify(status));
    });
  }
});

/** What the roll-up can see of a full report: a missing histogram or direction reads as empty. */
function normalized(r: VhostTraceReport) {
  const d = (x: Partial<RawDirections> | undefined) => ({
    rx: { packets: x?.rx?.packets ?? EMPTY, bytes: x?.rx?.bytes ?? EMPTY },
    tx: { packets: x?.tx?.packets ?? EMPTY, bytes: x?.tx?.bytes ?? EMPTY },
  });
  return {
    total: d(r.status?.total),
    vms: (r.status?.vms ?? []).map((v) => ({ namespace: v.namespace, name: v.name, rxRuns: v.rx?.packets.count ?? 0, txRuns: v.tx?.packets.count ?? 0, ...d(v) })),
  };
}

describe('compact reports', () => {
  it('unpack to the same histograms, for every report of the scenarios', () => {
    let n = 0;
    for (const s of scenarios()) {
      for (const r of s.reports) {
        expect(unpack(compactReport(r))).toEqual(normalized(r));
        n++;
      }
    }
    expect(n).toBeGreaterThan(300);
  });

  it('keep any number exactly: varint edges, past 2^53, and values the schema forbids', () => {
    const values = [0, 1, 63, 64, 127, 128, 8191, 8192, 2 ** 31, 2 ** 32 + 1, 2 ** 53 - 1, 2 ** 53, 2 ** 60 + 2 ** 20, 2 ** 70, 1.7e308, 0.5, -3, -(2 ** 60)];
    const hist = (i: number): RawHistogram => ({ count: values[i]!, sum: values[(i + 1) % values.length]!, buckets: values.slice(i) });
    const vms = values.map((_, i) => ({ namespace: 'ns', name: `v${i}`, rx: { packets: hist(i), bytes: hist((i + 3) % values.length) }, tx: { packets: hist((i + 5) % values.length), bytes: EMPTY } }));
    const r = report('a', { state: 'Reporting', total: vms[4], vms });
    const u = unpack(compactReport(r));
    expect(u).toEqual(normalized(r));
    expect(Object.is(u.vms[17]!.rx.packets.count, -(2 ** 60))).toBe(true);
  });

  it('keep what the status shows and drop the rest', () => {
    const full = report('a', {
      state: 'Failed',
      reason: 'LoaderFailed',
      message: 'z'.repeat(1000),
      kernel: '6.1.0',
      mode: 'tracepoint',
      observedTime: iso(T0),
      conditions: [{ type: 'Loaded', status: 'False', reason: 'X', message: 'y', lastTransitionTime: iso(T0) }],
      total: dirs([1], [2], [3], [4]),
      unattributed: dirs([1], [2], [3], [4]),
      vms: [{ namespace: 'ns', name: 'vm', uid: 'u', ...dirs([1], [2], [3], [4]) }],
    });
    const c = compactReport(full);
    expect(c.metadata).toEqual({ name: 't.a', namespace: 'ns', resourceVersion: '1' });
    expect(c.spec).toEqual(full.spec);
    expect(c.status).toEqual({ state: 'Failed', reason: 'LoaderFailed', message: 'z'.repeat(256), kernel: '6.1.0', mode: 'tracepoint', observedTime: iso(T0) });
    expect(c.statusBytes).toBe(Buffer.byteLength(JSON.stringify(full.status)));
    expect(compactReport(report('b')).statusBytes).toBe(2);
    expect(compactReport(report('b')).status).toBeUndefined();
  });

  it('take about 200 bytes of histograms per VM and 24 of run counts', () => {
    const r = rng(3);
    const vms = Array.from({ length: 50 }, (_, i) => ({ namespace: 'ns', name: `vm-${i}`, ...randomDirs(r, 64) }));
    const c = compactReport(report('a', { state: 'Reporting', total: randomDirs(r, 64), vms }));
    expect(c.packed.hists.byteLength / 51).toBeLessThan(200);
    expect(c.packed.vms.byteLength).toBe(50 * 24);
  });

  it('a trimmed node keeps its name, labels and resourceVersion only', () => {
    const n = { apiVersion: 'v1', kind: 'Node', metadata: { name: 'kv-a', resourceVersion: '7', uid: 'u', labels: { a: 'b' }, managedFields: [{}] }, status: { images: [{ names: ['x'] }] } };
    expect(trimNode(n)).toEqual({ metadata: { name: 'kv-a', resourceVersion: '7', labels: { a: 'b' } } });
    expect(trimNode({ metadata: { name: 'plain' } })).toEqual({ metadata: { name: 'plain' } });
  });
});

describe('top VMs without sorting them all', () => {
  it('firstK is the first k of a stable sort, ties included', () => {
    const r = rng(5);
    for (let round = 0; round < 200; round++) {
      const items = Array.from({ length: Math.floor(r() * 300) }, (_, id) => ({ id, key: Math.floor(r() * 8) }));
      const cmp = (a: { key: number }, b: { key: number }) => b.key - a.key;
      const k = Math.floor(r() * 60);
      expect(firstK(items.length, k, (i, j) => cmp(items[i]!, items[j]!)).map((i) => items[i])).toEqual([...items].sort(cmp).slice(0, k));
    }
  });

  it('otherVMs sums in sorted order when the sums are past 2^53, where the order changes them', () => {
    // 50 VMs with 2^60 runs are listed; the rest, in report order, have 1, 1 and 2^53 RX runs.
    // Sorted (most runs first): 2^53 + 1 + 1 rounds to 2^53; in report order it is 2^53 + 2.
    const one = (name: string, runs: number): VMReport => ({ namespace: 'ns', name, rx: { packets: { count: runs, sum: 0, buckets: [] }, bytes: EMPTY } });
    const big = Array.from({ length: LIMITS.vms }, (_, i) => one(`big-${i}`, 2 ** 60));
    const r = report('a', { state: 'Reporting', observedTime: iso(T0), vms: [...big, one('x', 1), one('y', 1), one('z', 2 ** 53)] });
    const s = rollUp({ trace: trace('VhostTrace'), reports: [compactReport(r)], selectedNodes: ['a'], now: T0 });
    expect(s.vms!.length + s.otherVMs!.count!).toBe(53);
    expect(s.otherVMs!.rxRuns).toBe(2 ** 53 + 1 + 1);
    expect(s.otherVMs!.rxRuns).toBe(2 ** 53);
  });
});
