// Keeps one trace's roll-up sums between calls: a changed report replaces its old contribution
// (subtract the old, add the new) instead of every report being added up again. The status is
// byte for byte what rollup.ts's full roll-up gives (test/unit/operator-rollup-incremental).
//
// Counts are cumulative non-negative integers, so subtracting is exact while every sum stays
// below 2^53. Where that cannot be promised (a report holding a number that is not such an
// integer, or totals past 2^52 so that the sums on the way might pass 2^53) it forgets its sums
// and the full roll-up answers. Pure apart from its own memory: the caller passes the reports
// and the clock, as to rollUp.
import type { Direction, TraceStatus } from '../api/v1alpha1.js';
import { Reader, type CompactReport } from './compact.js';
import { add, byRuns, firstK, fullAggregate, LIMITS, rollUp, vmRow, zero4, type Aggregate, type Hist4, type RollupInput } from './rollup.js';

/** Sums up to this stay exact through any order of adds and subtracts that ends at most here. */
const EXACT = 2 ** 52;

/** A report as added: the object (compared by identity: the informer replaces it on change) and its VMs' slots. */
interface Entry {
  report: CompactReport;
  slots: Int32Array;
  /** The call that last saw it in the reports: an entry not seen by the current call has gone. */
  seen: number;
}

/** Every number packed in the report is a non-negative integer below 2^52. */
function clean(r: CompactReport): boolean {
  const { hists, vms } = r.packed;
  const rd = new Reader(hists);
  while (rd.pos < hists.length) {
    const x = rd.num();
    if (!(Number.isInteger(x) && x >= 0 && x <= EXACT)) return false;
  }
  for (let i = 0; i < vms.length; i++) if (!(Number.isInteger(vms[i]) && vms[i]! >= 0 && vms[i]! <= EXACT)) return false;
  return true;
}

function within(t: Hist4): boolean {
  for (const d of [t.rx, t.tx]) {
    for (const h of [d.packets, d.bytes]) {
      if (h.count > EXACT || h.sum > EXACT) return false;
      for (const b of h.buckets) if (b > EXACT) return false;
    }
  }
  return true;
}

export class IncrementalRollup {
  /** Roll-ups answered from the kept sums, and by the full roll-up (the sums then start again). */
  readonly counts = { incremental: 0, full: 0 };
  private entries = new Map<string, Entry>();
  private call = 0;
  private totals = zero4();
  private rxSum = 0;
  private txSum = 0;
  // Per VM, in slots: a VM seen first takes a free slot, and gives it back when no report has it.
  private slotOf = new Map<string, Map<string, number>>();
  private rx = new Float64Array(0);
  private tx = new Float64Array(0);
  /** How many (report, VM index) pairs have the VM; 0: the slot is free. */
  private refs = new Int32Array(0);
  /** Its first pair: report and VM index; further pairs (a VM that migrated) in `more`. */
  private firstEntry: Array<Entry | undefined> = [];
  private firstV = new Int32Array(0);
  private more = new Map<number, Array<[Entry, number]>>();
  private free: number[] = [];
  private used = 0;
  private live = 0;

  /** The trace's status, as rollUp(input) gives it. */
  rollUp(input: RollupInput): TraceStatus {
    return rollUp(input, (reports, directions) => {
      const kept = this.aggregate(reports, directions);
      if (kept) {
        this.counts.incremental++;
        return kept;
      }
      const { counts } = this;
      Object.assign(this, new IncrementalRollup(), { counts });
      counts.full++;
      return fullAggregate(reports, directions);
    });
  }

  /** The sums brought up to date with these reports, or undefined when they cannot be exact. */
  private aggregate(reports: readonly CompactReport[], directions: readonly Direction[]): Aggregate | undefined {
    const call = ++this.call;
    for (const r of reports) {
      const key = `${r.metadata.namespace ?? ''}/${r.metadata.name ?? r.spec.nodeName}`;
      const e = this.entries.get(key);
      if (e?.seen === call) return undefined; // two reports under one name: not the informer's cache
      if (e?.report === r) {
        e.seen = call;
        continue;
      }
      if (e) this.remove(key, e);
      if (!clean(r)) return undefined;
      this.insert(key, r, call);
    }
    for (const [key, e] of this.entries) if (e.seen !== call) this.remove(key, e);
    if (!(within(this.totals) && this.rxSum <= EXACT && this.txSum <= EXACT)) return undefined;
    return { totals: structuredClone(this.totals), ...this.rows(directions) };
  }

  private insert(key: string, r: CompactReport, call: number): void {
    const { hists, vms, names } = r.packed;
    add(this.totals, hists, 0);
    const e: Entry = { report: r, slots: new Int32Array(vms.length / 3), seen: call };
    const { slots } = e;
    for (let v = 0; v < slots.length; v++) {
      const ns = names[2 * v]!;
      const name = names[2 * v + 1]!;
      let m = this.slotOf.get(ns);
      if (!m) this.slotOf.set(ns, (m = new Map()));
      let s = m.get(name);
      if (s === undefined) {
        m.set(name, (s = this.take()));
        this.firstEntry[s] = e;
        this.firstV[s] = v;
      } else {
        const l = this.more.get(s);
        if (l) l.push([e, v]);
        else this.more.set(s, [[e, v]]);
      }
      this.refs[s]! += 1;
      this.rx[s]! += vms[3 * v]!;
      this.tx[s]! += vms[3 * v + 1]!;
      this.rxSum += vms[3 * v]!;
      this.txSum += vms[3 * v + 1]!;
      slots[v] = s;
    }
    this.entries.set(key, e);
  }

  private remove(key: string, e: Entry): void {
    const { hists, vms, names } = e.report.packed;
    add(this.totals, hists, 0, -1);
    for (let v = 0; v < e.slots.length; v++) {
      const s = e.slots[v]!;
      this.rx[s]! -= vms[3 * v]!;
      this.tx[s]! -= vms[3 * v + 1]!;
      this.rxSum -= vms[3 * v]!;
      this.txSum -= vms[3 * v + 1]!;
      this.refs[s]! -= 1;
      const l = this.more.get(s);
      if (this.firstEntry[s] === e && this.firstV[s] === v) {
        // The next pair becomes the first; its report names the VM from now on.
        const next = l?.shift();
        if (next) [this.firstEntry[s], this.firstV[s]] = next;
        else this.firstEntry[s] = undefined;
      } else if (l) {
        l.splice(
          l.findIndex(([x, i]) => x === e && i === v),
          1,
        );
      }
      if (l?.length === 0) this.more.delete(s);
      if (this.refs[s] === 0) {
        const m = this.slotOf.get(names[2 * v]!)!;
        m.delete(names[2 * v + 1]!);
        if (m.size === 0) this.slotOf.delete(names[2 * v]!);
        this.free.push(s);
        this.live--;
      }
    }
    this.entries.delete(key);
  }

  private take(): number {
    this.live++;
    const s = this.free.pop();
    if (s !== undefined) return s;
    if (this.used === this.refs.length) {
      const n = Math.max(1024, 2 * this.used);
      const grow = <T extends Float64Array | Int32Array>(a: T, b: T): T => (b.set(a), b);
      this.rx = grow(this.rx, new Float64Array(n));
      this.tx = grow(this.tx, new Float64Array(n));
      this.refs = grow(this.refs, new Int32Array(n));
      this.firstV = grow(this.firstV, new Int32Array(n));
    }
    return this.used++;
  }

  private pairs(s: number): Array<[CompactReport, number]> {
    const all: Array<[Entry, number]> = [[this.firstEntry[s]!, this.firstV[s]!], ...(this.more.get(s) ?? [])];
    return all.map(([e, v]) => [e.report, v]);
  }

  /** The listed VMs (rollup.ts's ranking) and the sums of the rest. */
  private rows(directions: readonly Direction[]): Omit<Aggregate, 'totals'> {
    const { rx, tx, refs } = this;
    const { firstEntry, firstV } = this;
    const name = (s: number, k: 0 | 1) => firstEntry[s]!.report.packed.names[2 * firstV[s]! + k]!;
    const runsOf = (s: number) => rx[s]! + tx[s]!;
    // Free slots rank after every VM; the ranking of VMs is rollup.ts's.
    const cmp = (a: number, b: number) =>
      refs[a] === 0 || refs[b] === 0 ? (refs[a] === 0 ? 1 : 0) - (refs[b] === 0 ? 1 : 0) || a - b : byRuns(a, b, runsOf, name);
    const top = firstK(this.used, LIMITS.vms, cmp).filter((s) => refs[s]! > 0);
    let rxRuns = this.rxSum;
    let txRuns = this.txSum;
    for (const s of top) {
      rxRuns -= rx[s]!;
      txRuns -= tx[s]!;
    }
    const vms = top.map((s) => vmRow(name(s, 0), name(s, 1), this.pairs(s), directions));
    return { vms, other: { count: this.live - vms.length, rxRuns, txRuns } };
  }
}
