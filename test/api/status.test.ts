import { beforeAll, describe, expect, inject, it } from 'vitest';
import type { TraceStatus } from '../../src/api/v1alpha1.js';
import { installCRDs, TestClient } from '../harness/kube.js';

const c = new TestClient(inject('kubeconfig'));
const NS = 'status';
const path = `/apis/vhosttrace.io/v1alpha1/namespaces/${NS}/vhosttraces`;
const merge = { 'content-type': 'application/merge-patch+json' };

const hist = (buckets: number[], sum: number, p50: number) => ({
  count: buckets.reduce((a, b) => a + b, 0),
  sum,
  buckets,
  p50,
  p90: p50 * 2 + 1,
  p99: p50 * 4 + 3,
});

const status: TraceStatus = {
  phase: 'Running',
  observedGeneration: 1,
  startTime: '2026-11-24T10:00:00Z',
  interval: '10s',
  nodesReporting: '2/3',
  nodeCounts: { selected: 3, reporting: 2, pending: 0, failed: 1 },
  nodes: [
    { name: 'node-c', state: 'Failed', reason: 'TracepointMissing', message: 'vhost_net has no vhost_net_rx_end tracepoint: install the vhosttrace vhost_net module' },
    { name: 'node-a', state: 'Reporting', kernel: '6.1.0-47-amd64', mode: 'tracepoint', lastReportTime: '2026-11-24T10:01:00Z' },
  ],
  conditions: [
    { type: 'NodesReady', status: 'False', reason: 'TracepointMissing', message: 'node-c: TracepointMissing', lastTransitionTime: '2026-11-24T10:00:10Z', observedGeneration: 1 },
  ],
  summary: {
    rx: { packets: hist([1000, 200, 34], 1500, 1), bytes: hist([0, 0, 0, 0, 0, 0, 1234], 100000, 127) },
    tx: { packets: hist([500, 67], 700, 1), bytes: hist([0, 0, 0, 0, 0, 0, 567], 40000, 127) },
  },
  vms: [{ namespace: NS, name: 'vm1', node: 'node-a', rx: { packets: { count: 1234, sum: 1500, p50: 1, p90: 3, p99: 7 }, bytes: { count: 1234, sum: 100000, p50: 127, p90: 127, p99: 127 } } }],
  otherVMs: { count: 0, rxRuns: 0, txRuns: 0 },
};

beforeAll(async () => {
  await installCRDs(c);
  await c.request('POST', '/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: NS } });
  const r = await c.request('POST', path, {
    apiVersion: 'vhosttrace.io/v1alpha1',
    kind: 'VhostTrace',
    metadata: { name: 'st' },
    spec: { duration: '10m', interval: '10s' },
  });
  expect(r.status, JSON.stringify(r.body)).toBe(201);
});

describe('status subresource', () => {
  it('takes status without touching spec or generation', async () => {
    const r = await c.request('PATCH', `${path}/st/status`, { spec: { duration: '1h' }, status }, merge);
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    const got = await c.request('GET', `${path}/st`);
    expect(got.body.spec.duration).toBe('10m');
    expect(got.body.metadata.generation).toBe(1);
    expect(got.body.status).toEqual(status);
  });

  it('ignores status written through the main resource', async () => {
    const r = await c.request('PATCH', `${path}/st`, { status: { phase: 'Failed' } }, merge);
    expect(r.status).toBe(200);
    expect((await c.request('GET', `${path}/st`)).body.status.phase).toBe('Running');
  });

  it('the table view (kubectl get vht) shows the printer columns', async () => {
    const r = await c.request('GET', path, undefined, { accept: 'application/json;as=Table;v=v1;g=meta.k8s.io' });
    expect(r.status).toBe(200);
    expect(r.body.kind).toBe('Table');
    const cols = r.body.columnDefinitions.map((x: any) => x.name);
    expect(cols).toEqual(['Name', 'Phase', 'Nodes', 'RX Runs', 'TX Runs', 'RX Pkts P50', 'Interval', 'Duration', 'Age']);
    const row = r.body.rows.find((x: any) => x.cells[0] === 'st');
    expect(row.cells.slice(0, 8)).toEqual(['st', 'Running', '2/3', 1234, 567, 1, '10s', '10m']);
    expect(row.cells[8]).toMatch(/^\d+s$/);
  });
});
