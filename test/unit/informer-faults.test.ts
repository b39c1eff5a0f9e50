// Faults a healthy API server will not produce on demand, simulated with nock: a 410 Gone in
// the middle of a watch, a watch dropped mid-stream, and a failing list.
import nock from 'nock';
import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { KubeClient } from '../../src/kube/client.js';
import { Informer } from '../../src/kube/informer.js';

const SERVER = 'https://kube.test';
const PATH = '/api/v1/namespaces/ns/configmaps';

function client(): KubeClient {
  return new KubeClient({ server: SERVER, insecureSkipTLSVerify: true, token: () => 'secret', source: 'test' });
}

const obj = (name: string, rv: string) => ({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, namespace: 'ns', resourceVersion: rv } });
const list = (rv: string, ...items: object[]) => ({ kind: 'ConfigMapList', metadata: { resourceVersion: rv }, items });
const line = (type: string, object: object) => JSON.stringify({ type, object }) + '\n';

/**
 * A watch response that sends the given lines, then stays open (ends only when destroyed).
 * With no lines it sends a bookmark, as servers do: nock holds the response until a first chunk.
 */
function openStream(...lines: string[]): Readable {
  const r = new Readable({ read() {} });
  for (const l of lines.length ? lines : [line('BOOKMARK', { kind: 'ConfigMap', metadata: {} })]) r.push(l);
  return r;
}

function record(inf: Informer<any>): string[] {
  const log: string[] = [];
  inf.on('list', (n, why) => log.push(`list ${why} ${n}`));
  inf.on('connect', (rv) => log.push(`connect ${rv}`));
  inf.on('gone', () => log.push('gone'));
  inf.on('error', (e) => log.push(`error ${e.message.slice(0, 40)}`));
  inf.on('change', (t, o) => log.push(`${t} ${o.metadata.name}`));
  return log;
}

async function until(cond: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 10));
  }
}

beforeEach(() => nock.disableNetConnect());
afterEach(() => {
  nock.cleanAll();
  nock.enableNetConnect();
});

describe('Informer faults', () => {
  it('relists after a 410 Gone inside the watch stream, and reports what changed meanwhile', async () => {
    const api = nock(SERVER)
      .get(PATH).query(true).reply(200, list('10', obj('a', '5'), obj('b', '6')))
      .get(PATH).query((q) => q.watch === 'true' && q.resourceVersion === '10')
      .reply(200, () => openStream(line('ERROR', { kind: 'Status', code: 410, reason: 'Expired', message: 'too old resource version' })))
      .get(PATH).query((q) => q.watch === undefined).reply(200, list('20', obj('b', '6'), obj('c', '15')))
      .get(PATH).query((q) => q.watch === 'true' && q.resourceVersion === '20').reply(200, () => openStream());
    const inf = new Informer(client(), PATH, { backoffMinMs: 10 });
    const log = record(inf);
    void inf.run();
    await until(() => log.includes('connect 20'));
    inf.stop();
    expect(log).toEqual(['ADDED a', 'ADDED b', 'list start 2', 'connect 10', 'gone', 'DELETED a', 'ADDED c', 'list gone 2', 'connect 20']);
    expect(api.isDone()).toBe(true);
  });

  it('answers an HTTP 410 on opening the watch with a relist', async () => {
    nock(SERVER)
      .get(PATH).query(true).reply(200, list('10'))
      .get(PATH).query((q) => q.watch === 'true').reply(410, { kind: 'Status', code: 410, reason: 'Gone' })
      .get(PATH).query((q) => q.watch === undefined).reply(200, list('30', obj('x', '29')))
      .get(PATH).query((q) => q.watch === 'true' && q.resourceVersion === '30').reply(200, () => openStream());
    const inf = new Informer(client(), PATH, { backoffMinMs: 10 });
    const log = record(inf);
    void inf.run();
    await until(() => log.includes('connect 30'));
    inf.stop();
    expect(log).toEqual(['list start 0', 'gone', 'ADDED x', 'list gone 1', 'connect 30']);
  });

  it('a watch dropped mid-stream is resumed from the last resourceVersion after a backoff', async () => {
    nock(SERVER)
      .get(PATH).query(true).reply(200, list('10'))
      .get(PATH).query((q) => q.watch === 'true' && q.resourceVersion === '10')
      .reply(200, () => {
        const s = openStream(line('ADDED', obj('a', '11')));
        setTimeout(() => s.destroy(new Error('socket hang up')), 20);
        return s;
      })
      .get(PATH).query((q) => q.watch === 'true' && q.resourceVersion === '11')
      .reply(200, () => openStream(line('MODIFIED', obj('a', '12'))));
    const inf = new Informer(client(), PATH, { backoffMinMs: 10 });
    const log = record(inf);
    void inf.run();
    await until(() => log.includes('MODIFIED a'));
    inf.stop();
    expect(log[0]).toBe('list start 0');
    expect(log.slice(1, 3)).toEqual(['connect 10', 'ADDED a']);
    expect(log[3]).toMatch(/^error /);
    expect(log.slice(4)).toEqual(['connect 11', 'MODIFIED a']);
  });

  it('a failing list backs off, doubling, then succeeds', async () => {
    nock(SERVER)
      .get(PATH).query(true).times(3).reply(500, { kind: 'Status', code: 500, message: 'etcd down' })
      .get(PATH).query((q) => q.watch === undefined).reply(200, list('7', obj('a', '7')))
      .get(PATH).query((q) => q.watch === 'true').reply(200, () => openStream());
    const inf = new Informer(client(), PATH, { backoffMinMs: 10, backoffMaxMs: 1000 });
    const delays: number[] = [];
    inf.on('error', (e, d) => {
      expect(e.message).toMatch(/500.*etcd down/);
      delays.push(d);
    });
    void inf.run();
    await inf.synced;
    inf.stop();
    expect(delays).toEqual([10, 20, 40]);
    expect(inf.list().map((o) => o.metadata?.name)).toEqual(['a']);
  });

  it('restarts a watch that has gone silent', async () => {
    nock(SERVER)
      .get(PATH).query(true).reply(200, list('10'))
      .get(PATH).query((q) => q.watch === 'true').times(2).reply(200, () => openStream());
    const inf = new Informer(client(), PATH, { idleMs: 50 });
    let idles = 0;
    inf.on('idle', () => idles++);
    void inf.run();
    await until(() => idles >= 1);
    inf.stop();
    expect(idles).toBeGreaterThanOrEqual(1);
  });

  it('transforms objects before caching them, from the list and from the watch', async () => {
    const fat = (name: string, rv: string) => ({ ...obj(name, rv), metadata: { ...obj(name, rv).metadata, managedFields: [{ manager: 'x' }] }, data: { big: 'x'.repeat(1000) } });
    nock(SERVER)
      .get(PATH).query(true).reply(200, list('10', fat('a', '9')))
      .get(PATH).query((q) => q.watch === 'true').reply(200, () => openStream(line('ADDED', fat('b', '11'))));
    const slim = (o: any) => ({ apiVersion: o.apiVersion, kind: o.kind, metadata: { name: o.metadata.name, namespace: o.metadata.namespace, resourceVersion: o.metadata.resourceVersion } });
    const inf = new Informer<any>(client(), PATH, { transform: slim });
    const seen: any[] = [];
    inf.on('change', (_t, o) => seen.push(o));
    void inf.run();
    await until(() => seen.length === 2);
    inf.stop();
    for (const o of [...seen, ...inf.list()]) {
      expect(o.data).toBeUndefined();
      expect(o.metadata.managedFields).toBeUndefined();
    }
    expect(inf.list().map((o) => o.metadata.name).sort()).toEqual(['a', 'b']);
  });

  it('a relist keeps the cached object of an unchanged resourceVersion: same identity, not reshaped', async () => {
    nock(SERVER)
      .get(PATH).query(true).reply(200, list('10', obj('a', '5'), obj('b', '6')))
      .get(PATH).query((q) => q.watch === 'true' && q.resourceVersion === '10')
      .reply(200, () => openStream(line('ERROR', { kind: 'Status', code: 410, reason: 'Expired', message: 'too old resource version' })))
      .get(PATH).query((q) => q.watch === undefined).reply(200, list('20', obj('a', '5'), obj('b', '7')))
      .get(PATH).query((q) => q.watch === 'true' && q.resourceVersion === '20').reply(200, () => openStream());
    const shaped: string[] = [];
    const inf = new Informer<any>(client(), PATH, { backoffMinMs: 10, transform: (o: any) => (shaped.push(`${o.metadata.name}@${o.metadata.resourceVersion}`), { ...o }) });
    const log = record(inf);
    let a: unknown;
    let b: unknown;
    inf.on('list', (_n, why) => why === 'start' && ([a, b] = [inf.get('ns', 'a'), inf.get('ns', 'b')]));
    void inf.run();
    await until(() => log.includes('connect 20'));
    inf.stop();
    expect(inf.get('ns', 'a')).toBe(a);
    expect(inf.get('ns', 'b')).not.toBe(b);
    expect(inf.get('ns', 'b').metadata.resourceVersion).toBe('7');
    expect(shaped).toEqual(['a@5', 'b@6', 'b@7']);
    expect(log.filter((l) => l.startsWith('MODIFIED'))).toEqual(['MODIFIED b']);
  });
});
