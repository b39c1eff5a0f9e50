// Golden tests of the C text output (--text, --render-hist) against BCC's algorithm
// (src/loader/bcc-text.ts, a port of bcc/table.py's _print_log2_hist) and against the seed
// article's printed histograms, the latter also end to end: the seed's counts fed as events
// to the real programs in the kernel, read back and printed by the C code.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { SEED_BANNER, renderLog2Hist, renderSeedText } from '../../src/loader/bcc-text.js';
import { missing } from '../harness/prereq.js';

const ROOT = new URL('../..', import.meta.url).pathname;
const OUT = join(ROOT, 'bpf/.output');
const LOADER = join(OUT, 'vhost-hist');
const TESTRUN = join(OUT, 'vhost-hist-testrun');
const GOLDEN = join(ROOT, 'bpf/test/golden');

function golden(name: string): string {
  return readFileSync(join(GOLDEN, name), 'utf8');
}

/** The seed article's counts, vhosttrace slot order (slot 0 = 0..1). */
const SEED = {
  rxPackets: [482291, 40457, 534, 4, 2],
  rxBytes: [330, 0, 0, 0, 0, 8, 32, 9, 8, 30, 15275, 15516, 57986, 433015, 1060, 14, 4, 1],
  txPackets: [264948, 8358, 199, 1],
  txBytes: [18, 0, 0, 0, 0, 8, 264919, 7998, 558, 5],
};

function renderC(counts: readonly number[], label: string): string {
  const r = spawnSync(LOADER, ['--render-hist', label], { input: counts.join(' '), encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`--render-hist: ${r.stderr}`);
  return r.stdout;
}

/** A deterministic pseudo-random generator, so failures reproduce. */
function lcg(seed: number): () => number {
  let x = seed >>> 0;
  return () => {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    return x / 2 ** 32;
  };
}

/**
 * Events whose packets and bytes fill the given slot counts (paired in order: any pairing
 * gives the same two marginal histograms). Slot k is represented by the value 2^k.
 */
function eventsFor(dir: 'rx' | 'tx', pkts: readonly number[], bytes: readonly number[]): string {
  const expand = (counts: readonly number[]) => counts.map((n, k) => ({ value: k === 0 ? 1 : 2 ** k, n }));
  const p = expand(pkts);
  const b = expand(bytes);
  const lines: string[] = [];
  let i = 0;
  let j = 0;
  while (i < p.length && j < b.length) {
    const pi = p[i]!;
    const bj = b[j]!;
    const n = Math.min(pi.n, bj.n);
    if (n > 0) lines.push(`${dir} ${pi.value} ${bj.value} ${n}`);
    pi.n -= n;
    bj.n -= n;
    if (pi.n === 0) i++;
    if (bj.n === 0) j++;
  }
  return lines.join('\n');
}

beforeAll(() => {
  const r = spawnSync('flock', ['/tmp/vhosttrace-bpf-build.lock', 'make', '-s', '-C', join(ROOT, 'bpf')], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`make -C bpf failed:\n${r.stdout}${r.stderr}`);
}, 300_000);

describe('--render-hist (C) against BCC print_log2_hist', () => {
  it.each([
    ['seed-rx-packets.txt', SEED.rxPackets, 'recv pkts'],
    ['seed-rx-bytes.txt', SEED.rxBytes, 'total len'],
    ['seed-tx-packets.txt', SEED.txPackets, 'sent pkts'],
    ['seed-tx-bytes.txt', SEED.txBytes, 'total len'],
  ] as const)('re-renders the seed article\'s %s byte for byte', (file, counts, label) => {
    expect(renderC(counts, label)).toBe(golden(file));
  });

  it('matches the BCC algorithm on edge cases: empty, one slot, star rounding, slot 31, wide layout, 64 slots', () => {
    const cases: number[][] = [
      [],
      [0, 0],
      [7],
      [40, 39, 1],
      [41, 1],
      [0, 0, 0, 5],
      [...Array<number>(31).fill(0), 1],
      [...Array<number>(32).fill(0), 1],
      [2, ...Array<number>(39).fill(0), 1],
      [...Array<number>(63).fill(0), 3],
      [123456789, 1],
    ];
    for (const c of cases) expect(renderC(c, 'total len')).toBe(renderLog2Hist(c, 'total len'));
  });

  it('matches the BCC algorithm on 200 random histograms', () => {
    const rnd = lcg(4);
    for (let n = 0; n < 200; n++) {
      const len = 1 + Math.floor(rnd() * 64);
      const scale = 10 ** Math.floor(rnd() * 10);
      const counts = Array.from({ length: len }, () => (rnd() < 0.3 ? 0 : Math.floor(rnd() * scale)));
      expect(renderC(counts, 'recv pkts')).toBe(renderLog2Hist(counts, 'recv pkts'));
    }
  });
});

/** BCC's own Python renderer (Debian's python3-bpfcc), when installed. */
const BCC_PY = '/usr/bin/python3';
const hasBcc = spawnSync(BCC_PY, ['-c', 'import bcc.table'], { encoding: 'utf8' }).status === 0;

function renderBcc(cases: readonly (readonly number[])[], label: string): string[] {
  // vhosttrace slot k is BCC index k + 1; BCC's vals has 65 entries.
  const script = [
    'import io, json, sys, contextlib',
    'from bcc.table import _print_log2_hist',
    'out = []',
    'for counts in json.load(sys.stdin):',
    '    vals = [0] * 65',
    '    for k, n in enumerate(counts): vals[k + 1] = n',
    '    buf = io.StringIO()',
    '    with contextlib.redirect_stdout(buf): _print_log2_hist(vals, sys.argv[1], None)',
    '    out.append(buf.getvalue())',
    'json.dump(out, sys.stdout)',
  ].join('\n');
  const r = spawnSync(BCC_PY, ['-c', script, label], { input: JSON.stringify(cases), encoding: 'utf8', maxBuffer: 1 << 24 });
  if (r.status !== 0) throw new Error(`bcc: ${r.stderr}`);
  return JSON.parse(r.stdout) as string[];
}

describe.skipIf(missing('BCC\'s Python module', hasBcc, 'apt-get install python3-bpfcc (test/setup does)'))('--render-hist (C) against BCC\'s own print_log2_hist (python3-bpfcc)', () => {
  it('prints what bcc.table._print_log2_hist prints for the seed, edge cases and 200 random histograms', () => {
    const rnd = lcg(7);
    const cases: number[][] = [
      SEED.rxPackets, SEED.rxBytes, SEED.txPackets, SEED.txBytes,
      [], [7], [40, 39, 1], [41, 1],
      [...Array<number>(31).fill(0), 1],
      [...Array<number>(32).fill(0), 1],
      [2, ...Array<number>(39).fill(0), 1],
      [...Array<number>(63).fill(0), 3],
      [123456789, 1],
    ];
    for (let n = 0; n < 200; n++) {
      const len = 1 + Math.floor(rnd() * 64);
      const scale = 10 ** Math.floor(rnd() * 10);
      cases.push(Array.from({ length: len }, () => (rnd() < 0.3 ? 0 : Math.floor(rnd() * scale))));
    }
    const bcc = renderBcc(cases, 'total len');
    cases.forEach((c, i) => expect(renderC(c, 'total len'), JSON.stringify(c)).toBe(bcc[i]));
  });
});

describe('--text end to end: the seed\'s counts through the real programs', () => {
  it('prints what the seed\'s BCC script prints, and the article\'s output once its blank lines are collapsed', () => {
    const input = `${eventsFor('rx', SEED.rxPackets, SEED.rxBytes)}\n${eventsFor('tx', SEED.txPackets, SEED.txBytes)}\n`;
    const r = spawnSync(TESTRUN, ['--text'], { input, encoding: 'utf8', maxBuffer: 1 << 24 });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toBe(renderSeedText(SEED));
    // The blog collapsed print("\n")'s two blank lines into one; otherwise identical.
    expect(r.stdout.replace(/\n{2,}/g, '\n\n').trim() + '\n').toBe(golden('seed-article-output.txt').replace(/\n{2,}/g, '\n\n'));
  });

  it('the loader prints the seed banner first', () => {
    const r = spawnSync(LOADER, ['--text', '-d', '0.05', '--raw-tp-names', 'xdp_exception,xdp_exception'], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout.startsWith(SEED_BANNER + '\n\nVhost-net RX log2 received packets histogram\n')).toBe(true);
  });
});
