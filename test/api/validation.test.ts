// The API server, not the operator, refuses bad specs: each case here is sent to a real
// kube-apiserver and must come back refused, naming the field that is wrong.
import { beforeAll, describe, expect, inject, it } from 'vitest';
import { installCRDs, TestClient, type Response, type StatusBody } from '../harness/kube.js';

const c = new TestClient(inject('kubeconfig'));
const NS = 'validation';
const vhtPath = `/apis/vhosttrace.io/v1alpha1/namespaces/${NS}/vhosttraces`;
const cvhtPath = `/apis/vhosttrace.io/v1alpha1/clustervhosttraces`;
const reportPath = `/apis/vhosttrace.io/v1alpha1/namespaces/${NS}/vhosttracereports`;

const validSpec = () => ({
  vmSelector: { matchLabels: { app: 'db' }, matchExpressions: [{ key: 'tier', operator: 'In', values: ['gold'] }] },
  nodeSelector: { matchLabels: { 'kubevirt.io/schedulable': 'true' } },
  duration: '10m',
  interval: '10s',
  directions: ['rx', 'tx'],
});

let seq = 0;
function trace(spec: unknown, name = `t${++seq}`) {
  return { apiVersion: 'vhosttrace.io/v1alpha1', kind: 'VhostTrace', metadata: { name }, spec };
}

/** Checks that the server refused the request and that the refusal names `field`. */
function expectRefused(r: Response<StatusBody>, field: string, message?: RegExp): void {
  expect(r.status, JSON.stringify(r.body)).toBeGreaterThanOrEqual(400);
  expect(r.status).toBeLessThan(500);
  const causes = r.body.details?.causes ?? [];
  const named =
    causes.some((x) => x.field === field) ||
    r.body.message.includes(`${field}: `) ||
    r.body.message.includes(`unknown field "${field}"`);
  expect(named, `expected the error to name ${field}: ${r.body.message}`).toBe(true);
  if (message) expect(r.body.message).toMatch(message);
  // A CEL rule that fails to evaluate is a bug in the schema, not a message for a user.
  expect(r.body.message).not.toMatch(/error evaluating rule|type conversion error|no such key/);
}

const create = (body: unknown, path = vhtPath) => c.request<StatusBody>('POST', `${path}?fieldValidation=Strict`, body);

beforeAll(async () => {
  await installCRDs(c);
  await c.request('POST', '/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: NS } });
});

describe('valid traces', () => {
  it('a full VhostTrace is accepted and reads back unchanged', async () => {
    const spec = validSpec();
    const r = await create(trace(spec, 'full'));
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    const got = await c.request('GET', `${vhtPath}/full`);
    expect(got.body.spec).toEqual(spec);
    expect(got.body.metadata.generation).toBe(1);
  });

  it('a minimal VhostTrace gets the documented defaults', async () => {
    const r = await create(trace({}, 'minimal'));
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    const got = await c.request('GET', `${vhtPath}/minimal`);
    expect(got.body.spec).toEqual({
      nodeSelector: { matchLabels: { 'kubevirt.io/schedulable': 'true' } },
      directions: ['rx', 'tx'],
    });
  });

  it('a full ClusterVhostTrace is accepted and reads back unchanged', async () => {
    const spec = {
      ...validSpec(),
      namespaceSelector: { matchExpressions: [{ key: 'kubernetes.io/metadata.name', operator: 'NotIn', values: ['kube-system'] }] },
      includeUnattributed: false,
      directions: ['tx'],
      duration: undefined,
    };
    delete spec.duration;
    const body = { apiVersion: 'vhosttrace.io/v1alpha1', kind: 'ClusterVhostTrace', metadata: { name: 'cluster-full' }, spec };
    const r = await create(body, cvhtPath);
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    const got = await c.request('GET', `${cvhtPath}/cluster-full`);
    expect(got.body.spec).toEqual(spec);
  });

  it('the report interval may change while the trace runs', async () => {
    await create(trace(validSpec(), 'retime'));
    const r = await c.request('PATCH', `${vhtPath}/retime`, { spec: { interval: '30s' } }, { 'content-type': 'application/merge-patch+json' });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(r.body.spec.interval).toBe('30s');
  });
});

// [what is wrong, how to break a valid spec, the field the error must name, what it must say]
type Case = [string, (s: any) => void, string, RegExp?];
const specCases: Case[] = [
  ['duration in words', (s) => (s.duration = 'ten minutes'), 'spec.duration', /should match/],
  ['negative duration', (s) => (s.duration = '-5m'), 'spec.duration'],
  ['duration below 10s', (s) => (s.duration = '5s'), 'spec.duration', /between 10s and 720h/],
  ['duration above 720h', (s) => (s.duration = '1000h'), 'spec.duration', /between 10s and 720h/],
  ['duration as a number', (s) => (s.duration = 600), 'spec.duration', /must be of type string|string/],
  ['interval of zero', (s) => (s.interval = '0s'), 'spec.interval', /between 1s and 1h/],
  ['interval below 1s', (s) => (s.interval = '500ms'), 'spec.interval', /between 1s and 1h/],
  ['interval above 1h', (s) => (s.interval = '2h'), 'spec.interval', /between 1s and 1h/],
  ['interval without unit', (s) => (s.interval = '10'), 'spec.interval'],
  ['interval as a boolean', (s) => (s.interval = true), 'spec.interval'],
  ['interval longer than duration', (s) => ((s.duration = '30s'), (s.interval = '1m')), 'spec.interval', /not be longer than duration/],
  ['unknown direction', (s) => (s.directions = ['rx', 'up']), 'spec.directions[1]', /Unsupported value/],
  ['duplicated direction', (s) => (s.directions = ['rx', 'rx']), 'spec.directions[1]', /Duplicate value/],
  ['no direction', (s) => (s.directions = []), 'spec.directions'],
  ['directions as a string', (s) => (s.directions = 'rx'), 'spec.directions'],
  ['label key with a space', (s) => (s.vmSelector.matchLabels = { 'bad key': 'x' }), 'spec.vmSelector.matchLabels', /label keys/],
  ['label key with two slashes', (s) => (s.vmSelector.matchLabels = { 'a/b/c': 'x' }), 'spec.vmSelector.matchLabels'],
  ['label value too long', (s) => (s.vmSelector.matchLabels = { app: 'x'.repeat(64) }), 'spec.vmSelector.matchLabels.app'],
  ['label value with a space', (s) => (s.vmSelector.matchLabels = { app: 'a b' }), 'spec.vmSelector.matchLabels.app'],
  ['matchLabels as a list', (s) => (s.nodeSelector.matchLabels = ['a']), 'spec.nodeSelector.matchLabels'],
  ['unknown operator', (s) => (s.vmSelector.matchExpressions[0].operator = 'Like'), 'spec.vmSelector.matchExpressions[0].operator', /Unsupported value/],
  ['In without values', (s) => delete s.vmSelector.matchExpressions[0].values, 'spec.vmSelector.matchExpressions[0].values', /non-empty for In/],
  ['Exists with values', (s) => (s.vmSelector.matchExpressions[0].operator = 'Exists'), 'spec.vmSelector.matchExpressions[0].values'],
  ['expression without key', (s) => delete s.vmSelector.matchExpressions[0].key, 'spec.vmSelector.matchExpressions[0].key', /Required/],
  ['expression key invalid', (s) => (s.nodeSelector.matchExpressions = [{ key: '-bad', operator: 'Exists' }]), 'spec.nodeSelector.matchExpressions[0].key'],
  ['unknown spec field', (s) => (s.sampleRate = 10), 'spec.sampleRate', /unknown field/],
  ['unknown selector field', (s) => (s.vmSelector.matchLabelz = { a: 'b' }), 'spec.vmSelector.matchLabelz', /unknown field/],
  ['namespaceSelector on a namespaced trace', (s) => (s.namespaceSelector = {}), 'spec.namespaceSelector', /unknown field/],
];

describe('malformed VhostTrace specs are refused, naming the field', () => {
  it.each(specCases)('%s', async (_what, breakIt, field, message) => {
    const spec = validSpec();
    breakIt(spec);
    expectRefused(await create(trace(spec)), field, message);
  });

  it('over-long name', async () => {
    expectRefused(await create(trace(validSpec(), 'n'.repeat(64))), 'metadata.name', /63/);
  });

  it('name with upper case', async () => {
    expectRefused(await create(trace(validSpec(), 'MyTrace')), 'metadata.name', /lowercase/);
  });

  it('no spec at all', async () => {
    const body = { apiVersion: 'vhosttrace.io/v1alpha1', kind: 'VhostTrace', metadata: { name: 'nospec' } };
    expectRefused(await create(body), 'spec', /Required/);
  });
});

describe('malformed ClusterVhostTrace specs are refused, naming the field', () => {
  const cases: Case[] = [
    ['namespaceSelector with a bad operator', (s) => (s.namespaceSelector = { matchExpressions: [{ key: 'a', operator: 'Has' }] }), 'spec.namespaceSelector.matchExpressions[0].operator'],
    ['includeUnattributed as a string', (s) => (s.includeUnattributed = 'yes'), 'spec.includeUnattributed'],
    ['interval above 1h', (s) => (s.interval = '90m'), 'spec.interval'],
  ];
  it.each(cases)('%s', async (_what, breakIt, field, message) => {
    const spec = validSpec();
    breakIt(spec);
    const body = { apiVersion: 'vhosttrace.io/v1alpha1', kind: 'ClusterVhostTrace', metadata: { name: `c${++seq}` }, spec };
    expectRefused(await create(body, cvhtPath), field, message);
  });
});

describe('what a trace measures cannot change after it starts', () => {
  const changes: Array<[string, object, string]> = [
    ['directions', { directions: ['rx'] }, 'spec.directions'],
    ['vmSelector', { vmSelector: { matchLabels: { app: 'web' } } }, 'spec.vmSelector'],
    ['nodeSelector', { nodeSelector: { matchLabels: { zone: 'a' } } }, 'spec.nodeSelector'],
    ['duration', { duration: '20m' }, 'spec.duration'],
    ['duration removed', { duration: null }, 'spec.duration'],
  ];
  it.each(changes)('%s', async (_what, patch, field) => {
    const name = `immutable-${++seq}`;
    expect((await create(trace(validSpec(), name))).status).toBe(201);
    const r = await c.request<StatusBody>('PATCH', `${vhtPath}/${name}`, { spec: patch }, { 'content-type': 'application/merge-patch+json' });
    expectRefused(r, field, /cannot change after the trace starts/);
  });

  it('a vmSelector cannot be added to a trace that started without one', async () => {
    const name = `immutable-${++seq}`;
    expect((await create(trace({ duration: '1h' }, name))).status).toBe(201);
    const r = await c.request<StatusBody>('PATCH', `${vhtPath}/${name}`, { spec: { vmSelector: { matchLabels: { a: 'b' } } } }, { 'content-type': 'application/merge-patch+json' });
    expectRefused(r, 'spec.vmSelector', /cannot change/);
  });

  it("a ClusterVhostTrace's namespaceSelector", async () => {
    const name = `c-immutable-${++seq}`;
    const body = { apiVersion: 'vhosttrace.io/v1alpha1', kind: 'ClusterVhostTrace', metadata: { name }, spec: { namespaceSelector: { matchLabels: { team: 'a' } } } };
    expect((await create(body, cvhtPath)).status).toBe(201);
    const r = await c.request<StatusBody>('PATCH', `${cvhtPath}/${name}`, { spec: { namespaceSelector: { matchLabels: { team: 'b' } } } }, { 'content-type': 'application/merge-patch+json' });
    expectRefused(r, 'spec.namespaceSelector', /cannot change/);
  });
});

describe('reports', () => {
  const report = (name: string, nodeName: string) => ({
    apiVersion: 'vhosttrace.io/v1alpha1',
    kind: 'VhostTraceReport',
    metadata: { name },
    spec: { trace: { kind: 'VhostTrace', name: 'full', namespace: NS, uid: '00000000-0000-0000-0000-000000000001' }, nodeName },
  });

  it('cannot move to another node', async () => {
    expect((await create(report('r1', 'node-a'), reportPath)).status).toBe(201);
    const r = await c.request<StatusBody>('PATCH', `${reportPath}/r1`, { spec: { nodeName: 'node-b' } }, { 'content-type': 'application/merge-patch+json' });
    expectRefused(r, 'spec', /cannot move to another trace or node/);
  });

  it('refuse a trace kind that does not exist', async () => {
    const body = report('r2', 'node-a');
    (body.spec.trace as any).kind = 'PodTrace';
    expectRefused(await create(body, reportPath), 'spec.trace.kind', /Unsupported value/);
  });

  it('refuse negative bucket counts in status', async () => {
    expect((await create(report('r3', 'node-a'), reportPath)).status).toBe(201);
    const status = { total: { rx: { packets: { count: 1, sum: 1, buckets: [-1] }, bytes: { count: 1, sum: 60, buckets: [0, 0, 0, 0, 0, 1] } } } };
    const r = await c.request<StatusBody>('PATCH', `${reportPath}/r3/status`, { status }, { 'content-type': 'application/merge-patch+json' });
    expectRefused(r, 'status.total.rx.packets.buckets[0]', /greater than or equal to 0/);
  });
});
