// A trace's counts are the loader's cumulative counts minus those at the trace's start. The
// ledger keeps, per (cgroup, direction), the base (cumulative at the start), the last
// cumulative seen, and a carry for counts from earlier generations of the BPF maps (a node
// reboot or `vhost-hist --stop` recreates them from zero). Pure; the agent persists it as JSON
// (ledgerToJSON, ledgerFromJSON).
import { empty, merge, subtract } from '../api/histogram.js';
import type { Direction, RawHistogram } from '../api/v1alpha1.js';
import type { LoaderSnapshot } from '../loader/snapshot.js';

export interface Counts {
  packets: RawHistogram;
  bytes: RawHistogram;
}

/** What the ledger keeps apart: one histogram pair of the loader. */
export interface EntryId {
  cgroupId: number;
  direction: Direction;
}

interface Entry extends EntryId {
  base: Counts;
  last: Counts;
  carry: Counts;
}

/** One entry's counts since the trace started. */
export interface SinceStart extends EntryId {
  counts: Counts;
}

export interface Ledger {
  traceUid: string;
  /** The maps' generation the last snapshot came from (see advance). */
  generation: number;
  /** By keyOf(cgroupId, direction), for lookups and the state file; the entry holds its id. */
  entries: Map<string, Entry>;
}

// "cgroupId/direction": the entries' map key and the state file's. Read back only by ledgerFromJSON.
const keyOf = (cgroupId: number, direction: Direction) => `${cgroupId}/${direction}`;

type PersistedEntry = Pick<Entry, 'base' | 'last' | 'carry'>;

/** The persisted form (state/traces/<uid>.json): entries as an object keyed by keyOf. */
export function ledgerToJSON(l: Ledger): string {
  const entries: Record<string, PersistedEntry> = {};
  for (const [k, e] of l.entries) entries[k] = { base: e.base, last: e.last, carry: e.carry };
  return JSON.stringify({ traceUid: l.traceUid, generation: l.generation, entries });
}

export function ledgerFromJSON(text: string): Ledger {
  const o = JSON.parse(text) as { traceUid: string; generation: number; entries: Record<string, PersistedEntry> };
  const entries = new Map<string, Entry>();
  for (const [k, e] of Object.entries(o.entries)) {
    const slash = k.indexOf('/');
    const id: EntryId = { cgroupId: Number(k.slice(0, slash)), direction: k.slice(slash + 1) as Direction };
    entries.set(k, { ...id, base: e.base, last: e.last, carry: e.carry });
  }
  return { traceUid: o.traceUid, generation: o.generation, entries };
}

const zero = (): Counts => ({ packets: empty(), bytes: empty() });
const isZero = (c: Counts) => c.packets.count === 0 && c.bytes.count === 0;

// Most bases and carries are zero: skipping them keeps the agent from allocating (and
// collecting) arrays it does not need.
const add = (a: Counts, b: Counts): Counts =>
  isZero(a) ? b : isZero(b) ? a : { packets: merge(a.packets, b.packets), bytes: merge(a.bytes, b.bytes) };
const minus = (a: Counts, b: Counts): Counts =>
  isZero(b) ? a : { packets: subtract(a.packets, b.packets), bytes: subtract(a.bytes, b.bytes) };

/** A ledger for a trace starting now: everything counted so far is its base. */
export function openLedger(traceUid: string, generation: number, s: LoaderSnapshot): Ledger {
  const entries = new Map<string, Entry>();
  for (const h of s.histograms) {
    entries.set(keyOf(h.cgroupId, h.direction), { cgroupId: h.cgroupId, direction: h.direction, base: copyOf(h), last: copyOf(h), carry: zero() });
  }
  return { traceUid, generation, entries };
}

/** A counter is below the trace's base within one generation: the maps were replaced. */
export class CountsWentBackwards extends Error {
  constructor(key: string) {
    super(`${key}: the loader's counts are below those at the trace's start: the BPF maps were replaced`);
    this.name = 'CountsWentBackwards';
  }
}

const copyOf = (c: Counts): Counts => ({ packets: { ...c.packets, buckets: [...c.packets.buckets] }, bytes: { ...c.bytes, buckets: [...c.bytes.buckets] } });

function overwrite(to: RawHistogram, from: RawHistogram): void {
  to.count = from.count;
  to.sum = from.sum;
  const b = to.buckets;
  b.length = from.buckets.length;
  for (let i = 0; i < b.length; i++) b[i] = from.buckets[i]!;
}

/** a holds at least b in every slot (b is contained in a). */
function covers(a: RawHistogram, b: RawHistogram): boolean {
  if (a.count < b.count || a.sum < b.sum || a.buckets.length < b.buckets.length) return false;
  for (let i = 0; i < b.buckets.length; i++) if (a.buckets[i]! < b.buckets[i]!) return false;
  return true;
}

/**
 * Takes a newer snapshot, in place: the agent does this for every trace every interval. The
 * snapshot's numbers are copied into the entries' own arrays rather than referenced, so that
 * the snapshot dies young: referenced for a second, its objects were promoted to the GC's old
 * generation every report, which grew until a full collection. `generation` changes when
 * the loader started on fresh maps instead of taking pinned ones over; then every entry's
 * counts so far are carried and its base is 0. Throws CountsWentBackwards, changing nothing,
 * when a count within the generation is below its base.
 */
export function advance(l: Ledger, generation: number, s: LoaderSnapshot): void {
  const fresh = generation !== l.generation;
  const found = s.histograms.map((h) => l.entries.get(keyOf(h.cgroupId, h.direction)));
  if (!fresh) {
    found.forEach((e, i) => {
      const h = s.histograms[i]!;
      if (e && !isZero(e.base) && !(covers(h.packets, e.base.packets) && covers(h.bytes, e.base.bytes))) {
        throw new CountsWentBackwards(keyOf(h.cgroupId, h.direction));
      }
    });
  } else {
    const carries = [...l.entries.values()].map((e) => add(e.carry, minus(e.last, e.base)));
    let i = 0;
    for (const e of l.entries.values()) {
      e.carry = carries[i++]!;
      e.base = zero();
      e.last = zero();
    }
    l.generation = generation;
  }
  s.histograms.forEach((h, i) => {
    const e = found[i];
    if (e) {
      overwrite(e.last.packets, h.packets);
      overwrite(e.last.bytes, h.bytes);
    }
    // A cgroup first seen after the trace started: all of its counts are the trace's.
    else l.entries.set(keyOf(h.cgroupId, h.direction), { cgroupId: h.cgroupId, direction: h.direction, base: zero(), last: copyOf(h), carry: zero() });
  });
}

/**
 * Counts since the trace started, one per entry. Where base and carry are zero the counts are
 * the entry's own `last`, which the next advance overwrites: read them before that.
 */
export function sinceStart(l: Ledger): SinceStart[] {
  const out: SinceStart[] = [];
  for (const e of l.entries.values()) out.push({ cgroupId: e.cgroupId, direction: e.direction, counts: add(e.carry, minus(e.last, e.base)) });
  return out;
}

export { add as addCounts, zero as zeroCounts };
