// Why a node's agent pod is not running, from the pod's status: the node then says so in a
// trace's status (reason AgentNotRunning) with what to do, instead of waiting silently. Pure.

/** The parts of a Pod this module reads (and the operator's cache keeps). */
export interface AgentPod {
  metadata: { name: string; namespace?: string; resourceVersion?: string; deletionTimestamp?: string };
  spec?: { nodeName?: string };
  status?: {
    containerStatuses?: {
      name: string;
      state?: { waiting?: { reason?: string; message?: string } };
      lastState?: { terminated?: { exitCode?: number; reason?: string; message?: string } };
    }[];
  };
}

export interface AgentProblem {
  /** Name of the agent pod. */
  pod: string;
  /** The kubelet's waiting reason: CreateContainerError, ImagePullBackOff, CrashLoopBackOff, ... */
  waiting: string;
  /** What happened and what to do, for the node's message in status. */
  message: string;
}

/**
 * Waiting reasons that mean the container cannot run as it is. ContainerCreating and
 * PodInitializing are progress, not problems.
 */
const PROBLEMS = new Set([
  'CreateContainerError',
  'CreateContainerConfigError',
  'RunContainerError',
  'ErrImagePull',
  'ImagePullBackOff',
  'ErrImageNeverPull',
  'InvalidImageName',
  'CrashLoopBackOff',
]);

/**
 * What happened and what to do, short: a trace's status keeps 256 characters of a node's
 * message, so the advice comes before the runtime's own words.
 */
function explain(reason: string, said: string, pod: string, namespace: string): string {
  if (/not a shared or slave mount/.test(said)) {
    // The chart mounts the node's /sys/fs/bpf with HostToContainer propagation (new bpffs
    // mounts reach the agent), which containerd and CRI-O allow only from a shared/slave mount.
    return `agent pod ${pod} cannot start: /sys/fs/bpf is not a shared mount on the node; run \`mount --make-shared /sys/fs/bpf\` there (systemd does at boot)`;
  }
  const lead = `agent pod ${pod}: ${reason}`;
  switch (reason) {
    case 'ErrImagePull':
    case 'ImagePullBackOff':
    case 'ErrImageNeverPull':
    case 'InvalidImageName':
      return `${lead}; check the chart's image.repository, image.tag and image.pullPolicy: ${said}`;
    case 'CrashLoopBackOff':
      return `${lead}; see \`kubectl logs -n ${namespace} ${pod} --previous\`: ${said}`;
    default:
      return `${lead}; see \`kubectl describe pod -n ${namespace} ${pod}\`: ${said}`;
  }
}

/** The agent pod's problem, or undefined if it is running, starting, or going away. */
export function agentPodProblem(pod: AgentPod): AgentProblem | undefined {
  if (pod.metadata.deletionTimestamp) return undefined;
  for (const c of pod.status?.containerStatuses ?? []) {
    const w = c.state?.waiting;
    if (!w?.reason || !PROBLEMS.has(w.reason)) continue;
    const last = c.lastState?.terminated;
    const said =
      w.message ?? (last ? `last exit ${last.exitCode ?? '?'}${last.reason ? ` (${last.reason})` : ''}${last.message ? `: ${last.message}` : ''}` : '');
    const name = pod.metadata.name;
    return { pod: name, waiting: w.reason, message: explain(w.reason, said, name, pod.metadata.namespace ?? '') };
  }
  return undefined;
}

/** The Pod as the operator caches it: only what agentPodProblem and the node's name need. */
export function trimAgentPod(p: AgentPod): AgentPod {
  const { name, namespace, resourceVersion, deletionTimestamp } = p.metadata;
  return {
    metadata: { name, ...(namespace ? { namespace } : {}), ...(resourceVersion ? { resourceVersion } : {}), ...(deletionTimestamp ? { deletionTimestamp } : {}) },
    spec: { ...(p.spec?.nodeName ? { nodeName: p.spec.nodeName } : {}) },
    status: {
      containerStatuses: (p.status?.containerStatuses ?? []).map((c) => ({
        name: c.name,
        ...(c.state?.waiting ? { state: { waiting: c.state.waiting } } : {}),
        ...(c.lastState?.terminated ? { lastState: { terminated: c.lastState.terminated } } : {}),
      })),
    },
  };
}
