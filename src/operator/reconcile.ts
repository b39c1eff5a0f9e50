// reconcile(key): read what the caches hold, compute what should be, apply the difference.
// Two kinds of keys: a trace (its status) and "DaemonSet" (the one agent DaemonSet for all
// traces). Each call starts from what the caches hold; the little state kept here (last write,
// pending report times, each trace's roll-up sums) saves writes and work and measures latency,
// and is not needed to be correct: a fresh Reconciler writes the same statuses.
import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import { endTime, isActive } from '../api/lifetime.js';
import type { Trace } from '../api/reports.js';
import { API_VERSION, type TraceStatus } from '../api/v1alpha1.js';
import { ApiError, type KubeClient, type KubeObject } from '../kube/client.js';
import { DAEMONSET_KEY, type Caches } from './cache.js';
import type { OperatorConfig } from './config.js';
import { agentOwner, desiredDaemonSet, selectsNode, type OwnerReference } from './daemonset.js';
import type { OperatorMetrics } from './metrics.js';
import { IncrementalRollup } from './rollup-incremental.js';
import { nextTimedChange } from './rollup.js';

export const HASH_ANNOTATION = 'vhosttrace.io/spec-hash';

/** What a reconcile asks of the queue: look again after this long (undefined: only on change). */
export interface Result {
  requeueAfterMs?: number;
}

/** JSON with sorted keys, to compare objects whatever order their fields came in. */
export function canonical(v: unknown): string {
  return JSON.stringify(v, (_k, x: unknown) =>
    x && typeof x === 'object' && !Array.isArray(x) ? Object.fromEntries(Object.entries(x).sort(([a], [b]) => a.localeCompare(b))) : x,
  );
}

export function tracePath(t: { kind: string; metadata: { name?: string; namespace?: string } }): string {
  const base = `/apis/${API_VERSION}`;
  return t.kind === 'VhostTrace'
    ? `${base}/namespaces/${t.metadata.namespace}/vhosttraces/${t.metadata.name}`
    : `${base}/clustervhosttraces/${t.metadata.name}`;
}

export class Reconciler {
  /** key -> canonical status last written, and when. */
  private readonly written = new Map<string, { status: string; at: number }>();
  /** key -> [observedTime, received] (ms) of reports not yet in a written status. */
  private readonly pendingReports = new Map<string, Array<[number, number]>>();
  /** key -> the trace's roll-up sums, kept from one roll-up to the next (rollup-incremental.ts). */
  private readonly rollups = new Map<string, { uid: string; sums: IncrementalRollup }>();

  constructor(
    private readonly client: KubeClient,
    private readonly cfg: OperatorConfig,
    private readonly caches: Caches,
    private readonly metrics: OperatorMetrics,
    private readonly log: Logger,
    private readonly clock: () => number = Date.now,
  ) {}

  /** A report of this trace changed: its observedTime starts a report-to-status measurement. */
  noteReport(key: string, observedTime: string | undefined): void {
    if (!observedTime) return;
    const list = this.pendingReports.get(key) ?? [];
    if (list.length < 100_000) list.push([Date.parse(observedTime), this.clock()]);
    this.pendingReports.set(key, list);
  }

  async reconcile(key: string): Promise<Result> {
    return key === DAEMONSET_KEY ? this.reconcileDaemonSet() : this.reconcileTrace(key);
  }

  async reconcileTrace(key: string): Promise<Result> {
    const log = this.log.child({ trace: key });
    const trace = this.caches.trace(key);
    if (!trace || trace.metadata.deletionTimestamp) {
      // Its reports are owned by it: the garbage collector deletes them.
      this.written.delete(key);
      this.pendingReports.delete(key);
      this.rollups.delete(key);
      return {};
    }
    const now = this.clock();
    // Rate limit first, before the roll-up's work: at most one write per trace per
    // statusMinIntervalMs; the key comes back when a write is allowed again. The write that
    // completes a trace is not held back (its final numbers should not wait).
    const last = this.written.get(key);
    const wait = last ? last.at + this.cfg.statusMinIntervalMs - now : 0;
    const end = endTime(trace);
    if (wait > 0 && !(end !== undefined && now >= end && trace.status?.phase !== 'Completed')) {
      this.metrics.statusWrites.inc({ result: 'deferred' });
      return { requeueAfterMs: wait };
    }
    const selectedNodes = this.caches
      .allNodes()
      .filter((n) => selectsNode(trace, n.metadata.labels))
      .map((n) => n.metadata.name);
    const reports = this.caches.reportsOf(trace.metadata.uid!);
    const budget = { writesPerSecond: this.cfg.reportWritesPerSecond, bytesPerSecond: this.cfg.reportBytesPerSecond };
    const input = { trace, reports, selectedNodes, now, reportBytes: this.caches.meanReportBytes(), agentProblems: this.caches.agentProblems(), budget };
    let kept = this.rollups.get(key);
    if (!kept || kept.uid !== trace.metadata.uid) this.rollups.set(key, (kept = { uid: trace.metadata.uid!, sums: new IncrementalRollup() }));
    const t0 = performance.now();
    const status = kept.sums.rollUp(input);
    this.metrics.rollupSeconds.observe((performance.now() - t0) / 1000);
    // A Completed status is final (rollUp returns it as it is): its sums are of no more use.
    if (status.phase === 'Completed') this.rollups.delete(key);
    const next = nextTimedChange(input, status);
    const requeue = (): Result => (next !== undefined ? { requeueAfterMs: Math.max(0, next - now) } : {});

    const want = canonical(status);
    if (want === canonical(trace.status ?? {}) || want === last?.status) {
      this.metrics.statusWrites.inc({ result: 'unchanged' });
      this.pendingReports.delete(key);
      return requeue();
    }
    await this.writeStatus(trace, status);
    const done = this.clock();
    this.written.set(key, { status: want, at: done });
    for (const [observed, received] of this.pendingReports.get(key) ?? []) {
      this.metrics.reportToStatus.observe(Math.max(0, done - observed) / 1000);
      this.metrics.eventToStatus.observe((done - received) / 1000);
    }
    this.pendingReports.delete(key);
    this.metrics.statusWrites.inc({ result: 'written' });
    log.info(
      { phase: status.phase, nodes: status.nodesReporting, rxRuns: status.summary?.rx?.packets.count, txRuns: status.summary?.tx?.packets.count },
      'status written',
    );
    if (status.phase === 'Completed' && trace.status?.phase !== 'Completed') this.log.info({ trace: key }, 'trace completed');
    return requeue();
  }

  private async writeStatus(trace: Trace, status: TraceStatus): Promise<void> {
    const { name, namespace, uid } = trace.metadata;
    // metadata.uid makes the write a precondition: never the status of a re-created namesake.
    const body = { apiVersion: API_VERSION, kind: trace.kind, metadata: { name, ...(namespace ? { namespace } : {}), uid }, status };
    await this.client.apply(`${tracePath(trace)}/status`, body as KubeObject, this.cfg.fieldManager);
  }

  async reconcileDaemonSet(): Promise<Result> {
    const log = this.log.child({ daemonSet: `${this.cfg.namespace}/${this.cfg.agent.name}` });
    const now = this.clock();
    const traces = this.caches.allTraces();
    const desired = desiredDaemonSet(traces, this.cfg, now);
    const existing = this.caches.daemonSets.get(this.cfg.namespace, this.cfg.agent.name);
    const path = `/apis/apps/v1/namespaces/${this.cfg.namespace}/daemonsets/${this.cfg.agent.name}`;
    // The DaemonSet must go when the last active trace ends by the clock: look again then.
    const ends = traces.filter((t) => isActive(t, now)).map(endTime).filter((e): e is number => e !== undefined);
    const result: Result = ends.length ? { requeueAfterMs: Math.max(0, Math.min(...ends) - now) + 1 } : {};
    if (!desired) {
      if (existing) {
        await this.client.delete(path, { propagationPolicy: 'Background' });
        log.info('no active trace: deleted the agent DaemonSet');
      }
      return result;
    }
    const hash = createHash('sha256').update(canonical(desired)).digest('hex').slice(0, 16);
    const meta = existing?.metadata as { annotations?: Record<string, string>; ownerReferences?: OwnerReference[] } | undefined;
    const owned = meta?.ownerReferences?.some((r) => r.kind === 'ServiceAccount' && r.name === this.cfg.agent.serviceAccountName);
    if (meta?.annotations?.[HASH_ANNOTATION] === hash && owned) return result;
    // Read afresh, not cached: after an uninstall the ServiceAccount is gone, and then no
    // DaemonSet may be made (its pods could not be admitted without it anyway).
    const saPath = `/api/v1/namespaces/${this.cfg.namespace}/serviceaccounts/${this.cfg.agent.serviceAccountName}`;
    const sa = await this.client.find(saPath);
    if (!sa) throw new Error(`the agent's ServiceAccount ${saPath} does not exist (vhosttrace uninstalled?); no agent DaemonSet without it`);
    desired.metadata.annotations = { [HASH_ANNOTATION]: hash };
    desired.metadata.ownerReferences = [agentOwner(sa)];
    try {
      await this.client.apply(path, desired, this.cfg.fieldManager);
    } catch (e) {
      if (e instanceof ApiError) log.error({ code: e.code, err: e.message }, 'applying the agent DaemonSet failed');
      throw e;
    }
    log.info({ traces: traces.filter((t) => isActive(t, now)).length, created: !existing }, 'applied the agent DaemonSet');
    return result;
  }
}
