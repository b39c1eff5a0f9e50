import { defineConfig } from 'vitest/config';

// Six projects, one per kind of real part a test needs. `npm test` runs them all.
export default defineConfig({
  test: {
    projects: [
      // Pure logic: no server, no kernel, no file outside the test's own temp dir.
      { test: { name: 'unit', include: ['test/unit/**/*.test.ts'] } },
      // Against one shared real etcd + kube-apiserver on loopback (see docs/testing.md).
      {
        test: {
          name: 'api',
          include: ['test/api/**/*.test.ts'],
          globalSetup: ['test/harness/global-setup.ts'],
          testTimeout: 60_000,
          hookTimeout: 180_000,
        },
      },
      // BPF programs in the host kernel: verifier and BPF_PROG_TEST_RUN (needs CAP_BPF).
      { test: { name: 'bpf', include: ['test/bpf/**/*.test.ts'], testTimeout: 120_000 } },
      // The operator with kube-controller-manager, kube-scheduler and kwok's simulated nodes.
      {
        test: {
          name: 'e2e',
          include: ['test/e2e/**/*.test.ts'],
          testTimeout: 180_000,
          hookTimeout: 1_800_000,
          fileParallelism: false,
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
          fileParallelism: false,
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
          fileParallelism: false,
        },
      },
    ],
  },
});
