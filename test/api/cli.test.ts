// kubectl-vhosttrace against the real API server: the trace's status and its reports.
import { beforeAll, describe, expect, inject, it } from 'vitest';
import { fromValues, summarize } from '../../src/api/histogram.js';
import { main } from '../../src/cli/main.js';
import { renderLog2Hist } from '../../src/loader/bcc-text.js';
import { installCRDs, TestClient } from '../harness/kube.js';

const c = new TestClient(inject('kubeconfig'));
const NS = 'cli';
const base = `/apis/vhosttrace.io/v1alpha1/namespaces/${NS}`;
const merge = { 'content-type': 'application/merge-patch+json' };
const rx = (runs: number[]) => ({ packets: fromValues(runs), bytes: fromValues(runs.map((r) => r * 1000)) });

async function run(...args: string[]): Promise<[number, string, string]> {
  let out = '';
  let err = '';
  const code = await main(args, (s) => (out += s), { err: (s) => (err += s), env: { KUBECONFIG: inject('kubeconfig') } });
  return [code, out, err];
}

beforeAll(async () => {
  await installCRDs(c);
  await c.request('POST', '/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: NS } });
  const t = await c.request('POST', `${base}/vhosttraces`, { apiVersion: 'vhosttrace.io/v1alpha1', kind: 'VhostTrace', metadata: { name: 'web' }, spec: {} });
  const uid = t.body.metadata.uid;
  const summary = { rx: { packets: summarize(fromValues([1, 1, 2, 256])), bytes: summarize(fromValues([1000, 1000, 2000, 256000])) } };
  await c.request('PATCH', `${base}/vhosttraces/web/status`, { status: { phase: 'Running', nodesReporting: '1/1', summary } }, merge);
  const report = {
    apiVersion: 'vhosttrace.io/v1alpha1', kind: 'VhostTraceReport',
    metadata: { name: 'web.node-1', labels: { 'vhosttrace.io/trace-uid': uid } },
    spec: { trace: { kind: 'VhostTrace', name: 'web', namespace: NS, uid }, nodeName: 'node-1' },
  };
  await c.request('POST', `${base}/vhosttracereports`, report);
  await c.request('PATCH', `${base}/vhosttracereports/web.node-1/status`, {
    status: { total: { rx: rx([1, 1, 2, 256]) }, vms: [{ namespace: NS, name: 'vm-1', rx: rx([1, 1]) }, { namespace: NS, name: 'vm-2', rx: rx([2, 256]) }] },
  }, merge);
});

describe('kubectl vhosttrace hist', () => {
  it('prints the cluster-wide summary from the status as BCC prints it', async () => {
    const [code, out] = await run('hist', 'web', '-n', NS);
    expect(code).toBe(0);
    expect(out).toContain('VhostTrace cli/web: Running, nodes 1/1');
    expect(out).toContain(renderLog2Hist(fromValues([1, 1, 2, 256]).buckets, 'recv pkts'));
    expect(out).toContain('runs 4, packets 260, mean 65.0, p50 <= 1, p90 <= 511, p99 <= 511');
    expect(out).not.toContain('TX');
  });

  it('prints one VM from the reports', async () => {
    const [code, out] = await run('hist', 'web', '-n', NS, '--vm', `${NS}/vm-2`);
    expect(code).toBe(0);
    expect(out).toContain(renderLog2Hist(fromValues([2, 256]).buckets, 'recv pkts'));
    expect(out).toContain('runs 2, packets 258');
  });

  it('says what is missing and exits non-zero', async () => {
    expect(await run('hist', 'nope', '-n', NS)).toEqual([3, '', 'error: VhostTrace "nope" not found in namespace cli (a ClusterVhostTrace? add --cluster)\n']);
    const [code, out, err] = await run('bogus');
    expect(code).toBe(2);
    expect(out).toBe('');
    expect(err).toMatch(/^error: unknown subcommand "bogus"/);
  });
});
