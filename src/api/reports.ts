// Where a trace's reports live and how they are named and labelled: the one contract between
// the agents that write them and the operator that reads them. Pure functions.
import { createHash } from 'node:crypto';
import { API_VERSION, type ClusterVhostTrace, type TraceKind, type VhostTrace, type VhostTraceReport } from './v1alpha1.js';

export const LABELS = {
  traceKind: 'vhosttrace.io/trace-kind',
  trace: 'vhosttrace.io/trace',
  traceUid: 'vhosttrace.io/trace-uid',
  node: 'vhosttrace.io/node',
} as const;

export type Trace = VhostTrace | ClusterVhostTrace;

/** The trace's identity as reports record it. */
export interface TraceRef {
  kind: TraceKind;
  name: string;
  namespace?: string;
  uid: string;
}

export function traceRef(t: Trace): TraceRef {
  const { name, namespace, uid } = t.metadata;
  if (!name || !uid) throw new Error(`${t.kind} without metadata.name or metadata.uid`);
  return t.kind === 'VhostTrace' ? { kind: t.kind, name, namespace: namespace ?? 'default', uid } : { kind: t.kind, name, uid };
}

/**
 * A VhostTrace's reports live beside it; a ClusterVhostTrace's in the namespace vhosttrace is
 * installed in (reports are namespaced so agents can be limited to one namespace's objects).
 */
export function reportNamespace(ref: TraceRef, installNamespace: string): string {
  return ref.kind === 'VhostTrace' ? ref.namespace! : installNamespace;
}

/** Label values are at most 63 characters; node names can be longer, so long ones are hashed. */
export function labelSafe(value: string): string {
  if (value.length <= 63) return value;
  return `${value.slice(0, 52)}-${createHash('sha256').update(value).digest('hex').slice(0, 10)}`;
}

/**
 * "<trace>.<node>", which reads well in `kubectl get vhtr`; when that would pass the 253
 * characters an object name may have, the node part is shortened with a hash.
 */
export function reportName(ref: TraceRef, nodeName: string): string {
  const prefix = ref.kind === 'ClusterVhostTrace' ? `cluster.${ref.name}` : ref.name;
  const full = `${prefix}.${nodeName}`;
  if (full.length <= 253) return full;
  const hash = createHash('sha256').update(nodeName).digest('hex').slice(0, 16);
  return `${prefix}.${nodeName.slice(0, 253 - prefix.length - 18)}.${hash}`;
}

export function reportLabels(ref: TraceRef, nodeName: string): Record<string, string> {
  return {
    [LABELS.traceKind]: ref.kind,
    [LABELS.trace]: ref.name,
    [LABELS.traceUid]: ref.uid,
    [LABELS.node]: labelSafe(nodeName),
  };
}

/** Selects all reports of one trace (any node). */
export function reportSelector(ref: TraceRef): string {
  return `${LABELS.traceUid}=${ref.uid}`;
}

/** The report object without status: what an agent applies once per trace and node. */
export function reportSkeleton(ref: TraceRef, nodeName: string, installNamespace: string): VhostTraceReport {
  return {
    apiVersion: API_VERSION,
    kind: 'VhostTraceReport',
    metadata: {
      name: reportName(ref, nodeName),
      namespace: reportNamespace(ref, installNamespace),
      labels: reportLabels(ref, nodeName),
      // Owned by the trace, so the garbage collector deletes reports with it. Not a
      // controller reference and no blockOwnerDeletion: the agent may not set finalizers.
      ownerReferences: [{ apiVersion: API_VERSION, kind: ref.kind, name: ref.name, uid: ref.uid }],
    },
    spec: { trace: ref.namespace ? { ...ref } : { kind: ref.kind, name: ref.name, uid: ref.uid }, nodeName },
  };
}
