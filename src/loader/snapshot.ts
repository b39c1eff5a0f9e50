// Parser for the JSON lines that `vhost-hist --json` streams (bpf/vh-json.c:
// vh_print_json), and their writer for recordings. Pure: no I/O. The same contract is
// written as a JSON Schema in ./schema.json; this parser additionally checks what a schema
// cannot say: that the buckets add up to the count, that the sum fits the buckets' ranges,
// and that every (cgroupId, direction) appears once.
//
// On the wire an entry is an array (ENTRY_FIELDS), not an object: the agent parses a line
// of hundreds of entries every second, and JSON.parse takes twice as long, for a line 1.8
// times as long, when every entry and histogram is a keyed object. The parser hands out
// keyed objects (LoaderEntry), built in JS, where allocation is cheap (see Histogram).

/** Log2 slots the programs keep: values are u32, so 32 slots hold every value. */
export const LOADER_MAX_SLOTS = 32;
export const LOADER_SNAPSHOT_VERSION = 2;

/** An entry's fields on the wire, in order; `runs` is the count of both histograms. */
export const ENTRY_FIELDS = ['cgroupId', 'direction', 'runs', 'packets.sum', 'packets.buckets', 'bytes.sum', 'bytes.buckets'] as const;

export type LoaderMode = 'raw_tp' | 'tracepoint' | 'fentry' | 'test_run';
export type LoaderDirection = 'rx' | 'tx';

/** Cumulative histogram: buckets[0] counts 0..1, buckets[k] 2^k..2^(k+1)-1, trailing zeros trimmed. */
export interface LoaderHistogram {
  count: number;
  sum: number;
  buckets: number[];
}

export interface LoaderEntry {
  /** cgroup v2 id of the vhost worker; 0 = not attributed (overflow, or --no-cgroup). */
  cgroupId: number;
  direction: LoaderDirection;
  /** Packets per run. */
  packets: LoaderHistogram;
  /** Bytes per run. */
  bytes: LoaderHistogram;
}

export interface LoaderProgStat {
  name: string;
  runCount: number;
  runTimeNs: number;
}

export interface LoaderSnapshot {
  type: 'snapshot';
  version: typeof LOADER_SNAPSHOT_VERSION;
  /** Per process, from 0; a restarted loader starts again at 0. */
  seq: number;
  /** UTC, ISO 8601 with milliseconds. */
  time: string;
  mode: LoaderMode;
  /** uname -r of the node. */
  kernel: string;
  /** True when this loader took over pinned maps and links of a previous one. */
  takeover: boolean;
  intervalSeconds: number;
  maxCgroups: number;
  dropped: {
    /** Times a new cgroup found no free slot; its events went to cgroupId 0. */
    keysRefused: number;
    /** Events counted under cgroupId 0. */
    overflowEvents: number;
  };
  histograms: LoaderEntry[];
  counters: { slowPath: number; noStorage: number; stockUnpaired: number };
  /** Present with --stats: the kernel's run-time stats of each attached program. */
  progStats?: LoaderProgStat[];
}

/** A malformed line: says which line, where in it, and what was expected. */
export class LoaderParseError extends Error {
  constructor(
    readonly lineNumber: number | undefined,
    readonly path: string,
    readonly reason: string,
  ) {
    super(`${lineNumber === undefined ? '' : `line ${lineNumber}: `}${path}: ${reason}`);
    this.name = 'LoaderParseError';
  }
}

type Obj = Record<string, unknown>;

class Checker {
  constructor(private readonly lineNumber: number | undefined) {}

  fail(path: string, reason: string): never {
    throw new LoaderParseError(this.lineNumber, path, reason);
  }

  object(v: unknown, path: string, keys: readonly string[], optional: readonly string[] = []): Obj {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) this.fail(path, `expected an object, got ${describe(v)}`);
    const o = v as Obj;
    for (const k of keys) if (!(k in o)) this.fail(path, `missing property "${k}"`);
    for (const k of Object.keys(o)) {
      if (!keys.includes(k) && !optional.includes(k)) this.fail(path, `unknown property "${k}"`);
    }
    return o;
  }

  count(v: unknown, path: string): number {
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) {
      this.fail(path, `expected a non-negative integer, got ${describe(v)}`);
    }
    if (!Number.isSafeInteger(v)) this.fail(path, `${v} exceeds 2^53-1 and cannot be read exactly`);
    return v;
  }

  number(v: unknown, path: string): number {
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) this.fail(path, `expected a non-negative number, got ${describe(v)}`);
    return v;
  }

  string(v: unknown, path: string): string {
    if (typeof v !== 'string') this.fail(path, `expected a string, got ${describe(v)}`);
    return v;
  }

  boolean(v: unknown, path: string): boolean {
    if (typeof v !== 'boolean') this.fail(path, `expected true or false, got ${describe(v)}`);
    return v;
  }

  oneOf<T extends string>(v: unknown, path: string, allowed: readonly T[]): T {
    if (typeof v !== 'string' || !(allowed as readonly string[]).includes(v)) {
      this.fail(path, `expected one of ${allowed.map((a) => JSON.stringify(a)).join(', ')}, got ${describe(v)}`);
    }
    return v as T;
  }

  array(v: unknown, path: string): unknown[] {
    if (!Array.isArray(v)) this.fail(path, `expected an array, got ${describe(v)}`);
    return v;
  }

  /** A histogram from its parts: count (already checked), sum and buckets at their own paths. */
  histogram(count: number, sumValue: unknown, sumPath: string, bucketsValue: unknown, bucketsPath: string): LoaderHistogram {
    const sum = this.count(sumValue, sumPath);
    const raw = this.array(bucketsValue, bucketsPath);
    if (raw.length > LOADER_MAX_SLOTS) this.fail(bucketsPath, `has ${raw.length} slots, at most ${LOADER_MAX_SLOTS}`);
    const buckets = raw.map((b, i) => this.count(b, `${bucketsPath}[${i}]`));
    if (buckets.length > 0 && buckets[buckets.length - 1] === 0) this.fail(bucketsPath, 'trailing zeros must be trimmed');
    const total = buckets.reduce((a, b) => a + b, 0);
    if (total !== count) this.fail(bucketsPath, `buckets add up to ${total}, runs is ${count}`);
    // Each value in slot k lies in [lo(k), 2^(k+1)-1], so the exact sum has bounds.
    let lo = 0;
    let hi = 0;
    buckets.forEach((n, k) => {
      lo += n * (k === 0 ? 0 : 2 ** k);
      hi += n * (2 ** (k + 1) - 1);
    });
    if (sum < lo || sum > hi) this.fail(sumPath, `${sum} cannot come from these buckets (between ${lo} and ${hi})`);
    return { count, sum, buckets };
  }
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v);
  if (typeof v === 'object') return 'an object';
  return String(v);
}

const TOP_KEYS = [
  'type', 'version', 'seq', 'time', 'mode', 'kernel', 'takeover', 'intervalSeconds',
  'maxCgroups', 'dropped', 'histograms', 'counters',
] as const;

/** Parses one line of `vhost-hist --json`; throws LoaderParseError when it is malformed. */
export function parseSnapshotLine(line: string, lineNumber?: number): LoaderSnapshot {
  const c = new Checker(lineNumber);
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch (err) {
    c.fail('$', `not JSON (${(err as Error).message})`);
  }
  const o = c.object(value, '$', TOP_KEYS, ['progStats']);
  if (o.type !== 'snapshot') c.fail('$.type', `expected "snapshot", got ${describe(o.type)}`);
  if (o.version !== LOADER_SNAPSHOT_VERSION) {
    c.fail('$.version', `this parser reads version ${LOADER_SNAPSHOT_VERSION}, got ${describe(o.version)}`);
  }
  const time = c.string(o.time, '$.time');
  if (!/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/.test(time)) c.fail('$.time', `expected UTC ISO 8601 with milliseconds, got ${describe(time)}`);
  const dropped = c.object(o.dropped, '$.dropped', ['keysRefused', 'overflowEvents']);
  const counters = c.object(o.counters, '$.counters', ['slowPath', 'noStorage', 'stockUnpaired']);
  const maxCgroups = c.count(o.maxCgroups, '$.maxCgroups');

  // cgroup id -> directions seen (bit 1 rx, bit 2 tx), for the duplicate check.
  const seen = new Map<number, number>();
  const raw = c.array(o.histograms, '$.histograms');
  const histograms = new Array<LoaderEntry>(raw.length);
  for (let i = 0; i < raw.length; i++) {
    // The loader writes hundreds of entries a second: a well-formed one is checked by a
    // predicate that builds no strings; only a malformed one takes the Checker, which says why.
    const entry = wellFormedEntry(raw[i]) ?? checkEntry(c, raw[i], `$.histograms[${i}]`);
    const bit = entry.direction === 'rx' ? 1 : 2;
    const dirs = seen.get(entry.cgroupId) ?? 0;
    if (dirs & bit) c.fail(`$.histograms[${i}]`, `cgroup ${entry.cgroupId} ${entry.direction} appears twice`);
    seen.set(entry.cgroupId, dirs | bit);
    histograms[i] = entry;
  }

  const snapshot: LoaderSnapshot = {
    type: 'snapshot',
    version: LOADER_SNAPSHOT_VERSION,
    seq: c.count(o.seq, '$.seq'),
    time,
    mode: c.oneOf(o.mode, '$.mode', ['raw_tp', 'tracepoint', 'fentry', 'test_run'] as const),
    kernel: c.string(o.kernel, '$.kernel'),
    takeover: c.boolean(o.takeover, '$.takeover'),
    intervalSeconds: c.number(o.intervalSeconds, '$.intervalSeconds'),
    maxCgroups,
    dropped: {
      keysRefused: c.count(dropped.keysRefused, '$.dropped.keysRefused'),
      overflowEvents: c.count(dropped.overflowEvents, '$.dropped.overflowEvents'),
    },
    histograms,
    counters: {
      slowPath: c.count(counters.slowPath, '$.counters.slowPath'),
      noStorage: c.count(counters.noStorage, '$.counters.noStorage'),
      stockUnpaired: c.count(counters.stockUnpaired, '$.counters.stockUnpaired'),
    },
  };
  if (o.progStats !== undefined) {
    snapshot.progStats = c.array(o.progStats, '$.progStats').map((p, i) => {
      const path = `$.progStats[${i}]`;
      const po = c.object(p, path, ['name', 'runCount', 'runTimeNs']);
      return {
        name: c.string(po.name, `${path}.name`),
        runCount: c.count(po.runCount, `${path}.runCount`),
        runTimeNs: c.count(po.runTimeNs, `${path}.runTimeNs`),
      };
    });
  }
  return snapshot;
}

/** The Checker's verdict on one entry: its value, or a LoaderParseError that says where. */
function checkEntry(c: Checker, e: unknown, path: string): LoaderEntry {
  const a = c.array(e, path);
  if (a.length !== ENTRY_FIELDS.length) c.fail(path, `expected ${ENTRY_FIELDS.length} fields [${ENTRY_FIELDS.join(', ')}], got ${a.length}`);
  // "$.histograms[3][4] (packets.buckets)": where in the line, and which field that is.
  const at = (i: number) => `${path}[${i}] (${ENTRY_FIELDS[i]})`;
  const runs = c.count(a[2], at(2));
  return {
    cgroupId: c.count(a[0], at(0)),
    direction: c.oneOf(a[1], at(1), ['rx', 'tx'] as const),
    packets: c.histogram(runs, a[3], at(3), a[4], at(4)),
    bytes: c.histogram(runs, a[5], at(5), a[6], at(6)),
  };
}

// The parser's objects are built with `new`, not as literals: V8 counts how many objects of
// each literal survive a scavenge, and once a burst of them had (a scavenge during a parse)
// it allocated every later one in the old generation, which then grew by 0.3 MB a second
// until a full collection (+5-7 MiB RSS at 256 VMs). Built with `new`, the old generation
// stays flat (--trace-gc, docs/benchmarks.md).
class Histogram implements LoaderHistogram {
  constructor(
    public count: number,
    public sum: number,
    public buckets: number[],
  ) {}
}

class Entry implements LoaderEntry {
  constructor(
    public cgroupId: number,
    public direction: LoaderDirection,
    public packets: LoaderHistogram,
    public bytes: LoaderHistogram,
  ) {}
}

const isCount = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;
const POW2 = Array.from({ length: LOADER_MAX_SLOTS + 1 }, (_, k) => 2 ** k);

/**
 * The same rules as Checker.histogram, as a predicate that builds no strings: the histogram,
 * or undefined when the Checker would refuse it. Sums are formed in the same order, so
 * rounding cannot differ.
 */
function wellFormedHistogram(count: number, sum: unknown, buckets: unknown): LoaderHistogram | undefined {
  if (!isCount(sum) || !Array.isArray(buckets) || buckets.length > LOADER_MAX_SLOTS) return undefined;
  let total = 0;
  let lo = 0;
  let hi = 0;
  for (let k = 0; k < buckets.length; k++) {
    const n: unknown = buckets[k];
    if (!isCount(n)) return undefined;
    total += n;
    lo += n * (k === 0 ? 0 : POW2[k]!);
    hi += n * (POW2[k + 1]! - 1);
  }
  if (buckets.length > 0 && buckets[buckets.length - 1] === 0) return undefined;
  if (total !== count || sum < lo || sum > hi) return undefined;
  return new Histogram(count, sum, buckets as number[]);
}

/** Checker-equivalent predicate for one entry (the duplicate check is the caller's). */
function wellFormedEntry(e: unknown): LoaderEntry | undefined {
  if (!Array.isArray(e) || e.length !== ENTRY_FIELDS.length) return undefined;
  const cgroupId: unknown = e[0];
  const direction: unknown = e[1];
  const runs: unknown = e[2];
  if (!isCount(cgroupId) || (direction !== 'rx' && direction !== 'tx') || !isCount(runs)) return undefined;
  const packets = wellFormedHistogram(runs, e[3], e[4]);
  const bytes = packets && wellFormedHistogram(runs, e[5], e[6]);
  return bytes && new Entry(cgroupId, direction, packets, bytes);
}

/**
 * A snapshot as the loader prints it: one line, without its newline. For recordings that
 * stand in for the loader (src/agent/replay.ts, tests).
 */
export function formatSnapshotLine(s: LoaderSnapshot): string {
  const histograms = s.histograms.map((h) => {
    if (h.packets.count !== h.bytes.count) {
      throw new Error(`cgroup ${h.cgroupId} ${h.direction}: packets.count ${h.packets.count} differs from bytes.count ${h.bytes.count}; both count the same runs`);
    }
    return [h.cgroupId, h.direction, h.packets.count, h.packets.sum, h.packets.buckets, h.bytes.sum, h.bytes.buckets];
  });
  return JSON.stringify({ ...s, version: LOADER_SNAPSHOT_VERSION, histograms });
}

/**
 * Splits a byte stream into lines and parses each complete one. Feed it chunks of
 * the loader's stdout; a final line without a newline is parsed by end().
 */
export class SnapshotStream {
  private pending = '';
  private lineNumber = 0;

  push(chunk: string): LoaderSnapshot[] {
    this.pending += chunk;
    const out: LoaderSnapshot[] = [];
    let nl: number;
    while ((nl = this.pending.indexOf('\n')) >= 0) {
      const line = this.pending.slice(0, nl);
      this.pending = this.pending.slice(nl + 1);
      this.lineNumber++;
      if (line.trim() !== '') out.push(parseSnapshotLine(line, this.lineNumber));
    }
    return out;
  }

  end(): LoaderSnapshot[] {
    const rest = this.pending;
    this.pending = '';
    if (rest.trim() === '') return [];
    this.lineNumber++;
    return [parseSnapshotLine(rest, this.lineNumber)];
  }
}

/** Parses a whole captured output, one snapshot per non-empty line. */
export function parseSnapshotLines(text: string): LoaderSnapshot[] {
  const s = new SnapshotStream();
  return [...s.push(text), ...s.end()];
}
