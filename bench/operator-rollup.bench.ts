// The roll-up alone, at 5,000 nodes with 50 VMs each (the extrapolation target): the
// size of a report, the memory the reports take as the operator's informer holds them (compact,
// src/operator/compact.ts; and, for comparison, as parsed JSON), and the time of one roll-up over
// each. Run with --expose-gc for the memory figures:
//   NODE_OPTIONS=--expose-gc npx vitest run --config bench/vitest.config.ts operator-rollup
import { expect, it } from 'vitest';
import { fromValues } from '../src/api/histogram.js';
import type { Trace } from '../src/api/reports.js';
import type { RawDirections, VhostTraceReport } from '../src/api/v1alpha1.js';
import { compactReport, type CompactReport } from '../src/operator/compact.js';
import { rollUp } from '../src/operator/rollup.js';

const NODES = Number(process.env.BENCH_NODES ?? 5000);
const VMS = Number(process.env.BENCH_VMS ?? 50);

function dirs(seed: number): RawDirections {
  const p = Array.from({ length: 64 }, (_, i) => (seed * 31 + i * 17) % 257);
  const b = p.map((x, i) => x * (1000 + ((seed + i) % 500)));
  const scale = (h: ReturnType<typeof fromValues>) => ({ count: h.count * 1000, sum: h.sum * 1000, buckets: h.buckets.map((x) => x * 1000) });
  return { rx: { packets: scale(fromValues(p)), bytes: scale(fromValues(b)) }, tx: { packets: scale(fromValues(p)), bytes: scale(fromValues(b)) } };
}

function reportText(n: number): string {
  const name = `node-${String(n).padStart(5, '0')}`;
  const r: VhostTraceReport = {
    apiVersion: 'vhosttrace.io/v1alpha1',
    kind: 'VhostTraceReport',
    metadata: { name: `t.${name}`, namespace: 'ns', uid: '3f1c1c1e-0000-4000-8000-000000000000', resourceVersion: '123456', labels: { 'vhosttrace.io/trace-uid': 'u' } },
    spec: { trace: { kind: 'VhostTrace', name: 't', namespace: 'ns', uid: 'u' }, nodeName: name },
    status: {
      state: 'Reporting',
      observedTime: '2026-11-24T12:00:00Z',
      kernel: '6.1.0-47-amd64',
      mode: 'tracepoint',
      total: dirs(n),
      vms: Array.from({ length: VMS }, (_, v) => ({ namespace: `tenant-${v % 7}`, name: `vm-${n}-${v}`, uid: `00000000-0000-4000-8000-${String(n * 100 + v).padStart(12, '0')}`, ...dirs(n + v) })),
    },
  };
  return JSON.stringify(r);
}

const gc = (globalThis as { gc?: () => void }).gc;
/** JS heap plus ArrayBuffer backing stores (the packed histograms live outside the heap). */
function used(): number {
  gc?.();
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}

/** Builds the reports one at a time as `keep` holds them; MiB they take, roll-up times. */
function measure<R extends CompactReport | VhostTraceReport>(keep: (text: string) => R) {
  const before = used();
  const reports: R[] = [];
  for (let n = 0; n < NODES; n++) reports.push(keep(reportText(n)));
  const mib = (used() - before) / 2 ** 20;
  const trace = { apiVersion: 'vhosttrace.io/v1alpha1', kind: 'VhostTrace', metadata: { name: 't', namespace: 'ns', uid: 'u', generation: 1 }, spec: {} } as Trace;
  const names = reports.map((r) => r.spec.nodeName);
  const times: number[] = [];
  let status;
  for (let i = 0; i < 3; i++) {
    const t0 = performance.now();
    status = rollUp({ trace, reports, selectedNodes: names, now: Date.parse('2026-11-24T12:00:05Z') });
    times.push(performance.now() - t0);
  }
  return { reportsMiB: gc ? Math.round(mib * 10) / 10 : 'run with --expose-gc', rollupMs: times.map((t) => Math.round(t)), status: JSON.stringify(status) };
}

it(`one roll-up of ${NODES} reports with ${VMS} VMs each, compact and parsed`, () => {
  const texts = Array.from({ length: 10 }, (_, n) => reportText(n));
  const compact = measure((t) => compactReport(JSON.parse(t) as VhostTraceReport)); // as the informer holds them
  const parsed = measure((t) => JSON.parse(t) as VhostTraceReport); // as it held them before
  const result = {
    nodes: NODES,
    vmsPerNode: VMS,
    reportBytes: Math.round(texts.reduce((a, t) => a + Buffer.byteLength(t), 0) / texts.length),
    compact: { reportsMiB: compact.reportsMiB, rollupMs: compact.rollupMs },
    parsed: { reportsMiB: parsed.reportsMiB, rollupMs: parsed.rollupMs, note: 'roll-up compacts each report first' },
    statusBytes: Buffer.byteLength(compact.status),
    sameStatus: compact.status === parsed.status,
    interval: (JSON.parse(compact.status) as { interval: string }).interval,
  };
  console.log(JSON.stringify(result, null, 2));
  expect(result.sameStatus).toBe(true);
  expect(result.statusBytes).toBeLessThanOrEqual(64 * 1024);
});
