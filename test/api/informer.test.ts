// The informer against a real API server: events, relist diffs, and an API server restart.
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { KubeClient, loadKubeConfig, type KubeObject } from '../../src/kube/client.js';
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

  it('reads a full list in pages of pageSize, following continue', async () => {
    const ppath = '/api/v1/namespaces/informer-pages/configmaps';
    await client.request('POST', '/api/v1/namespaces', { body: { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'informer-pages' } } });
    for (const n of ['a', 'b', 'c', 'd', 'e']) await client.request('POST', ppath, { body: cm(n, {}) });
    // The real server answers; the client records what each list page asked for and got.
    const pages: string[] = [];
    const paging = Object.create(client) as KubeClient;
    paging.list = async <T extends KubeObject>(p: string, q?: Record<string, string | number | boolean | undefined>) => {
      const page = await client.list<T>(p, q);
      pages.push(`limit=${q?.limit} continue=${q?.continue ? 'yes' : 'no'} items=${page.items.length}`);
      return page;
    };
    const inf = new Informer(paging, ppath, { pageSize: 2 });
    void inf.run();
    await inf.synced;
    inf.stop();
    expect(pages).toEqual(['limit=2 continue=no items=2', 'limit=2 continue=yes items=2', 'limit=2 continue=yes items=1']);
    expect(inf.list().map((o) => o.metadata?.name).sort()).toEqual(['a', 'b', 'c', 'd', 'e']);
  });

  describe('relist by metadata', () => {
    const mpath = '/api/v1/namespaces/informer-md/configmaps';
    const data = (inf: Informer<any>) => Object.fromEntries(inf.list().map((o) => [o.metadata.name, o.data?.v]));

    beforeAll(async () => {
      await client.request('POST', '/api/v1/namespaces', { body: { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'informer-md' } } });
      for (const n of ['a', 'b2', 'b1', 'c']) await client.request('POST', mpath, { body: cm(n, { v: '1' }) });
    });

    // The informer is synced, then stopped, so the writes below are missed as a broken watch
    // would miss them; the relist must find them.
    async function missed(maxReads: number) {
      const inf = new Informer<any>(client, mpath, { labelSelector: 'informer=yes', metadataRelistMaxReads: maxReads });
      void inf.run();
      await inf.synced;
      inf.stop();
      const before = new Map(inf.list().map((o) => [o.metadata.name, o]));
      await client.apply(`${mpath}/a`, cm('a', { v: `${maxReads + 1}` }), 'test');
      await client.delete(`${mpath}/b${maxReads}`);
      await client.request('POST', mpath, { body: cm(`e${maxReads}`, { v: '1' }) });
      const changes: string[] = [];
      let how: unknown;
      inf.on('change', (t, o) => changes.push(`${t} ${o.metadata.name}`));
      inf.on('list', (_n, _why, h) => (how = h));
      await (inf as unknown as { relist(why: string): Promise<void> }).relist('resync');
      return { inf, before, changes, how };
    }

    it('reads only the objects that changed, each as of the list, and keeps the others as they were', async () => {
      const { inf, before, changes, how } = await missed(2);
      expect(how).toEqual({ metadata: true, read: 2 });
      expect(changes.sort()).toEqual(['ADDED e2', 'DELETED b2', 'MODIFIED a']);
      expect(data(inf)).toEqual({ a: '3', b1: '1', c: '1', e2: '1' });
      expect(inf.get('informer-md', 'c')).toBe(before.get('c')); // not read again
      await client.delete(`${mpath}/e2`);
    });

    it('lists in full when more changed than it may read one by one', async () => {
      const { inf, changes, how } = await missed(1);
      expect(how).toEqual({ metadata: false, read: 3 });
      expect(changes.sort()).toEqual(['ADDED e1', 'DELETED b1', 'MODIFIED a']);
      expect(data(inf)).toEqual({ a: '2', c: '1', e1: '1' });
    });
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
