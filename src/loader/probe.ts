// Parser for `vhost-hist --probe`: one JSON line saying which attach mode this kernel allows,
// or why none (bpf/vhost-hist.c: probe()). Pure. Used by the loader's tests and by hand on a
// node; the agent itself learns the same from the loader's exit code (src/agent/health.ts).
import { LoaderParseError } from './snapshot.js';


export interface LoaderProbe {
  type: 'probe';
  version: 1;
  kernel: string;
  ok: boolean;
  /** The mode a start would use; null when none is possible. */
  mode: 'raw_tp' | 'tracepoint' | 'fentry' | null;
  /** What a start would exit with: 0, or one of LOADER_EXIT (exit-codes.ts). */
  exitCode: number;
  /** Whether /sys/fs/bpf is a bpf filesystem (needed for --pin). */
  bpffs: boolean;
  /** The loader's message when not ok; empty when ok. */
  reason: string;
}

const KEYS = ['type', 'version', 'kernel', 'ok', 'mode', 'exitCode', 'bpffs', 'reason'] as const;
const MODES = ['raw_tp', 'tracepoint', 'fentry'] as const;

/** Parses the line `vhost-hist --probe` prints; throws LoaderParseError when it is malformed. */
export function parseProbeLine(line: string): LoaderProbe {
  const fail = (path: string, reason: string): never => {
    throw new LoaderParseError(undefined, path, reason);
  };
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch (err) {
    fail('$', `not JSON (${(err as Error).message})`);
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return fail('$', 'expected an object');
  const o = v as Record<string, unknown>;
  for (const k of KEYS) if (!(k in o)) fail('$', `missing property "${k}"`);
  for (const k of Object.keys(o)) if (!(KEYS as readonly string[]).includes(k)) fail('$', `unknown property "${k}"`);
  if (o.type !== 'probe') fail('$.type', `expected "probe", got ${JSON.stringify(o.type)}`);
  if (o.version !== 1) fail('$.version', `this parser reads version 1, got ${JSON.stringify(o.version)}`);
  if (typeof o.kernel !== 'string') fail('$.kernel', 'expected a string');
  if (typeof o.ok !== 'boolean') fail('$.ok', 'expected true or false');
  if (typeof o.bpffs !== 'boolean') fail('$.bpffs', 'expected true or false');
  if (typeof o.reason !== 'string') fail('$.reason', 'expected a string');
  if (typeof o.exitCode !== 'number' || !Number.isInteger(o.exitCode) || o.exitCode < 0 || o.exitCode > 255) {
    fail('$.exitCode', `expected an exit code, got ${JSON.stringify(o.exitCode)}`);
  }
  if (o.mode !== null && !(MODES as readonly unknown[]).includes(o.mode)) {
    fail('$.mode', `expected one of ${MODES.map((m) => JSON.stringify(m)).join(', ')} or null, got ${JSON.stringify(o.mode)}`);
  }
  if (o.ok !== (o.exitCode === 0) || o.ok !== (o.mode !== null)) {
    fail('$', `inconsistent: ok ${String(o.ok)}, exitCode ${String(o.exitCode)}, mode ${JSON.stringify(o.mode)}`);
  }
  return o as unknown as LoaderProbe;
}
