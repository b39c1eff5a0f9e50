// Pod Security Admission (built into kube-apiserver) against the agent's pods: the namespace the
// chart creates admits them; a baseline namespace refuses them and says why; the operator alone
// would pass restricted. Pods are created with dryRun=All, which runs admission in full.
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { defaultConfig } from '../../src/operator/config.js';
import { desiredDaemonSet } from '../../src/operator/daemonset.js';
import type { Trace } from '../../src/api/reports.js';
import { renderChart } from '../harness/cluster.js';
import { TestClient } from '../harness/kube.js';

const c = new TestClient(inject('kubeconfig'));
const INSTALL = 'vhosttrace-system';
const PSA = 'pod-security.kubernetes.io/enforce';
const NAMESPACES = { chart: 'psa-chart', baseline: 'psa-baseline', restricted: 'psa-restricted' };
let docs: any[];

const trace = { apiVersion: 'vhosttrace.io/v1alpha1', kind: 'VhostTrace', metadata: { name: 't', namespace: 'vms', uid: 'u' }, spec: {} } as Trace;
function agentPod(capabilities = defaultConfig().agent.capabilities) {
  const cfg = defaultConfig();
  const ds = desiredDaemonSet([trace], { ...cfg, agent: { ...cfg.agent, capabilities } }, Date.now())!;
  return { apiVersion: 'v1', kind: 'Pod', metadata: { generateName: 'agent-' }, spec: ds.spec.template.spec };
}
const create = (ns: string, pod: object) => c.request('POST', `/api/v1/namespaces/${ns}/pods?dryRun=All`, pod);

beforeAll(async () => {
  docs = (await renderChart(INSTALL, ['createNamespace=true'])).docs;
  const chartNs = docs.find((d) => d.kind === 'Namespace');
  const labels = { chart: chartNs.metadata.labels, baseline: { [PSA]: 'baseline' }, restricted: { [PSA]: 'restricted' } };
  for (const [k, name] of Object.entries(NAMESPACES)) {
    const r = await c.request('POST', '/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name, labels: labels[k as keyof typeof labels] } });
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    for (const sa of ['vhosttrace-agent', 'vhosttrace-operator']) await c.request('POST', `/api/v1/namespaces/${name}/serviceaccounts`, { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: sa } });
  }
});

afterAll(async () => {
  for (const name of Object.values(NAMESPACES)) await c.request('DELETE', `/api/v1/namespaces/${name}`);
});

describe('Pod Security Admission and the agent', () => {
  it("the chart's namespace enforces privileged, and admits the agent pods, in stock mode too", async () => {
    expect(docs.find((d) => d.kind === 'Namespace').metadata.labels[PSA]).toBe('privileged');
    for (const caps of [['BPF', 'PERFMON'], ['BPF', 'PERFMON', 'SYS_ADMIN']]) {
      const r = await create(NAMESPACES.chart, agentPod(caps));
      expect(r.status, JSON.stringify(r.body)).toBe(201);
    }
  });

  it('a baseline namespace refuses the agent pods and says why', async () => {
    const r = await create(NAMESPACES.baseline, agentPod());
    expect(r.status).toBe(403);
    expect(r.body.message).toMatch(/violates PodSecurity "baseline:latest"/);
    expect(r.body.message).toContain('non-default capabilities (container "agent" must not include "BPF", "PERFMON" in securityContext.capabilities.add)');
    expect(r.body.message).toContain('hostPath volumes (volumes "bpffs", "tracefs", "btf", "cgroup", "proc", "state")');
  });

  it('the operator alone would pass restricted: only the agent needs privileged', async () => {
    const deploy = docs.find((d) => d.kind === 'Deployment');
    const r = await create(NAMESPACES.restricted, { apiVersion: 'v1', kind: 'Pod', metadata: { generateName: 'operator-' }, spec: deploy.spec.template.spec });
    expect(r.status, JSON.stringify(r.body)).toBe(201);
  });
});
