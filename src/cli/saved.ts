// Saved objects for `-f FILE`: the traces and reports in YAML or JSON text as `kubectl get -o yaml|json`
// writes it (one object, several YAML documents, or a List). Pure: the caller reads the file.
import { parseAllDocuments } from 'yaml';
import type { Trace } from '../api/reports.js';
import { GROUP, type VhostTraceReport } from '../api/v1alpha1.js';
import { CliError, EXIT } from './exit-codes.js';

export interface Saved {
  traces: Trace[];
  reports: VhostTraceReport[];
}

const KINDS = ['VhostTrace', 'ClusterVhostTrace', 'VhostTraceReport'];

/** Each object, Lists opened (items of a typed list such as VhostTraceList may omit their kind). */
function* objects(doc: any, inherit?: { kind: string; apiVersion?: string }): Generator<any> {
  if (doc === null || typeof doc !== 'object') return;
  const kind: string | undefined = doc.kind ?? inherit?.kind;
  if (Array.isArray(doc.items) && (kind === 'List' || kind?.endsWith('List'))) {
    const itemKind = kind !== 'List' ? { kind: kind.slice(0, -'List'.length), apiVersion: doc.apiVersion } : undefined;
    for (const item of doc.items) yield* objects(item, itemKind);
    return;
  }
  yield { ...doc, kind, apiVersion: doc.apiVersion ?? inherit?.apiVersion };
}

export function parseSaved(text: string, source: string): Saved {
  const saved: Saved = { traces: [], reports: [] };
  const others = new Set<string>();
  for (const doc of parseAllDocuments(text)) {
    if (doc.errors.length) throw new CliError(EXIT.error, `${source}: not YAML or JSON: ${doc.errors[0]!.message}`);
    for (const o of objects(doc.toJS())) {
      const group = String(o.apiVersion ?? '').split('/')[0];
      if (group !== GROUP || !KINDS.includes(o.kind)) {
        others.add(o.kind ? `${o.kind}${o.apiVersion ? ` (${o.apiVersion})` : ''}` : 'an object without a kind');
        continue;
      }
      if (o.kind === 'VhostTraceReport') saved.reports.push(o);
      else saved.traces.push(o);
    }
  }
  if (saved.traces.length === 0 && saved.reports.length === 0) {
    const found = others.size ? `; it holds ${[...others].join(', ')}` : '';
    throw new CliError(EXIT.error, `${source} holds no VhostTrace, ClusterVhostTrace or VhostTraceReport of ${GROUP}${found}`);
  }
  return saved;
}

/** The reports in the file that belong to trace t (by uid; by kind and name if the file lost the uid). */
export function reportsOf(saved: Saved, t: Trace): VhostTraceReport[] {
  return saved.reports.filter((r) =>
    t.metadata.uid && r.spec.trace.uid ? r.spec.trace.uid === t.metadata.uid : r.spec.trace.kind === t.kind && r.spec.trace.name === t.metadata.name,
  );
}

/**
 * The trace the user named (NAME; its kind if given by --cluster or vht/, cvht/; -n) in the file,
 * or its only trace when no NAME is given; undefined when there is none. Several that fit is a
 * usage error that lists them.
 */
export function pickTrace(saved: Saved, want: { name?: string; kind?: Trace['kind']; namespace?: string }, source: string): Trace | undefined {
  const candidates = saved.traces.filter(
    (t) =>
      (want.name === undefined || t.metadata.name === want.name) &&
      (want.kind === undefined || t.kind === want.kind) &&
      (want.namespace === undefined || t.kind === 'ClusterVhostTrace' || t.metadata.namespace === want.namespace),
  );
  if (candidates.length <= 1) return candidates[0];
  const names = candidates.map((t) => (t.kind === 'ClusterVhostTrace' ? `cvht/${t.metadata.name}` : `vht/${t.metadata.name} in ${t.metadata.namespace}`));
  throw new CliError(EXIT.usage, `${source} holds ${candidates.length} traces${want.name ? ` named "${want.name}"` : ''} (${names.join(', ')}): say which with NAME, vht/ or cvht/, and -n`);
}
