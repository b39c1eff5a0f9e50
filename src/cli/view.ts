// What `show` has to say about a trace and its reports: the histograms to print and the verdict, that is
// the exit code and the stderr message for a trace that is pending, failed, or lacks the node or VM asked
// for. Pure.
import type { Trace } from '../api/reports.js';
import type { Condition, VhostTraceReport } from '../api/v1alpha1.js';
import { EXIT, type ExitCode } from './exit-codes.js';
import { mergeReports, type HistView, type ReportFilter } from './render.js';

export interface Verdict {
  code: ExitCode;
  /** For stderr; absent when all is well. */
  message?: string;
}

export function traceTitle(t: Trace): string {
  return `${t.kind} ${t.metadata.namespace ? `${t.metadata.namespace}/` : ''}${t.metadata.name}`;
}

function conditionLines(conditions: readonly Condition[] | undefined): string {
  return (conditions ?? []).map((c) => `\n  ${c.type}=${c.status} ${c.reason}: ${c.message}`).join('');
}

function nodeLines(t: Trace, state: 'Failed' | 'Pending'): string {
  return (t.status?.nodes ?? [])
    .filter((n) => n.state === state)
    .map((n) => `\n  node ${n.name}: ${n.state}${n.reason ? ` ${n.reason}` : ''}${n.message ? `: ${n.message}` : ''}`)
    .join('');
}

/** No node has reported yet: nothing to show, but there may be soon. */
export function isPending(t: Trace): boolean {
  const st = t.status;
  if (!st?.phase || st.phase === 'Pending') {
    const reporting = st?.nodeCounts?.reporting ?? Number(st?.nodesReporting?.split('/')[0] ?? 0);
    return reporting === 0;
  }
  return false;
}

/** The verdict on the trace alone: failed, pending, or fine. */
export function traceVerdict(t: Trace): Verdict {
  const st = t.status;
  if (st?.phase === 'Failed') {
    return { code: EXIT.failed, message: `${traceTitle(t)} failed: no selected node can trace${conditionLines(st.conditions)}${nodeLines(t, 'Failed')}` };
  }
  if (isPending(t)) {
    return {
      code: EXIT.pending,
      message: `${traceTitle(t)} has no report yet (${st?.phase ?? 'no status: is the operator running?'}, nodes ${st?.nodesReporting ?? '0/0'} reporting)${conditionLines(st?.conditions)}`,
    };
  }
  return { code: EXIT.ok };
}

function headerOf(t: Trace): Omit<HistView, 'histograms'> {
  const st = t.status;
  return {
    trace: { kind: t.kind, name: t.metadata.name ?? '', ...(t.metadata.namespace ? { namespace: t.metadata.namespace } : {}) },
    ...(st?.phase ? { phase: st.phase } : {}),
    ...(st?.nodesReporting ? { nodesReporting: st.nodesReporting } : {}),
    ...(st?.startTime ? { startTime: st.startTime } : {}),
    ...(st?.endTime ? { endTime: st.endTime } : {}),
  };
}

/**
 * The view of a trace: the cluster-wide summary from its status, or (with a filter) the exact
 * merge of its reports. With a filter, `reports` must be the trace's reports.
 */
export function traceView(t: Trace, reports: readonly VhostTraceReport[] | undefined, f: ReportFilter): { view: HistView; verdict: Verdict } {
  const verdict = traceVerdict(t);
  if (!f.node && !f.vm) return { view: { ...headerOf(t), histograms: t.status?.summary ?? {} }, verdict };
  const scoped = { ...headerOf(t), ...(f.node ? { node: f.node } : {}), ...(f.vm ? { vm: f.vm } : {}) };
  const fromReports = reportsVerdict(reports ?? [], f, t);
  const view = { ...scoped, histograms: fromReports.code === EXIT.ok ? mergeReports(reports ?? [], f) : {} };
  // A failed trace stays failed whatever one node or VM shows.
  return { view, verdict: verdict.code === EXIT.failed ? verdict : fromReports };
}

/** Whether the reports hold the node or VM asked for; the trace, when known, tells pending from unknown. */
export function reportsVerdict(reports: readonly VhostTraceReport[], f: ReportFilter, t?: Trace): Verdict {
  const where = t ? traceTitle(t) : 'the reports';
  if (f.node && !reports.some((r) => r.spec.nodeName === f.node)) {
    const selected = t?.status?.nodes?.some((n) => n.name === f.node);
    if (selected || (t && isPending(t))) return { code: EXIT.pending, message: `node ${f.node} has not reported for ${where} yet` };
    const nodes = [...new Set(reports.map((r) => r.spec.nodeName))].sort();
    return { code: EXIT.notFound, message: `node ${f.node} has no report for ${where}${nodes.length ? ` (reports from: ${nodes.join(', ')})` : ''}` };
  }
  if (f.vm) {
    if (reports.length === 0) return { code: EXIT.pending, message: `no node has reported for ${where} yet` };
    const seen = reports.some((r) => (!f.node || r.spec.nodeName === f.node) && r.status?.vms?.some((v) => `${v.namespace}/${v.name}` === f.vm));
    if (!seen) return { code: EXIT.notFound, message: `VM ${f.vm} is in none of the ${reports.length} reports of ${where}${f.node ? ` on node ${f.node}` : ''}` };
  }
  return { code: EXIT.ok };
}

/** The view of reports saved without their trace (`-f` on `kubectl get vhtr -o yaml`). */
export function reportsView(reports: readonly VhostTraceReport[], f: ReportFilter, source: string): { view: HistView; verdict: Verdict } {
  const verdict = reportsVerdict(reports, f);
  const nodes = new Set(reports.map((r) => r.spec.nodeName)).size;
  const view: HistView = {
    from: `${reports.length} report${reports.length === 1 ? '' : 's'} from ${nodes} node${nodes === 1 ? '' : 's'} in ${source}`,
    ...(f.node ? { node: f.node } : {}),
    ...(f.vm ? { vm: f.vm } : {}),
    histograms: verdict.code === EXIT.ok ? mergeReports(reports, f) : {},
  };
  return { view, verdict };
}
