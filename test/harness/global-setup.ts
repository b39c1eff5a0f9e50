// One real etcd + kube-apiserver for the whole "api" test project; tests get its kubeconfig
// with inject('kubeconfig'). Set VHOSTTRACE_KEEP_CONTROL_PLANE=1 to keep its files and logs.
import type {} from 'vitest';
import type { TestProject } from 'vitest/node';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { startControlPlane } from './controlplane.js';

/**
 * `npm run build`: src/ compiled to dist/ (API tests run real agent and operator processes from
 * it) and the kubectl plugin bundled into dist/plugin/kubectl-vhosttrace (test/api/cli-kubectl).
 */
function build(): void {
  const repo = resolve(import.meta.dirname, '../..');
  try {
    execFileSync('npm', ['run', '--silent', 'build'], { cwd: repo, stdio: 'pipe' });
  } catch (err) {
    const e = err as { stdout?: Buffer; stderr?: Buffer };
    throw new Error(`npm run build failed:\n${e.stdout?.toString() ?? ''}${e.stderr?.toString() ?? ''}`, { cause: err });
  }
  for (const f of ['dist/agent/main.js', 'dist/plugin/kubectl-vhosttrace']) if (!existsSync(resolve(repo, f))) throw new Error(`npm run build wrote no ${f}`);
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
