// The agent DaemonSet that should exist, as a plain function of the traces and the config.
// Pure: no client, no clock except the `now` it is given.
import { AGENT_NODE_FLAGS } from '../agent/node-flags.js';
import { matches } from '../api/selector.js';
import { KUBEVIRT_SCHEDULABLE, type LabelSelector } from '../api/v1alpha1.js';
import { isActive } from '../api/lifetime.js';
import type { Trace } from '../api/reports.js';
import type { OperatorConfig } from './config.js';

export interface NodeSelectorRequirement {
  key: string;
  operator: 'In' | 'NotIn' | 'Exists' | 'DoesNotExist';
  values?: string[];
}
export interface NodeSelectorTerm {
  matchExpressions: NodeSelectorRequirement[];
}

export const AGENT_LABELS = {
  'app.kubernetes.io/name': 'vhosttrace',
  'app.kubernetes.io/component': 'agent',
} as const;
export const MANAGED_BY = { 'app.kubernetes.io/managed-by': 'vhosttrace-operator' } as const;

export interface OwnerReference {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
}

/**
 * The DaemonSet's owner: the agent's ServiceAccount, which the install (chart or manifests)
 * creates and `helm uninstall` deletes. The garbage collector then deletes the DaemonSet and its
 * pods, so no agent outlives the install, even one this operator applied in its last moments (a
 * reference to an owner that is gone makes the object garbage). Not blockOwnerDeletion: that
 * would need the ServiceAccount's finalizers subresource, and nothing waits on it.
 */
export const agentOwner = (sa: { metadata?: { name?: string; uid?: string } }): OwnerReference => ({
  apiVersion: 'v1',
  kind: 'ServiceAccount',
  name: sa.metadata!.name!,
  uid: sa.metadata!.uid!,
});

/** The labels of the agent pods of the DaemonSet named `name` (its selector). */
export const agentPodLabels = (name: string) => ({ ...AGENT_LABELS, 'app.kubernetes.io/instance': name });

/** Labels as a list call's labelSelector: k=v,k=v. */
export const selectorOf = (labels: Record<string, string>): string =>
  Object.entries(labels).map(([k, v]) => `${k}=${v}`).join(',');

/** The nodes a trace selects: KubeVirt nodes that match its nodeSelector. */
export function selectsNode(t: Trace, labels: Record<string, string> | undefined): boolean {
  return labels?.[KUBEVIRT_SCHEDULABLE] === 'true' && matches(t.spec.nodeSelector, labels);
}

/** A label selector as one node-affinity term, ANDed with kubevirt.io/schedulable=true. */
export function nodeSelectorTerm(sel: LabelSelector | undefined): NodeSelectorTerm {
  const reqs: NodeSelectorRequirement[] = [{ key: KUBEVIRT_SCHEDULABLE, operator: 'In', values: ['true'] }];
  for (const [key, value] of Object.entries(sel?.matchLabels ?? {})) {
    if (key === KUBEVIRT_SCHEDULABLE && value === 'true') continue;
    reqs.push({ key, operator: 'In', values: [value] });
  }
  for (const e of sel?.matchExpressions ?? []) {
    reqs.push(e.values?.length ? { key: e.key, operator: e.operator, values: [...e.values] } : { key: e.key, operator: e.operator });
  }
  return { matchExpressions: reqs };
}

/**
 * The agent DaemonSet, or undefined when no trace is active (then none must exist). Its pods
 * go to the union of the active traces' nodes: node-affinity terms are ORed, one per distinct
 * node selector, each ANDed with kubevirt.io/schedulable=true.
 */
export function desiredDaemonSet(traces: readonly Trace[], cfg: OperatorConfig, now: number): Record<string, any> | undefined {
  const active = traces.filter((t) => isActive(t, now));
  if (active.length === 0) return undefined;
  const terms = new Map<string, NodeSelectorTerm>();
  for (const t of active) {
    const term = nodeSelectorTerm(t.spec.nodeSelector);
    terms.set(JSON.stringify(term), term);
  }
  const a = cfg.agent;
  const labels = agentPodLabels(a.name);
  const ro = true;
  const hostPath = (name: string, path: string, type: string) => ({ name, hostPath: { path, type } });
  return {
    apiVersion: 'apps/v1',
    kind: 'DaemonSet',
    metadata: { name: a.name, namespace: cfg.namespace, labels: { ...labels, ...MANAGED_BY } },
    spec: {
      selector: { matchLabels: labels },
      updateStrategy: { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: a.maxUnavailable } },
      template: {
        metadata: { labels: { ...a.podLabels, ...labels } },
        spec: {
          serviceAccountName: a.serviceAccountName,
          ...(a.priorityClassName ? { priorityClassName: a.priorityClassName } : {}),
          affinity: {
            nodeAffinity: {
              requiredDuringSchedulingIgnoredDuringExecution: {
                nodeSelectorTerms: [...terms.keys()].sort().map((k) => terms.get(k)!),
              },
            },
          },
          tolerations: a.tolerations,
          terminationGracePeriodSeconds: 30,
          containers: [
            {
              name: 'agent',
              image: a.image,
              imagePullPolicy: a.imagePullPolicy,
              // V8 flags that keep the agent's RSS near its live heap (docs/benchmarks.md, agent).
              command: ['node', ...AGENT_NODE_FLAGS, 'dist/agent/main.js'],
              env: [
                { name: 'NODE_NAME', valueFrom: { fieldRef: { fieldPath: 'spec.nodeName' } } },
                { name: 'POD_NAMESPACE', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } },
                { name: 'PORT', value: String(a.port) },
              ],
              ports: [{ name: 'metrics', containerPort: a.port, protocol: 'TCP' }],
              // A node busy moving traffic can delay the answer past the kubelet's 1 s default:
              // a restart then helps nothing (the agent was alive), so allow 5 s.
              livenessProbe: { httpGet: { path: '/healthz', port: 'metrics' }, periodSeconds: 20, timeoutSeconds: 5, failureThreshold: 3 },
              // Often: a rollout waits for each new pod to be Ready before it goes on.
              readinessProbe: { httpGet: { path: '/readyz', port: 'metrics' }, periodSeconds: 2, timeoutSeconds: 5 },
              resources: a.resources,
              securityContext: {
                privileged: false,
                allowPrivilegeEscalation: false,
                readOnlyRootFilesystem: true,
                // uid 0 so that the added capabilities are effective (Kubernetes has no ambient
                // capabilities) and pins in the root-owned bpffs can be written; with every
                // other capability dropped, root here cannot override file permissions.
                runAsUser: 0,
                runAsNonRoot: false,
                capabilities: {
                  drop: ['ALL'],
                  // BPF: load programs, create and pin maps. PERFMON: attach to tracepoints
                  // (raw_tp/tp_btf), read kernel memory by BTF, and let the verifier accept the
                  // stack-keyed slot cache, which stores a kernel address (docs/bpf.md).
                  add: a.capabilities,
                },
                seccompProfile: { type: a.seccompProfile },
              },
              volumeMounts: [
                // bpffs, read-write: the loader pins maps and links so a restart loses no counts.
                { name: 'bpffs', mountPath: '/sys/fs/bpf', mountPropagation: 'HostToContainer' },
                // tracefs: the agent checks the vhost_net tracepoints exist (TracepointMissing).
                { name: 'tracefs', mountPath: '/sys/kernel/tracing', readOnly: ro },
                // The kernel's BTF, for CO-RE relocation and KernelUnsupported detection.
                { name: 'btf', mountPath: '/sys/kernel/btf', readOnly: ro },
                // cgroupfs: cgroup ids of QEMU processes, the key of the histograms.
                { name: 'cgroup', mountPath: '/sys/fs/cgroup', readOnly: ro },
                // The host's /proc: which QEMU process (and so which VMI pod) a vhost worker serves.
                { name: 'proc', mountPath: '/host/proc', readOnly: ro },
                // The agent's state (each trace's ledger, the maps' generation, VM attribution),
                // on the host so a restarted or re-created agent pod continues its counts.
                { name: 'state', mountPath: '/var/lib/vhosttrace' },
              ],
            },
          ],
          volumes: [
            hostPath('bpffs', '/sys/fs/bpf', 'Directory'),
            hostPath('tracefs', '/sys/kernel/tracing', 'Directory'),
            hostPath('btf', '/sys/kernel/btf', 'Directory'),
            hostPath('cgroup', '/sys/fs/cgroup', 'Directory'),
            hostPath('proc', '/proc', 'Directory'),
            hostPath('state', '/var/lib/vhosttrace', 'DirectoryOrCreate'),
          ],
        },
      },
    },
  };
}
