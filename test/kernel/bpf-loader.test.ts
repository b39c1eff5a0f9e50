// vhost-hist in real Debian kernels (kernel/testbed): on the patched module's tracepoints its
// histograms equal the trace buffer's events, per cgroup and direction, exactly, across a
// SIGKILL of the loader; the stock-kernel mode (fentry/fexit) gives the same numbers on the
// same events; and on the unpatched module stock mode alone adds up to the traffic driver's
// ground truth.
import { spawnSync } from 'node:child_process';
import { beforeAll, describe, expect, it } from 'vitest';
import { LOADER_EXIT } from '../../src/loader/exit-codes.js';
import { parseProbeLine } from '../../src/loader/probe.js';
import { parseSnapshotLines, type LoaderEntry, type LoaderSnapshot } from '../../src/loader/snapshot.js';
import { expectedRuns, parseTrace, type DriverReport, type RunEvent, type Workload } from './ground-truth.js';
import { assertGuestOk, KERNELS, runGuest, type GuestResult } from './testbed.js';

const ROOT = new URL('../..', import.meta.url).pathname;

// Cgroup a gets the first two, cgroup b the last two; the loader is SIGKILLed in between.
const WORKLOADS: (Workload & { cgroup: 'a' | 'b' })[] = [
  { cgroup: 'a', name: 'tx-batch32-mixed', direction: 'tx', frames: 100, batch: 32, sizes: [64, 1514] },
  { cgroup: 'a', name: 'rx-packet-weight', direction: 'rx', frames: 300, batch: 300, ring: 512, sizes: [60, 61, 62] },
  { cgroup: 'b', name: 'tx-byte-weight', direction: 'tx', frames: 150, batch: 150, sizes: [9014] },
  { cgroup: 'b', name: 'rx-starved-mixed', direction: 'rx', frames: 100, batch: 50, post: 16, sizes: [64, 1514, 9014] },
];

const MARKER = 'VHT-SPLIT';
const LOADER = 'bpf/.output/vhost-hist';

function driverArgs(w: Workload): string {
  const ring = w.ring ? ` --ring ${w.ring}` : '';
  const post = w.post ? ` --post ${w.post}` : '';
  return `--${w.direction} --frames ${w.frames} --batch ${w.batch} --sizes ${w.sizes.join(',')}${ring}${post}`;
}

/** Waits until a loader has printed its first line (or died). */
function waitFirstLine(file: string, pidVar: string): string {
  return `for i in $(seq 200); do [ -s "${file}" ] && break; kill -0 $${pidVar} 2>/dev/null || break; sleep 0.05; done`;
}

function runWorkload(w: Workload & { cgroup: string }): string {
  return `(echo $BASHPID > /sys/fs/cgroup/vht-${w.cgroup}/cgroup.procs; exec vhost-traffic ${driverArgs(w)}) > "$VT_OUT/${w.name}.json"`;
}

// Patched module: ftrace records every event as ground truth while the raw_tp loader (pinned)
// and, where the module has BTF, a stock-mode loader count the same events.
const PATCHED_SCRIPT = [
  'T=/sys/kernel/tracing',
  'ls /sys/kernel/btf > "$VT_OUT/btf.txt"',
  `${LOADER} --probe > "$VT_OUT/probe.json"`,
  'mkdir -p /sys/fs/cgroup/vht-a /sys/fs/cgroup/vht-b',
  'stat -c %i /sys/fs/cgroup/vht-a > "$VT_OUT/a.ino"; stat -c %i /sys/fs/cgroup/vht-b > "$VT_OUT/b.ino"',
  'echo 8192 > $T/buffer_size_kb; echo 1 > $T/events/vhost_net/enable',
  'echo 0 > $T/tracing_on; echo > $T/trace; echo 1 > $T/tracing_on',
  `${LOADER} --json -i 0.2 --pin-dir /sys/fs/bpf/vht > "$VT_OUT/raw1.jsonl" 2> "$VT_OUT/raw1.err" & RAW=$!`,
  `${waitFirstLine('$VT_OUT/raw1.jsonl', 'RAW')}`,
  'STOCK=',
  `if grep -qx vhost_net "$VT_OUT/btf.txt"; then ${LOADER} --json -i 0.2 --mode fentry > "$VT_OUT/stock.jsonl" 2> "$VT_OUT/stock.err" & STOCK=$!; else if ${LOADER} --json -d 0.1 --mode fentry 2> "$VT_OUT/stock.err"; then echo 0; else echo $?; fi > "$VT_OUT/stock.exit"; fi`,
  `if [ -n "$STOCK" ]; then ${waitFirstLine('$VT_OUT/stock.jsonl', 'STOCK')}; fi`,
  ...WORKLOADS.filter((w) => w.cgroup === 'a').map(runWorkload),
  `echo ${MARKER} > $T/trace_marker`,
  'kill -KILL $RAW; wait $RAW || true',
  ...WORKLOADS.filter((w) => w.cgroup === 'b').map(runWorkload),
  `${LOADER} --json -d 0.3 --pin-dir /sys/fs/bpf/vht > "$VT_OUT/raw2.jsonl" 2> "$VT_OUT/raw2.err"`,
  'if [ -n "$STOCK" ]; then kill -TERM $STOCK; wait $STOCK; fi',
  'echo 0 > $T/tracing_on; cat $T/trace > "$VT_OUT/trace.txt"',
  `${LOADER} --stop --pin-dir /sys/fs/bpf/vht 2> "$VT_OUT/stop.err"`,
  'test ! -e /sys/fs/bpf/vht && echo unpinned',
].join('\n');

// Unpatched module: no tracepoints, auto mode must pick stock mode.
const UNPATCHED_SCRIPT = [
  'test ! -e /sys/kernel/tracing/events/vhost_net && echo no-tracepoints',
  `${LOADER} --probe > "$VT_OUT/probe.json"`,
  'mkdir -p /sys/fs/cgroup/vht-a /sys/fs/cgroup/vht-b',
  'stat -c %i /sys/fs/cgroup/vht-a > "$VT_OUT/a.ino"; stat -c %i /sys/fs/cgroup/vht-b > "$VT_OUT/b.ino"',
  `${LOADER} --json -i 0.2 > "$VT_OUT/stock.jsonl" 2> "$VT_OUT/stock.err" & STOCK=$!`,
  `${waitFirstLine('$VT_OUT/stock.jsonl', 'STOCK')}`,
  ...WORKLOADS.map(runWorkload),
  'kill -TERM $STOCK; wait $STOCK',
].join('\n');

function slotOf(v: number): number {
  const u = v >>> 0;
  return u <= 1 ? 0 : 31 - Math.clz32(u);
}

interface Hist {
  count: number;
  sum: number;
  buckets: number[];
}

function histOf(values: number[]): Hist {
  const buckets: number[] = [];
  for (const v of values) {
    const s = slotOf(v);
    while (buckets.length <= s) buckets.push(0);
    buckets[s] = (buckets[s] ?? 0) + 1;
  }
  return { count: values.length, sum: values.reduce((a, b) => a + b, 0), buckets };
}

/** What vhost-hist should report for these events: one entry per direction that had any. */
function entriesOf(cgroupId: number, events: RunEvent[]): LoaderEntry[] {
  return (['rx', 'tx'] as const).flatMap((direction) => {
    const mine = events.filter((e) => e.direction === direction);
    if (mine.length === 0) return [];
    return [{ cgroupId, direction, packets: histOf(mine.map((e) => e.packets)), bytes: histOf(mine.map((e) => e.bytes)) }];
  });
}

function last(text: string): LoaderSnapshot {
  const lines = parseSnapshotLines(text);
  const l = lines[lines.length - 1];
  if (!l) throw new Error('loader printed no line');
  return l;
}

beforeAll(() => {
  // The guest runs the host's binaries over 9p: build them here.
  const r = spawnSync('flock', ['/tmp/vhosttrace-bpf-build.lock', 'make', '-s', '-C', `${ROOT}bpf`], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`make -C bpf failed:\n${r.stdout}${r.stderr}`);
}, 300_000);

describe.each(KERNELS)('vhost-hist on Debian %s with the patched vhost_net', (kernel) => {
  let guest: GuestResult;
  let ino: { a: number; b: number };
  let expected: LoaderEntry[];

  beforeAll(async () => {
    guest = await runGuest({ kernel, script: PATCHED_SCRIPT });
    await assertGuestOk(guest);
    ino = { a: Number(await guest.read('a.ino')), b: Number(await guest.read('b.ino')) };
    const text = await guest.read('trace.txt');
    const header = text.split('\n').filter((l) => l.startsWith('#')).join('\n');
    const at = text.indexOf(MARKER);
    expect(at).toBeGreaterThan(0);
    const whole = parseTrace(text);
    expect(whole.inBuffer).toBe(whole.written);
    const before = parseTrace(text.slice(0, at)).events;
    const after = parseTrace(`${header}\n${text.slice(at)}`).events;
    expected = [...entriesOf(ino.a, before), ...entriesOf(ino.b, after)].sort((x, y) => x.cgroupId - y.cgroupId || x.direction.localeCompare(y.direction));
  });

  it('counts every traced event, per cgroup and direction, exactly, across a SIGKILL of the loader', async () => {
    expect(parseProbeLine((await guest.read('probe.json')).trim())).toMatchObject({ ok: true, mode: 'raw_tp' });
    const first = last(await guest.read('raw1.jsonl'));
    expect(first.mode).toBe('raw_tp');
    expect(first.takeover).toBe(false);
    const snap = last(await guest.read('raw2.jsonl'));
    expect(snap.takeover).toBe(true);
    expect(snap.kernel).toMatch(kernel === '6.1' ? /^6\.1\./ : /^6\.12\./);
    expect(snap.histograms).toEqual(expected);
    expect(snap.dropped).toEqual({ keysRefused: 0, overflowEvents: 0 });
    expect(guest.stdout).toMatch(/^unpinned$/m);
  });

  it('adds up to what the traffic driver moved, and its runs are the ones batching implies', async () => {
    const snap = last(await guest.read('raw2.jsonl'));
    for (const w of WORKLOADS) {
      const report = JSON.parse(await guest.read(`${w.name}.json`)) as DriverReport;
      expect(report.frames).toBe(w.frames);
      const e = snap.histograms.find((h) => h.cgroupId === ino[w.cgroup] && h.direction === w.direction);
      expect(e?.packets.sum, w.name).toBe(w.frames);
      expect(e?.bytes.sum, w.name).toBe(report.bytes);
      // Busy runs have at least 60 + header bytes, so slots above 0 hold exactly them.
      const busy = histOf(expectedRuns(w, report.vnet_hdr_len).map((r) => r.bytes));
      expect(e?.bytes.buckets.slice(1), w.name).toEqual(busy.buckets.slice(1));
    }
  });

  // Which build has module BTF is a fact of the kernels (kernel/README.md): 6.1's headers ship
  // no vmlinux, so its out-of-tree module has none, and stock mode cannot find handle_rx.
  it(`stock mode (fentry/fexit) ${kernel === '6.1' ? 'is refused for want of the module\'s BTF, and says so' : 'counts the same events to the same numbers'}`, async () => {
    const btf = (await guest.read('btf.txt')).split('\n');
    expect(btf.includes('vhost_net')).toBe(kernel !== '6.1');
    if (kernel === '6.1') {
      expect(Number(await guest.read('stock.exit'))).toBe(LOADER_EXIT.noTracepoint);
      expect(await guest.read('stock.err')).toMatch(/stock mode is not possible: handle_rx not in \/sys\/kernel\/btf\/vhost_net \(.*no module BTF/);
      return;
    }
    const snap = last(await guest.read('stock.jsonl'));
    expect(snap.mode).toBe('fentry');
    expect(snap.histograms).toEqual(expected);
    expect(snap.counters.stockUnpaired).toBe(0);
  });
});

describe.each(KERNELS)('vhost-hist on Debian %s with its own vhost_net (stock mode)', (kernel) => {
  it('chooses fentry mode by itself and adds up to the traffic driver, run by run', async () => {
    const guest = await runGuest({ kernel, unpatched: true, script: UNPATCHED_SCRIPT });
    await assertGuestOk(guest);
    expect(guest.stdout).toMatch(/^no-tracepoints$/m);
    expect(parseProbeLine((await guest.read('probe.json')).trim())).toMatchObject({ ok: true, mode: 'fentry' });
    const ino = { a: Number(await guest.read('a.ino')), b: Number(await guest.read('b.ino')) };
    const snap = last(await guest.read('stock.jsonl'));
    expect(snap.mode).toBe('fentry');
    expect(snap.counters.stockUnpaired).toBe(0);
    expect(new Set(snap.histograms.map((h) => h.cgroupId))).toEqual(new Set([ino.a, ino.b]));
    for (const w of WORKLOADS) {
      const report = JSON.parse(await guest.read(`${w.name}.json`)) as DriverReport;
      const e = snap.histograms.find((h) => h.cgroupId === ino[w.cgroup] && h.direction === w.direction);
      const runs = expectedRuns(w, report.vnet_hdr_len);
      expect(e?.packets.sum, w.name).toBe(w.frames);
      expect(e?.bytes.sum, w.name).toBe(report.bytes);
      expect(e?.bytes.buckets.slice(1), w.name).toEqual(histOf(runs.map((r) => r.bytes)).buckets.slice(1));
      // Slot 0 of bytes holds the runs that found nothing to do.
      expect(e?.bytes.buckets[0] ?? 0, w.name).toBe((e?.bytes.count ?? 0) - runs.length);
    }
  });
});
