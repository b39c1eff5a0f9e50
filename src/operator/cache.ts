// What the operator watches: traces of both kinds, their reports (indexed by trace uid),
// nodes, its own DaemonSet and that DaemonSet's pods. Informers (src/kube/informer.ts) keep
// each one current.
// Reports and nodes are cached trimmed to what the operator reads (the informers' transform),
// so the caches stay small at 5,000 nodes x 50 VMs (docs/operator.md, Memory).
import type { Logger } from 'pino';
import { LABELS, type Trace } from '../api/reports.js';
import { API_VERSION, type ClusterVhostTrace, type VhostTrace, type VhostTraceReport } from '../api/v1alpha1.js';
import type { KubeClient, KubeObject } from '../kube/client.js';
import { Informer } from '../kube/informer.js';
import { agentPodProblem, trimAgentPod, type AgentPod, type AgentProblem } from './agent-pods.js';
import { compactReport, type CompactReport } from './compact.js';
import type { OperatorConfig } from './config.js';
import { MANAGED_BY, agentPodLabels, selectorOf } from './daemonset.js';
import type { OperatorMetrics } from './metrics.js';

/** An API type as the informer holds it. */
type Obj<T> = T & { [k: string]: unknown };

export interface Node extends KubeObject {
  metadata: { name: string; labels?: Record<string, string>; [k: string]: unknown };
}

/**
 * A Node as the operator caches it: name and labels (node selectors), resourceVersion (the
 * informer). Real nodes carry 10-30 KB each (images, conditions), heartbeats included.
 */
export function trimNode(n: Node): Node {
  const { name, namespace, resourceVersion, labels } = n.metadata;
  return { metadata: { name, ...(namespace ? { namespace } : {}), ...(resourceVersion ? { resourceVersion } : {}), ...(labels ? { labels } : {}) } };
}

/** The work-queue key of a trace: "VhostTrace/<ns>/<name>" or "ClusterVhostTrace//<name>". */
export const traceKey = (kind: string, namespace: string | undefined, name: string) => `${kind}/${namespace ?? ''}/${name}`;
export const DAEMONSET_KEY = 'DaemonSet';

export function parseTraceKey(key: string): { kind: Trace['kind']; namespace?: string; name: string } {
  const [kind, namespace, name] = key.split('/') as [Trace['kind'], string, string];
  return namespace ? { kind, namespace, name } : { kind, name };
}

export interface CacheEvents {
  trace(key: string): void;
  report(key: string, report: CompactReport): void;
  nodeLabels(): void;
  daemonSet(): void;
  /** A node's agent pod started or stopped having a problem (agent-pods.ts). */
  agentProblems(): void;
}

export class Caches {
  readonly traces: Informer<Obj<VhostTrace>>;
  readonly clusterTraces: Informer<Obj<ClusterVhostTrace>>;
  readonly reports: Informer<Obj<VhostTraceReport>, CompactReport>;
  readonly nodes: Informer<Node>;
  readonly daemonSets: Informer<KubeObject>;
  readonly agentPods: Informer<AgentPod & KubeObject>;
  /** trace uid -> report key -> report. */
  private readonly byUid = new Map<string, Map<string, CompactReport>>();
  /** node name -> its agent pod's problem, if it has one. */
  private readonly problems = new Map<string, AgentProblem>();
  /** node name -> labels, to tell label changes from heartbeats. */
  private readonly nodeLabels = new Map<string, string>();
  /** Mean serialized size of a report's status, over the reports seen (for the default interval). */
  private reportBytesSum = 0;
  private readonly reportBytes = new Map<string, number>();

  constructor(client: KubeClient, cfg: OperatorConfig, on: CacheEvents, metrics: OperatorMetrics, log: Logger) {
    const base = `/apis/${API_VERSION}`;
    this.traces = new Informer<Obj<VhostTrace>>(client, `${base}/vhosttraces`);
    this.clusterTraces = new Informer<Obj<ClusterVhostTrace>>(client, `${base}/clustervhosttraces`);
    this.reports = new Informer<Obj<VhostTraceReport>, CompactReport>(client, `${base}/vhosttracereports`, {
      labelSelector: LABELS.traceUid,
      transform: compactReport,
      // A full relist of 5,000 reports (100 MB of JSON) would set the operator's peak memory.
      metadataRelistMaxReads: 200,
      // The first list is still a full one: in small pages, so its parse stays young garbage.
      pageSize: 50,
    });
    this.nodes = new Informer<Node>(client, '/api/v1/nodes', { transform: trimNode });
    this.daemonSets = new Informer<KubeObject>(client, `/apis/apps/v1/namespaces/${cfg.namespace}/daemonsets`, {
      labelSelector: selectorOf(MANAGED_BY),
    });
    this.agentPods = new Informer<AgentPod & KubeObject>(client, `/api/v1/namespaces/${cfg.namespace}/pods`, {
      labelSelector: selectorOf(agentPodLabels(cfg.agent.name)),
      transform: (p) => trimAgentPod(p) as AgentPod & KubeObject,
    });

    const onTrace = (_: string, t: Trace) => on.trace(traceKey(t.kind, t.metadata.namespace, t.metadata.name!));
    this.traces.on('change', onTrace);
    this.clusterTraces.on('change', onTrace);
    this.reports.on('change', (type, r) => {
      const uid = r.spec?.trace?.uid;
      if (!uid) return;
      const k = `${r.metadata.namespace}/${r.metadata.name}`;
      let m = this.byUid.get(uid);
      if (!m) this.byUid.set(uid, (m = new Map()));
      this.reportBytesSum -= this.reportBytes.get(k) ?? 0;
      if (type === 'DELETED') {
        m.delete(k);
        this.reportBytes.delete(k);
        if (m.size === 0) this.byUid.delete(uid);
      } else {
        m.set(k, r);
        this.reportBytes.set(k, r.statusBytes);
        this.reportBytesSum += r.statusBytes;
      }
      const t = r.spec.trace;
      on.report(traceKey(t.kind, t.kind === 'VhostTrace' ? t.namespace : undefined, t.name), r);
    });
    this.nodes.on('change', (type, n) => {
      const name = n.metadata.name;
      const labels = type === 'DELETED' ? undefined : JSON.stringify(n.metadata.labels ?? {});
      if (this.nodeLabels.get(name) === labels) return;
      if (labels === undefined) this.nodeLabels.delete(name);
      else this.nodeLabels.set(name, labels);
      on.nodeLabels();
    });
    this.daemonSets.on('change', () => on.daemonSet());
    this.agentPods.on('change', (type, p) => {
      // Traces are looked at again only when a node's problem appears, changes or goes, not
      // at every readiness or restart-count change of a pod.
      const node = p.spec?.nodeName;
      if (!node) return;
      const problem = type === 'DELETED' ? undefined : agentPodProblem(p);
      const old = this.problems.get(node);
      if (problem) {
        if (old?.message === problem.message) return;
        this.problems.set(node, problem);
      } else {
        // Only this pod's own problem goes (the node's next pod may come before the old one goes).
        if (old?.pod !== p.metadata.name) return;
        this.problems.delete(node);
      }
      on.agentProblems();
    });

    const named: Array<[string, Informer<any>]> = [
      ['vhosttraces', this.traces],
      ['clustervhosttraces', this.clusterTraces],
      ['vhosttracereports', this.reports],
      ['nodes', this.nodes],
      ['daemonsets', this.daemonSets],
      ['pods', this.agentPods],
    ];
    for (const [resource, inf] of named) {
      for (const ev of ['gone', 'idle', 'reconnect'] as const) inf.on(ev, () => metrics.informerEvents.inc({ resource, event: ev }));
      inf.on('list', (_n: number, _why: string, how: { metadata: boolean }) => metrics.informerEvents.inc({ resource, event: how.metadata ? 'metadata_list' : 'list' }));
      inf.on('error', (err: Error, delayMs: number) => {
        metrics.informerEvents.inc({ resource, event: 'error' });
        log.warn({ resource, err: err.message, delayMs }, 'list/watch failed; retrying');
      });
    }
    this.all = named.map(([, i]) => i);
  }

  private readonly all: Informer<any>[];

  start(): Promise<void> {
    for (const i of this.all) void i.run();
    return Promise.all(this.all.map((i) => i.synced)).then(() => undefined);
  }

  stop(): void {
    for (const i of this.all) i.stop();
  }

  allTraces(): Trace[] {
    return [...this.traces.list(), ...this.clusterTraces.list()];
  }

  trace(key: string): Trace | undefined {
    const { kind, namespace, name } = parseTraceKey(key);
    return kind === 'VhostTrace' ? this.traces.get(namespace, name) : this.clusterTraces.get(undefined, name);
  }

  reportsOf(uid: string): CompactReport[] {
    return [...(this.byUid.get(uid)?.values() ?? [])];
  }

  meanReportBytes(): number {
    return this.reportBytes.size ? this.reportBytesSum / this.reportBytes.size : 0;
  }

  /** node name -> why its agent pod is not running, for the nodes where it is not. */
  agentProblems(): ReadonlyMap<string, AgentProblem> {
    return this.problems;
  }

  allNodes(): Node[] {
    return this.nodes.list();
  }
}
