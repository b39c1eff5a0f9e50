// One real etcd + kube-apiserver for the whole "api" test project; tests get its kubeconfig
// with inject('kubeconfig'). Set VHOSTTRACE_KEEP_CONTROL_PLANE=1 to keep its files and logs.
import type {} from 'vitest';
import type { TestProject } from 'vitest/node';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { startControlPlane } from './controlplane.js';

/** Compiles src/ to dist/: API tests run real agent and operator processes from it. */
function build(): void {
  const repo = resolve(import.meta.dirname, '../..');
  try {
    execFileSync(process.execPath, [resolve(repo, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json'], { cwd: repo, stdio: 'pipe' });
  } catch (err) {
    const out = (err as { stdout?: Buffer }).stdout?.toString() ?? '';
    throw new Error(`tsc -p tsconfig.build.json failed:\n${out}`, { cause: err });
  }
  if (!existsSync(resolve(repo, 'dist/agent/main.js'))) throw new Error('tsc wrote no dist/agent/main.js');
}

declare module 'vitest' {
  export interface ProvidedContext {
    kubeconfig: string;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  build();
  const started = Date.now();
  const cp = await startControlPlane({ log: (l) => console.log(`[control-plane] ${l}`) });
  console.log(`[control-plane] started in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  project.provide('kubeconfig', cp.kubeconfig);
  return () => cp.stop();
}
