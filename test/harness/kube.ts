// A thin REST client for tests: raw status codes and bodies, so a test can assert exactly what
// the API server answered (the error's field names, a Table's columns) without a typed layer.
import { KubeConfig } from '@kubernetes/client-node';
import { request } from 'node:https';
import type { RequestOptions } from 'node:https';
import { allCRDs } from '../../src/api/crds.js';

export interface Response<T = any> {
  status: number;
  body: T;
}

/** The API server's Status body for a refused request. */
export interface StatusBody {
  kind: 'Status';
  message: string;
  reason: string;
  details?: { causes?: Array<{ field?: string; message: string; reason: string }> };
}

export class TestClient {
  readonly kc = new KubeConfig();
  constructor(kubeconfig: string) {
    this.kc.loadFromFile(kubeconfig);
  }

  async request<T = any>(
    method: string,
    path: string,
    body?: unknown,
    headers: Record<string, string> = {},
  ): Promise<Response<T>> {
    const cluster = this.kc.getCurrentCluster();
    if (!cluster) throw new Error('kubeconfig has no current cluster');
    const opts: RequestOptions = { method, headers: { accept: 'application/json', ...headers } };
    await this.kc.applyToHTTPSOptions(opts);
    const payload = body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body);
    if (payload !== undefined) {
      opts.headers = { 'content-type': 'application/json', ...opts.headers, 'content-length': Buffer.byteLength(payload) };
    }
    return new Promise((res, rej) => {
      const req = request(new URL(path, cluster.server), opts, (r) => {
        let text = '';
        r.on('data', (d: Buffer) => (text += d.toString()));
        r.on('end', () => {
          let parsed: unknown = text;
          try {
            parsed = JSON.parse(text);
          } catch {
            /* not JSON: keep the text */
          }
          res({ status: r.statusCode ?? 0, body: parsed as T });
        });
      });
      req.on('error', (e) => rej(new Error(`${method} ${path}: ${e.message}`)));
      req.end(payload);
    });
  }

  /** Server-side apply (force) of a whole object, as `kubectl apply --server-side` does. */
  apply<T = any>(path: string, obj: unknown, fieldManager = 'vhosttrace-test'): Promise<Response<T>> {
    return this.request<T>('PATCH', `${path}?fieldManager=${fieldManager}&force=true`, obj, {
      'content-type': 'application/apply-patch+yaml',
    });
  }
}

/** Installs (or updates) the CRDs and waits until the API server serves them. */
/** Applies CRDs (vhosttrace's by default) and waits until each is established and served. */
export async function installCRDs(c: TestClient, timeoutMs = 30_000, crds: readonly any[] = allCRDs): Promise<void> {
  for (const crd of crds) {
    const r = await c.apply(`/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${crd.metadata.name}`, crd);
    if (r.status >= 300) throw new Error(`installing CRD ${crd.metadata.name}: ${r.status} ${JSON.stringify(r.body)}`);
  }
  const deadline = Date.now() + timeoutMs;
  for (const crd of crds) {
    for (;;) {
      const r = await c.request(`GET`, `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${crd.metadata.name}`);
      const established = r.body?.status?.conditions?.some((x: any) => x.type === 'Established' && x.status === 'True');
      if (established) break;
      if (Date.now() > deadline) throw new Error(`CRD ${crd.metadata.name} not Established: ${JSON.stringify(r.body?.status)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  // Established can precede discovery by a moment; wait until the resources are listable.
  for (const crd of crds) {
    const { group, names, scope, versions } = crd.spec;
    const path = `/apis/${group}/${versions[0].name}${scope === 'Namespaced' ? '/namespaces/default' : ''}/${names.plural}`;
    while ((await c.request('GET', path)).status !== 200) {
      if (Date.now() > deadline) throw new Error(`${path} not served`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}
