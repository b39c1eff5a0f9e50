// A VhostTraceReport as the operator caches it: only what the roll-up and the status read, with
// the histograms packed. At 5,000 nodes x 50 VMs the parsed JSON reports take 268 MiB of heap
// (docs/benchmarks.md, operator); this form takes a fraction of it. Pure.
//
// Histograms are packed as varints in one Uint8Array per report: per histogram count, sum,
// the number of buckets, then the buckets. Each number n is written as the LEB128 varint of 2n
// when n is a non-negative integer (exact for every such double, beyond 2^53 too), else as the
// byte 1 and n's 8 bytes (the schema forbids such values; they still round-trip). A missing
// histogram or direction is packed as an empty one: the roll-up treats both alike.
import type { Direction, RawDirections, RawHistogram, ReportSpec, ReportStatus, VhostTraceReport } from '../api/v1alpha1.js';

/** The histograms of one direction set, in packing order. */
const SLOTS = [
  ['rx', 'packets'],
  ['rx', 'bytes'],
  ['tx', 'packets'],
  ['tx', 'bytes'],
] as const;

/** The scalar parts of a report's status the roll-up reads, as the report has them. */
export type CompactStatus = Pick<ReportStatus, 'observedTime' | 'state' | 'reason' | 'message' | 'kernel' | 'mode'>;

export interface CompactReport {
  metadata: { name?: string; namespace?: string; resourceVersion?: string };
  spec: ReportSpec;
  status?: CompactStatus;
  /** Serialized size of the full status (the default interval is sized by it). */
  statusBytes: number;
  packed: {
    /** status.total's four histograms, then each VM's four. */
    hists: Uint8Array;
    /** Per VM: RX runs, TX runs (packets histograms' counts) and its offset in hists. */
    vms: Float64Array;
    /** Per VM: namespace, name. */
    names: string[];
  };
}

export const isCompact = (r: VhostTraceReport | CompactReport): r is CompactReport => 'packed' in r;

/** The roll-up's message cut (LIMITS.nodeMessage); kept here so longer messages are not cached. */
export const NODE_MESSAGE_CHARS = 256;

/** One scratch buffer for all packing (done() copies out), so packing leaves no garbage buffers. */
let scratch = new Uint8Array(64 * 1024);

class Writer {
  buf = scratch;
  len = 0;
  private room(n: number): void {
    if (this.len + n <= this.buf.length) return;
    const b = new Uint8Array(Math.max(this.buf.length * 2, this.len + n));
    b.set(this.buf.subarray(0, this.len));
    this.buf = scratch = b;
  }
  num(n: number): void {
    let x = 2 * n;
    if (!(Number.isInteger(n) && n >= 0 && Number.isFinite(x))) {
      this.room(9);
      this.buf[this.len++] = 1;
      new DataView(this.buf.buffer).setFloat64(this.len, n, true);
      this.len += 8;
      return;
    }
    this.room(160); // 2n < 2^1024: at most 147 groups of 7 bits
    while (x >= 128) {
      const low = x % 128;
      this.buf[this.len++] = low | 128;
      x = (x - low) / 128;
    }
    this.buf[this.len++] = x;
  }
  hist(h: RawHistogram | undefined): void {
    if (!h) {
      this.num(0);
      this.num(0);
      this.num(0);
      return;
    }
    this.num(h.count);
    this.num(h.sum);
    this.num(h.buckets.length);
    for (const b of h.buckets) this.num(b);
  }
  dirs(d: RawDirections | undefined): void {
    for (const [dir, kind] of SLOTS) this.hist(d?.[dir]?.[kind]);
  }
  done(): Uint8Array {
    return this.buf.slice(0, this.len);
  }
}

/** Reads packed numbers from `pos` on. */
export class Reader {
  constructor(
    private readonly buf: Uint8Array,
    public pos = 0,
  ) {}
  num(): number {
    const b = this.buf;
    let x = 0;
    let scale = 1;
    let byte: number;
    do {
      byte = b[this.pos++]!;
      x += (byte & 127) * scale;
      scale *= 128;
    } while (byte >= 128);
    if (x % 2 === 0) return x / 2;
    const v = new DataView(b.buffer, b.byteOffset).getFloat64(this.pos, true);
    this.pos += 8;
    return v;
  }
  /** acc += sign x the next histogram, as histogram.merge adds (same additions, same order). */
  addInto(acc: RawHistogram, sign: 1 | -1 = 1): void {
    acc.count += sign * this.num();
    acc.sum += sign * this.num();
    const n = this.num();
    const bk = acc.buckets;
    for (let i = 0; i < n; i++) bk[i] = (bk[i] ?? 0) + sign * this.num();
  }
  hist(): RawHistogram {
    const count = this.num();
    const sum = this.num();
    const n = this.num();
    const buckets: number[] = [];
    for (let i = 0; i < n; i++) buckets.push(this.num());
    return { count, sum, buckets };
  }
}

/** The informer's transform for reports. */
export function compactReport(r: VhostTraceReport): CompactReport {
  const s = r.status;
  const w = new Writer();
  w.dirs(s?.total);
  const list = s?.vms ?? [];
  const vms = new Float64Array(3 * list.length);
  const names: string[] = [];
  list.forEach((vm, i) => {
    vms[3 * i] = vm.rx?.packets.count ?? 0;
    vms[3 * i + 1] = vm.tx?.packets.count ?? 0;
    vms[3 * i + 2] = w.len;
    names.push(vm.namespace, vm.name);
    w.dirs(vm);
  });
  const out: CompactReport = {
    metadata: { name: r.metadata.name, namespace: r.metadata.namespace, resourceVersion: r.metadata.resourceVersion },
    spec: { trace: { ...r.spec.trace }, nodeName: r.spec.nodeName },
    statusBytes: Buffer.byteLength(JSON.stringify(s ?? {})),
    packed: { hists: w.done(), vms, names },
  };
  if (s) {
    const st: CompactStatus = {};
    for (const k of ['observedTime', 'state', 'reason', 'kernel', 'mode'] as const) if (s[k] !== undefined) (st as Record<string, unknown>)[k] = s[k];
    if (s.message !== undefined) st.message = s.message.slice(0, NODE_MESSAGE_CHARS);
    out.status = st;
  }
  return out;
}

/** The four histograms at a reader's position. */
export function readDirs(rd: Reader): Record<Direction, { packets: RawHistogram; bytes: RawHistogram }> {
  const rxp = rd.hist();
  const rxb = rd.hist();
  const txp = rd.hist();
  const txb = rd.hist();
  return { rx: { packets: rxp, bytes: rxb }, tx: { packets: txp, bytes: txb } };
}

/** A compact report's VMs and totals unpacked (tests: the packing must lose nothing). */
export function unpack(c: CompactReport) {
  const { hists, vms, names } = c.packed;
  const total = readDirs(new Reader(hists));
  const list = [];
  for (let i = 0; i < vms.length / 3; i++) {
    list.push({ namespace: names[2 * i]!, name: names[2 * i + 1]!, rxRuns: vms[3 * i]!, txRuns: vms[3 * i + 1]!, ...readDirs(new Reader(hists, vms[3 * i + 2]!)) });
  }
  return { total, vms: list };
}
