// The table `kubectl vhosttrace get` prints: the CRDs' own printer columns, laid out as `kubectl get`
// lays them out (tabwriter, three spaces of padding, ages as kubectl writes them). Pure: the caller
// passes the clock.
import { clusterVhostTraceCRD, vhostTraceCRD } from '../api/crds.js';
import type { Trace } from '../api/reports.js';
import { GROUP } from '../api/v1alpha1.js';

/** kubectl's HumanDuration: "45s", "5m30s", "3h", "2d4h", "400d", "3y20d". */
export function humanAge(ms: number): string {
  const s = Math.floor(ms / 1000);
  if (s < -1) return '<invalid>';
  if (s < 0) return '0s';
  if (s < 120) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 10) return s % 60 === 0 ? `${m}m` : `${m}m${s % 60}s`;
  if (m < 180) return `${m}m`;
  const h = Math.floor(m / 60);
  if (h < 8) return m % 60 === 0 ? `${h}h` : `${h}h${m % 60}m`;
  if (h < 48) return `${h}h`;
  if (h < 24 * 8) return h % 24 === 0 ? `${Math.floor(h / 24)}d` : `${Math.floor(h / 24)}d${h % 24}h`;
  if (h < 24 * 365 * 2) return `${Math.floor(h / 24)}d`;
  const y = Math.floor(h / 24 / 365);
  if (h < 24 * 365 * 8) return `${y}y${Math.floor(h / 24) % 365}d`;
  return `${y}y`;
}

/** The value at a printer column's simple JSONPath (".status.summary.rx.packets.count"). */
function at(obj: unknown, jsonPath: string): unknown {
  let v: any = obj;
  for (const key of jsonPath.split('.').slice(1)) v = v?.[key];
  return v;
}

/** Rows laid out as Go's tabwriter with kubectl's settings (min width 6, padding 3); no trailing padding. */
export function layout(rows: readonly string[][]): string {
  const widths: number[] = [];
  for (const r of rows) r.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)));
  return rows
    .map((r) => r.map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(Math.max(6, widths[i]! + 3)))).join('') + '\n')
    .join('');
}

function columns(kind: Trace['kind'], wide: boolean) {
  const crd = kind === 'VhostTrace' ? vhostTraceCRD : clusterVhostTraceCRD;
  return crd.spec.versions[0]!.additionalPrinterColumns.filter((c) => wide || !c.priority);
}

/** One kind's table, as `kubectl get vht` (namespaced, with a NAMESPACE column for -A) or `kubectl get cvht` prints it. */
export function traceTable(traces: readonly Trace[], opts: { allNamespaces: boolean; wide: boolean; now: number }): string {
  if (traces.length === 0) return '';
  const kind = traces[0]!.kind;
  const cols = columns(kind, opts.wide);
  const withNs = opts.allNamespaces && kind === 'VhostTrace';
  const header = [...(withNs ? ['NAMESPACE'] : []), 'NAME', ...cols.map((c) => c.name.toUpperCase())];
  const rows = sortTraces(traces).map((t) => [
    ...(withNs ? [t.metadata.namespace ?? ''] : []),
    t.metadata.name ?? '',
    ...cols.map((c) => {
      const v = at(t, c.jsonPath);
      if (v === undefined || v === null) return '';
      return c.type === 'date' ? humanAge(opts.now - Date.parse(String(v))) : String(v);
    }),
  ]);
  return layout([header, ...rows]);
}

export function sortTraces(traces: readonly Trace[]): Trace[] {
  const key = (t: Trace) => `${t.metadata.namespace ?? ''}/${t.metadata.name ?? ''}`;
  return [...traces].sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));
}

/** `-o name`: "vhosttrace.vhosttrace.io/web", as kubectl names objects. */
export function objectName(t: { kind: string; metadata: { name?: string } }): string {
  return `${t.kind.toLowerCase()}.${GROUP}/${t.metadata.name ?? ''}`;
}
