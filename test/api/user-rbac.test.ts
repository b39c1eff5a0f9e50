// Tenants' access through the chart's aggregated ClusterRoles (templates/user-rbac.yaml): users
// bound to the built-in admin, edit and view ClusterRoles in one namespace, impersonated against a
// real API server whose kube-controller-manager runs the clusterrole-aggregation controller (it,
// not the API server, merges the chart's rules into admin, edit and view).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Trace } from '../../src/api/reports.js';
import { applyAll, eventually, renderChart, startCluster, writeReport, type Cluster } from '../harness/cluster.js';
import type { TestClient } from '../harness/kube.js';

const INSTALL = 'vhosttrace-system';
const NS = 'team';
const API = '/apis/vhosttrace.io/v1alpha1';
/** user -> the built-in ClusterRole bound to them in NS. */
const BOUND = { ada: 'admin', eddie: 'edit', vera: 'view' } as const;
type User = keyof typeof BOUND | 'nobody';

let cluster: Cluster;
let c: TestClient;
let trace: Trace;

const as = (user: User) => ({ 'Impersonate-User': user });
const vht = (name: string) => ({ apiVersion: 'vhosttrace.io/v1alpha1', kind: 'VhostTrace', metadata: { name }, spec: { duration: '1m' } });

async function can(user: User, verb: string, resource: string, namespace?: string, subresource?: string): Promise<boolean> {
  const r = await c.request('POST', '/apis/authorization.k8s.io/v1/selfsubjectaccessreviews', {
    apiVersion: 'authorization.k8s.io/v1',
    kind: 'SelfSubjectAccessReview',
    spec: { resourceAttributes: { group: 'vhosttrace.io', verb, resource, subresource, namespace } },
  }, as(user));
  expect(r.status, JSON.stringify(r.body)).toBe(201);
  return r.body.status.allowed;
}

beforeAll(async () => {
  cluster = await startCluster({ extras: ['kube-controller-manager'], controllers: ['clusterrole-aggregation-controller'], log: (l) => console.log(`[cluster] ${l}`) });
  c = cluster.client;
  for (const ns of [NS, 'elsewhere']) await c.request('POST', '/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } });
  for (const [user, role] of Object.entries(BOUND)) {
    const r = await c.request('POST', `/apis/rbac.authorization.k8s.io/v1/namespaces/${NS}/rolebindings`, {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'RoleBinding',
      metadata: { name: user },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: role },
      subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: user }],
    });
    expect(r.status, JSON.stringify(r.body)).toBe(201);
  }
}, 180_000);

afterAll(async () => {
  await cluster?.stop();
});

describe("tenants' access through the chart's aggregated ClusterRoles", () => {
  it('without the chart, admin, edit and view give nothing on vhosttrace.io', async () => {
    // the built-in roles are aggregated already (pods), so a refusal here is the chart's to lift
    await eventually(async () => (await c.request('POST', '/apis/authorization.k8s.io/v1/selfsubjectaccessreviews', {
      apiVersion: 'authorization.k8s.io/v1', kind: 'SelfSubjectAccessReview', spec: { resourceAttributes: { verb: 'list', resource: 'pods', namespace: NS } },
    }, as('vera'))).body.status?.allowed, 30_000, 'view aggregated');
    for (const user of ['ada', 'eddie', 'vera'] as const) expect(await can(user, 'get', 'vhosttraces', NS), user).toBe(false);
  });

  it('with the chart: the table of who may do what', async () => {
    const { docs } = await renderChart(INSTALL, ['createNamespace=true']);
    await applyAll(c, [...docs.filter((d) => d.kind === 'Namespace' || d.kind === 'CustomResourceDefinition'), ...docs.filter((d) => d.kind !== 'Namespace' && d.kind !== 'CustomResourceDefinition')]);
    await eventually(() => can('eddie', 'create', 'vhosttraces', NS), 30_000, 'edit aggregated');
    await eventually(() => can('vera', 'list', 'vhosttracereports', NS), 30_000, 'view aggregated');
    const table: Array<[User, string, string, string | undefined, string | undefined, boolean]> = [];
    const writes = ['create', 'update', 'patch', 'delete', 'deletecollection'];
    const reads = ['get', 'list', 'watch'];
    for (const user of ['ada', 'eddie'] as const) {
      for (const v of [...writes, ...reads]) table.push([user, v, 'vhosttraces', NS, undefined, true]);
      for (const v of reads) table.push([user, v, 'vhosttracereports', NS, undefined, true]);
      // reports are the agents' measurements and statuses the operator's roll-up: not tenants' to write
      for (const v of ['create', 'update', 'patch', 'delete']) {
        table.push([user, v, 'vhosttracereports', NS, undefined, false]);
        table.push([user, v, 'vhosttracereports', NS, 'status', false]);
        table.push([user, v, 'vhosttraces', NS, 'status', false]);
      }
      // their namespace only
      table.push([user, 'create', 'vhosttraces', 'elsewhere', undefined, false]);
    }
    for (const v of reads) {
      table.push(['vera', v, 'vhosttraces', NS, undefined, true]);
      table.push(['vera', v, 'vhosttracereports', NS, undefined, true]);
      table.push(['nobody', v, 'vhosttraces', NS, undefined, false]);
    }
    for (const v of writes) table.push(['vera', v, 'vhosttraces', NS, undefined, false]);
    // ClusterVhostTraces are for cluster administrators only
    for (const user of ['ada', 'eddie', 'vera'] as const) for (const v of ['create', 'get', 'list']) table.push([user, v, 'clustervhosttraces', undefined, undefined, false]);
    const got = await Promise.all(table.map(async ([u, v, r, ns, sub]) => can(u, v, r, ns, sub)));
    const wrong = table.filter((row, i) => got[i] !== row[5]).map(([u, v, r, ns, sub, want]) => `${u} ${v} ${r}${sub ? `/${sub}` : ''} in ${ns ?? '(cluster)'}: want ${want}`);
    expect(wrong).toEqual([]);
  });

  it('and real requests agree', async () => {
    const created = await c.request('POST', `${API}/namespaces/${NS}/vhosttraces`, vht('mine'), as('eddie'));
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    trace = created.body;
    expect((await c.request('POST', `${API}/namespaces/${NS}/vhosttraces`, vht('nope'), as('vera'))).status).toBe(403);
    expect((await c.request('GET', `${API}/namespaces/${NS}/vhosttraces/mine`, undefined, as('vera'))).status).toBe(200);
    // a report as an agent writes it (here as cluster admin); tenants read it and cannot change it
    await writeReport(c, trace, 'n1', { state: 'Reporting', observedTime: new Date().toISOString().replace(/\.\d{3}Z$/, 'Z') }, INSTALL);
    const report = `${API}/namespaces/${NS}/vhosttracereports/mine.n1`;
    expect((await c.request('GET', report, undefined, as('vera'))).status).toBe(200);
    const forge = { status: { state: 'Failed' } };
    const mp = { 'content-type': 'application/merge-patch+json' };
    expect((await c.request('PATCH', `${report}/status`, forge, { ...mp, ...as('ada') })).status).toBe(403);
    expect((await c.request('PATCH', `${API}/namespaces/${NS}/vhosttraces/mine/status`, { status: { phase: 'Failed' } }, { ...mp, ...as('ada') })).status).toBe(403);
    const cluster = { apiVersion: 'vhosttrace.io/v1alpha1', kind: 'ClusterVhostTrace', metadata: { name: 'all' }, spec: { duration: '1m' } };
    const refused = await c.request('POST', `${API}/clustervhosttraces`, cluster, as('ada'));
    expect(refused.status).toBe(403);
    expect(refused.body.message).toContain('User "ada" cannot create resource "clustervhosttraces" in API group "vhosttrace.io" at the cluster scope');
    expect((await c.request('POST', `${API}/clustervhosttraces`, cluster)).status).toBe(201); // cluster-admin may
    expect((await c.request('DELETE', `${API}/namespaces/${NS}/vhosttraces/mine`, undefined, as('ada'))).status).toBe(200);
  });
});
