// Leader election with a coordination.k8s.io/v1 Lease, as client-go's leaderelection does it:
// take the Lease when it is free or its holder has not renewed it for leaseDuration (measured
// on this replica's clock, from when it saw the record change), renew every retryPeriod, and
// give up leadership when a renewal has not succeeded for renewDeadline.
import type { Logger } from 'pino';
import { isConflict, isNotFound, type KubeClient } from '../kube/client.js';
import { Sleeper } from '../kube/sleeper.js';

export interface LeaseOptions {
  namespace: string;
  name: string;
  identity: string;
  leaseDurationMs: number;
  renewDeadlineMs: number;
  retryPeriodMs: number;
}

interface Lease {
  apiVersion: 'coordination.k8s.io/v1';
  kind: 'Lease';
  metadata: { name: string; namespace: string; resourceVersion?: string };
  spec: { holderIdentity?: string; leaseDurationSeconds?: number; acquireTime?: string; renewTime?: string; leaseTransitions?: number };
}

/** MicroTime, as the API wants it in Leases. */
const microTime = (ms: number) => new Date(ms).toISOString().replace(/Z$/, '000Z');

export class LeaderElector {
  private observed?: { record: string; at: number };
  private stopped = false;
  private readonly sleeper = new Sleeper();
  private leading = false;

  constructor(
    private readonly client: KubeClient,
    private readonly opts: LeaseOptions,
    private readonly log: Logger,
  ) {}

  get isLeader(): boolean {
    return this.leading;
  }

  private get path(): string {
    return `/apis/coordination.k8s.io/v1/namespaces/${this.opts.namespace}/leases/${this.opts.name}`;
  }

  /** One attempt to take or renew the Lease; true when this replica holds it afterwards. */
  async tryAcquireOrRenew(now = Date.now()): Promise<boolean> {
    const me = this.opts.identity;
    const spec = (old?: Lease['spec']): Lease['spec'] => {
      const same = old?.holderIdentity === me;
      return {
        holderIdentity: me,
        leaseDurationSeconds: Math.ceil(this.opts.leaseDurationMs / 1000),
        acquireTime: same && old?.acquireTime ? old.acquireTime : microTime(now),
        renewTime: microTime(now),
        leaseTransitions: same ? (old?.leaseTransitions ?? 0) : (old?.leaseTransitions ?? -1) + 1,
      };
    };
    const lease = await this.client.find<Lease & { [k: string]: unknown }>(this.path);
    if (!lease) {
      const body: Lease = {
        apiVersion: 'coordination.k8s.io/v1',
        kind: 'Lease',
        metadata: { name: this.opts.name, namespace: this.opts.namespace },
        spec: spec(),
      };
      try {
        await this.client.request('POST', `/apis/coordination.k8s.io/v1/namespaces/${this.opts.namespace}/leases`, { body });
        return true;
      } catch (e) {
        if (isConflict(e) || (e as { code?: number }).code === 409) return false;
        throw e;
      }
    }
    const record = JSON.stringify([lease.spec.holderIdentity, lease.spec.renewTime]);
    if (this.observed?.record !== record) this.observed = { record, at: now };
    const holder = lease.spec.holderIdentity;
    const duration = (lease.spec.leaseDurationSeconds ?? 15) * 1000;
    if (holder && holder !== me && this.observed.at + duration > now) return false;
    try {
      await this.client.request('PUT', this.path, { body: { ...lease, spec: spec(lease.spec) } });
      return true;
    } catch (e) {
      if (isConflict(e) || isNotFound(e)) return false;
      throw e;
    }
  }

  /**
   * Waits for the Lease, calls onStarted, keeps renewing; when renewal fails for
   * renewDeadline, calls onStopped and returns. stop() ends it (and release() frees the Lease).
   */
  async run(onStarted: () => void, onStopped: () => void): Promise<void> {
    while (!this.stopped) {
      if (await this.attempt()) break;
      await this.sleeper.sleep(this.opts.retryPeriodMs * (1 + Math.random() * 0.2));
    }
    if (this.stopped) return;
    this.leading = true;
    this.log.info({ lease: this.opts.name, identity: this.opts.identity }, 'became leader');
    onStarted();
    let lastRenew = Date.now();
    while (!this.stopped) {
      await this.sleeper.sleep(this.opts.retryPeriodMs);
      if (this.stopped) break;
      if (await this.attempt()) lastRenew = Date.now();
      else if (Date.now() - lastRenew > this.opts.renewDeadlineMs) {
        this.leading = false;
        this.log.error({ lease: this.opts.name }, 'lost the lease: could not renew within the renew deadline');
        onStopped();
        return;
      }
    }
  }

  private async attempt(): Promise<boolean> {
    try {
      return await this.tryAcquireOrRenew();
    } catch (e) {
      this.log.warn({ err: e, lease: this.opts.name }, 'lease request failed');
      return false;
    }
  }

  /** Stops renewing; leadership ends when the Lease expires (a crash looks the same). */
  stop(): void {
    this.stopped = true;
    this.sleeper.wake();
  }

  /** Frees the Lease at once so another replica need not wait for it to expire (clean shutdown). */
  async release(): Promise<void> {
    this.stop();
    if (!this.leading) return;
    this.leading = false;
    const lease = await this.client.find<Lease & { [k: string]: unknown }>(this.path);
    if (lease?.spec.holderIdentity !== this.opts.identity) return;
    await this.client
      .request('PUT', this.path, { body: { ...lease, spec: { ...lease.spec, holderIdentity: '', leaseDurationSeconds: 1 } } })
      .catch((e: unknown) => this.log.warn({ err: e }, 'releasing the lease failed'));
  }

}
