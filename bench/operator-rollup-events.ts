// The roll-up's CPU per report event at N nodes x V VMs, full against incremental, in one
// process and interleaved (this machine is shared: only the ratio within a run means much).
// Report events replace one node's report at a time, as the informer does; one roll-up follows
// each window of W events (W=1: the operator's worst case; W=50: 2 s of reports at 5,000 nodes
// and the default 100 s interval, the status rate limit's window). Every window checks that both
// give the same status, byte for byte. Then, in a fresh process each, the RSS that each kind of
// roll-up adds over the compact reports (`--memory full|incremental`). Prints JSON lines and
// writes them to bench/results/operator-rollup-events-NxV.json; run with
//   node --expose-gc --import tsx bench/operator-rollup-events.ts [--memory full|incremental]
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Trace } from '../src/api/reports.js';
import type { VhostTraceReport } from '../src/api/v1alpha1.js';
import { compactReport, type CompactReport } from '../src/operator/compact.js';
import { IncrementalRollup } from '../src/operator/rollup-incremental.js';
import { rollUp, type RollupInput } from '../src/operator/rollup.js';
import { reportJson } from './operator-reports.js';

const NODES = Number(process.env.BENCH_NODES ?? 5000);
const VMS = Number(process.env.BENCH_VMS ?? 50);
const mib = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(readFileSync('/proc/self/status', 'utf8'))?.[1] ?? NaN) / 1024;
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with node --expose-gc');
const trace = { kind: 'VhostTrace', metadata: { name: 't', namespace: 'ns', uid: 'u', generation: 1 }, spec: {} } as Trace;
const NOW = Date.parse('2026-11-24T12:00:05Z');

function reports(): CompactReport[] {
  const out: CompactReport[] = [];
  for (let n = 0; n < NODES; n++) out.push(compactReport(JSON.parse(reportJson(n, VMS)) as VhostTraceReport));
  return out;
}
const input = (list: CompactReport[]): RollupInput => ({ trace, reports: list, selectedNodes: list.map((r) => r.spec.nodeName), now: NOW });
/** CPU (user + system) ms of fn. */
function cpu(fn: () => void): number {
  const t = process.cpuUsage();
  fn();
  const d = process.cpuUsage(t);
  return (d.user + d.system) / 1000;
}
const q = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(p * xs.length))]!;
const r2 = (x: number) => Math.round(x * 100) / 100;

function memory(kind: string): void {
  gc!();
  const base = mib('VmRSS');
  const list = reports();
  gc!();
  const held = mib('VmRSS');
  const inc = new IncrementalRollup();
  const roll = () => (kind === 'full' ? rollUp(input(list)) : inc.rollUp(input(list)));
  // Three roll-ups over all reports, then 500 report events with a roll-up each.
  for (let i = 0; i < 3; i++) roll();
  for (let e = 0; e < 500; e++) {
    const n = (e * 7919) % NODES;
    list[n] = compactReport(JSON.parse(reportJson(n, VMS, 1 + e)) as VhostTraceReport);
    roll();
  }
  gc!();
  console.log(JSON.stringify({ kind, baseRssMiB: Math.round(base), reportsRssMiB: Math.round(held - base), peakRssMiB: Math.round(mib('VmHWM')), afterRssMiB: Math.round(mib('VmRSS')) }));
}

function events(): string {
  const list = reports();
  const inc = new IncrementalRollup();
  const first = { fullMs: cpu(() => rollUp(input(list))), incrementalMs: cpu(() => inc.rollUp(input(list))) };
  let round = 1;
  const result: Record<string, unknown> = { nodes: NODES, vmsPerNode: VMS, firstRollupCpuMs: { full: r2(first.fullMs), incremental: r2(first.incrementalMs) } };
  for (const [window, windows] of [
    [1, 100],
    [50, 20],
  ] as const) {
    const full: number[] = [];
    const kept: number[] = [];
    for (let w = 0; w < windows; w++) {
      for (let e = 0; e < window; e++, round++) {
        const n = (round * 7919) % NODES;
        list[n] = compactReport(JSON.parse(reportJson(n, VMS, round)) as VhostTraceReport);
      }
      let a: unknown;
      let b: unknown;
      // Alternate which goes first, so neither always runs on a warmer cache.
      const runs = [() => full.push(cpu(() => (a = rollUp(input(list))))), () => kept.push(cpu(() => (b = inc.rollUp(input(list)))))];
      if (w % 2) runs.reverse();
      for (const run of runs) run();
      if (JSON.stringify(a) !== JSON.stringify(b)) throw new Error(`window ${w} of ${window}: the incremental status differs from the full one`);
    }
    const perEvent = (xs: number[]) => ({ p50: r2(q(xs, 0.5) / window), p90: r2(q(xs, 0.9) / window) });
    result[`window${window}`] = {
      rollups: windows,
      cpuMsPerEvent: { full: perEvent(full), incremental: perEvent(kept) },
      fullOverIncrementalP50: r2(q(full, 0.5) / q(kept, 0.5)),
      sameStatus: true,
    };
  }
  result.counts = inc.counts;
  return JSON.stringify(result);
}

const at = process.argv.indexOf('--memory');
if (at > 0) memory(process.argv[at + 1]!);
else {
  const lines = [events()];
  console.log(lines[0]);
  for (const kind of ['full', 'incremental']) {
    lines.push(execFileSync(process.execPath, ['--expose-gc', '--import', 'tsx', import.meta.filename, '--memory', kind], { encoding: 'utf8' }).trim());
    console.log(lines.at(-1));
  }
  writeFileSync(join(import.meta.dirname, 'results', `operator-rollup-events-${NODES}x${VMS}.json`), `${lines.join('\n')}\n`);
}
