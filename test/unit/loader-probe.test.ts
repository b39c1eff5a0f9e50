import { describe, expect, it } from 'vitest';
import { LOADER_EXIT } from '../../src/loader/exit-codes.js';
import { parseProbeLine } from '../../src/loader/probe.js';

// Lines as bpf/.output/vhost-hist --probe printed them on the host.
const NO_TRACEPOINTS =
  '{"type":"probe","version":1,"kernel":"6.18.44-fc-v782","ok":false,"mode":null,"exitCode":3,"bpffs":true,' +
  '"reason":"no vhost_net tracepoints, and stock mode is not possible: handle_rx not in /sys/kernel/btf/vhost_net (vhost_net not loaded, no module BTF, or inlined)"}';
const OK = '{"type":"probe","version":1,"kernel":"6.18.44-fc-v782","ok":true,"mode":"raw_tp","exitCode":0,"bpffs":true,"reason":""}';

describe('parseProbeLine', () => {
  it('reads a failed and a successful probe', () => {
    const p = parseProbeLine(NO_TRACEPOINTS);
    expect(p.ok).toBe(false);
    expect(p.exitCode).toBe(LOADER_EXIT.noTracepoint);
    expect(p.reason).toMatch(/handle_rx not in/);
    expect(parseProbeLine(OK).mode).toBe('raw_tp');
  });

  it.each([
    ['not JSON', 'probe', /^\$: not JSON/],
    ['a missing property', OK.replace(',"bpffs":true', ''), /missing property "bpffs"/],
    ['an unknown mode', OK.replace('"raw_tp"', '"kprobe"'), /\$\.mode: expected one of .* or null, got "kprobe"/],
    ['ok without a mode', OK.replace('"raw_tp"', 'null'), /inconsistent: ok true, exitCode 0, mode null/],
    ['a bad exit code', NO_TRACEPOINTS.replace('"exitCode":3', '"exitCode":-1'), /\$\.exitCode: expected an exit code, got -1/],
  ])('rejects %s', (_what, line, message) => {
    expect(() => parseProbeLine(line)).toThrow(message);
  });
});
