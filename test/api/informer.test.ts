// The informer against a real API server: events, relist diffs, and an API server restart.
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { KubeClient, loadKubeConfig } from '../../src/kube/client.js';
import { Informer } from '../../src/kube/informer.js';
import { startControlPlane, type ControlPlane } from '../harness/controlplane.js';

const cm = (name: string, data: Record<string, string>) => ({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, labels: { informer: 'yes' } }, data });

async function until(what: string, cond: () => boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('Informer', () => {
  const client = new KubeClient(loadKubeConfig(inject('kubeconfig')));
  const ns = 'informer';
  const path = `/api/v1/namespaces/${ns}/configmaps`;

  beforeAll(async () => {
    await client.request('POST', '/api/v1/namespaces', { body: { apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } } });
    await client.request('POST', path, { body: cm('before', { a: '1' }) });
  });

  it('lists, then sees adds, updates and deletes, filtered by label', async () => {
    const inf = new Informer(client, path, { labelSelector: 'informer=yes' });
    const seen: string[] = [];
    inf.on('change', (t, o) => seen.push(`${t} ${o.metadata?.name}`));
    void inf.run();
    await inf.synced;
    expect(inf.list().map((o) => o.metadata?.name)).toEqual(['before']);
    await client.request('POST', path, { body: cm('new', { a: '1' }) });
    await client.request('POST', path, { body: { ...cm('other', {}), metadata: { name: 'other' } } });
    await client.apply(`${path}/new`, cm('new', { a: '2' }), 'test');
    await client.delete(`${path}/before`);
    await until('delete seen', () => seen.includes('DELETED before'));
    inf.stop();
    expect(seen).toEqual(['ADDED before', 'ADDED new', 'MODIFIED new', 'DELETED before']);
    expect((inf.get(ns, 'new') as any).data).toEqual({ a: '2' });
  });

  it('a resync relists and reports only what changed', async () => {
    const inf = new Informer(client, path, { labelSelector: 'informer=yes', resyncMs: 300 });
    const lists: string[] = [];
    const changes: string[] = [];
    inf.on('list', (n, why) => lists.push(`${why}:${n}`));
    inf.on('change', (t, o) => changes.push(`${t} ${o.metadata?.name}`));
    void inf.run();
    await until('two resyncs', () => lists.filter((l) => l.startsWith('resync')).length >= 2, 10_000);
    inf.stop();
    expect(lists[0]).toBe('start:1');
    expect(changes).toEqual(['ADDED new']); // nothing changed, so the resyncs add no events
  });
});

describe('Informer across an API server restart', () => {
  let cp: ControlPlane;
  beforeAll(async () => {
    cp = await startControlPlane();
  });
  afterAll(() => cp?.stop());

  it('reconnects with backoff and misses nothing written while the server was down', async () => {
    const client = new KubeClient(loadKubeConfig(cp.kubeconfig));
    const path = '/api/v1/namespaces/default/configmaps';
    const inf = new Informer(client, path, { labelSelector: 'informer=yes', backoffMinMs: 100, backoffMaxMs: 1000 });
    const events: string[] = [];
    inf.on('error', () => events.push('error'));
    inf.on('connect', () => events.push('connect'));
    void inf.run();
    await inf.synced;
    await client.request('POST', path, { body: cm('one', {}) });
    await until('one', () => !!inf.get('default', 'one'));
    await cp.restartApiServer();
    await client.request('POST', path, { body: cm('two', {}) });
    await until('two after restart', () => !!inf.get('default', 'two'), 30_000);
    inf.stop();
    expect(events.filter((e) => e === 'connect').length).toBeGreaterThanOrEqual(2);
    expect(inf.list().map((o) => o.metadata?.name).sort()).toEqual(['one', 'two']);
  });
});
