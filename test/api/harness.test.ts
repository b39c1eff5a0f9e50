// The harness itself: a component that fails to start must say why.
import { describe, expect, it } from 'vitest';
import { startControlPlane } from '../harness/controlplane.js';

describe('test control plane', () => {
  it('a kube-apiserver that cannot start fails with the tail of its log', async () => {
    await expect(startControlPlane({ apiServerFlags: ['--no-such-flag'] })).rejects.toThrow(
      /kube-apiserver exited with code \d+; last lines of .*kube-apiserver\.log:\n[\s\S]*unknown flag: --no-such-flag/,
    );
  });
});
