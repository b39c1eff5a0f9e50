// What one node reports for one trace: its counts since the trace started, per VM in the
// trace's scope, plus the unattributed ones where the trace asks for them. Pure in what it returns;
// it keeps two memo caches between calls (key order, VM names) that change no result.
import { trim } from '../api/histogram.js';
import { matches } from '../api/selector.js';
import type { Trace } from '../api/reports.js';
import type { Direction, RawDirections, RawHistogram, ReportStatus, VMReport } from '../api/v1alpha1.js';
import type { VmRef } from './attribution.js';
import type { NodeHealth } from './health.js';
import { addCounts, zeroCounts, type Counts, type SinceStart } from './ledger.js';

export interface ReportInput {
  trace: Trace;
  /** Counts since the trace started, per (cgroup, direction) (ledger.sinceStart). */
  since: readonly SinceStart[];
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

/** A running sum of many histograms, added in place (a total over hundreds of cgroups). */
class Sum {
  count = 0;
  sum = 0;
  buckets: number[] = [];
  add(h: RawHistogram): void {
    this.count += h.count;
    this.sum += h.sum;
    const b = this.buckets;
    for (let i = 0; i < h.buckets.length; i++) b[i] = (b[i] ?? 0) + h.buckets[i]!;
  }
  value(): RawHistogram {
    return { count: this.count, sum: this.sum, buckets: trim(this.buckets) };
  }
}

class DirectionSums {
  private readonly sums: Partial<Record<Direction, { packets: Sum; bytes: Sum }>> = {};
  add(direction: Direction, c: Counts): void {
    const s = (this.sums[direction] ??= { packets: new Sum(), bytes: new Sum() });
    s.packets.add(c.packets);
    s.bytes.add(c.bytes);
  }
  value(): PerDirection {
    const out: PerDirection = {};
    for (const d of ['rx', 'tx'] as const) {
      const s = this.sums[d];
      if (s) out[d] = { packets: s.packets.value(), bytes: s.bytes.value() };
    }
    return out;
  }
}

// The order String.prototype.localeCompare gives, without its per-call set-up.
const collator = new Intl.Collator();

// Each key's place in the collator's order, kept between reports: a report sorts the same VMs
// every interval, and comparing with the collator was half of building it. Rebuilt when a key
// it has not placed turns up (with the keys it had, up to a bound).
let places = new Map<string, number>();
function placeOf(keys: readonly string[]): Map<string, number> {
  if (keys.every((k) => places.has(k))) return places;
  const all = new Set(places.size + keys.length <= 20_000 ? places.keys() : []);
  for (const k of keys) all.add(k);
  places = new Map([...all].sort(collator.compare).map((k, i) => [k, i]));
  return places;
}

// A VM's identity and sort key, built once per VmRef (the attributor hands out the same object
// for a cgroup every time) rather than once per cgroup and report.
const names = new WeakMap<VmRef, { id: string; sortKey: string }>();
function namesOf(vm: VmRef): { id: string; sortKey: string } {
  let n = names.get(vm);
  if (!n) names.set(vm, (n = { id: `${vm.namespace}/${vm.name}/${vm.uid}`, sortKey: `${vm.namespace}/${vm.name}` }));
  return n;
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

  const vms = new Map<string, { vm: VmRef; sortKey: string; counts: PerDirection }>();
  const unattributed = new DirectionSums();
  const total = new DirectionSums();
  for (const { cgroupId, direction, counts } of input.since) {
    if (!wanted.includes(direction)) continue;
    const vm = input.vmOf(cgroupId);
    if (vm) {
      if (!inScope(trace, vm, input.namespaceLabels)) continue;
      const { id, sortKey } = namesOf(vm);
      let row = vms.get(id);
      if (!row) vms.set(id, (row = { vm, sortKey, counts: {} }));
      accumulate(row.counts, direction, counts);
    } else {
      if (!includeUnattributed) continue;
      unattributed.add(direction, counts);
    }
    total.add(direction, counts);
  }

  const rows = [...vms.values()];
  const place = placeOf(rows.map((r) => r.sortKey));
  const vmRows: VMReport[] = rows
    .map((r) => ({ r, at: place.get(r.sortKey)! }))
    .sort((a, b) => a.at - b.at)
    .map(({ r: { vm, counts } }) => Object.assign({ namespace: vm.namespace, name: vm.name, uid: vm.uid }, directionsOf(counts, wanted)));

  const status: ReportStatus = {
    observedTime: input.observedTime,
    state: health.state,
    kernel: health.kernel,
    total: directionsOf(total.value(), wanted),
    vms: vmRows,
  };
  if (health.reason) status.reason = health.reason;
  if (health.message) status.message = health.message;
  if (health.mode) status.mode = health.mode;
  if (health.conditions?.length) status.conditions = health.conditions;
  if (includeUnattributed) status.unattributed = directionsOf(unattributed.value(), wanted);
  return status;
}
