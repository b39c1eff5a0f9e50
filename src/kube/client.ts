// A small REST client: plain JSON in and out, server-side apply, and a streaming watch, over
// one keep-alive connection pool (a TLS handshake per request would cost more CPU than the
// work). Operator and agent use it; it knows no vhosttrace types.
import type { IncomingMessage } from 'node:http';
// Default imports, called at request time, so fault-injection tests (nock) can intercept.
import http from 'node:http';
import https, { type RequestOptions } from 'node:https';
import type { ClusterAccess } from './config.js';

/** Any Kubernetes object: the fields this client reads; typed kinds (VhostTrace, ...) fit it. */
export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata?: { name?: string; namespace?: string; resourceVersion?: string; uid?: string; [k: string]: unknown };
}

export interface List<T> {
  items: T[];
  metadata: { resourceVersion: string; continue?: string };
}

/** An API error with the server's status code, reason and message. */
export class ApiError extends Error {
  constructor(
    readonly method: string,
    readonly path: string,
    readonly code: number,
    readonly reason: string,
    readonly body: unknown,
  ) {
    const msg = (body as { message?: string } | undefined)?.message ?? (typeof body === 'string' ? body : '');
    super(`${method} ${path}: ${code} ${reason}${msg ? `: ${msg}` : ''}`);
    this.name = 'ApiError';
  }
}

export const isNotFound = (e: unknown) => e instanceof ApiError && e.code === 404;
export const isConflict = (e: unknown) => e instanceof ApiError && e.code === 409;
export const isGone = (e: unknown) => e instanceof ApiError && e.code === 410;

export interface RequestOpts {
  body?: unknown;
  contentType?: string;
  query?: Record<string, string | number | boolean | undefined>;
  /** Abort a request that has not finished in this time (default 30 s; watches set none). */
  timeoutMs?: number;
  /** Skip reading a successful response's body (a large object sent back): returns undefined. */
  discardBody?: boolean;
  /** The Accept header; application/json by default. */
  accept?: string;
}

/**
 * Asks for the object's metadata only (the API server honours it for writes too), with plain
 * JSON as the fallback: a 1 KB answer instead of a large object the caller would not read.
 */
const METADATA_ONLY = 'application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1, application/json';
const METADATA_LIST = 'application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1, application/json';

export { loadKubeConfig, type ClusterAccess } from './config.js';

export class KubeClient {
  private readonly agent: https.Agent;
  /** Watches hold their connection for minutes: they get their own, outside the pool. */
  private readonly watchAgent: https.Agent;

  constructor(readonly access: ClusterAccess) {
    const tls = { ca: access.ca, cert: access.cert, key: access.key, rejectUnauthorized: !access.insecureSkipTLSVerify };
    this.agent = new https.Agent({ keepAlive: true, maxSockets: 8, ...tls });
    this.watchAgent = new https.Agent({ keepAlive: false, ...tls });
  }

  /** Closes pooled connections (so a process can exit promptly). */
  close(): void {
    this.agent.destroy();
    this.watchAgent.destroy();
  }

  private async open(method: string, path: string, opts: RequestOpts = {}): Promise<IncomingMessage> {
    const url = new URL(path, this.access.server);
    for (const [k, v] of Object.entries(opts.query ?? {})) if (v !== undefined) url.searchParams.set(k, String(v));
    const token = this.access.token?.();
    const ro: RequestOptions = {
      method,
      agent: url.protocol !== 'https:' ? undefined : opts.timeoutMs === 0 ? this.watchAgent : this.agent,
      headers: { ...this.access.headers, accept: opts.accept ?? 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    };
    let payload: Buffer | undefined;
    if (opts.body !== undefined) {
      // Encoded once, outside the JS heap: a string body is measured, joined to the headers and
      // encoded again by http (an agent sends 100 KB reports every second).
      payload = Buffer.from(typeof opts.body === 'string' ? opts.body : JSON.stringify(opts.body));
      ro.headers = { ...ro.headers, 'content-type': opts.contentType ?? 'application/json', 'content-length': payload.length };
    }
    const send = url.protocol === 'http:' ? http.request : https.request;
    return new Promise((resolve, reject) => {
      const req = send(url, ro, resolve);
      req.on('error', (e) => reject(new Error(`${method} ${path}: ${e.message}`, { cause: e })));
      if (opts.timeoutMs !== 0) {
        req.setTimeout(opts.timeoutMs ?? 30_000, () => req.destroy(new Error(`timed out after ${opts.timeoutMs ?? 30_000} ms`)));
      }
      req.end(payload);
    });
  }

  async request<T>(method: string, path: string, opts: RequestOpts = {}): Promise<T> {
    const res = await this.open(method, path, opts);
    if (opts.discardBody && (res.statusCode ?? 0) < 300) {
      res.resume();
      await new Promise((r) => res.on('end', r));
      return undefined as T;
    }
    const chunks: Buffer[] = [];
    for await (const c of res) chunks.push(c as Buffer);
    const text = Buffer.concat(chunks).toString();
    let body: unknown = text;
    try {
      body = text ? JSON.parse(text) : undefined;
    } catch {
      /* keep text */
    }
    const code = res.statusCode ?? 0;
    if (code >= 300) throw new ApiError(method, path, code, (body as { reason?: string })?.reason ?? res.statusMessage ?? '', body);
    return body as T;
  }

  get<T extends KubeObject>(path: string): Promise<T> {
    return this.request<T>('GET', path);
  }

  /** GET, or undefined for 404. */
  async find<T extends KubeObject>(path: string): Promise<T | undefined> {
    try {
      return await this.get<T>(path);
    } catch (e) {
      if (isNotFound(e)) return undefined;
      throw e;
    }
  }

  list<T extends KubeObject>(path: string, query: RequestOpts['query'] = {}): Promise<List<T>> {
    return this.request<List<T>>('GET', path, { query });
  }

  /** A list of the objects' metadata only (PartialObjectMetadataList): names and versions, no bodies. */
  listMetadata(path: string, query: RequestOpts['query'] = {}): Promise<List<KubeObject>> {
    return this.request<List<KubeObject>>('GET', path, { query, accept: METADATA_LIST });
  }

  /**
   * Server-side apply: the object is this field manager's whole intent; fields it no longer
   * sets are removed, others' fields are left alone. force: take over conflicting fields.
   * discardBody: the answer is not read, and only the object's metadata is asked for.
   */
  apply<T extends KubeObject>(path: string, obj: object, fieldManager: string, force = true, discardBody = false): Promise<T> {
    return this.request<T>('PATCH', path, {
      body: obj,
      contentType: 'application/apply-patch+yaml',
      query: { fieldManager, force },
      discardBody,
      accept: discardBody ? METADATA_ONLY : undefined,
    });
  }

  async delete(path: string, query: RequestOpts['query'] = {}): Promise<void> {
    try {
      await this.request('DELETE', path, { query });
    } catch (e) {
      if (!isNotFound(e)) throw e;
    }
  }

  /** Opens a watch; events arrive one JSON object per line until the server ends the stream. */
  async openWatch(path: string, query: RequestOpts['query']): Promise<IncomingMessage> {
    const res = await this.open('GET', path, { query: { ...query, watch: true }, timeoutMs: 0 });
    if ((res.statusCode ?? 0) >= 300) {
      let text = '';
      for await (const c of res) text += (c as Buffer).toString();
      let body: unknown = text;
      try {
        body = JSON.parse(text);
      } catch {
        /* keep text */
      }
      throw new ApiError('WATCH', path, res.statusCode ?? 0, (body as { reason?: string })?.reason ?? '', body);
    }
    return res;
  }
}

/** The REST path of a resource: /api/v1/... for the core group, /apis/<group>/<version>/... otherwise. */
export function resourcePath(apiVersion: string, plural: string, namespace?: string, name?: string): string {
  const base = apiVersion.includes('/') ? `/apis/${apiVersion}` : `/api/${apiVersion}`;
  return `${base}${namespace ? `/namespaces/${namespace}` : ''}/${plural}${name ? `/${name}` : ''}`;
}
