// `-o json` and `-o yaml` as kubectl writes them: keys sorted, JSON indented by four spaces, YAML with
// unindented lists, and several objects wrapped in a v1 List. Pure.
import { stringify } from 'yaml';

function sortKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (v === null || typeof v !== 'object') return v;
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(v).sort()) out[k] = sortKeys((v as Record<string, unknown>)[k]);
  return out;
}

/** A v1 List of the objects, as `kubectl get` prints more than one. */
export function asList(items: readonly unknown[]): object {
  return { apiVersion: 'v1', kind: 'List', items, metadata: { resourceVersion: '' } };
}

export function formatData(data: unknown, format: 'json' | 'yaml'): string {
  const sorted = sortKeys(data);
  if (format === 'json') return `${JSON.stringify(sorted, null, 4)}\n`;
  return stringify(sorted, { indentSeq: false, lineWidth: 0 });
}
