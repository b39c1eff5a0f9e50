// The operator's configuration: what it needs to know about its install and the agent
// DaemonSet it runs. Read from the environment and an optional YAML file (the chart renders
// one into a ConfigMap); every default is documented next to its field.
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { BUDGET } from './interval.js';

export interface Toleration {
  key?: string;
  operator?: 'Exists' | 'Equal';
  value?: string;
  effect?: 'NoSchedule' | 'PreferNoSchedule' | 'NoExecute';
  tolerationSeconds?: number;
}

export interface Resources {
  requests?: Record<string, string>;
  limits?: Record<string, string>;
}

/** How the operator runs the agent DaemonSet (the chart's `agent:` values); not the agent's own AgentConfig. */
export interface AgentDaemonSetConfig {
  /** DaemonSet name. Default "vhosttrace-agent". */
  name: string;
  /** The agent image (the same image as the operator's). Default "ghcr.io/vhosttrace/vhosttrace:0.1.0". */
  image: string;
  /** Default "IfNotPresent". */
  imagePullPolicy: 'Always' | 'IfNotPresent' | 'Never';
  /** ServiceAccount bound to the agent's RBAC (the chart creates it). Default "vhosttrace-agent". */
  serviceAccountName: string;
  /** Default: tolerate every taint, as node agents do: VM nodes are often tainted for VMs only. */
  tolerations: Toleration[];
  /** Default: requests 50m CPU / 64Mi, limits 256Mi (no CPU limit: throttling delays reports). */
  resources: Resources;
  /** Default "" (none). */
  priorityClassName: string;
  /** Port of the agent's /metrics, /healthz, /readyz. Default 9090. */
  port: number;
  /**
   * The container's seccomp profile. Default "RuntimeDefault": containerd >= 1.6.9 and CRI-O
   * allow bpf() and perf_event_open() to a process holding CAP_BPF/CAP_PERFMON (test/node runs
   * it on containerd 1.6.20); set "Unconfined" only for a runtime whose default profile refuses
   * them.
   */
  seccompProfile: 'RuntimeDefault' | 'Unconfined';
  /**
   * Capabilities added after dropping ALL. Default ["BPF", "PERFMON"], the least the loader
   * needs; without one, the node's report says PermissionDenied and names it.
   */
  capabilities: string[];
  /**
   * How many agent pods a rollout replaces at once (a count or a percentage of the nodes,
   * rounded up). Default "10%". A replaced agent loses no counts (the kernel keeps counting in
   * the pinned maps), so a larger value only makes rollouts faster.
   */
  maxUnavailable: string | number;
  /** Extra labels on the agent pods. Default none. */
  podLabels: Record<string, string>;
}

export interface OperatorConfig {
  /** The namespace vhosttrace is installed in (POD_NAMESPACE). Default "vhosttrace-system". */
  namespace: string;
  /** This replica's identity in the Lease (POD_NAME). Default: hostname and pid. */
  identity: string;
  /** Server-side apply field manager. Default "vhosttrace-operator". */
  fieldManager: string;
  /** Lease name for leader election. Default "vhosttrace-operator". */
  leaseName: string;
  /** Lease duration / renew deadline / retry period, ms. Defaults 15 s / 10 s / 2 s (client-go's). */
  leaseDurationMs: number;
  renewDeadlineMs: number;
  retryPeriodMs: number;
  /** Port of /metrics, /healthz, /readyz. Default 8080. */
  metricsPort: number;
  /** At most one status write per trace this often. Default 2 s. */
  statusMinIntervalMs: number;
  /**
   * The default report interval keeps all nodes' report writes within these (interval.ts).
   * Defaults 50 writes/s and 1,000,000 bytes/s; a small control plane holds less (a 2-core one
   * shared with etcd took about 19 writes/s of 20 KB reports: docs/benchmarks.md, operator).
   */
  reportWritesPerSecond: number;
  reportBytesPerSecond: number;
  /** Reconcile workers. Default 2. */
  workers: number;
  agent: AgentDaemonSetConfig;
}

export function defaultConfig(): OperatorConfig {
  return {
    namespace: 'vhosttrace-system',
    identity: `${process.env.HOSTNAME ?? 'operator'}-${process.pid}`,
    fieldManager: 'vhosttrace-operator',
    leaseName: 'vhosttrace-operator',
    leaseDurationMs: 15_000,
    renewDeadlineMs: 10_000,
    retryPeriodMs: 2_000,
    metricsPort: 8080,
    statusMinIntervalMs: 2_000,
    reportWritesPerSecond: BUDGET.writesPerSecond,
    reportBytesPerSecond: BUDGET.bytesPerSecond,
    workers: 2,
    agent: {
      name: 'vhosttrace-agent',
      image: 'ghcr.io/vhosttrace/vhosttrace:0.1.0',
      imagePullPolicy: 'IfNotPresent',
      serviceAccountName: 'vhosttrace-agent',
      tolerations: [{ operator: 'Exists' }],
      resources: { requests: { cpu: '50m', memory: '64Mi' }, limits: { memory: '256Mi' } },
      priorityClassName: '',
      port: 9090,
      seccompProfile: 'RuntimeDefault',
      capabilities: ['BPF', 'PERFMON'],
      maxUnavailable: '10%',
      podLabels: {},
    },
  };
}

type DeepPartial<T> = { [K in keyof T]?: T[K] extends object ? (T[K] extends unknown[] ? T[K] : DeepPartial<T[K]>) : T[K] };

/** Defaults, then the YAML file (if any), then POD_NAMESPACE / POD_NAME from the environment. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env, file = env.VHOSTTRACE_OPERATOR_CONFIG): OperatorConfig {
  const base = defaultConfig();
  const fromFile: DeepPartial<OperatorConfig> = file ? ((parse(readFileSync(file, 'utf8')) as DeepPartial<OperatorConfig>) ?? {}) : {};
  const cfg: OperatorConfig = { ...base, ...fromFile, agent: { ...base.agent, ...(fromFile.agent ?? {}) } as AgentDaemonSetConfig };
  if (env.POD_NAMESPACE) cfg.namespace = env.POD_NAMESPACE;
  if (env.POD_NAME) cfg.identity = env.POD_NAME;
  return cfg;
}
