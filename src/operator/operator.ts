// The operator process minus its entry point: caches (on every replica, so a standby takes
// over warm), leader election, and reconcile workers on the leader only.
import type { Server } from 'node:http';
import type { Logger } from 'pino';
import type { KubeClient } from '../kube/client.js';
import { closeServer, portOf, serveEndpoints } from '../metrics/server.js';
import { Caches, DAEMONSET_KEY } from './cache.js';
import type { OperatorConfig } from './config.js';
import { LeaderElector } from './leader.js';
import { OperatorMetrics } from './metrics.js';
import { WorkQueue } from './queue.js';
import { Reconciler } from './reconcile.js';

export class Operator {
  readonly metrics = new OperatorMetrics();
  readonly caches: Caches;
  readonly queue = new WorkQueue();
  readonly elector: LeaderElector;
  readonly reconciler: Reconciler;
  private server?: Server;
  private synced = false;
  private workers: Promise<void>[] = [];
  /** Resolves when this replica loses the Lease (main exits then, as controller-runtime does). */
  readonly lostLease: Promise<void>;
  private onLost!: () => void;

  constructor(
    client: KubeClient,
    readonly cfg: OperatorConfig,
    private readonly log: Logger,
  ) {
    this.caches = new Caches(
      client,
      cfg,
      {
        trace: (key) => {
          this.queue.add(key);
          this.queue.add(DAEMONSET_KEY);
        },
        report: (key, r) => {
          this.reconciler.noteReport(key, r.status?.observedTime);
          this.queue.add(key);
        },
        nodeLabels: () => this.requeueTraces(),
        agentProblems: () => this.requeueTraces(),
        daemonSet: () => this.queue.add(DAEMONSET_KEY),
      },
      this.metrics,
      log,
    );
    this.reconciler = new Reconciler(client, cfg, this.caches, this.metrics, log);
    this.elector = new LeaderElector(
      client,
      {
        namespace: cfg.namespace,
        name: cfg.leaseName,
        identity: cfg.identity,
        leaseDurationMs: cfg.leaseDurationMs,
        renewDeadlineMs: cfg.renewDeadlineMs,
        retryPeriodMs: cfg.retryPeriodMs,
      },
      log,
    );
    this.metrics.queueDepth.set(() => this.queue.length);
    this.metrics.leader.set(() => (this.elector.isLeader ? 1 : 0));
    this.lostLease = new Promise((r) => (this.onLost = r));
  }

  private requeueTraces(): void {
    for (const t of this.caches.allTraces()) this.queue.add(`${t.kind}/${t.metadata.namespace ?? ''}/${t.metadata.name}`);
  }

  /** The port /metrics listens on (after start). */
  get port(): number {
    return portOf(this.server);
  }

  async start(): Promise<void> {
    this.server = await serveEndpoints(this.cfg.metricsPort, {
      metrics: () => this.metrics.render(),
      ready: () => ({ ok: this.synced, text: this.synced ? 'ok' : 'informers not synced' }),
    });
    await this.caches.start();
    this.synced = true;
    this.log.info({ identity: this.cfg.identity }, 'caches synced; waiting for the lease');
    void this.elector.run(
      () => {
        for (let i = 0; i < this.cfg.workers; i++) this.workers.push(this.work());
      },
      () => this.onLost(),
    );
  }

  private async work(): Promise<void> {
    for (;;) {
      const key = await this.queue.get();
      if (key === undefined) return;
      const kind = key === DAEMONSET_KEY ? 'DaemonSet' : key.split('/')[0]!;
      try {
        const r = await this.reconciler.reconcile(key);
        this.queue.forget(key);
        if (r.requeueAfterMs !== undefined) this.queue.addAfter(key, r.requeueAfterMs);
        this.metrics.reconciles.inc({ kind, result: 'ok' });
      } catch (err) {
        const delayMs = this.queue.retry(key);
        this.metrics.reconciles.inc({ kind, result: 'error' });
        this.metrics.errors.inc({ kind });
        this.log.warn({ ...(kind === 'DaemonSet' ? {} : { trace: key }), err: (err as Error).message, delayMs }, 'reconcile failed; retrying');
      } finally {
        this.queue.done(key);
      }
    }
  }

  /**
   * Stops. release: free the Lease for a standby (clean shutdown); without it the Lease runs
   * out as after a crash.
   */
  async stop(release = true): Promise<void> {
    if (release) await this.elector.release();
    else this.elector.stop();
    this.queue.shutDown();
    this.caches.stop();
    await Promise.all(this.workers);
    await closeServer(this.server);
  }
}
