// The vhost_net tracepoints on real Debian kernels: each kernel boots in qemu with the patched
// module, the traffic driver moves exact workloads through /dev/vhost-net and a tap, and the
// events in the trace buffer must add up to what the driver moved, run by run.
import { beforeAll, describe, expect, it } from 'vitest';
import {
  compare,
  expectedRuns,
  totals,
  parseTrace,
  type DriverReport,
  type ParsedTrace,
  type Workload,
} from './ground-truth.js';
import { assertGuestOk, buildSeedPlacementModule, KERNELS, runGuest, type GuestResult } from './testbed.js';

const WORKLOADS: Workload[] = [
  // Mixed small and full-size frames, several batches and a short last one.
  { name: 'tx-batch32-mixed', direction: 'tx', frames: 100, batch: 32, sizes: [64, 1514] },
  { name: 'rx-batch32-mixed', direction: 'rx', frames: 100, batch: 32, sizes: [64, 1514] },
  // One frame per kick: one run per frame.
  { name: 'tx-batch1', direction: 'tx', frames: 20, batch: 1, sizes: [60] },
  { name: 'rx-batch1', direction: 'rx', frames: 20, batch: 1, sizes: [333] },
  // One batch bigger than the packet weight: runs of 256 and 44.
  { name: 'tx-packet-weight', direction: 'tx', frames: 300, batch: 300, ring: 512, sizes: [60, 61, 62] },
  { name: 'rx-packet-weight', direction: 'rx', frames: 300, batch: 300, ring: 512, sizes: [60, 61, 62] },
  // Jumbo frames past the byte weight (512 KiB): runs of 59, 59 and 32.
  { name: 'tx-byte-weight', direction: 'tx', frames: 150, batch: 150, sizes: [9014] },
  { name: 'rx-byte-weight', direction: 'rx', frames: 150, batch: 150, sizes: [9014] },
  // A starved RX ring: frames wait in the tap while the buffers come 8 or 16 at a time, so
  // most runs end with handle_rx's "goto out" (no buffers), where the seed article's
  // tracepoint never fired.
  { name: 'rx-starved', direction: 'rx', frames: 64, batch: 64, post: 8, sizes: [128] },
  { name: 'rx-starved-mixed', direction: 'rx', frames: 100, batch: 50, post: 16, sizes: [64, 1514, 9014] },
];

const TX_WORKLOADS = WORKLOADS.filter((w) => w.direction === 'tx');

function driverArgs(w: Workload): string {
  const ring = w.ring ? ` --ring ${w.ring}` : '';
  const post = w.post ? ` --post ${w.post}` : '';
  return `--${w.direction} --frames ${w.frames} --batch ${w.batch} --sizes ${w.sizes.join(',')}${ring}${post}`;
}

// Each workload runs with a fresh trace buffer; its JSON and the buffer land in $VT_OUT.
function workloadScript(workloads: Workload[]): string {
  return [
    'T=/sys/kernel/tracing',
    'cat $T/events/vhost_net/vhost_net_rx_end/format > "$VT_OUT/format-rx"',
    'cat $T/events/vhost_net/vhost_net_tx_end/format > "$VT_OUT/format-tx"',
    'cat /sys/module/vhost_net/parameters/experimental_zcopytx > "$VT_OUT/zcopytx"',
    'echo 1 > $T/events/vhost_net/enable',
    ...workloads.flatMap((w) => [
      'echo 0 > $T/tracing_on; echo > $T/trace; echo 1 > $T/tracing_on',
      `vhost-traffic ${driverArgs(w)} > "$VT_OUT/${w.name}.json"`,
      'echo 0 > $T/tracing_on',
      `cat $T/trace > "$VT_OUT/${w.name}.trace"`,
    ]),
    'echo done',
  ].join('\n');
}

interface Outcome {
  report: DriverReport;
  trace: ParsedTrace;
}

async function outcomes(guest: GuestResult, workloads: Workload[]): Promise<Map<string, Outcome>> {
  const m = new Map<string, Outcome>();
  for (const w of workloads) {
    const report = JSON.parse(await guest.read(`${w.name}.json`)) as DriverReport;
    m.set(w.name, { report, trace: parseTrace(await guest.read(`${w.name}.trace`)) });
  }
  return m;
}

function formatFields(text: string): { fields: string[]; print: string } {
  const lines = text.split('\n');
  const fields = lines.filter((l) => l.startsWith('\tfield:') && !l.includes(' common_')).map((l) => l.trim());
  const print = lines.find((l) => l.startsWith('print fmt: ')) ?? '';
  return { fields, print };
}

describe('ground-truth comparison (no kernel)', () => {
  const w = WORKLOADS[0] as Workload;
  const report: DriverReport = {
    direction: 'tx', frames: 100, bytes: 80100, frame_bytes: 78900, vnet_hdr_len: 12, batch: 32, post: 32, ring: 256,
    sizes: [64, 1514], batches: [{ frames: 32, bytes: 25632 }, { frames: 32, bytes: 25632 },
      { frames: 32, bytes: 25632 }, { frames: 4, bytes: 3204 }],
    tap: 'vhtap0', features: '0x100000000', tap_seen: 100, foreign_frames: 0, move_ns: 900000, blocked: 30, preempted: 5, elapsed_ms: 1,
  };
  const good: ParsedTrace = {
    inBuffer: 6, written: 6,
    events: [{ direction: 'tx', packets: 0, bytes: 0 }, ...expectedRuns(w, 12), { direction: 'rx', packets: 0, bytes: 0 }],
  };

  it('agrees with a trace that has every frame', () => {
    expect(compare(w, report, good)).toEqual([]);
  });

  it('fails when one frame is missing from one run', () => {
    const events = good.events.map((e) => ({ ...e }));
    const run = events[2];
    if (!run) throw new Error('no run');
    run.packets -= 1;
    run.bytes -= 1514 + 12;
    const problems = compare(w, report, { ...good, events });
    expect(problems.join('\n')).toMatch(/99 packets, driver moved 100/);
    expect(problems.join('\n')).toMatch(/runs .* batching implies/);
  });

  it('fails when the runs add up but are split differently', () => {
    const events = good.events.filter((e) => e.packets !== 4).map((e) => ({ ...e }));
    const last = events[3];
    if (!last) throw new Error('no run');
    last.packets += 4;
    last.bytes += 3204;
    expect(compare(w, report, { ...good, events })).toHaveLength(1);
  });
});

// One boot per kernel and block; every workload's events must equal the driver's ground truth.
function describeWorkloads(
  title: string,
  workloads: Workload[],
  opts: { append?: string; zcopytx: string },
): void {
  describe.each(KERNELS)(title, (kernel) => {
    let guest: GuestResult;
    let results: Map<string, Outcome>;

    beforeAll(async () => {
      guest = await runGuest({ kernel, script: workloadScript(workloads), append: opts.append });
      await assertGuestOk(guest);
      results = await outcomes(guest, workloads);
    });

    it('has vhost_net_rx_end and vhost_net_tx_end in tracefs with the exact format', async () => {
      const rx = formatFields(await guest.read('format-rx'));
      expect(rx.fields).toEqual([
        'field:int recv_pkts;\toffset:8;\tsize:4;\tsigned:1;',
        'field:int total_len;\toffset:12;\tsize:4;\tsigned:1;',
      ]);
      expect(rx.print).toBe('print fmt: "recv_pkts=%d total_len=%d", REC->recv_pkts, REC->total_len');
      const tx = formatFields(await guest.read('format-tx'));
      expect(tx.fields).toEqual([
        'field:int sent_pkts;\toffset:8;\tsize:4;\tsigned:1;',
        'field:int total_len;\toffset:12;\tsize:4;\tsigned:1;',
      ]);
      expect(tx.print).toBe('print fmt: "sent_pkts=%d total_len=%d", REC->sent_pkts, REC->total_len');
      expect((await guest.read('zcopytx')).trim()).toBe(opts.zcopytx);
    });

    it.each(workloads.map((w) => [w.name, w] as const))('%s: events add up to the driver', (_name, w) => {
      const r = results.get(w.name);
      if (!r) throw new Error(`no result for ${w.name}`);
      expect(compare(w, r.report, r.trace)).toEqual([]);
    });
  });
}

describeWorkloads('Debian %s with the patched vhost_net', WORKLOADS, { zcopytx: '0' });

describeWorkloads('Debian %s, zerocopy TX (handle_tx_zerocopy)', TX_WORKLOADS, {
  append: 'vhost_net.experimental_zcopytx=1',
  zcopytx: '1',
});

// Negative control: the same patch with the RX call where the seed article had it, after the
// loop only. Runs that end because the guest has no RX buffers leave by "goto out" and go
// unreported, and the comparison must notice.
describe.each(KERNELS)("Debian %s, the seed article's RX placement (negative control)", (kernel) => {
  const starved = WORKLOADS.find((w) => w.name === 'rx-starved') as Workload;
  const drained = WORKLOADS.find((w) => w.name === 'rx-batch32-mixed') as Workload;
  let results: Map<string, Outcome>;

  beforeAll(async () => {
    await buildSeedPlacementModule(kernel);
    const guest = await runGuest({
      kernel,
      script: [
        'rmmod vhost_net',
        'insmod "$VT_KCACHE/module-seed-placement/vhost_net.ko"',
        workloadScript([starved, drained]),
      ].join('\n'),
    });
    await assertGuestOk(guest);
    results = await outcomes(guest, [starved, drained]);
  });

  it('misses the runs of a starved RX ring, and the comparison fails', () => {
    const r = results.get(starved.name);
    if (!r) throw new Error('no result');
    expect(r.report.frames).toBe(64);
    expect(totals(r.trace.events, 'rx').packets).toBe(8);
    expect(compare(starved, r.report, r.trace)).not.toEqual([]);
  });

  it('still counts runs that end with the socket drained', () => {
    const r = results.get(drained.name);
    if (!r) throw new Error('no result');
    expect(compare(drained, r.report, r.trace)).toEqual([]);
  });
});

describe.each(KERNELS)('Debian %s with its own vhost_net (control)', (kernel) => {
  it('has no vhost_net events, and the driver still moves its traffic', async () => {
    const w = WORKLOADS[0] as Workload;
    const guest = await runGuest({
      kernel,
      unpatched: true,
      script: [
        'test ! -e /sys/kernel/tracing/events/vhost_net && echo no-events',
        `vhost-traffic ${driverArgs(w)}`,
      ].join('\n'),
    });
    await assertGuestOk(guest);
    const [marker, json] = guest.stdout.trim().split('\n');
    expect(marker).toBe('no-events');
    const report = JSON.parse(json ?? '') as DriverReport;
    expect(report.frames).toBe(w.frames);
    expect(report.tap_seen).toBe(w.frames);
  });
});
