// What `kubectl vhosttrace show` prints: the seed article's four BCC histograms, from a trace's
// status (cluster-wide) or from its reports (one node, one VM), with the exact count and sum
// that BCC's script could not show; and the same view as data (-o json|yaml) or exactly as the
// seed's script printed it (-o bcc). Pure.
import { empty, merge, summarize } from '../api/histogram.js';
import type { Direction, Phase, RawDirections, RawHistogram, TraceKind, VhostTraceReport } from '../api/v1alpha1.js';
import { renderLog2Hist, renderSeedText } from '../loader/bcc-text.js';

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

/** The line the seed's script printed between its RX and TX histograms. */
const SEED_SEPARATOR = `${'-'.repeat(49)}\n\n`;

/** The histograms of the directions present, in the seed's order (RX, then TX, the seed's line between). */
export function renderDirections(d: RawDirections): string {
  let out = '';
  for (const dir of ['rx', 'tx'] as const) {
    const x = d[dir];
    if (!x) continue;
    if (dir === 'tx' && d.rx) out += SEED_SEPARATOR;
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

/** One view of a trace's histograms: the cluster's, one node's or one VM's. */
export interface HistView {
  /** Absent when a file held reports without their trace. */
  trace?: { kind: TraceKind; name: string; namespace?: string };
  phase?: Phase;
  nodesReporting?: string;
  startTime?: string;
  endTime?: string;
  node?: string;
  vm?: string;
  /** Where the numbers come from, when not the trace's status ("3 reports"). */
  from?: string;
  histograms: RawDirections;
}

function headline(v: HistView): string {
  const scope = v.node ? `, node ${v.node}` : v.vm ? `, VM ${v.vm}` : '';
  if (!v.trace) return `${v.from ?? 'reports'}${scope}`;
  const { kind, name, namespace } = v.trace;
  return (
    `${kind} ${namespace ? `${namespace}/` : ''}${name}${scope}: ${v.phase ?? 'Pending'}, nodes ${v.nodesReporting ?? '0/0'}` +
    `${v.startTime ? `, since ${v.startTime}` : ''}${v.endTime ? ` until ${v.endTime}` : ''}`
  );
}

/** The default text: a headline, then the histograms (or a line saying there are none). */
export function renderView(v: HistView): string {
  return `${headline(v)}\n\n${renderDirections(v.histograms) || 'no counts yet\n'}`;
}

/** -o json|yaml: the view as data, each histogram in the status form {count, sum, buckets, p50, p90, p99}. */
export function viewData(v: HistView): object {
  const histograms: Record<string, object> = {};
  for (const dir of ['rx', 'tx'] as const) {
    const x = v.histograms[dir];
    if (x) histograms[dir] = { packets: summarize(x.packets), bytes: summarize(x.bytes) };
  }
  const { histograms: _raw, ...rest } = v;
  return { ...rest, histograms };
}

/** -o bcc: exactly what the seed's BCC script printed after Ctrl-C, nothing more. */
export function renderBcc(v: HistView): string {
  const b = (dir: Direction, what: 'packets' | 'bytes') => v.histograms[dir]?.[what].buckets ?? [];
  return renderSeedText({ rxPackets: b('rx', 'packets'), rxBytes: b('rx', 'bytes'), txPackets: b('tx', 'packets'), txBytes: b('tx', 'bytes') });
}
