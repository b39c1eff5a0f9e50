import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  ENTRY_FIELDS,
  LOADER_SNAPSHOT_VERSION,
  LoaderParseError,
  formatSnapshotLine,
  SnapshotStream,
  parseSnapshotLine,
  parseSnapshotLines,
  type LoaderSnapshot,
} from '../../src/loader/snapshot.js';

// A line as bpf/.output/vhost-hist --json --stats prints it (captured on the host; its
// histograms are what `printf 'rx 3 1500 15\ntx 1 60 2\n' | vhost-hist-testrun` prints).
const LINE =
  '{"type":"snapshot","version":2,"seq":3,"time":"2026-11-24T22:14:24.111Z","mode":"raw_tp",' +
  '"kernel":"6.18.44-fc-v782","takeover":true,"intervalSeconds":1,"maxCgroups":128,' +
  '"dropped":{"keysRefused":0,"overflowEvents":0},"histograms":[' +
  '[1,"rx",15,45,[0,15],22500,[0,0,0,0,0,0,0,0,0,0,15]],' +
  '[1,"tx",2,2,[2],120,[0,0,0,0,0,2]]],' +
  '"counters":{"slowPath":2,"noStorage":0,"stockUnpaired":0},' +
  '"progStats":[{"name":"vh_rx_raw","runCount":15,"runTimeNs":1200}]}';

/** The line with one change applied to its parsed object. */
function mutate(change: (o: any) => void): string {
  const o = JSON.parse(LINE);
  change(o);
  return JSON.stringify(o);
}

function errorOf(line: string, lineNumber?: number): LoaderParseError {
  try {
    parseSnapshotLine(line, lineNumber);
  } catch (err) {
    if (err instanceof LoaderParseError) return err;
    throw err;
  }
  throw new Error('parsed without error');
}

describe('parseSnapshotLine', () => {
  it('reads a well-formed line into typed values', () => {
    const s: LoaderSnapshot = parseSnapshotLine(LINE);
    expect(s.mode).toBe('raw_tp');
    expect(s.takeover).toBe(true);
    expect(s.histograms).toHaveLength(2);
    expect(s.histograms[0]).toEqual({
      cgroupId: 1,
      direction: 'rx',
      packets: { count: 15, sum: 45, buckets: [0, 15] },
      bytes: { count: 15, sum: 22500, buckets: [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 15] },
    });
    expect(s.progStats).toEqual([{ name: 'vh_rx_raw', runCount: 15, runTimeNs: 1200 }]);
  });

  it('takes the same cgroup in both directions, and many cgroups, as distinct entries', () => {
    const line = mutate((o) => {
      const [rx, tx] = o.histograms;
      o.histograms = Array.from({ length: 300 }, (_, i) => [[i, ...rx.slice(1)], [i, ...tx.slice(1)]]).flat();
    });
    const s = parseSnapshotLine(line);
    expect(s.histograms).toHaveLength(600);
    expect(s.histograms[599]).toEqual({ cgroupId: 299, direction: 'tx', packets: { count: 2, sum: 2, buckets: [2] }, bytes: { count: 2, sum: 120, buckets: [0, 0, 0, 0, 0, 2] } });
  });

  it('accepts a line without progStats (stats off)', () => {
    expect(parseSnapshotLine(mutate((o) => delete o.progStats)).progStats).toBeUndefined();
  });

  it.each([
    ['not JSON', '{"type":', /^line 7: \$: not JSON/],
    ['an array', '[]', /^line 7: \$: expected an object, got an array$/],
    ['a missing property', mutate((o) => delete o.kernel), /^line 7: \$: missing property "kernel"$/],
    ['an unknown property', mutate((o) => (o.extra = 1)), /^line 7: \$: unknown property "extra"$/],
    ['another version', mutate((o) => (o.version = 1)), /\$\.version: this parser reads version 2, got 1$/],
    ['an unknown mode', mutate((o) => (o.mode = 'kprobe')), /\$\.mode: expected one of "raw_tp", .*got "kprobe"$/],
    ['a bad time', mutate((o) => (o.time = 'yesterday')), /\$\.time: expected UTC ISO 8601/],
    ['a negative count', mutate((o) => (o.histograms[0][4][1] = -1)), /\$\.histograms\[0\]\[4\] \(packets\.buckets\)\[1\]: expected a non-negative integer, got -1$/],
    ['a fraction', mutate((o) => (o.dropped.keysRefused = 0.5)), /\$\.dropped\.keysRefused: expected a non-negative integer, got 0\.5$/],
    ['an unsafe integer', mutate((o) => (o.histograms[0][5] = 2 ** 60)), /\$\.histograms\[0\]\[5\] \(bytes\.sum\): \d+ exceeds 2\^53-1/],
    ['buckets that do not add up', mutate((o) => (o.histograms[0][2] = 16)), /\$\.histograms\[0\]\[4\] \(packets\.buckets\): buckets add up to 15, runs is 16$/],
    ['bytes buckets that do not add up', mutate((o) => (o.histograms[1][6] = [0, 0, 0, 0, 0, 3])), /\$\.histograms\[1\]\[6\] \(bytes\.buckets\): buckets add up to 3, runs is 2$/],
    ['trailing zeros', mutate((o) => o.histograms[1][4].push(0)), /\$\.histograms\[1\]\[4\] \(packets\.buckets\): trailing zeros must be trimmed$/],
    ['too many slots', mutate((o) => (o.histograms[1][4] = [...Array(32).fill(0), 2])), /buckets\): has 33 slots, at most 32$/],
    ['an impossible sum', mutate((o) => (o.histograms[0][3] = 46)), /\[3\] \(packets\.sum\): 46 cannot come from these buckets \(between 30 and 45\)$/],
    ['a duplicate entry', mutate((o) => (o.histograms[1][1] = 'rx')), /\$\.histograms\[1\]: cgroup 1 rx appears twice$/],
    ['a bad direction', mutate((o) => (o.histograms[1][1] = 'up')), /\$\.histograms\[1\]\[1\] \(direction\): expected one of "rx", "tx", got "up"$/],
    // Each rule once more at the level of an entry and a histogram, which a faster check reads.
    ['an entry that is an object', mutate((o) => (o.histograms[1] = { cgroupId: 1 })), /\$\.histograms\[1\]: expected an array, got an object$/],
    ['an entry with a field more', mutate((o) => o.histograms[0].push(1)), /\$\.histograms\[0\]: expected 7 fields \[cgroupId, direction, runs, packets\.sum, packets\.buckets, bytes\.sum, bytes\.buckets\], got 8$/],
    ['an entry without bytes', mutate((o) => o.histograms[0].splice(5)), /\$\.histograms\[0\]: expected 7 fields .*, got 5$/],
    ['a cgroup id as a string', mutate((o) => (o.histograms[0][0] = '1')), /\$\.histograms\[0\]\[0\] \(cgroupId\): expected a non-negative integer, got "1"$/],
    ['buckets that are null', mutate((o) => (o.histograms[1][6] = null)), /\$\.histograms\[1\]\[6\] \(bytes\.buckets\): expected an array, got null$/],
    ['runs as a string', mutate((o) => (o.histograms[0][2] = '15')), /\$\.histograms\[0\]\[2\] \(runs\): expected a non-negative integer, got "15"$/],
    ['buckets that are no array', mutate((o) => (o.histograms[0][4] = { 1: 15 })), /\$\.histograms\[0\]\[4\] \(packets\.buckets\): expected an array, got an object$/],
    ['a fractional bucket', mutate((o) => (o.histograms[1][4] = [1.5, 0.5])), /\$\.histograms\[1\]\[4\] \(packets\.buckets\)\[0\]: expected a non-negative integer, got 1\.5$/],
    ['a sum below what the buckets hold', mutate((o) => (o.histograms[0][5] = 15 * 1024 - 1)), /bytes\.sum\): 15359 cannot come from these buckets \(between 15360 and 30705\)$/],
    ['runs that are not safe', mutate((o) => (o.histograms[1][2] = 2 ** 53)), /\(runs\): \d+ exceeds 2\^53-1/],
    ['a duplicate entry of another direction', mutate((o) => o.histograms.push([...o.histograms[1]])), /\$\.histograms\[2\]: cgroup 1 tx appears twice$/],
  ])('rejects %s with an error that says where', (_what, line, message) => {
    const err = errorOf(line, 7);
    expect(err.message).toMatch(message);
    expect(err.lineNumber).toBe(7);
  });
});

describe('formatSnapshotLine', () => {
  it('writes what the loader prints, so a recording stands in for it', () => {
    expect(formatSnapshotLine(parseSnapshotLine(LINE))).toBe(LINE);
    const many = mutate((o) => (o.histograms = Array.from({ length: 40 }, (_, i) => [i, i % 2 ? 'tx' : 'rx', i, i, i ? [i] : [], 64 * i, i ? [0, 0, 0, 0, 0, 0, i] : []])));
    expect(formatSnapshotLine(parseSnapshotLine(many))).toBe(many);
  });

  it('refuses histograms whose counts differ: on the wire both are the runs', () => {
    const s = parseSnapshotLine(LINE);
    s.histograms[1]!.bytes = { count: 3, sum: 180, buckets: [0, 0, 0, 0, 0, 3] };
    expect(() => formatSnapshotLine(s)).toThrow(/cgroup 1 tx: packets\.count 2 differs from bytes\.count 3/);
  });
});

describe('SnapshotStream', () => {
  it('parses lines split across chunks and numbers them', () => {
    const stream = new SnapshotStream();
    const text = `${LINE}\n\n${mutate((o) => (o.seq = 4))}\n`;
    const got = [...stream.push(text.slice(0, 100)), ...stream.push(text.slice(100, 900)), ...stream.push(text.slice(900)), ...stream.end()];
    expect(got.map((s) => s.seq)).toEqual([3, 4]);
  });

  it('reports the line number of a bad line', () => {
    expect(() => parseSnapshotLines(`${LINE}\n${LINE}\n{}\n`)).toThrow(/^line 3: \$: missing property "type"$/);
  });

  it('parses a last line without a newline at end()', () => {
    const stream = new SnapshotStream();
    expect(stream.push(LINE)).toEqual([]);
    expect(stream.end()).toHaveLength(1);
  });
});

describe('schema.json', () => {
  const schema = JSON.parse(readFileSync(new URL('../../src/loader/schema.json', import.meta.url), 'utf8'));

  it('requires the properties the parser requires, and allows no others', () => {
    const parsed = JSON.parse(LINE);
    const optional = ['progStats'];
    expect([...schema.required].sort()).toEqual(Object.keys(parsed).filter((k) => !optional.includes(k)).sort());
    expect(Object.keys(schema.properties).sort()).toEqual(Object.keys(parsed).sort());
    expect(schema.$defs.entry.prefixItems.map((f: { title: string }) => f.title)).toEqual([...ENTRY_FIELDS]);
    expect(schema.$defs.entry.minItems).toBe(parsed.histograms[0].length);
    expect(schema.$defs.entry.items).toBe(false);
    expect(schema.$defs.buckets.maxItems).toBe(32);
    expect(schema.properties.version.const).toBe(LOADER_SNAPSHOT_VERSION);
    expect(schema.properties.mode.enum).toEqual(['raw_tp', 'tracepoint', 'fentry', 'test_run']);
  });
});
