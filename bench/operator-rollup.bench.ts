// The roll-up alone, at 5,000 nodes with 50 VMs each (the extrapolation target): time of
// one roll-up, the size of a report, and the heap the parsed reports take (what the operator's
// informer holds). Run with --expose-gc for the heap figure:
//   NODE_OPTIONS=--expose-gc npx vitest run --config bench/vitest.config.ts operator-rollup
import { expect, it } from 'vitest';
import { fromValues } from '../src/api/histogram.js';
import type { Trace } from '../src/api/reports.js';
import type { RawDirections, VhostTraceReport } from '../src/api/v1alpha1.js';
import { rollUp } from '../src/operator/rollup.js';

const NODES = Number(process.env.BENCH_NODES ?? 5000);
const VMS = Number(process.env.BENCH_VMS ?? 50);

function dirs(seed: number): RawDirections {
  const p = Array.from({ length: 64 }, (_, i) => (seed * 31 + i * 17) % 257);
  const b = p.map((x, i) => x * (1000 + ((seed + i) % 500)));
  const scale = (h: ReturnType<typeof fromValues>) => ({ count: h.count * 1000, sum: h.sum * 1000, buckets: h.buckets.map((x) => x * 1000) });
  return { rx: { packets: scale(fromValues(p)), bytes: scale(fromValues(b)) }, tx: { packets: scale(fromValues(p)), bytes: scale(fromValues(b)) } };
}

it(`one roll-up of ${NODES} reports with ${VMS} VMs each`, () => {
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
  const before = process.memoryUsage().heapUsed;
  const texts: string[] = [];
  const reports: VhostTraceReport[] = [];
  for (let n = 0; n < NODES; n++) {
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
    const text = JSON.stringify(r);
    if (n < 10) texts.push(text);
    reports.push(JSON.parse(text) as VhostTraceReport); // parsed, as the informer holds it
  }
  gc?.();
  const heapMiB = (process.memoryUsage().heapUsed - before) / 2 ** 20;
  const trace = { apiVersion: 'vhosttrace.io/v1alpha1', kind: 'VhostTrace', metadata: { name: 't', namespace: 'ns', uid: 'u', generation: 1 }, spec: {} } as Trace;
  const names = reports.map((r) => r.spec.nodeName);
  const times: number[] = [];
  let status;
  for (let i = 0; i < 3; i++) {
    const t0 = performance.now();
    status = rollUp({ trace, reports, selectedNodes: names, now: Date.parse('2026-11-24T12:00:05Z') });
    times.push(performance.now() - t0);
  }
  const result = {
    nodes: NODES,
    vmsPerNode: VMS,
    reportBytes: Math.round(texts.reduce((a, t) => a + Buffer.byteLength(t), 0) / texts.length),
    reportsHeapMiB: gc ? Math.round(heapMiB) : 'run with --expose-gc',
    rollupMs: times.map((t) => Math.round(t)),
    statusBytes: Buffer.byteLength(JSON.stringify(status)),
    interval: status!.interval,
  };
  console.log(JSON.stringify(result, null, 2));
  expect(result.statusBytes).toBeLessThanOrEqual(64 * 1024);
});
