// The plugin as users install it: `npm run build`'s one bundled file (built by this project's global
// setup) copied to a temporary PATH, and run in place from dist/plugin/, found and run by the real
// kubectl against the test API server.
import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { fromValues, summarize } from '../../src/api/histogram.js';
import { renderLog2Hist } from '../../src/loader/bcc-text.js';
import { testBinaries } from '../harness/controlplane.js';
import { eventually } from '../harness/cluster.js';
import { installCRDs, TestClient } from '../harness/kube.js';

const REPO = resolve(import.meta.dirname, '../..');
const kubeconfig = inject('kubeconfig');
const c = new TestClient(kubeconfig);
const NS = 'cli-kubectl';
const API = '/apis/vhosttrace.io/v1alpha1';
const base = `${API}/namespaces/${NS}`;
const merge = { 'content-type': 'application/merge-patch+json' };
const RUNS = [1, 3, 3, 64];
const rx = () => ({ packets: summarize(fromValues(RUNS)), bytes: summarize(fromValues(RUNS.map((r) => r * 1500))) });

let kubectl: string;
let bin: string;
/** A PATH with the plugin and node (its #! line is `/usr/bin/env node`), and nothing of the repo. */
let path: string;

const env = (over: Record<string, string> = {}) => ({ PATH: path, HOME: bin, KUBECONFIG: kubeconfig, ...over });
const k = (args: string[], over?: Record<string, string>) => {
  const r = spawnSync(kubectl, args, { env: env(over), encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
};

beforeAll(async () => {
  ({ kubectl } = (await testBinaries(['kubectl'])) as { kubectl: string });
  bin = mkdtempSync(join(tmpdir(), 'vhosttrace-plugin-'));
  copyFileSync(join(REPO, 'dist/plugin/kubectl-vhosttrace'), join(bin, 'kubectl-vhosttrace'));
  path = `${bin}:${dirname(process.execPath)}:/usr/bin:/bin`;
  await installCRDs(c);
  expect((await c.request('POST', '/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: NS } })).status).toBe(201);
  const t = await c.request('POST', `${base}/vhosttraces`, { apiVersion: 'vhosttrace.io/v1alpha1', kind: 'VhostTrace', metadata: { name: 'web' }, spec: {} });
  expect(t.status).toBe(201);
  await c.request('PATCH', `${base}/vhosttraces/web/status`, { status: { phase: 'Running', nodesReporting: '1/1', summary: { rx: rx() } } }, merge);
}, 180_000);

describe('kubectl vhosttrace, the bundled file on PATH', () => {
  it('is what `npm run build` made executable, and kubectl lists it as a plugin', () => {
    expect(readFileSync(join(bin, 'kubectl-vhosttrace'), 'utf8')).toMatch(/^#!\/usr\/bin\/env node\n/);
    const r = k(['plugin', 'list']);
    expect(r.code, r.err).toBe(0);
    expect(r.out).toContain(join(bin, 'kubectl-vhosttrace'));
  });

  it('show prints the histograms as BCC does, from the status', () => {
    const r = k(['vhosttrace', 'show', 'web', '-n', NS]);
    expect(r.code, r.err).toBe(0);
    expect(r.out).toContain(`VhostTrace ${NS}/web: Running, nodes 1/1`);
    expect(r.out).toContain(renderLog2Hist(fromValues(RUNS).buckets, 'recv pkts'));
  });

  it('runs in place from dist/plugin/ inside the repo (whose package.json says "type": "module") too', () => {
    const inPlace = join(REPO, 'dist/plugin');
    const r = k(['vhosttrace', 'show', 'web', '-n', NS], { PATH: `${inPlace}:${dirname(process.execPath)}:/usr/bin:/bin` });
    expect(r.code, r.err).toBe(0);
    expect(r.out).toContain(renderLog2Hist(fromValues(RUNS).buckets, 'recv pkts'));
    const listed = k(['plugin', 'list'], { PATH: `${inPlace}:${dirname(process.execPath)}:/usr/bin:/bin` });
    expect(listed.out).toContain(join(inPlace, 'kubectl-vhosttrace'));
  });

  it('get -o json prints the object as the API server has it', async () => {
    const r = k(['vhosttrace', 'get', 'web', '-n', NS, '-o', 'json']);
    expect(r.code, r.err).toBe(0);
    const got = JSON.parse(r.out);
    const want = (await c.request('GET', `${base}/vhosttraces/web`)).body;
    expect(got.metadata.uid).toBe(want.metadata.uid);
    expect(got.status).toEqual(want.status);
  });

  it('passes its exit codes and stderr through kubectl: not found 3, usage 2, no cluster 7, forbidden 6', () => {
    const missing = k(['vhosttrace', 'show', 'nope', '-n', NS]);
    expect([missing.code, missing.out]).toEqual([3, '']);
    expect(missing.err).toMatch(/^error: VhostTrace "nope" not found in namespace cli-kubectl/);
    const usage = k(['vhosttrace', 'show', 'web', '-o', 'toml']);
    expect(usage.code, usage.err).toBe(2);
    // A kubeconfig whose server is a closed port, and one whose user impersonates someone with no rights.
    const cfg = parse(readFileSync(kubeconfig, 'utf8'));
    const closed = structuredClone(cfg);
    closed.clusters[0].cluster.server = 'https://127.0.0.1:1';
    writeFileSync(join(bin, 'closed.kubeconfig'), stringify(closed));
    const down = k(['vhosttrace', 'get', '-n', NS], { KUBECONFIG: join(bin, 'closed.kubeconfig') });
    expect(down.code, down.err).toBe(7);
    const nobody = structuredClone(cfg);
    nobody.users[0].user.as = 'vhosttrace-test-nobody';
    writeFileSync(join(bin, 'nobody.kubeconfig'), stringify(nobody));
    const denied = k(['vhosttrace', 'show', 'web', '-n', NS], { KUBECONFIG: join(bin, 'nobody.kubeconfig') });
    expect(denied.code, denied.err).toBe(6);
    expect(denied.err).toMatch(/vhosttrace-test-nobody/);
  });

  it('watch redraws as the status changes and ends when the trace completes', async () => {
    await c.request('POST', `${base}/vhosttraces`, { apiVersion: 'vhosttrace.io/v1alpha1', kind: 'VhostTrace', metadata: { name: 'watched' }, spec: {} });
    await c.request('PATCH', `${base}/vhosttraces/watched/status`, { status: { phase: 'Running', nodesReporting: '1/1', summary: { rx: rx() } } }, merge);
    const child = spawn(kubectl, ['vhosttrace', 'watch', 'watched', '-n', NS], { env: env() });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    const exited = new Promise<number | null>((r) => child.on('close', r));
    await eventually(async () => out.includes(renderLog2Hist(fromValues(RUNS).buckets, 'recv pkts')), 30_000, 'the first frame');
    const more = [...RUNS, 200, 200];
    const summary = { rx: { packets: summarize(fromValues(more)), bytes: summarize(fromValues(more.map((r) => r * 1500))) } };
    await c.request('PATCH', `${base}/vhosttraces/watched/status`, { status: { phase: 'Completed', summary } }, merge);
    expect(await exited, out).toBe(0);
    expect(out).toContain(`VhostTrace ${NS}/watched: Completed`);
    expect(out.slice(out.lastIndexOf('Completed'))).toContain(renderLog2Hist(fromValues(more).buckets, 'recv pkts'));
  });

  it('run creates a trace, waits while its status changes, prints the histograms when it completes, and deletes it', async () => {
    const child = spawn(kubectl, ['vhosttrace', 'run', 'short', '-n', NS, '--duration', '10s', '--interval', '1s', '--timeout', '2m'], { env: env() });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    const exited = new Promise<number | null>((r) => child.on('close', r));
    // What the operator would write, in two steps: Running with one node, then Completed.
    await eventually(async () => (await c.request('GET', `${base}/vhosttraces/short`)).body?.metadata?.uid, 30_000, 'the trace run created').catch((e: Error) => {
      throw new Error(`${e.message}; run's stderr: ${err}`);
    });
    const t = (await c.request('GET', `${base}/vhosttraces/short`)).body;
    expect(t.spec).toMatchObject({ duration: '10s', interval: '1s' });
    await c.request('PATCH', `${base}/vhosttraces/short/status`, { status: { phase: 'Running', nodesReporting: '1/1', startTime: new Date().toISOString().replace(/\.\d{3}Z$/, 'Z') } }, merge);
    await eventually(async () => err.includes('Running, nodes 1/1 reporting'), 30_000, 'progress on stderr');
    await c.request('PATCH', `${base}/vhosttraces/short/status`, { status: { phase: 'Completed', summary: { rx: rx() } } }, merge);
    expect(await exited, err).toBe(0);
    expect(err).toMatch(/^created VhostTrace cli-kubectl\/short; tracing for 10s/);
    expect(err).toContain('deleted VhostTrace cli-kubectl/short');
    expect(out).toContain(renderLog2Hist(fromValues(RUNS).buckets, 'recv pkts'));
    expect((await c.request('GET', `${base}/vhosttraces/short`)).status).toBe(404);
  });
});
