// The status of a trace from its reports: phase, conditions, per-node states, top VMs and the
// cluster summary (the exact merge of the reports' totals). Pure: the caller passes the clock.
import { empty, summarize, withoutBuckets } from '../api/histogram.js';
import { endTime } from '../api/lifetime.js';
import type { Trace } from '../api/reports.js';
import type {
  Condition,
  Direction,
  NodeState,
  Phase,
  RawHistogram,
  SummaryDirections,
  TraceStatus,
  VhostTraceReport,
  VMSummary,
} from '../api/v1alpha1.js';
import type { AgentProblem } from './agent-pods.js';
import { compactReport, isCompact, NODE_MESSAGE_CHARS, Reader, type CompactReport } from './compact.js';
import { defaultIntervalSeconds, formatSeconds, parseDuration, type ReportBudget } from './interval.js';

export const LIMITS = {
  /** Per-node rows in status (the schema's maxItems). */
  nodes: 100,
  /** Per-VM rows in status (the schema's maxItems). */
  vms: 50,
  /** Node names a condition message lists per group before "and N more". */
  namesInMessage: 20,
  /** A node's message in status is cut to this many characters. */
  nodeMessage: NODE_MESSAGE_CHARS,
  /** The status, serialized, stays under this; rows are dropped from the end until it does. */
  statusBytes: 60 * 1024,
} as const;

export interface RollupInput {
  trace: Trace;
  /**
   * This trace's reports (spec.trace.uid equals the trace's uid): compact, as the operator
   * caches them, or full (they are compacted first; same status either way).
   */
  reports: readonly (CompactReport | VhostTraceReport)[];
  /** Names of the nodes the trace selects now (KubeVirt nodes matching its nodeSelector). */
  selectedNodes: readonly string[];
  now: number;
  /** Mean serialized size of a report, for the default interval. */
  reportBytes?: number;
  /** node name -> why its agent pod is not running (agent-pods.ts), where it is not. */
  agentProblems?: ReadonlyMap<string, AgentProblem>;
  /** What all reports together may cost the API server (interval.ts's BUDGET by default). */
  budget?: ReportBudget;
}

const iso = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');

/** The interval in effect: spec.interval, else the default for this many nodes. */
export function intervalSeconds(t: Trace, nodes: number, reportBytes = 0, budget?: ReportBudget): number {
  return t.spec.interval ? parseDuration(t.spec.interval) / 1000 : defaultIntervalSeconds(nodes, reportBytes, budget);
}

/** A node whose last report is older than this has stopped reporting (ReportStale). */
export function staleAfterMs(intervalSec: number): number {
  return Math.max(30_000, 3 * intervalSec * 1000);
}

export type Hist4 = Record<Direction, { packets: RawHistogram; bytes: RawHistogram }>;

/** acc += sign x the four packed histograms at pos (compact.ts's order): histogram.merge's numbers. */
export function add(acc: Hist4, hists: Uint8Array, pos: number, sign: 1 | -1 = 1): void {
  const rd = new Reader(hists, pos);
  rd.addInto(acc.rx.packets, sign);
  rd.addInto(acc.rx.bytes, sign);
  rd.addInto(acc.tx.packets, sign);
  rd.addInto(acc.tx.bytes, sign);
}
export const zero4 = (): Hist4 => ({ rx: { packets: empty(), bytes: empty() }, tx: { packets: empty(), bytes: empty() } });

function nodeStates(input: RollupInput, reports: readonly CompactReport[], intervalSec: number): Map<string, NodeState> {
  const nodes = new Map<string, NodeState>();
  for (const n of input.selectedNodes) nodes.set(n, { name: n, state: 'Pending' });
  for (const r of reports) {
    const s = r.status;
    const name = r.spec.nodeName;
    const st: NodeState = { name, state: s?.state ?? 'Pending' };
    if (s?.reason) st.reason = s.reason;
    if (s?.message) st.message = s.message.slice(0, LIMITS.nodeMessage);
    if (s?.kernel) st.kernel = s.kernel;
    if (s?.mode) st.mode = s.mode;
    if (s?.observedTime) st.lastReportTime = s.observedTime;
    if (st.state === 'Reporting' && s?.observedTime && input.now - Date.parse(s.observedTime) > staleAfterMs(intervalSec)) {
      st.state = 'Failed';
      st.reason = 'ReportStale';
      st.message = `no report since ${s.observedTime} (expected every ${formatSeconds(intervalSec)})`;
    }
    nodes.set(name, st);
  }
  // A node without a current report whose agent pod cannot run says why: the pod knows more
  // than a stale or missing report.
  for (const [name, problem] of input.agentProblems ?? []) {
    const st = nodes.get(name);
    if (!st || st.state === 'Reporting') continue;
    st.state = 'Failed';
    st.reason = 'AgentNotRunning';
    st.message = problem.message.slice(0, LIMITS.nodeMessage);
  }
  return nodes;
}

const ORDER = { Failed: 0, Pending: 1, Reporting: 2 } as const;

function names(list: readonly NodeState[], withReason: boolean): string {
  const shown = list.slice(0, LIMITS.namesInMessage).map((n) => (withReason && n.reason ? `${n.name} (${n.reason})` : n.name));
  const more = list.length - shown.length;
  return shown.join(', ') + (more > 0 ? ` and ${more} more` : '');
}

function condition(prev: Condition[] | undefined, c: Omit<Condition, 'lastTransitionTime'>, now: number): Condition {
  const old = prev?.find((p) => p.type === c.type);
  return { ...c, lastTransitionTime: old && old.status === c.status ? old.lastTransitionTime : iso(now) };
}

function nodesReadyCondition(all: NodeState[], generation: number, prev: Condition[] | undefined, now: number): Condition {
  const failed = all.filter((n) => n.state === 'Failed');
  const pending = all.filter((n) => n.state === 'Pending');
  const base = { type: 'NodesReady', observedGeneration: generation };
  if (all.length === 0) {
    return condition(prev, { ...base, status: 'False', reason: 'NoNodesSelected', message: 'no KubeVirt node matches the nodeSelector' }, now);
  }
  if (failed.length === 0 && pending.length === 0) {
    return condition(prev, { ...base, status: 'True', reason: 'AllNodesReporting', message: `all ${all.length} nodes report` }, now);
  }
  // The reason is the most common failure, so `kubectl wait` users see the main problem.
  const byReason = new Map<string, number>();
  for (const n of failed) byReason.set(n.reason ?? 'Failed', (byReason.get(n.reason ?? 'Failed') ?? 0) + 1);
  const reason = failed.length ? [...byReason.entries()].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))[0]![0] : 'NodesPending';
  const parts: string[] = [];
  if (failed.length) parts.push(`${failed.length} of ${all.length} nodes cannot trace: ${names(failed, true)}`);
  if (pending.length) parts.push(`${pending.length} of ${all.length} nodes have not reported: ${names(pending, false)}`);
  return condition(prev, { ...base, status: 'False', reason, message: parts.join('; ') }, now);
}

/**
 * The first k of the indexes 0..n-1 as a stable sort by cmp orders them, in O(n log k): lower
 * indexes win ties, as in Array.prototype.sort.
 */
export function firstK(n: number, k: number, cmp: (a: number, b: number) => number): number[] {
  const top: number[] = [];
  if (k <= 0) return top;
  for (let x = 0; x < n; x++) {
    if (top.length === k && !(cmp(x, top[k - 1]!) < 0)) continue;
    let lo = 0;
    let hi = top.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (cmp(top[mid]!, x) <= 0) lo = mid + 1;
      else hi = mid;
    }
    top.splice(lo, 0, x);
    if (top.length > k) top.pop();
  }
  return top;
}

const safeCount = (x: number) => Number.isSafeInteger(x) && x >= 0;

/** What the roll-up adds up over the reports: the cluster's totals and the per-VM rows. */
export interface Aggregate {
  totals: Hist4;
  vms: VMSummary[];
  other: NonNullable<TraceStatus['otherVMs']>;
}
export type Aggregator = (reports: readonly CompactReport[], directions: readonly Direction[]) => Aggregate;

/** The ranking of VMs: most runs (RX + TX) first, then by namespace and name. */
export function byRuns(a: number, b: number, runs: (i: number) => number, name: (i: number, k: 0 | 1) => string): number {
  return runs(b) - runs(a) || name(a, 0).localeCompare(name(b, 0)) || name(a, 1).localeCompare(name(b, 1));
}

/**
 * One listed VM's row: its histograms merged over every (report, VM index) that has it; a VM
 * that migrated reported from two nodes and is shown on the one with most runs.
 */
export function vmRow(namespace: string, name: string, refs: ReadonlyArray<readonly [CompactReport, number]>, directions: readonly Direction[]): VMSummary {
  const row: VMSummary = { namespace, name };
  const h = zero4();
  const nodeRuns = new Map<string, number>();
  for (const [r, v] of refs) {
    const vmsOf = r.packed.vms;
    add(h, r.packed.hists, vmsOf[3 * v + 2]!);
    const node = r.spec.nodeName;
    nodeRuns.set(node, (nodeRuns.get(node) ?? 0) + vmsOf[3 * v]! + vmsOf[3 * v + 1]!);
  }
  const node = [...nodeRuns.entries()].sort((x, y) => y[1] - x[1] || x[0].localeCompare(y[0]))[0]?.[0];
  if (node) row.node = node;
  for (const d of directions) row[d] = { packets: withoutBuckets(h[d].packets), bytes: withoutBuckets(h[d].bytes) };
  return row;
}

/** The roll-up from scratch: every report's totals and VMs added up. */
export const fullAggregate: Aggregator = (reports, directions) => {
  const totals = zero4();
  for (const r of reports) add(totals, r.packed.hists, 0);
  return { totals, ...vmRows(reports, directions) };
};

function vmRows(reports: readonly CompactReport[], directions: readonly Direction[]): Omit<Aggregate, 'totals'> {
  // Pass 1, cheap: runs per VM, in typed arrays indexed by the order VMs are first seen, so
  // 250,000 VMs cost no object each (the garbage of one roll-up would otherwise grow the
  // process by about 50 MB). Keyed by namespace, then name: Kubernetes namespaces hold no
  // "/", so this is the "<namespace>/<name>" key it replaces, without a string per VM.
  // Pass 2 merges the histograms of the listed VMs only.
  let max = 0;
  for (const r of reports) max += r.packed.vms.length / 3;
  const rx = new Float64Array(max);
  const tx = new Float64Array(max);
  /** Where each VM was first reported: report index, VM index. */
  const at = new Int32Array(2 * max);
  /** More (report, VM) pairs of the VMs reported from several nodes (they migrated). */
  const more = new Map<number, number[]>();
  const byNs = new Map<string, Map<string, number>>();
  let n = 0;
  reports.forEach((r, ri) => {
    const { vms, names } = r.packed;
    for (let v = 0; 3 * v < vms.length; v++) {
      const namespace = names[2 * v]!;
      let m = byNs.get(namespace);
      if (!m) byNs.set(namespace, (m = new Map()));
      let i = m.get(names[2 * v + 1]!);
      if (i === undefined) {
        m.set(names[2 * v + 1]!, (i = n++));
        at[2 * i] = ri;
        at[2 * i + 1] = v;
      } else {
        const l = more.get(i);
        if (l) l.push(ri, v);
        else more.set(i, [ri, v]);
      }
      rx[i]! += vms[3 * v]!;
      tx[i]! += vms[3 * v + 1]!;
    }
  });
  const nameOf = (i: number, k: 0 | 1) => reports[at[2 * i]!]!.packed.names[2 * at[2 * i + 1]! + k]!;
  const runsOf = (i: number) => rx[i]! + tx[i]!;
  const cmp = (a: number, b: number) => byRuns(a, b, runsOf, nameOf);
  // Only the listed VMs need an order; the rest are summed in any order, which gives the sums
  // of the sorted order exactly while they are non-negative integers below 2^53 (else: sort).
  let top = firstK(n, LIMITS.vms, cmp);
  const listed = new Set(top);
  let rxRuns = 0;
  let txRuns = 0;
  let exact = true;
  for (let i = 0; i < n; i++) {
    if (listed.has(i)) continue;
    rxRuns += rx[i]!;
    txRuns += tx[i]!;
    exact &&= safeCount(rx[i]!) && safeCount(tx[i]!);
  }
  if (!(exact && safeCount(rxRuns) && safeCount(txRuns))) {
    const sorted = Array.from({ length: n }, (_, i) => i).sort(cmp);
    top = sorted.slice(0, LIMITS.vms);
    const rest = sorted.slice(LIMITS.vms);
    rxRuns = rest.reduce((s, i) => s + rx[i]!, 0);
    txRuns = rest.reduce((s, i) => s + tx[i]!, 0);
  }
  const vms = top.map((i) => {
    const rows = [at[2 * i]!, at[2 * i + 1]!, ...(more.get(i) ?? [])];
    const refs: Array<[CompactReport, number]> = [];
    for (let j = 0; j < rows.length; j += 2) refs.push([reports[rows[j]!]!, rows[j + 1]!]);
    return vmRow(nameOf(i, 0), nameOf(i, 1), refs, directions);
  });
  return { vms, other: { count: n - vms.length, rxRuns, txRuns } };
}

/** Drops per-node rows, then per-VM rows, from the end until the status fits LIMITS.statusBytes. */
export function bound(status: TraceStatus): TraceStatus {
  const s = { ...status, nodes: [...(status.nodes ?? [])], vms: [...(status.vms ?? [])] };
  let size = Buffer.byteLength(JSON.stringify(s));
  while (size > LIMITS.statusBytes && (s.nodes.length > 0 || s.vms.length > 0)) {
    if (s.nodes.length > 10 || s.vms.length === 0) s.nodes.pop();
    else {
      const dropped = s.vms.pop()!;
      const o = s.otherVMs ?? { count: 0, rxRuns: 0, txRuns: 0 };
      s.otherVMs = {
        count: (o.count ?? 0) + 1,
        rxRuns: (o.rxRuns ?? 0) + (dropped.rx?.packets.count ?? 0),
        txRuns: (o.txRuns ?? 0) + (dropped.tx?.packets.count ?? 0),
      };
    }
    size = Buffer.byteLength(JSON.stringify(s));
  }
  return s;
}

/**
 * The trace's status. A Completed trace keeps the status it completed with: its final numbers
 * stay whatever happens to the reports afterwards. `aggregate` adds up the reports (from scratch
 * by default; rollup-incremental.ts keeps the sums between calls and gives the same status).
 */
export function rollUp(input: RollupInput, aggregate: Aggregator = fullAggregate): TraceStatus {
  const { trace, now } = input;
  const prev = trace.status;
  if (prev?.phase === 'Completed') return prev;
  const reports = input.reports.map((r) => (isCompact(r) ? r : compactReport(r)));
  const generation = trace.metadata.generation ?? 1;
  const start = prev?.startTime ? Date.parse(prev.startTime) : now;
  const directions = trace.spec.directions ?? ['rx', 'tx'];

  const nodeCount = new Set([...input.selectedNodes, ...reports.map((r) => r.spec.nodeName)]).size;
  const intervalSec = intervalSeconds(trace, nodeCount, input.reportBytes, input.budget);
  const all = [...nodeStates(input, reports, intervalSec).values()].sort((a, b) => ORDER[a.state] - ORDER[b.state] || a.name.localeCompare(b.name));
  const count = (s: NodeState['state']) => all.filter((n) => n.state === s).length;
  const nodeCounts = { selected: all.length, reporting: count('Reporting'), pending: count('Pending'), failed: count('Failed') };

  const { totals, vms, other } = aggregate(reports, directions);
  const summary: SummaryDirections = {};
  for (const d of directions) summary[d] = { packets: summarize(totals[d].packets), bytes: summarize(totals[d].bytes) };

  const end = endTime({ ...trace, status: { ...prev, startTime: iso(start) } });
  const done = end !== undefined && now >= end;
  // Pending until every selected node has reported once, or one start grace has passed.
  const graceOver = now - start >= staleAfterMs(intervalSec);
  let phase: Phase;
  if (done) phase = 'Completed';
  else if (nodeCounts.selected > 0 && nodeCounts.failed === nodeCounts.selected) phase = 'Failed';
  else if (nodeCounts.reporting === 0 || (nodeCounts.pending > 0 && !graceOver)) phase = 'Pending';
  else phase = 'Running';

  const conditions = [
    nodesReadyCondition(all, generation, prev?.conditions, now),
    condition(
      prev?.conditions,
      done
        ? { type: 'Completed', status: 'True', reason: 'DurationElapsed', message: `traced for ${trace.spec.duration}`, observedGeneration: generation }
        : {
            type: 'Completed',
            status: 'False',
            reason: 'Tracing',
            message: end !== undefined ? `ends at ${iso(end)}` : 'runs until deleted',
            observedGeneration: generation,
          },
      now,
    ),
  ];

  const status: TraceStatus = {
    phase,
    observedGeneration: generation,
    startTime: iso(start),
    ...(done ? { endTime: iso(end) } : {}),
    interval: trace.spec.interval ?? formatSeconds(intervalSec),
    nodesReporting: `${nodeCounts.reporting}/${nodeCounts.selected}`,
    nodeCounts,
    nodes: all.slice(0, LIMITS.nodes),
    conditions,
    vms,
    otherVMs: other,
    summary,
  };
  return bound(status);
}

/** When the roll-up of this trace changes by the clock alone (completion, staleness, grace). */
export function nextTimedChange(input: RollupInput, status: TraceStatus): number | undefined {
  if (status.phase === 'Completed') return undefined;
  const intervalSec = status.interval ? parseDuration(status.interval) / 1000 : 10;
  const start = status.startTime ? Date.parse(status.startTime) : input.now;
  const times: number[] = [start + staleAfterMs(intervalSec)];
  const end = endTime({ ...input.trace, status });
  if (end !== undefined) times.push(end);
  for (const r of input.reports) {
    const t = r.status?.observedTime;
    if (r.status?.state === 'Reporting' && t) times.push(Date.parse(t) + staleAfterMs(intervalSec) + 1);
  }
  const future = times.filter((t) => t > input.now);
  return future.length ? Math.min(...future) : undefined;
}
