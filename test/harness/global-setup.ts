// One real etcd + kube-apiserver for the whole "api" test project; tests get its kubeconfig
// with inject('kubeconfig'). Set VHOSTTRACE_KEEP_CONTROL_PLANE=1 to keep its files and logs.
import type {} from 'vitest';
import type { TestProject } from 'vitest/node';
import { startControlPlane } from './controlplane.js';

declare module 'vitest' {
  export interface ProvidedContext {
    kubeconfig: string;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const started = Date.now();
  const cp = await startControlPlane({ log: (l) => console.log(`[control-plane] ${l}`) });
  console.log(`[control-plane] started in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  project.provide('kubeconfig', cp.kubeconfig);
  return () => cp.stop();
}
