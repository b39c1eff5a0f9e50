// What one node reports for one trace: its counts since the trace started, per VM in the
// trace's scope, plus the unattributed ones where the trace asks for them. Pure.
import { matches } from '../api/selector.js';
import type { Trace } from '../api/reports.js';
import type { Condition, Direction, RawDirections, ReportStatus, TraceMode, VMReport } from '../api/v1alpha1.js';
import type { VmRef } from './attribution.js';
import { addCounts, parseKey, zeroCounts, type Counts } from './ledger.js';

/** What the agent knows about its node's ability to trace (kernel probe + loader health). */
export interface NodeHealth {
  state: 'Pending' | 'Reporting' | 'Failed';
  reason?: string;
  message?: string;
  kernel: string;
  mode?: TraceMode;
  conditions?: Condition[];
}

export interface ReportInput {
  trace: Trace;
  /** Counts since the trace started, by "cgroupId/direction" (ledger.sinceStart). */
  since: ReadonlyMap<string, Counts>;
  vmOf: (cgroupId: number) => VmRef | undefined;
  /** Labels of a namespace, for a ClusterVhostTrace's namespaceSelector. */
  namespaceLabels: (namespace: string) => Record<string, string> | undefined;
  health: NodeHealth;
  observedTime: string;
}

type PerDirection = Partial<Record<Direction, Counts>>;

function inScope(trace: Trace, vm: VmRef, namespaceLabels: ReportInput['namespaceLabels']): boolean {
  if (trace.kind === 'VhostTrace') {
    // A namespaced trace sees only its own namespace's VMs, whatever its selector says.
    return vm.namespace === (trace.metadata.namespace ?? 'default') && matches(trace.spec.vmSelector, vm.labels);
  }
  return matches(trace.spec.namespaceSelector, namespaceLabels(vm.namespace)) && matches(trace.spec.vmSelector, vm.labels);
}

function accumulate(into: PerDirection, direction: Direction, c: Counts): void {
  const prev = into[direction];
  into[direction] = prev ? addCounts(prev, c) : c;
}

function directionsOf(p: PerDirection, wanted: readonly Direction[]): RawDirections {
  const out: RawDirections = {};
  for (const d of wanted) out[d] = p[d] ?? zeroCounts();
  return out;
}

export function buildReportStatus(input: ReportInput): ReportStatus {
  const { trace, health } = input;
  const wanted = (trace.spec.directions ?? ['rx', 'tx']) as Direction[];
  const includeUnattributed = trace.kind === 'ClusterVhostTrace' && trace.spec.includeUnattributed !== false;

  const vms = new Map<string, { vm: VmRef; counts: PerDirection }>();
  const unattributed: PerDirection = {};
  const total: PerDirection = {};
  for (const [key, counts] of input.since) {
    const { cgroupId, direction } = parseKey(key);
    if (!wanted.includes(direction)) continue;
    const vm = input.vmOf(cgroupId);
    if (vm) {
      if (!inScope(trace, vm, input.namespaceLabels)) continue;
      const id = `${vm.namespace}/${vm.name}/${vm.uid}`;
      const row = vms.get(id) ?? { vm, counts: {} };
      accumulate(row.counts, direction, counts);
      vms.set(id, row);
    } else {
      if (!includeUnattributed) continue;
      accumulate(unattributed, direction, counts);
    }
    accumulate(total, direction, counts);
  }

  const vmRows: VMReport[] = [...vms.values()]
    .sort((a, b) => `${a.vm.namespace}/${a.vm.name}`.localeCompare(`${b.vm.namespace}/${b.vm.name}`))
    .map(({ vm, counts }) => ({ namespace: vm.namespace, name: vm.name, uid: vm.uid, ...directionsOf(counts, wanted) }));

  const status: ReportStatus = {
    observedTime: input.observedTime,
    state: health.state,
    kernel: health.kernel,
    total: directionsOf(total, wanted),
    vms: vmRows,
  };
  if (health.reason) status.reason = health.reason;
  if (health.message) status.message = health.message;
  if (health.mode) status.mode = health.mode;
  if (health.conditions?.length) status.conditions = health.conditions;
  if (includeUnattributed) status.unattributed = directionsOf(unattributed, wanted);
  return status;
}
