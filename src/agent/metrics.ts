// Log2 histograms as Prometheus histograms for the agent's /metrics: the `le` bounds are exactly
// the slots' upper bounds (1, 3, 7, 15, ...), so nothing is re-bucketed. Pure.
import { slotMax } from '../api/histogram.js';
import type { RawHistogram } from '../api/v1alpha1.js';
import { sample, type Labels } from '../metrics/text.js';

/** One histogram series; `slots` fixes the bucket bounds so every series of a family has the same. */
export function histogramSeries(name: string, labels: Labels, h: RawHistogram, slots: number): string {
  let out = '';
  let cumulative = 0;
  for (let k = 0; k < slots; k++) {
    cumulative += h.buckets[k] ?? 0;
    out += sample(`${name}_bucket`, { ...labels, le: String(slotMax(k)) }, cumulative);
  }
  out += sample(`${name}_bucket`, { ...labels, le: '+Inf' }, h.count);
  out += sample(`${name}_sum`, labels, h.sum);
  out += sample(`${name}_count`, labels, h.count);
  return out;
}
