// A trace's counts are the loader's cumulative counts minus those at the trace's start. The
// ledger keeps, per (cgroup, direction), the base (cumulative at the start), the last
// cumulative seen, and a carry for counts from earlier generations of the BPF maps (a node
// reboot or `vhost-hist --stop` recreates them from zero). Pure; the agent persists it as JSON.
import { empty, merge, subtract } from '../api/histogram.js';
import type { RawHistogram } from '../api/v1alpha1.js';
import type { LoaderSnapshot } from '../loader/snapshot.js';

export interface Counts {
  packets: RawHistogram;
  bytes: RawHistogram;
}

interface Entry {
  base: Counts;
  last: Counts;
  carry: Counts;
}

export interface Ledger {
  traceUid: string;
  /** The maps' generation the last snapshot came from (see advance). */
  generation: number;
  /** "cgroupId/direction" -> counts. */
  entries: Record<string, Entry>;
}

export const entryKey = (cgroupId: number, direction: 'rx' | 'tx') => `${cgroupId}/${direction}`;
export function parseKey(key: string): { cgroupId: number; direction: 'rx' | 'tx' } {
  const [id, dir] = key.split('/');
  return { cgroupId: Number(id), direction: dir as 'rx' | 'tx' };
}

const zero = (): Counts => ({ packets: empty(), bytes: empty() });
const isZero = (c: Counts) => c.packets.count === 0 && c.bytes.count === 0;
// Reports run these for every cgroup every interval; most bases and carries are zero, and
// skipping them keeps the agent from allocating (and collecting) arrays it does not need.
const add = (a: Counts, b: Counts): Counts =>
  isZero(a) ? b : isZero(b) ? a : { packets: merge(a.packets, b.packets), bytes: merge(a.bytes, b.bytes) };
const minus = (a: Counts, b: Counts): Counts =>
  isZero(b) ? a : { packets: subtract(a.packets, b.packets), bytes: subtract(a.bytes, b.bytes) };

function countsOf(s: LoaderSnapshot): Map<string, Counts> {
  return new Map(s.histograms.map((h) => [entryKey(h.cgroupId, h.direction), { packets: h.packets, bytes: h.bytes }]));
}

/** A ledger for a trace starting now: everything counted so far is its base. */
export function openLedger(traceUid: string, generation: number, s: LoaderSnapshot): Ledger {
  const entries: Record<string, Entry> = {};
  for (const [k, c] of countsOf(s)) entries[k] = { base: c, last: c, carry: zero() };
  return { traceUid, generation, entries };
}

/**
 * Takes a newer snapshot. `generation` changes when the loader started on fresh maps instead
 * of taking pinned ones over; then every entry's counts so far are carried and its base is 0.
 * Returns the new ledger; the input is not changed.
 */
export function advance(l: Ledger, generation: number, s: LoaderSnapshot): Ledger {
  const fresh = generation !== l.generation;
  const entries: Record<string, Entry> = {};
  for (const [k, e] of Object.entries(l.entries)) {
    entries[k] = fresh ? { base: zero(), last: zero(), carry: add(e.carry, minus(e.last, e.base)) } : e;
  }
  for (const [k, cum] of countsOf(s)) {
    // A cgroup first seen after the trace started: all of its counts are the trace's.
    const e = entries[k] ?? { base: zero(), last: zero(), carry: zero() };
    entries[k] = { ...e, last: cum };
  }
  return { traceUid: l.traceUid, generation, entries };
}

/** Counts since the trace started, per entry key. Throws if a counter went backwards. */
export function sinceStart(l: Ledger): Map<string, Counts> {
  const out = new Map<string, Counts>();
  for (const [k, e] of Object.entries(l.entries)) out.set(k, add(e.carry, minus(e.last, e.base)));
  return out;
}

export { add as addCounts, zero as zeroCounts };
