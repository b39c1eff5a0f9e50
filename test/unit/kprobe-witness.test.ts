// The stock-module witness (test/kernel/ground-truth.ts kprobeHits): a handler call is a run only
// if it reached vhost_disable_notify on its thread, as the patch's events count runs.
import { describe, expect, it } from 'vitest';
import { kprobeHits } from '../kernel/ground-truth.js';

const line = (comm: string, pid: number, t: number, event: string, symbol: string, mod: string) =>
  `      ${comm}-${pid}    [001] d..1.   ${t.toFixed(6)}: ${event}: (${symbol}+0x0/0x6b0 [${mod}])`;
const rx = (pid: number, t: number) => line(`vhost-${pid - 1}`, pid, t, 'rx_call', 'handle_rx', 'vhost_net');
const tx = (pid: number, t: number) => line(`vhost-${pid - 1}`, pid, t, 'tx_call', 'handle_tx', 'vhost_net');
const armed = (pid: number, t: number) => line(`vhost-${pid - 1}`, pid, t, 'armed', 'vhost_disable_notify', 'vhost');

describe('kprobeHits', () => {
  it('counts the calls that reached vhost_disable_notify, once each, per thread', () => {
    const trace = [
      '# tracer: nop',
      rx(101, 1), armed(101, 1.1), armed(101, 1.2), // a run that re-disabled notification in its loop: one run
      tx(202, 1.15), // another thread's call, interleaved, without reaching it: no run
      rx(101, 2), // no backend: an early exit, no run
      rx(101, 3), armed(101, 3.1),
      tx(202, 3.2), armed(202, 3.3),
      '      <...>-77    [000] .....   4.000000: tracing_mark_write: vm tenant-a/web',
      tx(202, 5), // the last call of the text, never armed
    ].join('\n');
    expect(kprobeHits(trace)).toEqual({ rx: 2, tx: 1 });
  });

  it('takes a comm with dashes and a vhost_disable_notify of a thread with no open call', () => {
    const trace = [armed(303, 0.5), line('qemu-kvm-vhost', 303, 1, 'rx_call', 'handle_rx', 'vhost_net'), armed(303, 1.5)].join('\n');
    expect(kprobeHits(trace)).toEqual({ rx: 1, tx: 0 });
  });

  it('refuses a probe on the wrong symbol', () => {
    expect(() => kprobeHits(line('vhost-1', 2, 1, 'rx_call', 'handle_tx', 'vhost_net'))).toThrow(/mixed-up kprobe line/);
  });
});
