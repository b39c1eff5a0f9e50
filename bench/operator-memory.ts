// Run alone (node --expose-gc --import tsx bench/operator-memory.ts), from operator-rollup's
// bench: what N compact reports (as the operator's informer holds them) and three roll-ups
// over them add to a bare Node process's RSS, at rest and at the peak. Prints one JSON line.
import { readFileSync } from 'node:fs';
import type { Trace } from '../src/api/reports.js';
import type { VhostTraceReport } from '../src/api/v1alpha1.js';
import { compactReport, type CompactReport } from '../src/operator/compact.js';
import { rollUp } from '../src/operator/rollup.js';
import { reportJson } from './operator-reports.js';

const NODES = Number(process.env.BENCH_NODES ?? 5000);
const VMS = Number(process.env.BENCH_VMS ?? 50);
const mib = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(readFileSync('/proc/self/status', 'utf8'))?.[1] ?? NaN) / 1024;
const gc = (globalThis as { gc?: () => void }).gc!;

gc();
const base = mib('VmRSS');
const reports: CompactReport[] = [];
for (let n = 0; n < NODES; n++) reports.push(compactReport(JSON.parse(reportJson(n, VMS)) as VhostTraceReport));
gc();
const held = mib('VmRSS');
const peakBefore = mib('VmHWM');
const trace = { kind: 'VhostTrace', metadata: { name: 't', namespace: 'ns', uid: 'u', generation: 1 }, spec: {} } as Trace;
const names = reports.map((r) => r.spec.nodeName);
for (let i = 0; i < 3; i++) rollUp({ trace, reports, selectedNodes: names, now: Date.parse('2026-11-24T12:00:05Z') });
const r = (x: number) => Math.round(x);
console.log(JSON.stringify({ baseRssMiB: r(base), reportsRssMiB: r(held - base), peakWhileBuildingMiB: r(peakBefore), peakWithRollupsMiB: r(mib('VmHWM')), afterRollupsRssMiB: r(mib('VmRSS')) }));
