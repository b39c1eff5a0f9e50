// The trace `kubectl vhosttrace run` creates, from its flags: kubectl's label selector syntax turned into
// a metav1.LabelSelector, and the VhostTrace or ClusterVhostTrace object. Pure; the API server validates
// the rest (ranges, label syntax) and names the field it refuses.
import { parseDuration } from '../api/duration.js';
import type { Trace } from '../api/reports.js';
import { API_VERSION, type LabelSelector } from '../api/v1alpha1.js';
import type { RunFlags } from './args.js';
import { CliError, EXIT } from './exit-codes.js';

/** Splits at commas outside parentheses: "a in (x,y),b" -> ["a in (x,y)", "b"]. */
function terms(text: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let cur = '';
  for (const ch of text) {
    if (ch === '(') depth++;
    if (ch === ')') depth--;
    if (ch === ',' && depth === 0) {
      out.push(cur.trim());
      cur = '';
    } else cur += ch;
  }
  out.push(cur.trim());
  return out;
}

/**
 * A selector as `kubectl get -l` takes it: k=v, k==v, k!=v, k in (a,b), k notin (a,b), k, !k,
 * joined by commas (all must hold). The empty string selects everything.
 */
export function parseSelector(text: string, flag: string): LabelSelector {
  const sel: LabelSelector = {};
  const bad = (term: string) => new CliError(EXIT.usage, `${flag}: cannot read "${term}": expected k=v, k!=v, k in (a,b), k notin (a,b), k or !k, joined by commas`);
  if (text.trim() === '') return sel;
  for (const term of terms(text)) {
    let m: RegExpMatchArray | null;
    if ((m = term.match(/^([^\s=!(),]+)\s+(in|notin)\s+\(([^()]*)\)$/))) {
      const values = m[3]!.split(',').map((v) => v.trim());
      (sel.matchExpressions ??= []).push({ key: m[1]!, operator: m[2] === 'in' ? 'In' : 'NotIn', values });
    } else if ((m = term.match(/^([^\s=!(),]+)\s*!=\s*([^\s=!(),]*)$/))) {
      (sel.matchExpressions ??= []).push({ key: m[1]!, operator: 'NotIn', values: [m[2]!] });
    } else if ((m = term.match(/^([^\s=!(),]+)\s*==?\s*([^\s=!(),]*)$/))) {
      (sel.matchLabels ??= {})[m[1]!] = m[2]!;
    } else if ((m = term.match(/^!\s*([^\s=!(),]+)$/))) {
      (sel.matchExpressions ??= []).push({ key: m[1]!, operator: 'DoesNotExist' });
    } else if ((m = term.match(/^([^\s=!(),]+)$/))) {
      (sel.matchExpressions ??= []).push({ key: m[1]!, operator: 'Exists' });
    } else throw bad(term);
  }
  return sel;
}

function checkDuration(text: string | undefined, flag: string): void {
  if (text === undefined) return;
  try {
    parseDuration(text);
  } catch (e) {
    throw new CliError(EXIT.usage, `${flag}: ${(e as Error).message}`);
  }
}

/** Who created the trace, on its labels, so `kubectl get vht -l` finds the plugin's runs. */
export const CREATED_BY = { 'app.kubernetes.io/created-by': 'kubectl-vhosttrace' };

/** The object to create: NAME if given, else a generated "run-xxxxx". */
export function traceToCreate(f: RunFlags, opts: { cluster: boolean; name?: string; namespace: string }): Trace {
  checkDuration(f.duration, '--duration');
  checkDuration(f.interval, '--interval');
  const common = {
    ...(f.nodeSelector !== undefined ? { nodeSelector: parseSelector(f.nodeSelector, '--node-selector') } : {}),
    ...(f.vmSelector !== undefined ? { vmSelector: parseSelector(f.vmSelector, '--vm-selector') } : {}),
    ...(f.duration ? { duration: f.duration } : {}),
    ...(f.interval ? { interval: f.interval } : {}),
    ...(f.directions ? { directions: f.directions } : {}),
  };
  const metadata = { ...(opts.name ? { name: opts.name } : { generateName: 'run-' }), labels: { ...CREATED_BY } };
  if (opts.cluster) {
    return {
      apiVersion: API_VERSION,
      kind: 'ClusterVhostTrace',
      metadata,
      spec: {
        ...common,
        ...(f.namespaceSelector !== undefined ? { namespaceSelector: parseSelector(f.namespaceSelector, '--namespace-selector') } : {}),
        includeUnattributed: f.includeUnattributed,
      },
    };
  }
  return { apiVersion: API_VERSION, kind: 'VhostTrace', metadata: { ...metadata, namespace: opts.namespace }, spec: common };
}

/** How long `run` waits for the trace to complete: --timeout, else its duration and a minute. */
export function waitLimitMs(f: RunFlags): number | undefined {
  if (f.timeout !== undefined) {
    checkDuration(f.timeout, '--timeout');
    return parseDuration(f.timeout);
  }
  return f.duration ? parseDuration(f.duration) + 60_000 : undefined;
}
