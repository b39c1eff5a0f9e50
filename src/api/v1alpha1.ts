// The vhosttrace.io/v1alpha1 API: schemas (which become the CRDs) and the TypeScript types
// derived from them. Validation lives here so the API server refuses bad specs at apply time.
import { array, bool, int, object, oneOf, record, str, type CelRule, type Schema, type Static } from './schema.js';

export const GROUP = 'vhosttrace.io';
export const VERSION = 'v1alpha1';
export const API_VERSION = `${GROUP}/${VERSION}`;

/** The node label KubeVirt sets on nodes that can run VMs; the default node selector. */
export const KUBEVIRT_SCHEDULABLE = 'kubevirt.io/schedulable';

// ---- building blocks -------------------------------------------------------------------

// Label syntax (k8s.io/apimachinery validation): an optional DNS-subdomain prefix and a name
// of at most 63 characters; values at most 63 characters. RE2, bounded, cheap for CEL.
const LABEL_NAME = '[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?';
const DNS_LABEL = '[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?';
export const LABEL_KEY_RE = `^(${DNS_LABEL}(\\.${DNS_LABEL})*/)?${LABEL_NAME}$`;
export const LABEL_VALUE_RE = `^(${LABEL_NAME})?$`;

// Go durations as kubectl users write them ("30s", "1h30m"); CEL's duration() parses these.
export const DURATION_RE = '^([0-9]{1,6}(ms|s|m|h))+$';

const labelKey = str({ maxLength: 317, pattern: LABEL_KEY_RE });
const labelValue = str({ maxLength: 63, pattern: LABEL_VALUE_RE });

const selectorRequirement = object(
  {
    key: labelKey,
    operator: oneOf(['In', 'NotIn', 'Exists', 'DoesNotExist'] as const),
    values: array(labelValue, { maxItems: 64, 'x-kubernetes-list-type': 'atomic' }),
  },
  {
    required: ['key', 'operator'],
    'x-kubernetes-validations': [
      {
        rule:
          "self.operator == 'In' || self.operator == 'NotIn' ? has(self.values) && size(self.values) > 0 : !has(self.values) || size(self.values) == 0",
        message: 'values must be non-empty for In and NotIn, and empty for Exists and DoesNotExist',
        fieldPath: '.values',
      },
    ],
  },
);

/** metav1.LabelSelector, validated as the API server validates built-in selectors. */
export const labelSelector = object(
  {
    matchLabels: record(labelValue, {
      maxProperties: 64,
      'x-kubernetes-validations': [
        {
          rule: `self.all(k, k.matches('${LABEL_KEY_RE.replaceAll('\\', '\\\\')}'))`,
          message:
            'keys must be label keys: an optional DNS prefix and "/", then up to 63 characters of [A-Za-z0-9-_.] starting and ending with an alphanumeric',
        },
      ],
    }),
    matchExpressions: array(selectorRequirement, { maxItems: 32, 'x-kubernetes-list-type': 'atomic' }),
  },
  { 'x-kubernetes-map-type': 'atomic' },
);
export type LabelSelector = Static<typeof labelSelector>;

function duration(description: string, min: string, max: string) {
  return str({
    description: `${description} A Go duration such as "30s", "10m" or "1h30m", from ${min} to ${max}.`,
    maxLength: 32,
    pattern: DURATION_RE,
    'x-kubernetes-validations': [
      {
        // Guarded: a value the pattern refuses is reported once, by the pattern.
        rule: `!self.matches('${DURATION_RE}') || (duration(self) >= duration('${min}') && duration(self) <= duration('${max}'))`,
        message: `must be between ${min} and ${max}`,
      },
    ],
  });
}

export const DIRECTIONS = ['rx', 'tx'] as const;
export type Direction = (typeof DIRECTIONS)[number];

const directions = array(oneOf(DIRECTIONS), {
  description: 'Which vhost-net handlers to trace: rx (handle_rx), tx (handle_tx_copy/zerocopy).',
  minItems: 1,
  maxItems: 2,
  'x-kubernetes-list-type': 'set',
  default: [...DIRECTIONS],
});

/** Rules that keep a started trace's meaning fixed: changing what it measures mixes numbers. */
function immutableOnceStarted(fields: string[]): CelRule[] {
  return fields.map((f) => ({
    rule: `has(self.${f}) == has(oldSelf.${f}) && (!has(self.${f}) || self.${f} == oldSelf.${f})`,
    message: `${f} cannot change after the trace starts: delete the trace and create a new one`,
    fieldPath: `.${f}`,
    reason: 'FieldValueForbidden' as const,
  }));
}

const intervalWithinDuration: CelRule = {
  rule: `!has(self.duration) || !has(self.interval) || !self.duration.matches('${DURATION_RE}') || !self.interval.matches('${DURATION_RE}') || duration(self.interval) <= duration(self.duration)`,
  message: 'interval must not be longer than duration',
  fieldPath: '.interval',
};

const commonSpec = {
  nodeSelector: {
    ...labelSelector,
    description: `Nodes whose agents trace. Default: nodes labelled ${KUBEVIRT_SCHEDULABLE}=true.`,
    default: { matchLabels: { [KUBEVIRT_SCHEDULABLE]: 'true' } },
  },
  duration: duration('How long to trace; absent: until the trace is deleted.', '10s', '720h'),
  interval: duration(
    'How often each agent reports; absent: chosen by the operator from the number of nodes.',
    '1s',
    '1h',
  ),
  directions,
};

// ---- histograms ------------------------------------------------------------------------

/** Log2 slots: buckets[0] counts 0..1, buckets[k] counts 2^k..2^(k+1)-1. 64 covers int64. */
export const MAX_SLOTS = 64;

const counts = array(int({ minimum: 0 }), { maxItems: MAX_SLOTS, 'x-kubernetes-list-type': 'atomic' });

/** What agents report: exact count and sum, and the log2 buckets, trailing zeros trimmed. */
export const rawHistogram = object(
  { count: int({ minimum: 0 }), sum: int({ minimum: 0 }), buckets: counts },
  { required: ['count', 'sum', 'buckets'] },
);
export type RawHistogram = Static<typeof rawHistogram>;

const percentiles = {
  p50: int({ minimum: 0, description: 'Upper bound of the log2 slot holding the median.' }),
  p90: int({ minimum: 0, description: 'Upper bound of the log2 slot holding the 90th percentile.' }),
  p99: int({ minimum: 0, description: 'Upper bound of the log2 slot holding the 99th percentile.' }),
};

/** A histogram as the trace's status shows it: {count, sum, buckets, p50, p90, p99}. */
export const histogram = object(
  { count: int({ minimum: 0 }), sum: int({ minimum: 0 }), buckets: counts, ...percentiles },
  { required: ['count', 'sum', 'buckets', 'p50', 'p90', 'p99'] },
);
export type Histogram = Static<typeof histogram>;

/** The same without buckets, where many are listed (per-VM rows in a trace's status). */
export const histogramSummary = object(
  { count: int({ minimum: 0 }), sum: int({ minimum: 0 }), ...percentiles },
  { required: ['count', 'sum', 'p50', 'p90', 'p99'] },
);
export type HistogramSummary = Static<typeof histogramSummary>;

/** {rx, tx}, each {packets, bytes} histograms of one shape. */
function directionProps<T>(h: Schema<T>) {
  const oneDirection = object(
    { packets: { ...h, description: 'Packets per run of the handler.' }, bytes: { ...h, description: 'Bytes per run.' } },
    { required: ['packets', 'bytes'] },
  );
  return { rx: oneDirection, tx: oneDirection };
}

export const rawDirections = object(directionProps(rawHistogram));
export type RawDirections = Static<typeof rawDirections>;
export const summaryDirections = object(directionProps(histogram));
export type SummaryDirections = Static<typeof summaryDirections>;

// ---- status pieces ---------------------------------------------------------------------

/** metav1.Condition. */
export const condition = object(
  {
    type: str({ maxLength: 316, pattern: '^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$' }),
    status: oneOf(['True', 'False', 'Unknown'] as const),
    observedGeneration: int({ minimum: 0 }),
    lastTransitionTime: str({ format: 'date-time' }),
    reason: str({ minLength: 1, maxLength: 1024, pattern: '^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$' }),
    message: str({ maxLength: 32768 }),
  },
  { required: ['type', 'status', 'lastTransitionTime', 'reason', 'message'] },
);
export type Condition = Static<typeof condition>;

const conditions = array(condition, {
  maxItems: 16,
  'x-kubernetes-list-type': 'map',
  'x-kubernetes-list-map-keys': ['type'],
});

export const TRACE_MODES = ['tracepoint', 'fentry'] as const;
export type TraceMode = (typeof TRACE_MODES)[number];

/** Why a node cannot trace; the agent's kernel probe decides, the operator names it in status. */
export const NODE_REASONS = [
  'TracepointMissing',
  'KernelUnsupported',
  'BTFMissing',
  'BPFFSMissing',
  'PermissionDenied',
  'LoaderFailed',
  'ReportStale',
  'AgentNotRunning',
] as const;

export const nodeState = object(
  {
    name: str({ maxLength: 253 }),
    state: oneOf(['Pending', 'Reporting', 'Failed'] as const),
    reason: str({ maxLength: 64 }),
    message: str({ maxLength: 1024 }),
    kernel: str({ maxLength: 128 }),
    mode: oneOf(TRACE_MODES),
    lastReportTime: str({ format: 'date-time' }),
  },
  { required: ['name', 'state'] },
);
export type NodeState = Static<typeof nodeState>;

const vmRef = {
  namespace: str({ maxLength: 63 }),
  name: str({ maxLength: 253 }),
};

export const vmSummary = object(
  { ...vmRef, node: str({ maxLength: 253 }), ...directionProps(histogramSummary) },
  { required: ['namespace', 'name'] },
);
export type VMSummary = Static<typeof vmSummary>;

const phase = oneOf(['Pending', 'Running', 'Completed', 'Failed'] as const);
export type Phase = Static<typeof phase>;

// The status is a bounded roll-up whatever the node count; full per-node data lives in reports.
export const traceStatus = object({
  phase,
  observedGeneration: int({ minimum: 0 }),
  startTime: str({ format: 'date-time' }),
  endTime: str({ format: 'date-time' }),
  interval: str({ maxLength: 32, description: 'The report interval in effect.' }),
  nodesReporting: str({ maxLength: 32, description: 'Reporting nodes / selected nodes, as "3/5".' }),
  nodeCounts: object({
    selected: int({ minimum: 0 }),
    reporting: int({ minimum: 0 }),
    pending: int({ minimum: 0 }),
    failed: int({ minimum: 0 }),
  }),
  nodes: array(nodeState, {
    description: 'Per-node states, nodes that cannot trace first; at most 100 are listed.',
    maxItems: 100,
    'x-kubernetes-list-type': 'map',
    'x-kubernetes-list-map-keys': ['name'],
  }),
  conditions,
  vms: array(vmSummary, {
    description: 'The VMs with the most vhost-net runs; the rest are counted in otherVMs.',
    maxItems: 50,
    'x-kubernetes-list-type': 'atomic',
  }),
  otherVMs: object({ count: int({ minimum: 0 }), rxRuns: int({ minimum: 0 }), txRuns: int({ minimum: 0 }) }),
  summary: { ...summaryDirections, description: 'Cluster-wide histograms: the exact merge of all reports.' },
});
export type TraceStatus = Static<typeof traceStatus>;

// ---- the kinds -------------------------------------------------------------------------

export const vhostTraceSpec = object(
  {
    vmSelector: {
      ...labelSelector,
      description: 'VirtualMachineInstances of this namespace to trace; absent: all of them.',
    },
    ...commonSpec,
  },
  { 'x-kubernetes-validations': [intervalWithinDuration, ...immutableOnceStarted(['vmSelector', 'nodeSelector', 'duration', 'directions'])] },
);
export type VhostTraceSpec = Static<typeof vhostTraceSpec>;

export const clusterVhostTraceSpec = object(
  {
    namespaceSelector: {
      ...labelSelector,
      description: 'Namespaces whose VMs to trace; absent: all namespaces.',
    },
    vmSelector: {
      ...labelSelector,
      description: 'VirtualMachineInstances to trace in the selected namespaces; absent: all of them.',
    },
    includeUnattributed: bool({
      description: 'Also count vhost workers that belong to no VirtualMachineInstance (plain QEMU, other tenants).',
      default: true,
    }),
    ...commonSpec,
  },
  {
    'x-kubernetes-validations': [
      intervalWithinDuration,
      ...immutableOnceStarted(['namespaceSelector', 'vmSelector', 'nodeSelector', 'duration', 'directions', 'includeUnattributed']),
    ],
  },
);
export type ClusterVhostTraceSpec = Static<typeof clusterVhostTraceSpec>;

export const TRACE_KINDS = ['VhostTrace', 'ClusterVhostTrace'] as const;
export type TraceKind = (typeof TRACE_KINDS)[number];

export const reportSpec = object(
  {
    trace: object(
      {
        kind: oneOf(TRACE_KINDS),
        name: str({ maxLength: 63 }),
        namespace: str({ maxLength: 63 }),
        uid: str({ maxLength: 36 }),
      },
      { required: ['kind', 'name', 'uid'] },
    ),
    nodeName: str({ minLength: 1, maxLength: 253 }),
  },
  {
    required: ['trace', 'nodeName'],
    'x-kubernetes-validations': [{ rule: 'self == oldSelf', message: 'a report cannot move to another trace or node' }],
  },
);
export type ReportSpec = Static<typeof reportSpec>;

export const vmReport = object(
  {
    ...vmRef,
    uid: str({ maxLength: 36, description: 'The VirtualMachineInstance UID.' }),
    ...directionProps(rawHistogram),
  },
  { required: ['namespace', 'name'] },
);
export type VMReport = Static<typeof vmReport>;

export const reportStatus = object({
  observedTime: str({ format: 'date-time', description: 'When the agent read the counts.' }),
  state: oneOf(['Pending', 'Reporting', 'Failed'] as const),
  reason: str({ maxLength: 64 }),
  message: str({ maxLength: 1024 }),
  kernel: str({ maxLength: 128, description: 'The node kernel release.' }),
  mode: oneOf(TRACE_MODES),
  conditions,
  total: { ...rawDirections, description: "This node's totals, attributed or not, since the trace started." },
  unattributed: { ...rawDirections, description: 'Counts of vhost workers that belong to no VirtualMachineInstance.' },
  vms: array(vmReport, { maxItems: 1024, 'x-kubernetes-list-type': 'atomic' }),
});
export type ReportStatus = Static<typeof reportStatus>;

/** Kubernetes object metadata as the types here use it. */
export interface ObjectMeta {
  name?: string;
  namespace?: string;
  uid?: string;
  generation?: number;
  resourceVersion?: string;
  creationTimestamp?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  ownerReferences?: Array<{ apiVersion: string; kind: string; name: string; uid: string; controller?: boolean; blockOwnerDeletion?: boolean }>;
  [key: string]: unknown;
}

interface Resource<K extends string, S, T> {
  apiVersion: typeof API_VERSION;
  kind: K;
  metadata: ObjectMeta;
  spec: S;
  status?: T;
}

export type VhostTrace = Resource<'VhostTrace', VhostTraceSpec, TraceStatus>;
export type ClusterVhostTrace = Resource<'ClusterVhostTrace', ClusterVhostTraceSpec, TraceStatus>;
export type VhostTraceReport = Resource<'VhostTraceReport', ReportSpec, ReportStatus>;
