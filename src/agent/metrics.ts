// Prometheus text exposition (format 0.0.4) for the agent's /metrics. Pure rendering: log2
// histograms become Prometheus histograms whose `le` bounds are exactly the slots' upper
// bounds (1, 3, 7, 15, ...), so nothing is re-bucketed.
import { slotMax } from '../api/histogram.js';
import type { RawHistogram } from '../api/v1alpha1.js';

export type Labels = Record<string, string>;

const escape = (v: string) => v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
const fmt = (l: Labels) => {
  const parts = Object.entries(l).map(([k, v]) => `${k}="${escape(v)}"`);
  return parts.length ? `{${parts.join(',')}}` : '';
};

export function header(name: string, type: 'counter' | 'gauge' | 'histogram', help: string): string {
  return `# HELP ${name} ${help}\n# TYPE ${name} ${type}\n`;
}

export function sample(name: string, labels: Labels, value: number): string {
  return `${name}${fmt(labels)} ${value}\n`;
}

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
