import { describe, expect, it } from 'vitest';
import { fromValues, merge } from '../../src/api/histogram.js';
import { advance, CountsWentBackwards, ledgerFromJSON, ledgerToJSON, openLedger, sinceStart, type Ledger } from '../../src/agent/ledger.js';
import type { LoaderSnapshot } from '../../src/loader/snapshot.js';

/** A snapshot whose cgroup 7 RX histogram holds the given per-run packet counts (60 B each). */
function snap(runs: number[], extra: Record<number, number[]> = {}): LoaderSnapshot {
  const entry = (cgroupId: number, r: number[]) => ({
    cgroupId,
    direction: 'rx' as const,
    packets: fromValues(r),
    bytes: fromValues(r.map((p) => p * 60)),
  });
  return {
    type: 'snapshot', version: 2, seq: 0, time: '2026-11-24T00:00:00.000Z', mode: 'tracepoint', kernel: '6.1.0',
    takeover: false, intervalSeconds: 1, maxCgroups: 256, dropped: { keysRefused: 0, overflowEvents: 0 },
    histograms: [entry(7, runs), ...Object.entries(extra).map(([id, r]) => entry(Number(id), r))],
    counters: { slowPath: 0, noStorage: 0, stockUnpaired: 0 },
  };
}

/** One entry's counts since the start. */
function countsOf(l: Ledger, cgroupId: number, direction: 'rx' | 'tx') {
  const e = sinceStart(l).find((x) => x.cgroupId === cgroupId && x.direction === direction);
  if (!e) throw new Error(`no entry ${cgroupId} ${direction}`);
  return e.counts;
}

describe('ledger', () => {
  const before = [1, 1, 64];
  const during = [2, 256, 3];

  it('counts only what happened after the trace started', () => {
    const l = openLedger('t', 1, snap(before));
    advance(l, 1, snap([...before, ...during]));
    expect(countsOf(l, 7, 'rx').packets).toEqual(fromValues(during));
  });

  it('keeps copies, not the snapshot: what happens to a snapshot later changes nothing', () => {
    const first = snap(before);
    const l = openLedger('t', 1, first);
    const next = snap([...before, ...during], { 9: [5] });
    advance(l, 1, next);
    for (const s of [first, next]) {
      for (const h of s.histograms) {
        h.packets.buckets.fill(99);
        h.packets.count = 0;
      }
    }
    expect(countsOf(l, 7, 'rx').packets).toEqual(fromValues(during));
    expect(countsOf(l, 9, 'rx').packets).toEqual(fromValues([5]));
  });

  it('gives a cgroup first seen after the start all of its counts', () => {
    const l = openLedger('t', 1, snap(before));
    advance(l, 1, snap(before, { 9: [5, 6] }));
    expect(countsOf(l, 9, 'rx').packets).toEqual(fromValues([5, 6]));
    expect(countsOf(l, 7, 'rx').packets).toEqual(fromValues([]));
  });

  it('repeating a snapshot never double counts', () => {
    const l = openLedger('t', 1, snap(before));
    for (let i = 0; i < 3; i++) advance(l, 1, snap([...before, ...during]));
    expect(countsOf(l, 7, 'rx').packets).toEqual(fromValues(during));
  });

  it('carries counts across a new generation of the maps (reboot, --stop)', () => {
    const l = openLedger('t', 1, snap(before));
    advance(l, 1, snap([...before, ...during]));
    advance(l, 2, snap([8])); // fresh maps: counting restarted from zero
    expect(l.generation).toBe(2);
    const got = countsOf(l, 7, 'rx');
    expect(got.packets).toEqual(merge(fromValues(during), fromValues([8])));
    expect(got.bytes).toEqual(fromValues([...during, 8].map((p) => p * 60)));
  });

  it('refuses counts that went backwards within one generation, and changes nothing', () => {
    const l = openLedger('t', 1, snap(before));
    advance(l, 1, snap([...before, ...during]));
    // Fewer runs in one slot than at the start (the maps were replaced and counted a little).
    expect(() => advance(l, 1, snap([2, 2, 2, 2], { 9: [1] }))).toThrow(CountsWentBackwards);
    expect(sinceStart(l).map((e) => e.cgroupId)).toEqual([7]);
    expect(countsOf(l, 7, 'rx').packets).toEqual(fromValues(during));
    // What the agent does then: a new generation carries the counts until the last good snapshot.
    advance(l, 2, snap([2, 2, 2, 2], { 9: [1] }));
    expect(countsOf(l, 7, 'rx').packets).toEqual(fromValues([...during, 2, 2, 2, 2]));
    expect(countsOf(l, 9, 'rx').packets).toEqual(fromValues([1]));
  });

  it('survives a JSON round trip (it is persisted between agent runs)', () => {
    const l = openLedger('t', 1, snap(before));
    advance(l, 1, snap([...before, ...during]));
    const back = ledgerFromJSON(ledgerToJSON(l));
    expect(back.generation).toBe(1);
    expect(sinceStart(back)).toEqual(sinceStart(l));
    expect(countsOf(back, 7, 'rx').packets).toEqual(fromValues(during));
  });

  it('reads the state file format of earlier agents (entries as an object)', () => {
    const h = (count: number, sum: number, buckets: number[]) => ({ count, sum, buckets });
    const file = JSON.stringify({
      traceUid: 't', generation: 3,
      entries: { '7/rx': { base: { packets: h(1, 1, [1]), bytes: h(1, 60, [0, 0, 0, 0, 0, 1]) }, last: { packets: h(3, 9, [1, 0, 2]), bytes: h(3, 540, [0, 0, 0, 0, 0, 1, 0, 0, 2]) }, carry: { packets: h(0, 0, []), bytes: h(0, 0, []) } } },
    });
    const l = ledgerFromJSON(file);
    expect(JSON.parse(ledgerToJSON(l))).toEqual(JSON.parse(file));
    expect(countsOf(l, 7, 'rx')).toEqual({ packets: h(2, 8, [0, 0, 2]), bytes: h(2, 480, [0, 0, 0, 0, 0, 0, 0, 0, 2]) });
  });
});
