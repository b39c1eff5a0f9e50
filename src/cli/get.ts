// `get`: traces as `kubectl get vht` and `kubectl get cvht` list them (a table, names, or the objects as
// JSON or YAML), from the cluster or a saved file.
import type { Trace } from '../api/reports.js';
import type { TraceKind } from '../api/v1alpha1.js';
import { CliError, EXIT, type ExitCode } from './exit-codes.js';
import { asList, formatData } from './output.js';
import { pickTrace } from './saved.js';
import type { Session } from './session.js';
import { notFound } from './show.js';
import { objectName, sortTraces, traceTable } from './table.js';

function print(s: Session, traces: Trace[], one: boolean): void {
  const out = s.inv.output;
  if (out === 'json' || out === 'yaml') {
    s.io.out(formatData(one ? traces[0] : asList(sortTraces(traces)), out));
    return;
  }
  if (out === 'name') {
    for (const t of sortTraces(traces)) s.io.out(`${objectName(t)}\n`);
    return;
  }
  // One table per kind, as kubectl prints `get vht,cvht`: namespaced first, a blank line between.
  const opts = { allNamespaces: s.inv.allNamespaces, wide: out === 'wide', now: s.io.now() };
  const tables = (['VhostTrace', 'ClusterVhostTrace'] as const)
    .map((k) => traceTable(traces.filter((t) => t.kind === k), opts))
    .filter(Boolean);
  s.io.out(tables.join('\n'));
}

function nothing(s: Session, namespace: string | undefined): ExitCode {
  s.io.err(namespace && !s.inv.allNamespaces && !s.inv.cluster ? `No resources found in ${namespace} namespace.\n` : 'No resources found\n');
  return EXIT.ok;
}

function getSaved(s: Session): ExitCode {
  const source = s.inv.file === '-' ? 'stdin' : s.inv.file!;
  const saved = s.saved();
  const name = s.inv.names[0];
  if (name !== undefined) {
    const t = pickTrace(saved, { name, kind: s.inv.kindGiven ? s.kind : undefined, namespace: s.inv.namespace }, source);
    if (!t) throw new CliError(EXIT.notFound, `${source} holds no trace named "${name}"`);
    print(s, [t], true);
    return EXIT.ok;
  }
  const traces = saved.traces.filter((t) => !s.inv.kindGiven || t.kind === s.kind);
  if (traces.length === 0) return nothing(s, undefined);
  print(s, traces, false);
  return EXIT.ok;
}

export async function get(s: Session): Promise<ExitCode> {
  if (s.inv.file !== undefined) return getSaved(s);
  const { api, namespace } = await s.cluster();
  const name = s.inv.names[0];
  if (name !== undefined) {
    const t = await api.get(s.kind, namespace, name);
    if (!t) throw notFound(s, name, namespace);
    print(s, [t], true);
    return EXIT.ok;
  }
  const ns = s.inv.allNamespaces ? undefined : namespace;
  const kinds: TraceKind[] = s.inv.cluster ? ['ClusterVhostTrace'] : ['VhostTrace', 'ClusterVhostTrace'];
  const traces: Trace[] = [];
  for (const kind of kinds) {
    try {
      traces.push(...(await api.list(kind, ns)));
    } catch (e) {
      // A tenant may read the VhostTraces of its namespace and not the ClusterVhostTraces: list what it may.
      const optional = kind === 'ClusterVhostTrace' && !s.inv.cluster;
      if (!(optional && e instanceof CliError && e.code === EXIT.forbidden)) throw e;
    }
  }
  if (traces.length === 0) return nothing(s, ns);
  print(s, traces, false);
  return EXIT.ok;
}
