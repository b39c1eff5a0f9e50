// The real helm refuses what the chart cannot run with, naming the field: values outside
// values.schema.json, and a Kubernetes older than Chart.yaml's kubeVersion.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { helmEnv, KUBE_VERSION } from '../harness/cluster.js';
import { testBinaries } from '../harness/controlplane.js';

const CHART = join(import.meta.dirname, '../../charts/vhosttrace');
let helm: string;

const run = (...args: string[]) => {
  const r = spawnSync(helm, args, { encoding: 'utf8', env: helmEnv() });
  return { code: r.status, out: r.stdout + r.stderr };
};
const template = (kubeVersion: string, ...set: string[]) =>
  run('template', 'vhosttrace', CHART, '--kube-version', kubeVersion, ...set.flatMap((s) => ['--set', s]));

beforeAll(async () => {
  helm = (await testBinaries(['helm'])).helm!;
});

describe('helm refuses bad values, naming the field', () => {
  it('accepts the defaults and the documented alternatives (lint, template)', () => {
    expect(run('lint', CHART, '--kube-version', KUBE_VERSION).code).toBe(0);
    expect(template(KUBE_VERSION, 'agent.capabilities={BPF,PERFMON,SYS_ADMIN}', 'agent.maxUnavailable=100%', 'agent.seccompProfile=Unconfined', 'createNamespace=true').code).toBe(0);
    expect(template(KUBE_VERSION, 'agent.maxUnavailable=3').code).toBe(0);
  });

  it.each([
    ['a negative interval', 'operator.statusMinIntervalMs=-1', "at '/operator/statusMinIntervalMs': minimum: got -1, want 0"],
    ['a zero report budget', 'operator.reportWritesPerSecond=0', "at '/operator/reportWritesPerSecond': exclusiveMinimum: got 0, want 0"],
    ['an unknown capability', 'agent.capabilities={BPF,NET_ADMIN}', "at '/agent/capabilities/1': value must be one of 'BPF', 'PERFMON', 'SYS_ADMIN'"],
    ['a wrong type', 'operator.replicas=two', "at '/operator/replicas': got string, want integer"],
    ['a port out of range', 'agent.port=70000', "at '/agent/port': maximum: got 70,000, want 65,535"],
    ['a misspelt key', 'agent.capabilites={BPF}', "at '/agent': additional properties 'capabilites' not allowed"],
    ['an unknown seccomp profile', 'agent.seccompProfile=Localhost', "at '/agent/seccompProfile': value must be one of 'RuntimeDefault', 'Unconfined'"],
  ])('%s', (_what, set, message) => {
    const r = template(KUBE_VERSION, set);
    expect(r.code).not.toBe(0);
    expect(r.out).toContain("values don't meet the specifications of the schema");
    expect(r.out).toContain(message);
  });

  it('needs Kubernetes >= 1.30 (the admission policy), vendor builds included', () => {
    const old = template('v1.29.9');
    expect(old.code).not.toBe(0);
    expect(old.out).toContain('chart requires kubeVersion: >=1.30.0-0 which is incompatible with Kubernetes v1.29.9');
    expect(template('v1.30.0').code).toBe(0);
    expect(template('v1.31.2-eks-1a2b3c').code).toBe(0);
  });
});
