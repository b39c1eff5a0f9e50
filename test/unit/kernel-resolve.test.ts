// kernel/testbed/resolve against recorded `apt-cache madison` output: which Debian kernel a
// series is tested on, without the network. The recordings are the archive as it was on
// 2026-12-03 (hosts replaced); the other archives are edits of them.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const RESOLVE = fileURLToPath(new URL('../../kernel/testbed/resolve', import.meta.url));
const FIXTURES = fileURLToPath(new URL('./fixtures/apt/', import.meta.url));
const recorded = (series: string) => readFileSync(join(FIXTURES, `madison-${series}-2026-12-03.txt`), 'utf8');

function resolve(series: string, madison: string, ...args: string[]) {
  const file = join(mkdtempSync(join(tmpdir(), 'vt-resolve-')), 'madison.txt');
  writeFileSync(file, madison);
  const r = spawnSync(RESOLVE, [series, '--madison', file, ...args], { encoding: 'utf8' });
  return { code: r.status, out: r.stdout.trim(), err: r.stderr };
}

/** The archive without the lines of one package at one version. */
const without = (madison: string, pkg: string, version: string) =>
  madison
    .split('\n')
    .filter((l) => !(l.startsWith(`${pkg} |`) && l.split('|')[1]?.trim() === version))
    .join('\n');

describe('kernel/testbed/resolve', () => {
  it('takes the newest complete set of each series in the recorded archive', () => {
    // 6.1.192-2, which kernels.conf used to pin, is gone for kbuild; 6.1.192-3 is whole.
    expect(resolve('6.1', recorded('6.1'))).toMatchObject({ code: 0, out: '6.1.192-3 6.1.0-57-amd64 linux-kbuild-6.1' });
    expect(resolve('6.12', recorded('6.12'))).toMatchObject({
      code: 0,
      out: '6.12.118-1~deb12u1 6.12.118+deb12-amd64 linux-kbuild-6.12.118+deb12',
    });
  });

  it('orders versions as Debian does (~ sorts before anything)', () => {
    const archive = recorded('6.12').replaceAll('6.12.118-1~deb12u1', '6.12.117-1');
    // The edit makes 6.12.117-1 the newest: newer than 6.12.117-1~deb12u1, which sort -V would put after it.
    expect(resolve('6.12', archive).out).toBe('6.12.117-1 6.12.118+deb12-amd64 linux-kbuild-6.12.118+deb12');
  });

  it.each([
    ['linux-kbuild-6.1', '6.1.192-3'],
    ['linux-source-6.1', '6.1.192-3'],
    ['linux-headers-6.1.0-57-common', '6.1.192-3'],
    ['linux-headers-6.1.0-57-amd64', '6.1.192-3'],
  ])('passes over the newest version when %s is missing at it, and says so', (pkg, version) => {
    const r = resolve('6.1', without(recorded('6.1'), pkg, version));
    expect(r.code).toBe(0);
    // linux-kbuild-6.1 has only 6.1.192-3 and 6.1.176-1 in the archive: the next whole set.
    expect(r.out).toBe('6.1.176-1 6.1.0-50-amd64 linux-kbuild-6.1');
    expect(r.err).toContain(`passing over 6.1.192-3 (6.1.0-57-amd64): the archive lacks ${pkg}`);
  });

  it('fails, naming the series and what to do, when no version is complete', () => {
    const archive = recorded('6.1')
      .split('\n')
      .filter((l) => !l.startsWith('linux-kbuild-6.1 |'))
      .join('\n');
    const r = resolve('6.1', archive);
    expect(r.code).toBe(1);
    expect(r.out).toBe('');
    expect(r.err).toMatch(/resolve: 6\.1: no version has the whole set .* run apt-get update/);
  });

  it('fails when the archive has nothing of the series', () => {
    const r = resolve('6.6', recorded('6.1'));
    expect(r.code).toBe(1);
    expect(r.err).toContain('resolve: 6.6: no version has the whole set');
  });

  it('does not take a cloud or rt flavour for the generic kernel', () => {
    const generic = recorded('6.1')
      .split('\n')
      .filter((l) => !l.startsWith('linux-image-6.1.0-57-amd64-unsigned |'))
      .join('\n');
    expect(resolve('6.1', generic).out).toBe('6.1.176-1 6.1.0-50-amd64 linux-kbuild-6.1');
  });

  it('keeps a preferred version while it is whole, and leaves it when it is not', () => {
    expect(resolve('6.1', recorded('6.1'), '--prefer', '6.1.176-1').out).toBe('6.1.176-1 6.1.0-50-amd64 linux-kbuild-6.1');
    const r = resolve('6.1', recorded('6.1'), '--prefer', '6.1.192-2');
    expect(r.out).toBe('6.1.192-3 6.1.0-57-amd64 linux-kbuild-6.1');
    expect(r.err).toContain('the preferred version 6.1.192-2 is not complete in the archive');
  });

  it('refuses a malformed series', () => {
    expect(resolve('six', recorded('6.1')).code).toBe(2);
  });
});
