import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { LOADER_EXIT, PERMANENT_EXITS } from '../../src/loader/exit-codes.js';

/** enum vh_exit in bpf/vh-common.h, as { VH_EXIT_NAME: value }. */
function cEnum(): Record<string, number> {
  const src = readFileSync(join(import.meta.dirname, '../../bpf/vh-common.h'), 'utf8');
  const body = /enum vh_exit \{([^}]*)\}/.exec(src)?.[1];
  if (!body) throw new Error('bpf/vh-common.h: no enum vh_exit');
  return Object.fromEntries([...body.matchAll(/(VH_EXIT_\w+)\s*=\s*(\d+)/g)].map((m) => [m[1]!, Number(m[2])]));
}

// camelCase name -> the C name: noBtf -> VH_EXIT_NO_BTF.
const cName = (name: string) => `VH_EXIT_${name.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase()}`;

describe("the loader's exit codes", () => {
  it('are the C enum, name for name and value for value', () => {
    const c = cEnum();
    expect(Object.keys(c).length).toBeGreaterThan(5);
    expect(Object.fromEntries(Object.entries(LOADER_EXIT).map(([k, v]) => [cName(k), v]))).toEqual(c);
  });

  it('that a restart will not fix are the node problems, not errors or usage', () => {
    expect([...PERMANENT_EXITS].sort()).toEqual([3, 4, 5, 6, 7]);
    expect(PERMANENT_EXITS.has(LOADER_EXIT.error)).toBe(false);
  });
});
