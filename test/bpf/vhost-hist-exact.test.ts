// The real vhost-hist programs in the host kernel: they pass the verifier, and events fed
// through BPF_PROG_TEST_RUN (bpf/vhost-hist-testrun) read back exactly. Needs root (CAP_BPF).
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { parseSnapshotLine, type LoaderEntry, type LoaderSnapshot } from '../../src/loader/snapshot.js';
import { missing } from '../harness/prereq.js';

const ROOT = new URL('../..', import.meta.url).pathname;
const OUT = join(ROOT, 'bpf/.output');
const TESTRUN = join(OUT, 'vhost-hist-testrun');
const LOADER = join(OUT, 'vhost-hist');

/** Builds bpf/ once; concurrent test files serialize on a lock. */
function build(): void {
  const r = spawnSync('flock', ['/tmp/vhosttrace-bpf-build.lock', 'make', '-s', '-C', join(ROOT, 'bpf')], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`make -C bpf failed:\n${r.stdout}${r.stderr}`);
}

function testrun(args: string[], input: string): LoaderSnapshot {
  const r = spawnSync(TESTRUN, args, { input, encoding: 'utf8', maxBuffer: 1 << 24 });
  if (r.status !== 0) throw new Error(`vhost-hist-testrun ${args.join(' ')} exited ${r.status}: ${r.stderr}`);
  return parseSnapshotLine(r.stdout.trim());
}

/** vhosttrace's slot of an int tracepoint argument, read as u32 (docs/bpf.md, "Histogram convention"). */
function slotOf(v: number): number {
  const u = v >>> 0;
  return u <= 1 ? 0 : 31 - Math.clz32(u);
}

interface Expected {
  count: number;
  packets: { sum: number; buckets: number[] };
  bytes: { sum: number; buckets: number[] };
}

function emptyExpected(): Expected {
  return { count: 0, packets: { sum: 0, buckets: [] }, bytes: { sum: 0, buckets: [] } };
}

function add(e: Expected, pkts: number, bytes: number, times: number): void {
  e.count += times;
  for (const [h, v] of [[e.packets, pkts], [e.bytes, bytes]] as const) {
    h.sum += (v >>> 0) * times;
    const s = slotOf(v);
    while (h.buckets.length <= s) h.buckets.push(0);
    h.buckets[s] = (h.buckets[s] ?? 0) + times;
  }
}

function entry(snap: LoaderSnapshot, cgroupId: number, direction: 'rx' | 'tx'): LoaderEntry | undefined {
  return snap.histograms.find((e) => e.cgroupId === cgroupId && e.direction === direction);
}

function asExpected(e: LoaderEntry | undefined): Expected | undefined {
  if (!e) return undefined;
  return { count: e.packets.count, packets: { sum: e.packets.sum, buckets: e.packets.buckets }, bytes: { sum: e.bytes.sum, buckets: e.bytes.buckets } };
}

/** 0, 1, every power of two with its neighbours, the weight limits, and negative ints. */
const EDGE_VALUES: number[] = (() => {
  const v = new Set<number>([0, 1, 2, 3, 255, 256, 257, 64, 65535, 65536, 524287, 524288, 524289, 589823]);
  for (let k = 2; k <= 31; k++) for (const d of [-1, 0, 1]) v.add(2 ** k + d);
  v.add(2 ** 32 - 1);
  v.add(-1);
  v.add(-2147483648);
  return [...v];
})();

/** The cgroup v2 mount, where tests can make cgroups (null when the host has none). */
function cgroup2Root(): string | null {
  for (const line of readFileSync('/proc/mounts', 'utf8').split('\n')) {
    const [, mnt, type] = line.split(' ');
    if (type === 'cgroup2' && mnt) return mnt;
  }
  return null;
}

beforeAll(build, 300_000);

describe('verifier', () => {
  it.each([
    [[] as string[]],
    [['--cache', 'task']],
    [['--cache', 'none']],
    [['--atomic', '--cache', 'task']],
    [['--no-cgroup']],
    [['--max-cgroups', '1']],
    [['--max-cgroups', '4096']],
  ])('accepts the raw_tp and tracepoint programs with knobs %j', (knobs) => {
    const snap = testrun(['--load-all', ...knobs], '');
    expect(snap.histograms).toEqual([]);
  });
});

describe('BPF_PROG_TEST_RUN exactness', () => {
  it('counts 0, 1, powers of two and their neighbours, the weight limits and negative ints exactly', () => {
    const want = { rx: emptyExpected(), tx: emptyExpected() };
    const lines: string[] = [];
    EDGE_VALUES.forEach((v, i) => {
      const other = EDGE_VALUES[EDGE_VALUES.length - 1 - i] ?? 0;
      const times = 1 + (i % 3);
      lines.push(`rx ${v} ${other} ${times}`, `tx ${other} ${v} ${times + 1}`);
      add(want.rx, v, other, times);
      add(want.tx, other, v, times + 1);
    });
    // The weight limits of a run: 256 packets or 512 KiB (VHOST_NET_PKT_WEIGHT, VHOST_NET_WEIGHT).
    lines.push('rx 256 524288 5', 'tx 256 524288 7', 'rx 255 524287 2');
    add(want.rx, 256, 524288, 5);
    add(want.tx, 256, 524288, 7);
    add(want.rx, 255, 524287, 2);

    const snap = testrun(['--no-cgroup'], lines.join('\n') + '\n');
    expect(snap.histograms.map((e) => [e.cgroupId, e.direction])).toEqual([[0, 'rx'], [0, 'tx']]);
    expect(asExpected(entry(snap, 0, 'rx'))).toEqual(want.rx);
    expect(asExpected(entry(snap, 0, 'tx'))).toEqual(want.tx);
    expect(snap.dropped).toEqual({ keysRefused: 0, overflowEvents: want.rx.count + want.tx.count });
  });

  it('gives the same histograms with either slot cache, with a lookup per event, and with stock mode\'s atomic adds', () => {
    const input = EDGE_VALUES.map((v) => `rx ${v} ${v * 3} 2`).join('\n') + '\n';
    const percpu = testrun([], input);
    const task = testrun(['--cache', 'task'], input);
    const none = testrun(['--cache', 'none'], input);
    const atomic = testrun(['--atomic', '--cache', 'task'], input);
    expect(percpu.histograms).toEqual(none.histograms);
    expect(atomic.histograms).toEqual(none.histograms);
    expect(task.histograms).toEqual(none.histograms);
    // Misses: the per-CPU cache once per CPU the runner ran on, the task cache once.
    expect(percpu.counters.slowPath).toBeGreaterThanOrEqual(1);
    expect(task.counters.slowPath).toBe(1);
    expect(none.counters.slowPath).toBe(0);
  });

  it('stays exact with two CPUs writing at once', async () => {
    const events = 20_000;
    const run = (cpu: number) =>
      new Promise<LoaderSnapshot>((resolve, reject) => {
        const p = spawn('taskset', ['-c', String(cpu), TESTRUN, '--cpu', String(cpu), '--pinned', pinDir], { stdio: ['pipe', 'pipe', 'pipe'] });
        let out = '';
        let err = '';
        p.stdout.on('data', (d: Buffer) => (out += d.toString()));
        p.stderr.on('data', (d: Buffer) => (err += d.toString()));
        p.on('close', (code) => (code === 0 ? resolve(parseSnapshotLine(out.trim())) : reject(new Error(`testrun on cpu ${cpu}: ${code} ${err}`))));
        p.stdin.end(`rx 3 1500 ${events}\ntx 1 64 ${events}\n`);
      });
    // Both processes feed the programs behind one loader's pinned links, so they share maps.
    const pinDir = `/sys/fs/bpf/vhosttrace-test-cpu-${process.pid}`;
    const loader = spawnSync(LOADER, ['--json', '-d', '0.05', '--no-cgroup', '--pin-dir', pinDir, '--raw-tp-names', 'xdp_exception,xdp_exception'], { encoding: 'utf8' });
    expect(loader.status, loader.stderr).toBe(0);
    try {
      const cpus = Math.min(2, Number(spawnSync('nproc', { encoding: 'utf8' }).stdout.trim()));
      await Promise.all(Array.from({ length: cpus }, (_, cpu) => run(cpu)));
      const snap = testrun(['--pinned', pinDir], '');
      expect(entry(snap, 0, 'rx')?.packets).toEqual({ count: cpus * events, sum: cpus * events * 3, buckets: [0, cpus * events] });
      expect(entry(snap, 0, 'rx')?.bytes.sum).toBe(cpus * events * 1500);
      expect(entry(snap, 0, 'tx')?.bytes).toEqual({ count: cpus * events, sum: cpus * events * 64, buckets: [0, 0, 0, 0, 0, 0, cpus * events] });
    } finally {
      spawnSync(LOADER, ['--stop', '--pin-dir', pinDir]);
    }
  });
});

describe('per-cgroup keys', () => {
  const root = cgroup2Root();
  const noCgroup2 = missing('a cgroup v2 mount', !!root, 'mount cgroup2 at /sys/fs/cgroup (the agent needs cgroup v2 ids too)');

  it.skipIf(noCgroup2).each([['percpu'], ['task']])('keys events by the cgroup v2 id of the current task, and follows it when it moves (%s cache)', (cache) => {
    const a = join(root!, `vhosttrace-test-a-${process.pid}`);
    const b = join(root!, `vhosttrace-test-b-${process.pid}`);
    mkdirSync(a);
    mkdirSync(b);
    try {
      const snap = testrun(['--cache', cache], `cgroup ${a}\nrx 1 100 3\ntx 2 200 1\ncgroup ${b}\nrx 4 400 2\ncgroup ${a}\nrx 8 800 1\n`);
      const idA = statSync(a).ino;
      const idB = statSync(b).ino;
      expect(snap.histograms.map((e) => [e.cgroupId, e.direction])).toEqual(
        [[idA, 'rx'], [idA, 'tx'], [idB, 'rx']].sort((x, y) => Number(x[0]) - Number(y[0]) || String(x[1]).localeCompare(String(y[1]))),
      );
      expect(entry(snap, idA, 'rx')?.packets).toEqual({ count: 4, sum: 11, buckets: [3, 0, 0, 1] });
      expect(entry(snap, idB, 'rx')?.bytes).toEqual({ count: 2, sum: 800, buckets: [0, 0, 0, 0, 0, 0, 0, 0, 2] });
      // The task cache misses each time the task changes cgroup: three times.
      if (cache === 'task') expect(snap.counters.slowPath).toBe(3);
    } finally {
      rmdirSync(a);
      rmdirSync(b);
    }
  });

  it.skipIf(noCgroup2)('counts cgroups that do not fit under cgroup 0 and says how many were refused', () => {
    const a = join(root!, `vhosttrace-test-c-${process.pid}`);
    const b = join(root!, `vhosttrace-test-d-${process.pid}`);
    mkdirSync(a);
    mkdirSync(b);
    try {
      const snap = testrun(['--max-cgroups', '1'], `cgroup ${a}\nrx 1 1 2\ncgroup ${b}\nrx 1 1 3\ntx 1 1 1\n`);
      expect(entry(snap, statSync(a).ino, 'rx')?.packets.count).toBe(2);
      expect(entry(snap, 0, 'rx')?.packets.count).toBe(3);
      expect(entry(snap, 0, 'tx')?.packets.count).toBe(1);
      expect(snap.dropped).toEqual({ keysRefused: 1, overflowEvents: 4 });
    } finally {
      rmdirSync(a);
      rmdirSync(b);
    }
  });
});
