// Log2 histogram arithmetic shared by the agent, the operator and the CLI. Pure functions.
// Slot convention (docs/bpf.md, "Histogram convention"; BCC's print_log2_hist): slot 0 holds
// 0..1, slot k holds 2^k..2^(k+1)-1. Buckets are kept with trailing zeros trimmed.
import { MAX_SLOTS, type Histogram, type HistogramSummary, type RawHistogram } from './v1alpha1.js';

/** The slot of a non-negative integer value. */
export function slotOf(value: number): number {
  if (!Number.isInteger(value) || value < 0) throw new RangeError(`histogram value must be a non-negative integer, got ${value}`);
  // Bit arithmetic, not Math.log2, which rounds up just below large powers of two.
  const high = Math.floor(value / 2 ** 32); // exact: division by a power of two
  const slot = high > 0 ? 63 - Math.clz32(high) : 31 - Math.clz32(value);
  return Math.max(0, Math.min(slot, MAX_SLOTS - 1));
}

/** The largest value slot k holds (its upper bound); slot 0 holds 0 and 1. */
export function slotMax(slot: number): number {
  return 2 ** (slot + 1) - 1;
}

export function trim(buckets: readonly number[]): number[] {
  let n = buckets.length;
  while (n > 0 && buckets[n - 1] === 0) n--;
  return buckets.slice(0, n);
}

export function empty(): RawHistogram {
  return { count: 0, sum: 0, buckets: [] };
}

/** The histogram of a list of values (tests and ground truth). */
export function fromValues(values: readonly number[]): RawHistogram {
  const buckets: number[] = [];
  let sum = 0;
  for (const v of values) {
    const s = slotOf(v);
    while (buckets.length <= s) buckets.push(0);
    buckets[s]! += 1;
    sum += v;
  }
  return { count: values.length, sum, buckets: trim(buckets) };
}

/** Trims trailing zeros in place (for arrays the caller just built). */
function trimInPlace(buckets: number[]): number[] {
  let n = buckets.length;
  while (n > 0 && buckets[n - 1] === 0) n--;
  buckets.length = n;
  return buckets;
}

// merge and subtract are plain loops: the agent runs them for every cgroup every interval.

/** a + b, exact. */
export function merge(a: RawHistogram, b: RawHistogram): RawHistogram {
  const n = Math.max(a.buckets.length, b.buckets.length);
  const buckets = new Array<number>(n);
  for (let i = 0; i < n; i++) buckets[i] = (a.buckets[i] ?? 0) + (b.buckets[i] ?? 0);
  return { count: a.count + b.count, sum: a.sum + b.sum, buckets: trimInPlace(buckets) };
}

/**
 * a - b, for counts that only grow (a later cumulative snapshot minus an earlier one).
 * Throws if b is not contained in a: that means the counter went backwards (a reset).
 */
export function subtract(a: RawHistogram, b: RawHistogram): RawHistogram {
  const n = Math.max(a.buckets.length, b.buckets.length);
  const buckets = new Array<number>(n);
  let backwards = a.count < b.count || a.sum < b.sum;
  for (let i = 0; i < n; i++) {
    const d = (a.buckets[i] ?? 0) - (b.buckets[i] ?? 0);
    if (d < 0) backwards = true;
    buckets[i] = d;
  }
  if (backwards) throw new RangeError('histogram went backwards: the later snapshot has fewer counts than the earlier one');
  return { count: a.count - b.count, sum: a.sum - b.sum, buckets: trimInPlace(buckets) };
}

/**
 * The q-quantile (0 < q <= 1) as the upper bound of the slot that holds it: the true value
 * is at most this and more than half of it. 0 for an empty histogram.
 */
export function quantile(buckets: readonly number[], q: number): number {
  const total = buckets.reduce((a, b) => a + b, 0);
  if (total === 0) return 0;
  const rank = Math.ceil(q * total);
  let seen = 0;
  for (let k = 0; k < buckets.length; k++) {
    seen += buckets[k]!;
    if (seen >= rank) return slotMax(k);
  }
  return slotMax(buckets.length - 1);
}

/** The status form: {count, sum, buckets, p50, p90, p99}. */
export function summarize(h: RawHistogram): Histogram {
  return { ...withoutBuckets(h), buckets: trim(h.buckets) };
}

/** The per-VM form, without buckets. */
export function withoutBuckets(h: RawHistogram): HistogramSummary {
  return {
    count: h.count,
    sum: h.sum,
    p50: quantile(h.buckets, 0.5),
    p90: quantile(h.buckets, 0.9),
    p99: quantile(h.buckets, 0.99),
  };
}
