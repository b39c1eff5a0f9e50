// What the trace buffer should hold for a workload the traffic driver moved, and what it does
// hold. Pure: no files, no processes.

import { fromValues } from '../../src/api/histogram.js';

/** vhost-net ends a handler run once it has moved this many packets or bytes (drivers/vhost/net.c). */
export const VHOST_NET_PKT_WEIGHT = 256;
export const VHOST_NET_WEIGHT = 0x80000;

export type Direction = 'rx' | 'tx';

/** The JSON object kernel/driver/vhost-traffic prints. */
export interface DriverReport {
  direction: Direction;
  frames: number;
  bytes: number;
  frame_bytes: number;
  vnet_hdr_len: number;
  batch: number;
  post: number;
  ring: number;
  sizes: number[];
  batches: { frames: number; bytes: number }[];
  tap: string;
  features: string;
  tap_seen?: number;
  tap_socket_drops?: number;
  foreign_frames: number;
  /** CLOCK_MONOTONIC ns the batches took (no setup, no wait for stragglers). */
  move_ns: number;
  /** The driver's voluntary and involuntary context switches while it moved (getrusage). */
  blocked: number;
  preempted: number;
  elapsed_ms: number;
}

export interface Workload {
  name: string;
  direction: Direction;
  frames: number;
  batch: number;
  sizes: number[];
  ring?: number;
  /** RX only: post the buffers for a batch this many at a time (default: the whole batch). */
  post?: number;
}

export interface RunEvent {
  direction: Direction;
  packets: number;
  bytes: number;
}

/** Bytes vhost counts for frame number `seq`: the driver cycles through the sizes, plus the header. */
export function bufferBytes(w: Workload, seq: number, vnetHdrLen: number): number {
  const size = w.sizes[seq % w.sizes.length];
  if (size === undefined) throw new Error(`workload ${w.name} has no sizes`);
  return size + vnetHdrLen;
}

/**
 * The runs with packets in them that the batching implies: each lot of buffers is published at
 * once (a whole batch, or `post` RX buffers for frames already waiting), so vhost moves it in one
 * run, except where the packet or byte weight ends a run early.
 */
export function expectedRuns(w: Workload, vnetHdrLen: number): RunEvent[] {
  const runs: RunEvent[] = [];
  const lot = Math.min(w.post ?? w.batch, w.batch);
  for (let batch = 0; batch < w.frames; batch += w.batch) {
    const batchEnd = Math.min(batch + w.batch, w.frames);
    for (let first = batch; first < batchEnd; first += lot) {
      runs.push(...splitByWeight(w, first, Math.min(first + lot, batchEnd), vnetHdrLen));
    }
  }
  return runs;
}

/** The runs vhost makes of frames [first, end) when all of them are there to move at once. */
function splitByWeight(w: Workload, first: number, end: number, vnetHdrLen: number): RunEvent[] {
  const runs: RunEvent[] = [];
  let packets = 0;
  let bytes = 0;
  for (let seq = first; seq < end; seq++) {
    packets++;
    bytes += bufferBytes(w, seq, vnetHdrLen);
    if (packets >= VHOST_NET_PKT_WEIGHT || bytes >= VHOST_NET_WEIGHT) {
      runs.push({ direction: w.direction, packets, bytes });
      packets = 0;
      bytes = 0;
    }
  }
  if (packets > 0) runs.push({ direction: w.direction, packets, bytes });
  return runs;
}

/** The batches the driver should report for the workload. */
export function expectedBatches(w: Workload, vnetHdrLen: number): { frames: number; bytes: number }[] {
  const batches: { frames: number; bytes: number }[] = [];
  for (let first = 0; first < w.frames; first += w.batch) {
    const last = Math.min(first + w.batch, w.frames);
    let bytes = 0;
    for (let seq = first; seq < last; seq++) bytes += bufferBytes(w, seq, vnetHdrLen);
    batches.push({ frames: last - first, bytes });
  }
  return batches;
}

export interface ParsedTrace {
  events: RunEvent[];
  /** From the "entries-in-buffer/entries-written: A/B" header; A < B means events were lost. */
  inBuffer: number;
  written: number;
}

const EVENT = /\bvhost_net_(rx|tx)_end: (recv|sent)_pkts=(-?\d+) total_len=(-?\d+)$/;
const ENTRIES = /entries-in-buffer\/entries-written: (\d+)\/(\d+)/;

/** Parses the text of tracefs's `trace` file (one line per event, default output options). */
export function parseTrace(text: string): ParsedTrace {
  const events: RunEvent[] = [];
  let inBuffer = -1;
  let written = -1;
  for (const line of text.split('\n')) {
    const entries = ENTRIES.exec(line);
    if (entries) {
      inBuffer = Number(entries[1]);
      written = Number(entries[2]);
      continue;
    }
    const m = EVENT.exec(line.trimEnd());
    if (!m) continue;
    const direction = m[1] as Direction;
    if ((direction === 'rx') !== (m[2] === 'recv')) throw new Error(`mixed-up event line: ${line}`);
    events.push({ direction, packets: Number(m[3]), bytes: Number(m[4]) });
  }
  if (inBuffer < 0) throw new Error('no entries-in-buffer header in the trace');
  return { events, inBuffer, written };
}

export interface Totals {
  runs: number;
  emptyRuns: number;
  packets: number;
  bytes: number;
}

export function totals(events: RunEvent[], direction: Direction): Totals {
  const mine = events.filter((e) => e.direction === direction);
  return {
    runs: mine.length,
    emptyRuns: mine.filter((e) => e.packets === 0).length,
    packets: mine.reduce((s, e) => s + e.packets, 0),
    bytes: mine.reduce((s, e) => s + e.bytes, 0),
  };
}

/** The runs that moved something, in trace order: runs that found nothing to do are left out. */
export function busyRuns(events: RunEvent[], direction: Direction): RunEvent[] {
  return events.filter((e) => e.direction === direction && e.packets > 0);
}

/**
 * Every way the trace can disagree with the driver's ground truth, as sentences; empty when
 * they agree exactly.
 */
export function compare(w: Workload, report: DriverReport, trace: ParsedTrace): string[] {
  const problems: string[] = [];
  const hdr = report.vnet_hdr_len;
  const other: Direction = w.direction === 'rx' ? 'tx' : 'rx';
  const seen = totals(trace.events, w.direction);
  const wantRuns = expectedRuns(w, hdr);

  if (trace.inBuffer !== trace.written) {
    problems.push(`trace buffer lost events: ${trace.inBuffer} of ${trace.written} kept`);
  }
  if (report.frames !== w.frames) problems.push(`driver moved ${report.frames} frames, asked for ${w.frames}`);
  if (JSON.stringify(report.batches) !== JSON.stringify(expectedBatches(w, hdr))) {
    problems.push(`driver batches ${JSON.stringify(report.batches)} are not the workload's`);
  }
  if (report.foreign_frames !== 0) problems.push(`${report.foreign_frames} foreign frames on the tap`);
  if (w.direction === 'tx' && report.tap_seen !== report.frames) {
    problems.push(`tap saw ${String(report.tap_seen)} of ${report.frames} transmitted frames`);
  }
  if (seen.packets !== report.frames) {
    problems.push(`${w.direction} events count ${seen.packets} packets, driver moved ${report.frames}`);
  }
  if (seen.bytes !== report.bytes) {
    problems.push(`${w.direction} events count ${seen.bytes} bytes, driver moved ${report.bytes}`);
  }
  const got = busyRuns(trace.events, w.direction);
  if (JSON.stringify(got) !== JSON.stringify(wantRuns)) {
    problems.push(
      `${w.direction} runs ${JSON.stringify(got.map((r) => [r.packets, r.bytes]))}, ` +
        `batching implies ${JSON.stringify(wantRuns.map((r) => [r.packets, r.bytes]))}`,
    );
  }
  const otherSide = totals(trace.events, other);
  if (otherSide.packets !== 0 || otherSide.bytes !== 0) {
    problems.push(`${other} events count ${otherSide.packets} packets during a ${w.direction} workload`);
  }
  return problems;
}

/** vhost-traffic's command line for a workload. */
export function driverArgs(w: Workload): string {
  const ring = w.ring ? ` --ring ${w.ring}` : '';
  const post = w.post ? ` --post ${w.post}` : '';
  return `--${w.direction} --frames ${w.frames} --batch ${w.batch} --sizes ${w.sizes.join(',')}${ring}${post}`;
}

export interface RunHistograms {
  packets: ReturnType<typeof fromValues>;
  bytes: ReturnType<typeof fromValues>;
}

/** Histograms of packets and bytes per run, by direction, of the given runs. */
export function histogramsOf(runs: RunEvent[]): Partial<Record<Direction, RunHistograms>> {
  const out: Partial<Record<Direction, RunHistograms>> = {};
  for (const d of ['rx', 'tx'] as const) {
    const mine = runs.filter((r) => r.direction === d);
    if (mine.length) out[d] = { packets: fromValues(mine.map((r) => r.packets)), bytes: fromValues(mine.map((r) => r.bytes)) };
  }
  return out;
}

/**
 * The driver's ground truth: the runs batching implies for each workload, in order, plus the
 * runs that moved nothing (`emptyRuns` per direction, which only the trace buffer can count).
 */
export function driverTruth(workloads: Workload[], reports: DriverReport[], emptyRuns: Record<Direction, number>): RunEvent[] {
  const runs = workloads.flatMap((w, i) => expectedRuns(w, reports[i]!.vnet_hdr_len));
  for (const d of ['rx', 'tx'] as const) for (let i = 0; i < emptyRuns[d]; i++) runs.push({ direction: d, packets: 0, bytes: 0 });
  return runs;
}

/**
 * The stock module has no vhost_net events: the witness there is kprobes on handle_rx and
 * handle_tx and on vhost_disable_notify (KPROBE_ON). A run, as the patch's events count it, is
 * a call of a handler that got past its early exits (no backend, metadata prefetch failed) to
 * vhost_disable_notify, so runs = the calls followed by at least one vhost_disable_notify on the
 * same thread before its next call (kprobeHits); the runs that moved nothing = runs - the busy
 * runs the driver's batching implies. Counting every call instead made a call without a backend
 * (a poll wake-up as a device is torn down) an extra empty run now and then.
 */
export const KPROBE_ON = (T: string) =>
  [
    'p:vtwitness/rx_call vhost_net:handle_rx',
    'p:vtwitness/tx_call vhost_net:handle_tx',
    'p:vtwitness/armed vhost:vhost_disable_notify',
  ].map((p) => `echo '${p}' >> ${T}/kprobe_events`).join(' && ') + ` && echo 1 > ${T}/events/vtwitness/enable`;
export const KPROBE_OFF = (T: string) =>
  `echo 0 > ${T}/events/vtwitness/enable; ${['rx_call', 'tx_call', 'armed'].map((e) => `echo '-:vtwitness/${e}' >> ${T}/kprobe_events`).join('; ')}`;

/** The runs KPROBE_ON's probes show in trace text, by direction: calls that reached vhost_disable_notify. */
export function kprobeHits(text: string): Record<Direction, number> {
  const hits = { rx: 0, tx: 0 };
  /** Each thread's open call: its direction, and whether it reached vhost_disable_notify. */
  const open = new Map<string, { dir: Direction; armed: boolean }>();
  const close = (pid: string) => {
    const o = open.get(pid);
    if (o?.armed) hits[o.dir]++;
    open.delete(pid);
  };
  // "<comm>-<pid> [cpu] flags time: <event>: (<symbol>+0x0/..." (a comm may hold "-").
  for (const m of text.matchAll(/^\s*.+-(\d+)\s+\[\d+\].*?: (rx_call|tx_call|armed): \((handle_rx|handle_tx|vhost_disable_notify)\+/gm)) {
    const [, pid, event, symbol] = m as unknown as [string, string, string, string];
    if (event === 'armed') {
      if (symbol !== 'vhost_disable_notify') throw new Error(`mixed-up kprobe line: ${m[0]}`);
      const o = open.get(pid);
      if (o) o.armed = true;
      continue;
    }
    const dir = event.slice(0, 2) as Direction;
    if (symbol !== `handle_${dir}`) throw new Error(`mixed-up kprobe line: ${m[0]}`);
    close(pid);
    open.set(pid, { dir, armed: false });
  }
  for (const pid of [...open.keys()]) close(pid);
  return hits;
}
