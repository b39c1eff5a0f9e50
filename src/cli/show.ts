// `show` (alias `hist`) and `watch`: a trace's histograms, from the cluster or a saved file, printed once,
// or again each time the trace's status changes until it completes.
import type { Trace } from '../api/reports.js';
import { CliError, EXIT, type ExitCode } from './exit-codes.js';
import { formatData } from './output.js';
import { renderBcc, renderView, viewData, type HistView } from './render.js';
import { pickTrace, reportsOf } from './saved.js';
import type { Session } from './session.js';
import { reportsView, traceTitle, traceView, type Verdict } from './view.js';

/** The view as the -o flag asks for it. */
export function formatView(view: HistView, output: string): string {
  if (output === 'json' || output === 'yaml') return formatData(viewData(view), output);
  if (output === 'bcc') return renderBcc(view);
  return renderView(view);
}

/** Prints the view (unless there is nothing to print) and the verdict's message; returns the exit code. */
export function emit(s: Session, view: HistView, verdict: Verdict): ExitCode {
  if (verdict.code !== EXIT.pending && verdict.code !== EXIT.notFound) s.io.out(formatView(view, s.inv.output));
  if (verdict.message) s.io.err(`${verdict.message}\n`);
  return verdict.code;
}

function filter(s: Session) {
  return { node: s.inv.node, vm: s.inv.vm };
}

/** The view of a trace in the cluster (its reports are read only for --node or --vm). */
export async function clusterView(s: Session, t: Trace): Promise<{ view: HistView; verdict: Verdict }> {
  const f = filter(s);
  const reports = f.node || f.vm ? await (await s.cluster()).api.reports(t) : undefined;
  return traceView(t, reports, f);
}

export function notFound(s: Session, name: string, namespace: string | undefined): CliError {
  const where = s.kind === 'VhostTrace' ? ` in namespace ${namespace}` : '';
  return new CliError(EXIT.notFound, `${s.kind} "${name}" not found${where}${s.kind === 'VhostTrace' ? ' (a ClusterVhostTrace? add --cluster)' : ''}`);
}

function showSaved(s: Session): ExitCode {
  const source = s.inv.file === '-' ? 'stdin' : s.inv.file!;
  const saved = s.saved();
  const name = s.inv.names[0];
  const t = pickTrace(saved, { name, kind: s.inv.kindGiven ? s.kind : undefined, namespace: s.inv.namespace }, source);
  if (t) {
    const { view, verdict } = traceView(t, reportsOf(saved, t), filter(s));
    return emit(s, view, verdict);
  }
  // Reports saved without their trace: all of them, or those of the trace named.
  const reports = saved.reports.filter((r) => name === undefined || r.spec.trace.name === name);
  if (reports.length === 0) {
    throw new CliError(EXIT.notFound, `${source} holds no trace${name ? ` named "${name}"` : ''} and no report${name ? ` of one` : ''}`);
  }
  const { view, verdict } = reportsView(reports, filter(s), source);
  return emit(s, view, verdict);
}

export async function show(s: Session): Promise<ExitCode> {
  if (s.inv.file !== undefined) return showSaved(s);
  const name = s.inv.names[0];
  if (!name) throw new CliError(EXIT.usage, 'show needs a trace name (or -f FILE)\nRun "kubectl vhosttrace --help" for usage.');
  const { api, namespace } = await s.cluster();
  const t = await api.get(s.kind, namespace, name);
  if (!t) throw notFound(s, name, namespace);
  const { view, verdict } = await clusterView(s, t);
  return emit(s, view, verdict);
}

/** ANSI: cursor home, clear the screen (what `watch` does between frames). */
const CLEAR = '\x1b[H\x1b[2J';

export async function watch(s: Session): Promise<ExitCode> {
  const name = s.inv.names[0]!;
  const { api, namespace } = await s.cluster();
  const stop = new AbortController();
  let last = '';
  let lastMessage: string | undefined;
  for await (const ev of api.watch(s.kind, namespace, name, stop.signal)) {
    if (ev.type === 'deleted') {
      s.io.err(`${s.kind} ${name} was deleted\n`);
      return EXIT.notFound;
    }
    const { view, verdict } = await clusterView(s, ev.trace);
    const frame = formatView(view, s.inv.output);
    if (frame !== last) {
      const footer = s.io.tty && s.inv.output === 'text' ? `\n(watching ${traceTitle(ev.trace)}: redrawn as reports arrive; ends when it completes; Ctrl-C to stop)\n` : '';
      s.io.out(s.io.tty ? `${CLEAR}${frame}${footer}` : frame);
      last = frame;
    }
    if (verdict.message !== lastMessage && verdict.code !== EXIT.pending) {
      if (verdict.message) s.io.err(`${verdict.message}\n`);
      lastMessage = verdict.message;
    }
    if (ev.trace.status?.phase === 'Completed') {
      stop.abort();
      return verdict.code === EXIT.pending ? EXIT.ok : verdict.code;
    }
  }
  return EXIT.ok;
}
