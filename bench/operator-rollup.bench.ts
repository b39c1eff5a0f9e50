// The roll-up alone, at 5,000 nodes with 50 VMs each (the extrapolation target): the
// size of a report, the memory the reports take as the operator's informer holds them (compact,
// src/operator/compact.ts; and, for comparison, as parsed JSON), and the time of one roll-up over
// each. Run with --expose-gc for the memory figures:
//   NODE_OPTIONS=--expose-gc npx vitest run --config bench/vitest.config.ts operator-rollup
import { expect, it } from 'vitest';
import type { Trace } from '../src/api/reports.js';
import type { VhostTraceReport } from '../src/api/v1alpha1.js';
import { compactReport, type CompactReport } from '../src/operator/compact.js';
import { rollUp } from '../src/operator/rollup.js';
import { reportJson } from './operator-reports.js';

const NODES = Number(process.env.BENCH_NODES ?? 5000);
const VMS = Number(process.env.BENCH_VMS ?? 50);
const reportText = (n: number) => reportJson(n, VMS);

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


it(`RSS a process adds for ${NODES} compact reports with ${VMS} VMs each and their roll-ups`, async () => {
  const { execFileSync } = await import('node:child_process');
  const out = execFileSync(process.execPath, ['--expose-gc', '--import', 'tsx', 'bench/operator-memory.ts'], { encoding: 'utf8', env: { ...process.env, NODE_OPTIONS: '' } });
  console.log(out.trim());
  const r = JSON.parse(out.trim().split('\n').at(-1)!) as { reportsRssMiB: number };
  expect(r.reportsRssMiB).toBeGreaterThan(0);
});
