import { defineConfig } from 'vitest/config';
import { BaseSequencer, type TestSpecification } from 'vitest/node';

/**
 * The real-node file first: it holds one of the two workers for its whole run (two qemu guests,
 * 12-13 minutes), while the light projects (unit, api, bpf, e2e) go one file after another
 * in the other. Beside it they slowed it little (743 s in CI, about 800 s alone); one after the
 * other they added about four minutes (233 s) to `npm test`. The kernel project's guests come after (group 1).
 */
class NodeFirst extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const sorted = await super.sort(files);
    return [...sorted.filter((f) => f.project.name === 'node'), ...sorted.filter((f) => f.project.name !== 'node')];
  }
}

// Group 0 runs two files at a time (one of them the real-node file); group 1, the kernel
// project, two at a time too (each file boots one guest at a time).
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
          // Two files at once, one guest each: after the node file the second core is idle.
          maxWorkers: 2,
          sequence: { groupOrder: 1 },
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
