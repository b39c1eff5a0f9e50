import { describe, expect, it } from 'vitest';
import { agentPodProblem, trimAgentPod, type AgentPod } from '../../src/operator/agent-pods.js';

const pod = (waiting?: { reason: string; message?: string }, extra: Partial<AgentPod['status']> = {}): AgentPod => ({
  metadata: { name: 'vhosttrace-agent-abcde', namespace: 'vhosttrace-system', resourceVersion: '7' },
  spec: { nodeName: 'kv-1' },
  status: { containerStatuses: [{ name: 'agent', ...(waiting ? { state: { waiting } } : {}) }], ...extra },
});

describe("why an agent pod is not running (the node's message in a trace's status)", () => {
  it('is nothing for a running or starting pod, or one going away', () => {
    expect(agentPodProblem(pod())).toBeUndefined();
    expect(agentPodProblem(pod({ reason: 'ContainerCreating' }))).toBeUndefined();
    const going = pod({ reason: 'CreateContainerError', message: 'x' });
    going.metadata.deletionTimestamp = '2026-12-05T10:00:00Z';
    expect(agentPodProblem(going)).toBeUndefined();
  });

  it('names the node-side fix when /sys/fs/bpf is not a shared mount, within the status limit', () => {
    // containerd 1.6's words, as the kubelet passes them on.
    const message =
      'failed to generate container "0123" spec: failed to generate spec: path "/sys/fs/bpf" is mounted on "/sys/fs/bpf" but it is not a shared or slave mount';
    const p = agentPodProblem(pod({ reason: 'CreateContainerError', message }))!;
    expect(p).toMatchObject({ pod: 'vhosttrace-agent-abcde', waiting: 'CreateContainerError' });
    expect(p.message).toBe(
      'agent pod vhosttrace-agent-abcde cannot start: /sys/fs/bpf is not a shared mount on the node; run `mount --make-shared /sys/fs/bpf` there (systemd does at boot)',
    );
    expect(p.message.length).toBeLessThanOrEqual(256);
  });

  it('puts the advice before the runtime message for image and crash problems', () => {
    const img = agentPodProblem(pod({ reason: 'ImagePullBackOff', message: 'Back-off pulling image "x/y:1"' }))!;
    expect(img.message).toBe(`agent pod vhosttrace-agent-abcde: ImagePullBackOff; check the chart's image.repository, image.tag and image.pullPolicy: Back-off pulling image "x/y:1"`);
    const crash = pod({ reason: 'CrashLoopBackOff', message: 'back-off 40s restarting failed container' });
    expect(agentPodProblem(crash)!.message).toMatch(/^agent pod vhosttrace-agent-abcde: CrashLoopBackOff; see `kubectl logs -n vhosttrace-system vhosttrace-agent-abcde --previous`: back-off/);
    const noMessage = pod({ reason: 'CrashLoopBackOff' });
    noMessage.status!.containerStatuses![0]!.lastState = { terminated: { exitCode: 1, reason: 'Error' } };
    expect(agentPodProblem(noMessage)!.message).toMatch(/--previous`: last exit 1 \(Error\)$/);
    expect(agentPodProblem(pod({ reason: 'CreateContainerConfigError', message: 'secret "s" not found' }))!.message).toBe(
      'agent pod vhosttrace-agent-abcde: CreateContainerConfigError; see `kubectl describe pod -n vhosttrace-system vhosttrace-agent-abcde`: secret "s" not found',
    );
  });

  it('caches only what it reads', () => {
    const full = {
      ...pod({ reason: 'CrashLoopBackOff', message: 'm' }),
      metadata: { name: 'p', namespace: 'n', resourceVersion: '1', labels: { a: 'b' }, managedFields: [{}] },
    } as AgentPod;
    full.status!.containerStatuses![0] = { ...full.status!.containerStatuses![0]!, image: 'i', ready: false } as never;
    expect(trimAgentPod(full)).toEqual({
      metadata: { name: 'p', namespace: 'n', resourceVersion: '1' },
      spec: { nodeName: 'kv-1' },
      status: { containerStatuses: [{ name: 'agent', state: { waiting: { reason: 'CrashLoopBackOff', message: 'm' } } }] },
    });
  });
});
