// The plugin's calls to the API server: get, list, create, delete and watch traces, list their reports,
// and every failure turned into the exit code it means (forbidden, no cluster). Thin: no decisions.
import type { IncomingMessage } from 'node:http';
import { reportSelector, traceRef, type Trace } from '../api/reports.js';
import { API_VERSION, type TraceKind, type VhostTraceReport } from '../api/v1alpha1.js';
import { ApiError, isGone, KubeClient, resourcePath } from '../kube/client.js';
import type { ClusterAccess } from '../kube/config.js';
import { CliError, EXIT } from './exit-codes.js';

const PLURAL: Record<TraceKind, string> = { VhostTrace: 'vhosttraces', ClusterVhostTrace: 'clustervhosttraces' };

/** Connection failures: nothing answered, so there is no cluster to talk to. */
const UNREACHABLE = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'ETIMEDOUT', 'ECONNRESET', 'EPIPE']);

/** The error as the user should see it, with its exit code. */
export function explain(err: unknown, access: ClusterAccess): CliError {
  if (err instanceof CliError) return err;
  if (err instanceof ApiError) {
    const msg = (err.body as { message?: string } | undefined)?.message ?? err.message;
    if (err.code === 401) return new CliError(EXIT.forbidden, `Unauthorized: the API server at ${access.server} did not accept the credentials of ${access.source}`);
    if (err.code === 403) return new CliError(EXIT.forbidden, `Forbidden: ${msg}`);
    if (err.code === 404) return new CliError(EXIT.notFound, `NotFound: ${msg}`);
    return new CliError(EXIT.error, `${err.code} ${err.reason}: ${msg}`);
  }
  const e = err as Error & { cause?: { code?: string } };
  const code = e.cause?.code;
  if ((code && (UNREACHABLE.has(code) || code.startsWith('ERR_TLS') || code.includes('CERT'))) || /timed out/.test(e.message)) {
    return new CliError(EXIT.noCluster, `cannot reach the API server at ${access.server} (${access.source}): ${e.cause && 'message' in e.cause ? (e.cause as Error).message : e.message}`);
  }
  return new CliError(EXIT.error, e.message);
}

export type WatchEvent = { type: 'changed'; trace: Trace } | { type: 'deleted' };

export class TraceApi {
  private readonly client: KubeClient;

  constructor(readonly access: ClusterAccess) {
    this.client = new KubeClient(access);
  }

  close(): void {
    this.client.close();
  }

  private async call<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (e) {
      throw explain(e, this.access);
    }
  }

  get(kind: TraceKind, namespace: string | undefined, name: string): Promise<Trace | undefined> {
    return this.call(() => this.client.find<Trace>(resourcePath(API_VERSION, PLURAL[kind], kind === 'VhostTrace' ? namespace : undefined, name)));
  }

  /** One kind's traces: in a namespace, or in all (namespace undefined) and cluster-wide. */
  async list(kind: TraceKind, namespace: string | undefined): Promise<Trace[]> {
    const list = await this.call(() => this.client.list<Trace>(resourcePath(API_VERSION, PLURAL[kind], kind === 'VhostTrace' ? namespace : undefined)));
    return list.items.map((t) => ({ ...t, apiVersion: API_VERSION, kind }));
  }

  /** A trace's reports: beside a VhostTrace; anywhere for a ClusterVhostTrace (they live in the install namespace). */
  async reports(t: Trace): Promise<VhostTraceReport[]> {
    const ref = traceRef(t);
    const path = resourcePath(API_VERSION, 'vhosttracereports', ref.kind === 'VhostTrace' ? ref.namespace : undefined);
    const list = await this.call(() => this.client.list<VhostTraceReport>(path, { labelSelector: reportSelector(ref) }));
    return list.items;
  }

  create(t: Trace): Promise<Trace> {
    const path = resourcePath(API_VERSION, PLURAL[t.kind], t.kind === 'VhostTrace' ? t.metadata.namespace : undefined);
    return this.call(() => this.client.request<Trace>('POST', path, { body: t }));
  }

  /** Deletes; false if there was nothing to delete. Reports go with their trace (ownerReferences). */
  async delete(kind: TraceKind, namespace: string | undefined, name: string): Promise<boolean> {
    try {
      await this.client.request('DELETE', resourcePath(API_VERSION, PLURAL[kind], kind === 'VhostTrace' ? namespace : undefined, name), {
        query: { propagationPolicy: 'Background' },
      });
      return true;
    } catch (e) {
      if (e instanceof ApiError && e.code === 404) return false;
      throw explain(e, this.access);
    }
  }

  /**
   * The trace as it changes, starting with its current state: a watch on it alone, reopened
   * when the server ends it, and re-read when the server has forgotten the version (410).
   * Ends when the trace is deleted or the signal aborts.
   */
  async *watch(kind: TraceKind, namespace: string | undefined, name: string, signal: AbortSignal): AsyncGenerator<WatchEvent> {
    const ns = kind === 'VhostTrace' ? namespace : undefined;
    let current = await this.get(kind, ns, name);
    if (!current) throw new CliError(EXIT.notFound, `${kind} ${ns ? `${ns}/` : ''}${name} not found`);
    yield { type: 'changed', trace: current };
    let version = current.metadata.resourceVersion;
    while (!signal.aborted) {
      let res: IncomingMessage;
      try {
        res = await this.client.openWatch(resourcePath(API_VERSION, PLURAL[kind], ns), {
          fieldSelector: `metadata.name=${name}`,
          resourceVersion: version,
          timeoutSeconds: 300,
        });
      } catch (e) {
        if (!isGone(e)) throw explain(e, this.access);
        current = await this.get(kind, ns, name);
        if (!current) return yield { type: 'deleted' };
        version = current.metadata.resourceVersion;
        yield { type: 'changed', trace: current };
        continue;
      }
      const stop = () => res.destroy();
      signal.addEventListener('abort', stop, { once: true });
      try {
        for await (const ev of jsonLines(res)) {
          const type = (ev as { type?: string }).type;
          const obj = (ev as { object?: Trace }).object;
          if (type === 'ERROR') {
            if ((obj as unknown as { code?: number })?.code === 410) version = undefined;
            break;
          }
          if (!obj) continue;
          version = obj.metadata?.resourceVersion ?? version;
          if (type === 'DELETED') return yield { type: 'deleted' };
          if (type === 'ADDED' || type === 'MODIFIED') yield { type: 'changed', trace: { ...obj, apiVersion: API_VERSION, kind } as Trace };
        }
      } catch (e) {
        if (signal.aborted) return;
        throw explain(e, this.access);
      } finally {
        signal.removeEventListener('abort', stop);
      }
      if (version === undefined) {
        current = await this.get(kind, ns, name);
        if (!current) return yield { type: 'deleted' };
        version = current.metadata.resourceVersion;
        yield { type: 'changed', trace: current };
      }
    }
  }
}

/** The JSON objects of a newline-delimited stream. */
async function* jsonLines(stream: AsyncIterable<Buffer | string>): AsyncGenerator<unknown> {
  let buf = '';
  for await (const chunk of stream) {
    buf += chunk.toString();
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl).trim();
      buf = buf.slice(nl + 1);
      if (line) yield JSON.parse(line);
    }
  }
}
