// The node agent: watches the traces that select its node, runs the node's one loader, and
// writes one VhostTraceReport per active trace at the trace's interval. Everything it must
// not lose (each trace's ledger, the maps' generation, the cgroup -> VM mappings) is kept in
// its state dir on the host, so a restarted agent continues where it stopped.
import { spawn } from 'node:child_process';
import type { Server } from 'node:http';
import type { Logger } from 'pino';
import { merge } from '../api/histogram.js';
import { isFinished } from '../api/lifetime.js';
import { reportSkeleton, traceRef, type Trace } from '../api/reports.js';
import { matches } from '../api/selector.js';
import { API_VERSION, type ClusterVhostTrace, type RawHistogram, type VhostTrace, type VhostTraceReport } from '../api/v1alpha1.js';
import { isNotFound, resourcePath, type KubeClient, type KubeObject } from '../kube/client.js';
import { Informer } from '../kube/informer.js';
import type { LoaderSnapshot } from '../loader/snapshot.js';
import { closeServer, portOf, serveEndpoints } from '../metrics/server.js';
import { header, sample } from '../metrics/text.js';
import { Attributor, type OwnerReference, type PodInfo } from './attribution.js';
import { DETACH_ANNOTATION, nodeHealth, type Detach, type EndedDetach } from './health.js';
import { scanCgroups, scanVhostWorkers, unifiedRoot } from './host-scan.js';
import { advance, CountsWentBackwards, openLedger, sinceStart, type Ledger, type SinceStart } from './ledger.js';
import { LoaderSupervisor } from './loader-supervisor.js';
import { histogramSeries } from './metrics.js';
import { probeKernel, type KernelFacts, type ProbePaths } from './probe.js';
import { buildReportStatus } from './report-status.js';
import { afterReport, intervalOf, MAX_SLEEP_MS, newSchedule, reportNow, wakeFor, type LineState, type Schedule } from './schedule.js';
import { StateDir } from './state-dir.js';

export interface AgentConfig {
  nodeName: string;
  /** Where vhosttrace is installed: ClusterVhostTrace reports go there. */
  installNamespace: string;
  /** The loader's argv: vhost-hist --json --pin ... (or the replay in tests). */
  loaderCommand: string[];
  /** Run when the agent stops while no trace selects its node: unpins the programs. */
  loaderStopCommand: string[];
  stateDir: string;
  cgroupRoot: string;
  procRoot: string;
  probePaths: ProbePaths;
  /** Report interval when neither the trace's status nor spec says one. */
  defaultIntervalMs: number;
  /** Port of /metrics, /healthz, /readyz; 0 picks a free one. */
  port: number;
  fieldManager: string;
}

interface Pod extends KubeObject {
  metadata: { name: string; namespace: string; uid: string; labels?: Record<string, string>; annotations?: Record<string, string>; ownerReferences?: OwnerReference[] };
}

interface Named extends KubeObject {
  metadata: { name: string; labels?: Record<string, string>; annotations?: Record<string, string> };
}

const GROUP_PATH = `/apis/${API_VERSION}`;
const RESCAN_MS = 5000;
const PERSIST_MS = 10_000;

export class Agent {
  private readonly traces: Informer<VhostTrace>;
  private readonly clusterTraces: Informer<ClusterVhostTrace>;
  private readonly pods: Informer<Pod>;
  private readonly namespaces: Informer<Named>;
  private readonly node: Informer<Named>;
  readonly loader: LoaderSupervisor;
  private attributor = new Attributor();
  /** Cgroups attributed to a VM, and cgroup 0 (never will be): no second look needed. */
  private readonly attributedCgroups = new Set<number>();
  private generation = 0;
  private readonly state: StateDir;
  private readonly ledgers = new Map<string, Ledger>();
  private readonly schedules = new Map<string, Schedule>();
  private readonly persistedAt = new Map<string, number>();
  private facts?: KernelFacts;
  private readonly started = new Date();
  /** Set while the node's DETACH_ANNOTATION holds the loader stopped and unpinned. */
  private detached?: Detach;
  private lastDetach?: EndedDetach;
  private upSince?: Date;
  private lastScan = 0;
  /** The next tick's timer and when it fires (see wakeAt). */
  private timer?: NodeJS.Timeout;
  private timerAt = Infinity;
  private ready = false;
  private stopping = false;
  /** Per trace, the loader line its ledger last took (LoaderSupervisor.snapshotSeq). */
  private readonly ledgerSeq = new Map<string, number>();
  private server?: Server;
  private busy = false;
  /** A due report waits for the loader's next line (see LINE_WAIT_MS). */
  private waitingForLine = false;
  readonly stats = { reportsWritten: 0, reportErrors: 0 };

  constructor(
    private readonly cfg: AgentConfig,
    private readonly client: KubeClient,
    private readonly log: Logger,
  ) {
    const watch = <T extends KubeObject>(path: string, what: string, opts = {}) => {
      const inf = new Informer<T>(client, path, opts);
      inf.on('error', (err, delayMs) => log.warn({ err: err.message, what, delayMs }, 'watch failed; retrying'));
      inf.on('gone', () => log.info({ what }, 'watch expired (410 Gone); relisting'));
      return inf;
    };
    this.traces = watch(`${GROUP_PATH}/vhosttraces`, 'vhosttraces');
    this.clusterTraces = watch(`${GROUP_PATH}/clustervhosttraces`, 'clustervhosttraces');
    this.pods = watch('/api/v1/pods', 'pods', { fieldSelector: `spec.nodeName=${cfg.nodeName}` });
    this.namespaces = watch('/api/v1/namespaces', 'namespaces');
    this.node = watch('/api/v1/nodes', 'node', { fieldSelector: `metadata.name=${cfg.nodeName}` });
    // A trace created, changed or deleted, or the node relabelled: look at once.
    for (const inf of [this.traces, this.clusterTraces, this.node] as Informer<KubeObject>[]) inf.on('change', () => this.wakeAt(Date.now()));
    this.state = new StateDir(cfg.stateDir);
    this.loader = new LoaderSupervisor({ command: cfg.loaderCommand });
    this.loader.on('firstSnapshot', (s) => void this.onFirstSnapshot(s));
    this.loader.on('exit', (e, wait) =>
      log.warn({ code: e.code, signal: e.signal, stderr: e.stderr, restartInMs: wait }, 'loader exited; restarting'),
    );
    this.loader.on('parseError', (err) => log.error({ err: err.message }, 'loader wrote a malformed line; restarting it'));
    this.loader.on('line', () => {
      if (this.waitingForLine) this.wakeAt(Date.now());
    });
  }

  async start(): Promise<void> {
    this.facts = await probeKernel(this.cfg.probePaths);
    this.log.info({ facts: this.facts }, 'kernel probe');
    const saved = await this.state.load();
    this.generation = saved.generation;
    this.attributor = new Attributor(saved.attribution);
    for (const l of saved.ledgers) this.ledgers.set(l.traceUid, l);
    for (const inf of [this.traces, this.clusterTraces, this.pods, this.namespaces, this.node] as Informer<KubeObject>[]) void inf.run();
    this.loader.start();
    await this.serve();
    await Promise.all([this.traces.synced, this.clusterTraces.synced, this.pods.synced, this.namespaces.synced, this.node.synced]);
    this.log.info({ ledgers: this.ledgers.size, generation: this.generation }, 'agent ready');
    this.ready = true;
    this.wakeAt(Date.now());
  }

  /**
   * Makes the next tick happen by `at`. The agent sleeps until a report is due rather than
   * polling: a wake-up finds cold caches, and an empty 250 ms timer alone cost 0.8 ms of CPU a
   * second on the benchmark's host (0.3 ms at one a second).
   */
  private wakeAt(at: number): void {
    if (!this.ready || this.stopping || at >= this.timerAt) return;
    clearTimeout(this.timer);
    this.timerAt = at;
    this.timer = setTimeout(() => {
      this.timerAt = Infinity;
      void this.tick();
    }, Math.max(0, at - Date.now()));
  }

  /** SIGTERM: stop reporting and the loader. With no trace selecting the node, unpin too. */
  async stop(): Promise<void> {
    this.stopping = true;
    clearTimeout(this.timer);
    const keep = this.openTraces().length > 0;
    await this.loader.stop();
    for (const uid of this.ledgers.keys()) await this.persist(uid);
    if (!keep) await run(this.cfg.loaderStopCommand).catch((e: Error) => this.log.warn({ err: e.message }, 'unpinning failed'));
    for (const inf of [this.traces, this.clusterTraces, this.pods, this.namespaces, this.node] as Informer<KubeObject>[]) inf.stop();
    await closeServer(this.server);
    this.log.info({ unpinned: !keep }, 'agent stopped');
  }

  get port(): number {
    return portOf(this.server);
  }

  private async onFirstSnapshot(s: LoaderSnapshot): Promise<void> {
    this.upSince = new Date();
    this.log.info({ mode: s.mode, kernel: s.kernel, takeover: s.takeover }, 'loader running');
    if (!s.takeover) {
      // Fresh maps: counts start again from zero; ledgers carry what they had.
      this.generation++;
      await this.state.saveGeneration(this.generation);
    }
  }

  /**
   * Traces that select this node and are not finished (api/lifetime.ts): one past its end is
   * still here until its final report is written.
   */
  openTraces(): Trace[] {
    const nodeLabels = this.node.list()[0]?.metadata.labels;
    const all: Trace[] = [...this.traces.list(), ...this.clusterTraces.list()];
    return all.filter((t) => !isFinished(t) && matches(t.spec.nodeSelector, nodeLabels));
  }

  private async tick(): Promise<void> {
    if (this.busy) return; // the running tick schedules the next one
    this.busy = true;
    let next = Date.now() + MAX_SLEEP_MS;
    let waiting = false;
    try {
      await this.followDetach();
      const now = Date.now();
      const open = this.openTraces();
      for (const t of open) {
        const uid = t.metadata.uid!;
        const sched = this.schedules.get(uid) ?? newSchedule(now);
        this.schedules.set(uid, sched);
        const interval = intervalOf(t, this.cfg.defaultIntervalMs);
        const due = reportNow(t, sched, this.lineState(uid), interval, now);
        if (due.now) afterReport(sched, await this.report(t, sched), due.final, interval, now);
        const wake = wakeFor(t, sched, this.lineState(uid), interval, now);
        if (!wake) continue;
        waiting ||= wake.waitsForLine;
        next = Math.min(next, wake.at);
      }
      await this.forget(open);
    } finally {
      this.busy = false;
      this.waitingForLine = waiting;
      this.loader.release();
      this.wakeAt(next);
    }
  }

  /**
   * Follows the node's DETACH_ANNOTATION. Detaching stops the loader, which prints the pinned
   * counts as it exits, takes them into every ledger and only then unpins; attaching again loads
   * new programs and maps, so counts continue as a new generation (ledger.ts carries the old).
   */
  private async followDetach(): Promise<void> {
    const why = this.node.list()[0]?.metadata.annotations?.[DETACH_ANNOTATION];
    if (why !== undefined && !this.detached) {
      this.detached = { since: new Date(), why, modeBefore: this.loader.lastMode };
      this.log.warn({ why, annotation: DETACH_ANNOTATION }, 'detach requested: taking the last counts, then stopping the loader and unpinning');
      await this.loader.stop();
      for (const t of this.openTraces()) await this.countsFor(t.metadata.uid!, this.log);
      for (const uid of this.ledgers.keys()) await this.persist(uid);
      await run(this.cfg.loaderStopCommand).catch((e: Error) => this.log.error({ err: e.message }, 'unpinning failed; vhost_net stays held'));
      this.log.info('detached: vhost_net can be unloaded');
    } else if (why === undefined && this.detached) {
      this.lastDetach = { ...this.detached, until: new Date() };
      this.detached = undefined;
      this.log.info('detach annotation removed: loading the programs again');
      this.loader.start();
    }
  }

  private lineState(traceUid: string): LineState {
    return { loaderRunning: this.loader.running, newestLine: this.loader.snapshotSeq, ledgerLine: this.ledgerSeq.get(traceUid) };
  }

  /** Drops the state of traces that are gone (deleted, or no longer in the cache). */
  private async forget(open: Trace[]): Promise<void> {
    const known = new Set([...this.traces.list(), ...this.clusterTraces.list()].map((t) => t.metadata.uid));
    const openUids = new Set(open.map((t) => t.metadata.uid));
    for (const uid of this.schedules.keys()) if (!openUids.has(uid)) this.schedules.delete(uid);
    for (const uid of [...this.ledgers.keys()]) {
      if (known.has(uid)) continue;
      this.ledgers.delete(uid);
      this.ledgerSeq.delete(uid);
      await this.state.removeLedger(uid);
      this.log.info({ traceUid: uid }, 'trace gone; its ledger is removed');
    }
  }

  /** Counts since the trace started, advancing (or opening) its ledger with the latest snapshot. */
  private async countsFor(uid: string, log: Logger): Promise<SinceStart[]> {
    const l = this.ledgers.get(uid);
    // Nothing new from the loader since this ledger's last advance: no need to parse.
    const seq = this.loader.snapshotSeq;
    if (l && seq !== undefined && seq === this.ledgerSeq.get(uid)) return sinceStart(l);
    const snap = this.loader.lastSnapshot;
    if (!snap) return l ? sinceStart(l) : [];
    this.ledgerSeq.set(uid, this.loader.snapshotSeq!);
    let shapeChanged = true;
    if (!l) {
      this.ledgers.set(uid, openLedger(uid, this.generation, snap));
    } else {
      const before = { generation: l.generation, size: l.entries.size };
      try {
        advance(l, this.generation, snap);
      } catch (err) {
        if (!(err instanceof CountsWentBackwards)) throw err;
        // The maps were replaced under us: what was counted until the last snapshot is carried.
        log.error({ err: err.message }, 'loader counts went backwards; treating the maps as new');
        this.generation++;
        await this.state.saveGeneration(this.generation);
        advance(l, this.generation, snap);
      }
      shapeChanged = before.generation !== l.generation || before.size !== l.entries.size;
    }
    // Persisting is the costly part of a report (a large trace's ledger is hundreds of KiB), and
    // only base and carry cannot be read back from the pinned maps: write when those change
    // (new entries, a new generation), else at most every PERSIST_MS. What a crash can cost is
    // limited to a reboot (maps lost) within PERSIST_MS of the last write.
    if (shapeChanged || Date.now() - (this.persistedAt.get(uid) ?? 0) >= PERSIST_MS) await this.persist(uid);
    return sinceStart(this.ledgers.get(uid)!);
  }

  private async persist(uid: string): Promise<void> {
    const l = this.ledgers.get(uid);
    if (!l) return;
    await this.state.saveLedger(l);
    this.persistedAt.set(uid, Date.now());
  }

  private async refreshAttribution(since: readonly SinceStart[]): Promise<void> {
    let unknown = false;
    for (const { cgroupId } of since) {
      // Mappings are never forgotten, so a cgroup attributed once needs no second look.
      if (this.attributedCgroups.has(cgroupId)) continue;
      if (cgroupId !== 0 && this.attributor.unknown(cgroupId)) unknown = true;
      else this.attributedCgroups.add(cgroupId);
    }
    if (!unknown || Date.now() - this.lastScan < RESCAN_MS) return;
    this.lastScan = Date.now();
    const unified = await unifiedRoot(this.cfg.cgroupRoot);
    const [cgroups, workers] = await Promise.all([
      unified ? scanCgroups(unified) : Promise.resolve(new Map<number, string>()),
      scanVhostWorkers(this.cfg.procRoot, unified),
    ]);
    const pods: PodInfo[] = this.pods.list().map(({ metadata: m }) => ({ uid: m.uid, namespace: m.namespace, name: m.name, labels: m.labels, annotations: m.annotations, ownerReferences: m.ownerReferences }));
    this.attributor.learn(cgroups, workers, pods);
    await this.state.saveAttribution(this.attributor.remembered());
  }

  private health() {
    const l = this.loader;
    return nodeHealth(
      this.facts!,
      { running: l.running, restarts: l.restarts, lastExit: l.lastExit, lastSnapshotMode: l.lastMode, lastSnapshotAt: l.lastSnapshotAt, upSince: this.upSince, detached: this.detached, lastDetach: this.lastDetach },
      new Date(),
      10_000,
      this.started,
    );
  }

  /** Writes the trace's report; false if the API server refused or could not be reached. */
  private async report(t: Trace, sched: Schedule): Promise<boolean> {
    const ref = traceRef(t);
    const log = this.log.child({ trace: `${ref.kind}/${ref.namespace ? `${ref.namespace}/` : ''}${ref.name}` });
    const skeleton: VhostTraceReport = reportSkeleton(ref, this.cfg.nodeName, this.cfg.installNamespace);
    const { name, namespace } = skeleton.metadata;
    const path = resourcePath(API_VERSION, 'vhosttracereports', namespace, name);
    try {
      const since = await this.countsFor(ref.uid, log);
      await this.refreshAttribution(since);
      const status = buildReportStatus({
        trace: t,
        since,
        vmOf: (id) => this.attributor.vmOf(id),
        namespaceLabels: (ns) => this.namespaces.get(undefined, ns)?.metadata.labels,
        health: this.health(),
        observedTime: new Date().toISOString().replace(/\.\d{3}Z$/, 'Z'),
      });
      if (!sched.skeletonApplied) {
        await this.client.apply(path, skeleton, this.cfg.fieldManager);
        sched.skeletonApplied = true;
      }
      const body = { apiVersion: API_VERSION, kind: 'VhostTraceReport', metadata: { name, namespace }, status };
      await this.client.apply(`${path}/status`, body, this.cfg.fieldManager, true, true);
      this.stats.reportsWritten++;
      log.debug({ report: name, state: status.state }, 'report written');
      return true;
    } catch (err) {
      if (isNotFound(err)) sched.skeletonApplied = false; // deleted under us: recreate next time
      this.stats.reportErrors++;
      log.warn({ err: (err as Error).message, report: name }, 'writing the report failed; retrying soon');
      return false;
    }
  }

  metrics(): string {
    const snap = this.loader.lastSnapshot;
    let out = '';
    for (const [metric, field, slots, help] of [
      ['vhosttrace_vhost_run_packets', 'packets', 10, 'Packets per run of the vhost-net handler, per VM, since the BPF maps were created.'],
      ['vhosttrace_vhost_run_bytes', 'bytes', 21, 'Bytes per run of the vhost-net handler, per VM, since the BPF maps were created.'],
    ] as const) {
      out += header(metric, 'histogram', help);
      const byVm = new Map<string, { labels: Record<string, string>; h: RawHistogram }>();
      for (const e of snap?.histograms ?? []) {
        const vm = this.attributor.vmOf(e.cgroupId);
        const labels = { direction: e.direction, namespace: vm?.namespace ?? '', vm: vm?.name ?? '' };
        const k = JSON.stringify(labels);
        const prev = byVm.get(k);
        byVm.set(k, { labels, h: prev ? merge(prev.h, e[field]) : e[field] });
      }
      for (const { labels, h } of byVm.values()) out += histogramSeries(metric, labels, h, slots);
    }
    const l = this.loader;
    out += header('vhosttrace_agent_loader_up', 'gauge', '1 while the loader runs and reports.') + sample('vhosttrace_agent_loader_up', {}, l.running && snap ? 1 : 0);
    out += header('vhosttrace_agent_loader_restarts_total', 'counter', 'Times the loader exited and was restarted.') + sample('vhosttrace_agent_loader_restarts_total', {}, l.restarts);
    out += header('vhosttrace_agent_detached', 'gauge', `1 while the node's ${DETACH_ANNOTATION} annotation holds the loader stopped.`) + sample('vhosttrace_agent_detached', {}, this.detached ? 1 : 0);
    out += header('vhosttrace_agent_reports_total', 'counter', 'Report writes, by result.');
    out += sample('vhosttrace_agent_reports_total', { result: 'ok' }, this.stats.reportsWritten) + sample('vhosttrace_agent_reports_total', { result: 'error' }, this.stats.reportErrors);
    out += header('vhosttrace_agent_active_traces', 'gauge', 'Traces that select this node.') + sample('vhosttrace_agent_active_traces', {}, this.openTraces().length);
    out += header('vhosttrace_agent_dropped_keys_total', 'counter', 'New cgroups the BPF maps had no room for (counted as cgroup 0).') + sample('vhosttrace_agent_dropped_keys_total', {}, snap?.dropped.keysRefused ?? 0);
    this.loader.release();
    return out;
  }

  private async serve(): Promise<void> {
    this.server = await serveEndpoints(this.cfg.port, {
      metrics: () => this.metrics(),
      ready: () => {
        // Ready once it can report, whatever the report says: a node that cannot trace must
        // still say so, so a Failed kernel probe is not a reason to be unready.
        const h = this.health();
        return { ok: this.ready, text: `${this.ready ? 'ok' : 'starting'}: ${h.state}${h.reason ? ` (${h.reason})` : ''}` };
      },
    });
  }
}

/** Runs a command to its end; rejects on a non-zero exit. */
function run(argv: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const [cmd, ...args] = argv;
    if (!cmd) return resolve();
    const p = spawn(cmd, args, { stdio: 'ignore' });
    p.on('error', reject);
    p.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`${argv.join(' ')} exited ${code}`))));
  });
}
