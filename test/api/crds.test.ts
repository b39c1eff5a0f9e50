import { beforeAll, describe, expect, inject, it } from 'vitest';
import { allCRDs } from '../../src/api/crds.js';
import { installCRDs, TestClient } from '../harness/kube.js';

const c = new TestClient(inject('kubeconfig'));

describe('CRDs', () => {
  beforeAll(() => installCRDs(c));

  it('install and become Established with the names kubectl uses', async () => {
    for (const crd of allCRDs) {
      const r = await c.request('GET', `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${crd.metadata.name}`);
      expect(r.status).toBe(200);
      const conds = Object.fromEntries(r.body.status.conditions.map((x: any) => [x.type, x.status]));
      expect(conds).toMatchObject({ Established: 'True', NamesAccepted: 'True' });
      expect(r.body.status.acceptedNames.shortNames).toEqual(crd.spec.names.shortNames);
    }
  });

  it('are in API discovery under vhosttrace.io/v1alpha1 with a status subresource', async () => {
    const r = await c.request('GET', '/apis/vhosttrace.io/v1alpha1');
    expect(r.status).toBe(200);
    const names = r.body.resources.map((x: any) => x.name).sort();
    expect(names).toEqual([
      'clustervhosttraces',
      'clustervhosttraces/status',
      'vhosttracereports',
      'vhosttracereports/status',
      'vhosttraces',
      'vhosttraces/status',
    ]);
    const vht = r.body.resources.find((x: any) => x.name === 'vhosttraces');
    expect(vht).toMatchObject({ kind: 'VhostTrace', namespaced: true, shortNames: ['vht'] });
    const cvht = r.body.resources.find((x: any) => x.name === 'clustervhosttraces');
    expect(cvht).toMatchObject({ kind: 'ClusterVhostTrace', namespaced: false });
  });
});
