// What `kubectl vhosttrace hist` prints: the seed article's four BCC histograms, from a trace's
// status (cluster-wide) or from its reports (one node, one VM), with the exact count and sum
// that BCC's script could not show. Pure.
import { empty, merge, summarize } from '../api/histogram.js';
import type { Direction, RawDirections, RawHistogram, VhostTraceReport } from '../api/v1alpha1.js';
import { renderLog2Hist } from '../loader/bcc-text.js';

const SECTIONS: Record<Direction, { packets: [string, string]; bytes: [string, string] }> = {
  rx: { packets: ['Vhost-net RX log2 received packets histogram', 'recv pkts'], bytes: ['Vhost-net RX log2 total length histogram', 'total len'] },
  tx: { packets: ['Vhost-net TX log2 sent packets histogram', 'sent pkts'], bytes: ['Vhost-net TX log2 total length histogram', 'total len'] },
};

function section(heading: string, label: string, h: RawHistogram, unit: string): string {
  const s = summarize(h);
  const mean = s.count ? (s.sum / s.count).toFixed(1) : '0';
  const body = s.count ? renderLog2Hist(s.buckets, label) : '     (no runs)\n';
  return (
    `${heading}\n${'-'.repeat(heading.length)}\n${body}` +
    `runs ${s.count}, ${unit} ${s.sum}, mean ${mean}, p50 <= ${s.p50}, p90 <= ${s.p90}, p99 <= ${s.p99}\n\n`
  );
}

/** The histograms of the directions present, in the seed's order (RX, then TX). */
export function renderDirections(d: RawDirections): string {
  let out = '';
  for (const dir of ['rx', 'tx'] as const) {
    const x = d[dir];
    if (!x) continue;
    out += section(...SECTIONS[dir].packets, x.packets, 'packets');
    out += section(...SECTIONS[dir].bytes, x.bytes, 'bytes');
  }
  return out;
}

export interface ReportFilter {
  node?: string;
  /** "namespace/name" of a VM. */
  vm?: string;
}

/** The exact merge of reports (optionally one node's, or one VM's rows). */
export function mergeReports(reports: readonly VhostTraceReport[], f: ReportFilter = {}): RawDirections {
  const out: RawDirections = {};
  const add = (d: RawDirections | undefined) => {
    for (const dir of ['rx', 'tx'] as const) {
      const x = d?.[dir];
      if (!x) continue;
      const prev = out[dir] ?? { packets: empty(), bytes: empty() };
      out[dir] = { packets: merge(prev.packets, x.packets), bytes: merge(prev.bytes, x.bytes) };
    }
  };
  for (const r of reports) {
    if (f.node && r.spec.nodeName !== f.node) continue;
    if (!f.vm) {
      add(r.status?.total);
      continue;
    }
    for (const v of r.status?.vms ?? []) if (`${v.namespace}/${v.name}` === f.vm) add({ rx: v.rx, tx: v.tx });
  }
  return out;
}
