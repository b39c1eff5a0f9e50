import { describe, expect, it } from 'vitest';
import { fromValues, merge, quantile, slotMax, slotOf, subtract, summarize, trim } from '../../src/api/histogram.js';

describe('log2 slots', () => {
  // slot 0: 0..1, slot k: 2^k..2^(k+1)-1, as BCC prints them
  it.each([
    [0, 0], [1, 0], [2, 1], [3, 1], [4, 2], [7, 2], [8, 3], [255, 7], [256, 8], [257, 8],
    [65535, 15], [65536, 16], [524288, 19], [524287, 18], [2 ** 40, 40], [2 ** 53 - 1, 52],
  ])('%i is in slot %i', (v, s) => {
    expect(slotOf(v)).toBe(s);
    expect(v).toBeLessThanOrEqual(slotMax(s));
    if (s > 0) expect(v).toBeGreaterThanOrEqual(2 ** s);
  });

  it('refuses negative and fractional values', () => {
    expect(() => slotOf(-1)).toThrow(/non-negative integer/);
    expect(() => slotOf(1.5)).toThrow(/non-negative integer/);
  });
});

describe('histograms', () => {
  it('count, sum and buckets of values; trailing zeros trimmed', () => {
    expect(fromValues([0, 1, 1, 2, 3, 64])).toEqual({ count: 6, sum: 71, buckets: [3, 2, 0, 0, 0, 0, 1] });
    expect(fromValues([])).toEqual({ count: 0, sum: 0, buckets: [] });
    expect(trim([1, 0, 2, 0, 0])).toEqual([1, 0, 2]);
  });

  it('merge is exact and equals the histogram of the union', () => {
    const a = [1, 5, 9, 300, 256];
    const b = [0, 0, 70000, 3];
    expect(merge(fromValues(a), fromValues(b))).toEqual(fromValues([...a, ...b]));
  });

  it('subtract undoes merge, and refuses a counter that went backwards', () => {
    const early = fromValues([1, 2, 3]);
    const late = merge(early, fromValues([8, 9, 1000]));
    expect(subtract(late, early)).toEqual(fromValues([8, 9, 1000]));
    expect(() => subtract(early, late)).toThrow(/went backwards/);
  });

  it('quantiles are the upper bound of the slot that holds them', () => {
    // 50 values in slot 0, 40 in slot 3 (8..15), 10 in slot 8 (256..511)
    const buckets = [50, 0, 0, 40, 0, 0, 0, 0, 10];
    expect(quantile(buckets, 0.5)).toBe(1);
    expect(quantile(buckets, 0.51)).toBe(15);
    expect(quantile(buckets, 0.9)).toBe(15);
    expect(quantile(buckets, 0.91)).toBe(511);
    expect(quantile(buckets, 0.99)).toBe(511);
    expect(quantile([], 0.5)).toBe(0);
  });

  it('summarize gives the status shape {count, sum, buckets, p50, p90, p99}', () => {
    const values = [...Array(256).fill(1), ...Array(64).fill(256)];
    expect(summarize(fromValues(values))).toEqual({
      count: 320,
      sum: 256 + 64 * 256,
      buckets: [256, 0, 0, 0, 0, 0, 0, 0, 64],
      p50: 1,
      p90: 511,
      p99: 511,
    });
  });
});
