// CRD upgrades: Helm installs crds/ once and never upgrades them, so docs/install.md has the
// admin apply them with `kubectl apply --server-side --force-conflicts` before `helm upgrade`. Here the real
// kubectl runs that step over an older VhostTrace CRD, created as Helm creates it, on a control
// plane of its own (the shared one's CRDs are other tests').
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { allCRDs, vhostTraceCRD } from '../../src/api/crds.js';
import { startControlPlane, testBinaries, type ControlPlane } from '../harness/controlplane.js';
import { eventually } from '../harness/cluster.js';
import { installCRDs, TestClient } from '../harness/kube.js';

const CRDS = join(import.meta.dirname, '../../charts/vhosttrace/crds/crds.yaml');
const VHT = '/apis/vhosttrace.io/v1alpha1/namespaces/default/vhosttraces';
const CRD = `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${vhostTraceCRD.metadata.name}`;
let cp: ControlPlane;
let c: TestClient;

/** The VhostTrace CRD as an older release had it: no spec.directions (nor its CEL rule). */
function olderCRD() {
  const crd = structuredClone(vhostTraceCRD) as any;
  const spec = crd.spec.versions[0].schema.openAPIV3Schema.properties.spec;
  delete spec.properties.directions;
  spec['x-kubernetes-validations'] = spec['x-kubernetes-validations'].filter((r: { rule: string }) => !r.rule.includes('directions'));
  return crd;
}
const trace = (name: string) => ({ apiVersion: 'vhosttrace.io/v1alpha1', kind: 'VhostTrace', metadata: { name }, spec: { directions: ['rx'] } });

beforeAll(async () => {
  cp = await startControlPlane({ log: (l) => console.log(`[control-plane] ${l}`) });
  c = new TestClient(cp.kubeconfig);
  // as Helm installs crds/: a plain create
  const r = await c.request('POST', '/apis/apiextensions.k8s.io/v1/customresourcedefinitions', olderCRD());
  expect(r.status, JSON.stringify(r.body)).toBe(201);
  await eventually(async () => (await c.request('GET', VHT)).status === 200, 30_000, 'older CRD served');
}, 180_000);

afterAll(async () => {
  await cp?.stop();
});

describe('CRD upgrade', () => {
  it('the older CRD prunes a field it does not know', async () => {
    const r = await c.request('POST', VHT, trace('before'));
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    expect(r.body.spec.directions).toBeUndefined();
  });

  it('`kubectl apply --server-side --force-conflicts -f crds.yaml` upgrades it, keeping the objects', async () => {
    const { kubectl } = await testBinaries(['kubectl']);
    const apply = (...flags: string[]) => spawnSync(kubectl!, ['apply', '--server-side', ...flags, '-f', CRDS, '--kubeconfig', cp.kubeconfig], { encoding: 'utf8' });
    // Helm's create left .spec.versions to another manager: without --force-conflicts, refused
    const plain = apply();
    expect(plain.status).not.toBe(0);
    expect(plain.stderr).toContain('Apply failed with 1 conflict');
    const k = apply('--force-conflicts');
    const out = k.stdout + k.stderr;
    expect(k.status, out).toBe(0);
    expect(out).toContain(`customresourcedefinition.apiextensions.k8s.io/${vhostTraceCRD.metadata.name} serverside-applied`);
    const crd = (await c.request('GET', CRD)).body;
    expect(crd.spec.versions[0].schema.openAPIV3Schema.properties.spec.properties.directions).toBeDefined();
    await installCRDs(c, 30_000, allCRDs); // the same again as the test's manager: established and served
    expect((await c.request('GET', `${VHT}/before`)).status).toBe(200);
    const r = await c.request('POST', VHT, trace('after'));
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    expect(r.body.spec.directions).toEqual(['rx']);
  });
});
