import { defineConfig } from 'vitest/config';
import { BaseSequencer, type TestSpecification } from 'vitest/node';

/**
 * The real-node file first: it holds one of the two workers for its whole run (two qemu guests,
 * about 17 minutes), while the other projects go one file after another in the other worker:
 * the light ones (unit, api, bpf, e2e, about 6 minutes), then the kernel project's files (one
 * guest each, about 3 minutes). One after the other they added ten minutes to `npm test`
 * (docs/ci.md); beside it, what the guests leave of the CPU is enough for them.
 */
class NodeFirst extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const sorted = await super.sort(files);
    const rank = (f: TestSpecification) => (f.project.name === 'node' ? 0 : f.project.name === 'kernel' ? 2 : 1);
    return sorted.map((f, i) => ({ f, i })).sort((a, b) => rank(a.f) - rank(b.f) || a.i - b.i).map(({ f }) => f);
  }
}

// Two files at a time, one of them the real-node file (vitest wants one worker count per group).
const PAIR = { maxWorkers: 2, sequence: { groupOrder: 0 } };

// Six projects, one per kind of real part a test needs. `npm test` runs them all.
export default defineConfig({
  test: {
    sequence: { sequencer: NodeFirst },
    projects: [
      // Pure logic: no server, no kernel, no file outside the test's own temp dir.
      { test: { name: 'unit', include: ['test/unit/**/*.test.ts'], ...PAIR } },
      // Against one shared real etcd + kube-apiserver on loopback (see docs/testing.md).
      {
        test: {
          name: 'api',
          include: ['test/api/**/*.test.ts'],
          globalSetup: ['test/harness/global-setup.ts'],
          testTimeout: 60_000,
          hookTimeout: 180_000,
          ...PAIR,
        },
      },
      // BPF programs in the host kernel: verifier and BPF_PROG_TEST_RUN (needs CAP_BPF).
      { test: { name: 'bpf', include: ['test/bpf/**/*.test.ts'], testTimeout: 120_000, ...PAIR } },
      // The operator with kube-controller-manager, kube-scheduler and kwok's simulated nodes.
      {
        test: {
          name: 'e2e',
          include: ['test/e2e/**/*.test.ts'],
          testTimeout: 180_000,
          hookTimeout: 1_800_000,
          ...PAIR,
        },
      },
      // Real Debian kernels booted in qemu with the patched vhost_net module.
      {
        test: {
          name: 'kernel',
          include: ['test/kernel/**/*.test.ts'],
          globalSetup: ['test/kernel/global-setup.ts'],
          testTimeout: 900_000,
          hookTimeout: 1_800_000,
          ...PAIR,
        },
      },
      // The product as users run it: its image, helm, a real kubelet in a kernel test bed guest.
      {
        test: {
          name: 'node',
          include: ['test/node/**/*.test.ts'],
          globalSetup: ['test/kernel/global-setup.ts'],
          testTimeout: 900_000,
          hookTimeout: 1_800_000,
          ...PAIR,
        },
      },
    ],
  },
});
