// The cost of tracing to the data path: vhost-net frames per second through the traffic driver
// (kernel/driver) with nothing attached, with the vhost-hist loader (default per-VM programs),
// with the seed's programs and with an empty program, interleaved in rounds inside one guest of
// the kernel test bed booted with -icount (its clock follows the instructions run, not the
// host's load). Worst case: one frame per vhost-net run; batched: 64. TX and RX.
//
//   sudo node --import tsx bench/datapath.ts     (builds what it needs; about a minute a kernel)
//
// Knobs: DATAPATH_KERNELS (6.12,6.1), DATAPATH_ROUNDS (8), DATAPATH_ICOUNT (shift, 0),
// DATAPATH_SCALE (frames multiplier, 1). Results: bench/results/datapath-<kernel>.json and a
// table on stdout, with context switches per frame (the guest's, and the driver's own: blocked
// and preempted); docs/benchmarks.md (bpf, section 6) says what the clock models.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const ROOT = new URL('..', import.meta.url).pathname;
const KERNELS = (process.env.DATAPATH_KERNELS ?? '6.12,6.1').split(',');
const ROUNDS = Number(process.env.DATAPATH_ROUNDS ?? 8);
const ICOUNT = Number(process.env.DATAPATH_ICOUNT ?? 0);
const SCALE = Number(process.env.DATAPATH_SCALE ?? 1);

const ARMS = ['off', 'per-vm', 'seed', 'empty'] as const;
type Arm = (typeof ARMS)[number];

/** Frames per run, and how many: the worst case is a run per frame. */
const WORKLOADS = [
  { name: 'tx-worst', args: `--tx --frames ${2000 * SCALE} --batch 1 --sizes 60` },
  { name: 'tx-batched', args: `--tx --frames ${12800 * SCALE} --batch 64 --sizes 60` },
  { name: 'rx-worst', args: `--rx --frames ${2000 * SCALE} --batch 1 --sizes 60` },
  { name: 'rx-batched', args: `--rx --frames ${12800 * SCALE} --batch 64 --sizes 60` },
];

/** How each arm attaches, and how its first sign of life is recognised. */
const START: Record<Exclude<Arm, 'off'>, string> = {
  // The loader prints nothing until its exit (-i longer than the run): 3 s of guest time,
  // free under -icount, is ample to attach; its final counts prove it was attached.
  'per-vm': 'bpf/.output/vhost-hist --json -i 100000 > "$O" 2> "$O.err" & P=$!; sleep 3; kill -0 $P; echo up > "$O.up"; W="$O.up"',
  seed: 'bpf/.output/bpf-bench --attach seed > "$O" 2> "$O.err" & P=$!; W="$O.err"',
  empty: 'bpf/.output/bpf-bench --attach empty > "$O" 2> "$O.err" & P=$!; W="$O.err"',
};

/** The guest's script: rounds of every arm (order rotated per round), every workload per arm. */
function guestScript(): string {
  const lines = ['set -euo pipefail', 'uname -r > "$VT_OUT/krel"'];
  // What the guest's kernel does on every indirect call and return, and whether BPF is JITed.
  lines.push('(cd /sys/devices/system/cpu/vulnerabilities && grep -H . *) > "$VT_OUT/mitigations"; cat /proc/sys/net/core/bpf_jit_enable > "$VT_OUT/jit"');
  for (let r = 0; r < ROUNDS; r++) {
    for (let i = 0; i < ARMS.length; i++) {
      const arm = ARMS[(i + r) % ARMS.length]!;
      lines.push(`O="$VT_OUT/attach-${r}-${arm}"`);
      if (arm !== 'off') {
        lines.push(START[arm]);
        lines.push('for i in $(seq 600); do [ -s "$W" ] && break; kill -0 $P; sleep 0.05; done; [ -s "$W" ]');
      }
      // Untimed: what an attach leaves to do (RCU, first runs) lands here, not in a timed run.
      lines.push('vhost-traffic --tx --frames 200 --batch 1 --sizes 60 > /dev/null; vhost-traffic --rx --frames 200 --batch 1 --sizes 60 > /dev/null; sleep 1');
      // The guest's context switches across the run (/proc/stat ctxt): whether tracing changes
      // how often the driver and the vhost worker block and wake, which the clock counts too.
      for (const w of WORKLOADS) {
        lines.push(`C0=$(awk '/^ctxt/ {print $2}' /proc/stat); D=$(vhost-traffic ${w.args}); C1=$(awk '/^ctxt/ {print $2}' /proc/stat)`);
        lines.push(`echo "{\\"round\\":${r},\\"arm\\":\\"${arm}\\",\\"workload\\":\\"${w.name}\\",\\"ctxt\\":$((C1 - C0)),\\"driver\\":$D}" >> "$VT_OUT/runs.jsonl"`);
      }
      if (arm !== 'off') lines.push('kill -INT $P; wait $P');
    }
  }
  return `${lines.join('\n')}\n`;
}

interface Run {
  round: number;
  arm: Arm;
  workload: string;
  /** The guest's context switches during the run. */
  ctxt: number;
  /** blocked, preempted: the driver's voluntary and involuntary context switches while it moved. */
  driver: { frames: number; tap_seen?: number; foreign_frames: number; move_ns: number; batch: number; direction: string; blocked: number; preempted: number };
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

/** Per workload and traced arm: the per-round ratio traced/untraced frames per second. */
function summarize(runs: Run[]) {
  const fps = (r: Run) => r.driver.frames / (r.driver.move_ns / 1e9);
  const out: Record<string, Record<string, unknown>> = {};
  for (const w of WORKLOADS.map((x) => x.name)) {
    const of = (arm: Arm) => runs.filter((r) => r.workload === w && r.arm === arm).sort((a, b) => a.round - b.round);
    const off = of('off');
    const row: Record<string, unknown> = {
      untracedFramesPerSecond: Math.round(median(off.map(fps))),
      untracedContextSwitchesPerFrame: +median(off.map((o) => o.ctxt / o.driver.frames)).toFixed(3),
      untracedDriverBlockedPerFrame: +median(off.map((o) => o.driver.blocked / o.driver.frames)).toFixed(3),
      untracedDriverPreemptedPerFrame: +median(off.map((o) => o.driver.preempted / o.driver.frames)).toFixed(3),
    };
    for (const arm of ARMS.filter((a) => a !== 'off')) {
      const traced = of(arm);
      const ratios = traced.map((t) => fps(t) / fps(off.find((o) => o.round === t.round)!));
      row[arm] = {
        framesPerSecond: Math.round(median(traced.map(fps))),
        ratioMedian: +median(ratios).toFixed(4),
        ratioMin: +Math.min(...ratios).toFixed(4),
        ratioMax: +Math.max(...ratios).toFixed(4),
        contextSwitchesPerFrame: +median(traced.map((t) => t.ctxt / t.driver.frames)).toFixed(3),
        driverBlockedPerFrame: +median(traced.map((t) => t.driver.blocked / t.driver.frames)).toFixed(3),
        driverPreemptedPerFrame: +median(traced.map((t) => t.driver.preempted / t.driver.frames)).toFixed(3),
        ratioOfTotals: +(traced.reduce((a, t) => a + t.driver.frames, 0) / traced.reduce((a, t) => a + t.driver.move_ns, 0) /
          (off.reduce((a, t) => a + t.driver.frames, 0) / off.reduce((a, t) => a + t.driver.move_ns, 0))).toFixed(4),
      };
    }
    // The untraced arm's own spread: how far apart two runs of the same thing land.
    const spread = off.map((o) => fps(o) / median(off.map(fps)));
    row.untracedSpread = [+Math.min(...spread).toFixed(4), +Math.max(...spread).toFixed(4)];
    out[w] = row;
  }
  return out;
}

/**
 * Every run moved all its frames and nothing else; every traced arm saw at least a run per
 * frame of the worst-case workloads. Returns the per-VM program's slot-cache misses per round.
 */
function check(runs: Run[], dir: string): number[] {
  const slowPaths: number[] = [];
  for (const r of runs) {
    const d = r.driver;
    if (d.foreign_frames !== 0 || (d.direction === 'tx' && d.tap_seen !== d.frames) || !(d.move_ns > 0)) {
      throw new Error(`round ${r.round} ${r.arm} ${r.workload}: not a clean run: ${JSON.stringify(d).slice(0, 300)}`);
    }
  }
  for (let round = 0; round < ROUNDS; round++) {
    const seed = JSON.parse(readFileSync(join(dir, `attach-${round}-seed`), 'utf8')) as { rxRuns: number; txRuns: number };
    const last = readFileSync(join(dir, `attach-${round}-per-vm`), 'utf8').trim().split('\n').pop()!;
    const snap = JSON.parse(last) as { histograms: [number, string, number][]; counters: { slowPath: number } };
    const counted = (d: string) => snap.histograms.filter((h) => h[1] === d).reduce((a, h) => a + h[2], 0);
    // At least a run per frame of the worst-case workloads, TX and RX, in every traced arm.
    const least = (name: string, arm: Arm) => runs.find((r) => r.round === round && r.arm === arm && r.workload === name)!.driver.frames;
    const want = { tx: least('tx-worst', 'per-vm'), rx: least('rx-worst', 'per-vm') };
    if (seed.txRuns < least('tx-worst', 'seed') || seed.rxRuns < least('rx-worst', 'seed') || counted('tx') < want.tx || counted('rx') < want.rx) {
      throw new Error(`round ${round}: a traced arm missed events (seed ${JSON.stringify(seed)}, per-VM tx ${counted('tx')} rx ${counted('rx')}, want ${JSON.stringify(want)})`);
    }
    slowPaths.push(snap.counters.slowPath);
  }
  return slowPaths;
}

function sh(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { cwd: ROOT, encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}:\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

function main(): void {
  sh('flock', ['/tmp/vhosttrace-bpf-build.lock', 'make', '-s', '-C', 'bpf', 'all', 'bench']);
  for (const kernel of KERNELS) {
    const dir = mkdtempSync(join(tmpdir(), 'vhosttrace-datapath-'));
    const script = join(dir, 'guest.sh');
    writeFileSync(script, guestScript(), { mode: 0o755 });
    const out = join(dir, 'out');
    const t0 = Date.now();
    console.error(`[datapath] ${kernel}: ${ROUNDS} rounds x ${ARMS.length} arms x ${WORKLOADS.length} workloads, -icount shift=${ICOUNT}; output in ${out}`);
    sh(join(ROOT, 'kernel/testbed/run'), ['--kernel', kernel, '--icount', String(ICOUNT), '--script', script, '--out', out, '--timeout', '5400']);
    const runs = readFileSync(join(out, 'runs.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Run);
    const slowPaths = check(runs, out);
    const result = {
      date: new Date().toISOString(),
      kernel,
      release: readFileSync(join(out, 'krel'), 'utf8').trim(),
      clock: `qemu -icount shift=${ICOUNT},sleep=off (guest time = instructions x ${2 ** ICOUNT} ns)`,
      guestBpfJit: readFileSync(join(out, 'jit'), 'utf8').trim(),
      guestMitigations: readFileSync(join(out, 'mitigations'), 'utf8').trim().split('\n').filter((l) => !l.includes('Not affected')),
      rounds: ROUNDS,
      hostSeconds: Math.round((Date.now() - t0) / 1000),
      workloads: Object.fromEntries(WORKLOADS.map((w) => [w.name, w.args])),
      results: summarize(runs),
      perVmSlotCacheMisses: slowPaths,
      runs: runs.map((r) => `${r.round} ${r.arm} ${r.workload} ${r.driver.frames} ${r.driver.move_ns} ctxt ${r.ctxt} blocked ${r.driver.blocked} preempted ${r.driver.preempted}`),
    };
    writeFileSync(join(ROOT, `bench/results/datapath-${kernel}.json`), `${JSON.stringify(result, null, 2)}\n`);
    console.log(JSON.stringify({ kernel, release: result.release, results: result.results }, null, 1));
  }
}

main();
