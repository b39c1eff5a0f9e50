// A list-then-watch cache of one resource that keeps going: it re-watches when the server ends
// a watch, relists on 410 Gone, backs off on errors, restarts a watch that has gone silent, and
// relists periodically. Each failure mode is a named event, so it is visible and testable.
// (client-node's informer stops or stalls on some of these; see docs/kube.md.)
import { EventEmitter } from 'node:events';
import type { IncomingMessage } from 'node:http';
import { ApiError, isGone, type KubeClient, type KubeObject, type List } from './client.js';
import { Sleeper } from './sleeper.js';

export interface InformerOptions<T = KubeObject, C = T> {
  /** Label selector for list and watch. Default: everything. */
  labelSelector?: string;
  /** Field selector for list and watch, e.g. spec.nodeName=node-a. Default: none. */
  fieldSelector?: string;
  /**
   * Applied to every object before it is cached and handed to 'change' listeners: keep only
   * what the consumer reads (managedFields, big status parts), so a large cache stays small.
   * It must keep metadata.name, namespace and resourceVersion. It may return another type (C),
   * e.g. a packed form of the object. Default: keep objects as they come.
   */
  transform?: (obj: T) => C;
  /** Relist this often even when the watch is healthy, with ±10% jitter. Default 5 min. */
  resyncMs?: number;
  /**
   * Relist a filled cache by metadata (names and resourceVersions), then read only the objects
   * that changed, each as of the list's resourceVersion; more than this many changed: a full
   * list. For large objects, whose full relist costs the process hundreds of MB for a moment
   * (docs/benchmarks.md). Default 0: always a full list.
   */
  metadataRelistMaxReads?: number;
  /**
   * Objects per page of a full list. A page is read and parsed whole, so for large objects a
   * smaller page keeps the parse's garbage young and the process's peak low (docs/benchmarks.md,
   * run G: the operator's first list of 5,000 reports). Default 500.
   */
  pageSize?: number;
  /** Restart a watch that delivered nothing, not even a bookmark, for this long. Default 90 s. */
  idleMs?: number;
  /** Ask the server to end each watch after this long (it is then re-opened). Default 240 s. */
  watchTimeoutSeconds?: number;
  /** First retry delay after an error; doubles per consecutive error. Default 250 ms. */
  backoffMinMs?: number;
  /** Longest retry delay. Default 30 s. */
  backoffMaxMs?: number;
}

export type ChangeType = 'ADDED' | 'MODIFIED' | 'DELETED';

/** Why a list was read: at start, after 410 Gone, after an error, at resync. */
export type ListReason = 'start' | 'gone' | 'error' | 'resync';

export interface InformerEvents<T> {
  /** A change to the cache (from a watch event or from the diff of a relist). */
  change: [type: ChangeType, obj: T];
  /**
   * A list was read (at start, after 410 Gone, after an error, at resync): in full, or by
   * metadata with `read` objects read one by one.
   */
  list: [count: number, reason: ListReason, how: { metadata: boolean; read: number }];
  /** A watch stream was opened. */
  connect: [resourceVersion: string];
  /** The server ended a watch normally; it is re-opened at once. */
  reconnect: [];
  /** The watch's resourceVersion is too old (410 Gone): relisting. */
  gone: [];
  /** The watch was silent for idleMs: restarting it. */
  idle: [];
  /** A list or watch failed; the next try is in delayMs. */
  error: [err: Error, delayMs: number];
}

const key = (o: KubeObject) => `${o.metadata?.namespace ?? ''}/${o.metadata?.name ?? ''}`;

export class Informer<T extends KubeObject, C extends KubeObject = T> extends EventEmitter<InformerEvents<C>> {
  private readonly cache = new Map<string, C>();
  private resourceVersion = '';
  private stopped = false;
  private stream?: IncomingMessage;
  private listReason: ListReason | undefined = 'start';
  private syncedResolve!: () => void;
  /** Resolves after the first list has filled the cache. */
  readonly synced = new Promise<void>((r) => (this.syncedResolve = r));
  private readonly opts: Required<Omit<InformerOptions<T, C>, 'labelSelector' | 'fieldSelector' | 'transform'>> & Pick<InformerOptions<T, C>, 'labelSelector' | 'fieldSelector' | 'transform'>;

  constructor(
    private readonly client: KubeClient,
    /** Collection path, e.g. /apis/vhosttrace.io/v1alpha1/vhosttraces (all namespaces). */
    private readonly path: string,
    opts: InformerOptions<T, C> = {},
  ) {
    super();
    this.opts = {
      resyncMs: 5 * 60_000,
      idleMs: 90_000,
      watchTimeoutSeconds: 240,
      backoffMinMs: 250,
      backoffMaxMs: 30_000,
      metadataRelistMaxReads: 0,
      pageSize: 500,
      ...opts,
    };
  }

  list(): C[] {
    return [...this.cache.values()];
  }

  get(namespace: string | undefined, name: string): C | undefined {
    return this.cache.get(`${namespace ?? ''}/${name}`);
  }

  /** Runs until stop(); never throws: failures become 'error' events and retries. */
  async run(): Promise<void> {
    let delay = this.opts.backoffMinMs;
    let nextResync = this.resyncDeadline();
    while (!this.stopped) {
      try {
        if (this.listReason) await this.relist(this.listReason);
        if (this.stopped) break;
        const ended = await this.watchOnce(nextResync);
        delay = this.opts.backoffMinMs;
        if (ended === 'resync') {
          this.listReason = 'resync';
          nextResync = this.resyncDeadline();
        } else if (ended === 'idle') this.emit('idle');
        else if (ended === 'closed') this.emit('reconnect');
      } catch (err) {
        if (this.stopped) break;
        if (isGone(err) || (err instanceof ApiError && err.code === 410)) {
          this.emit('gone');
          this.listReason = 'gone';
          continue;
        }
        const e = err instanceof Error ? err : new Error(String(err));
        this.emit('error', e, delay);
        await this.sleeper.sleep(delay);
        delay = Math.min(delay * 2, this.opts.backoffMaxMs);
        // A failed list must be retried; after a failed watch, resume from resourceVersion.
        if (this.listReason === undefined && !this.resourceVersion) this.listReason = 'error';
      }
    }
  }

  stop(): void {
    this.stopped = true;
    this.stream?.destroy();
    this.sleeper.wake();
  }

  private readonly sleeper = new Sleeper();

  private resyncDeadline(): number {
    return Date.now() + this.opts.resyncMs * (0.9 + Math.random() * 0.2);
  }

  private async relist(reason: ListReason): Promise<void> {
    if (this.cache.size && this.opts.metadataRelistMaxReads > 0 && (await this.relistByMetadata(reason))) return;
    const items = new Map<string, C>();
    const rv = await this.listPaged((cont) => this.client.list<T>(this.path, { ...this.selectors(), limit: this.opts.pageSize, continue: cont }), (it) => {
      // An object the cache holds at the same resourceVersion is the same object: keep the
      // cached one. A resync then neither reshapes every object nor changes their identity
      // (the operator's incremental roll-up compares reports by identity).
      const k = key(it);
      const old = this.cache.get(k);
      items.set(k, old && old.metadata?.resourceVersion === it.metadata?.resourceVersion ? old : this.shape(it));
    });
    this.replace(items, rv, reason, { metadata: false, read: items.size });
  }

  /**
   * The relist by metadata: false (nothing changed in the cache) when more objects changed
   * than it may read one by one. Each is read as of the list's resourceVersion, so the cache
   * is exactly the server's state at that version, as after a full list.
   */
  private async relistByMetadata(reason: ListReason): Promise<boolean> {
    const versions = new Map<string, KubeObject>();
    const rv = await this.listPaged((cont) => this.client.listMetadata(this.path, { ...this.selectors(), limit: 500, continue: cont }), (it) => versions.set(key(it), it));
    const changed = [...versions].filter(([k, m]) => this.cache.get(k)?.metadata?.resourceVersion !== m.metadata?.resourceVersion);
    if (changed.length > this.opts.metadataRelistMaxReads) return false;
    const items = new Map<string, C>();
    for (const [k] of versions) items.set(k, this.cache.get(k)!);
    for (const [k, m] of changed) {
      const name = `metadata.name=${m.metadata!.name}`;
      const ns = m.metadata!.namespace ? `,metadata.namespace=${m.metadata!.namespace}` : '';
      const page = await this.client.list<T>(this.path, {
        ...this.selectors(),
        fieldSelector: [this.opts.fieldSelector, name + ns].filter(Boolean).join(','),
        resourceVersion: rv,
        resourceVersionMatch: 'Exact',
      });
      if (page.items[0]) items.set(k, this.shape(page.items[0]));
      else items.delete(k);
    }
    this.replace(items, rv, reason, { metadata: true, read: changed.length });
    return true;
  }

  /** Reads every page of a list, handing each item to each(); returns the list's resourceVersion. */
  private async listPaged<X extends KubeObject>(page: (cont?: string) => Promise<List<X>>, each: (it: X) => void): Promise<string> {
    let cont: string | undefined;
    let rv: string;
    do {
      const p = await page(cont);
      for (const it of p.items) each(it);
      cont = p.metadata.continue || undefined;
      rv = p.metadata.resourceVersion;
    } while (cont);
    return rv;
  }

  private selectors(): { labelSelector?: string; fieldSelector?: string } {
    return { labelSelector: this.opts.labelSelector, fieldSelector: this.opts.fieldSelector };
  }

  /** Makes the cache the listed objects, emitting the changes a watch would have shown. */
  private replace(items: Map<string, C>, rv: string, reason: ListReason, how: { metadata: boolean; read: number }): void {
    for (const [k, old] of this.cache) {
      if (!items.has(k)) {
        this.cache.delete(k);
        this.emit('change', 'DELETED', old);
      }
    }
    for (const [k, obj] of items) {
      const old = this.cache.get(k);
      this.cache.set(k, obj);
      if (!old) this.emit('change', 'ADDED', obj);
      else if (old.metadata?.resourceVersion !== obj.metadata?.resourceVersion) this.emit('change', 'MODIFIED', obj);
    }
    this.resourceVersion = rv;
    this.listReason = undefined;
    this.emit('list', items.size, reason, how);
    this.syncedResolve();
  }

  /** One watch request; resolves with why it ended, rejects on errors (410 included). */
  private async watchOnce(resyncAt: number): Promise<'closed' | 'idle' | 'resync' | 'stopped'> {
    const stream = await this.client.openWatch(this.path, {
      resourceVersion: this.resourceVersion,
      allowWatchBookmarks: true,
      timeoutSeconds: this.opts.watchTimeoutSeconds,
      labelSelector: this.opts.labelSelector,
      fieldSelector: this.opts.fieldSelector,
    });
    this.stream = stream;
    this.emit('connect', this.resourceVersion);
    let why: 'closed' | 'idle' | 'resync' | 'stopped' = 'closed';
    let idleTimer: NodeJS.Timeout | undefined;
    const armIdle = () => {
      clearTimeout(idleTimer);
      idleTimer = setTimeout(() => ((why = 'idle'), stream.destroy()), this.opts.idleMs);
    };
    const resyncTimer = setTimeout(() => ((why = 'resync'), stream.destroy()), Math.max(0, resyncAt - Date.now()));
    armIdle();
    let buf = '';
    try {
      for await (const chunk of stream) {
        armIdle();
        buf += (chunk as Buffer).toString();
        let nl: number;
        while ((nl = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, nl).trim();
          buf = buf.slice(nl + 1);
          if (line) this.handle(JSON.parse(line) as { type: string; object: any });
        }
      }
    } catch (err) {
      // A destroyed stream (idle, resync, stop) ends here too; only a real failure propagates.
      if (why === 'closed' && !this.stopped) throw err;
    } finally {
      clearTimeout(idleTimer);
      clearTimeout(resyncTimer);
      this.stream = undefined;
    }
    return this.stopped ? 'stopped' : why;
  }

  /** The object as cached: transformed, or as it came (then C is T). */
  private shape(obj: T): C {
    return this.opts.transform ? this.opts.transform(obj) : (obj as unknown as C);
  }

  private handle(ev: { type: string; object: any }): void {
    if (ev.type === 'ERROR') {
      const s = ev.object as { code?: number; reason?: string; message?: string };
      throw new ApiError('WATCH', this.path, s.code ?? 0, s.reason ?? '', s);
    }
    const rv = (ev.object as T).metadata?.resourceVersion;
    if (rv) this.resourceVersion = rv;
    if (ev.type === 'BOOKMARK') return;
    const obj = this.shape(ev.object as T);
    const type = ev.type as ChangeType;
    if (type === 'DELETED') this.cache.delete(key(obj));
    else this.cache.set(key(obj), obj);
    this.emit('change', type, obj);
  }
}
