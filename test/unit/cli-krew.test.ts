// The krew distribution: the committed manifest meets krew's validation rules (sigs.k8s.io/krew
// pkg/index/validation: apiVersion, kind, name = file name, semver version, platforms with uri,
// sha256, bin, files and an os/arch selector), and the archive is a tar that `tar` reads back.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { BIN, krewManifest, releaseUri, sha256, tarGz } from '../../src/cli/krew.js';

const ROOT = new URL('../../', import.meta.url);
const FILE = 'manifests/krew/vhosttrace.yaml';
const text = readFileSync(new URL(FILE, ROOT), 'utf8');
const version = (JSON.parse(readFileSync(new URL('package.json', ROOT), 'utf8')) as { version: string }).version;

describe(FILE, () => {
  const m = parse(text);

  it("passes krew's manifest validation", () => {
    expect(m.apiVersion).toBe('krew.googlecontainertools.github.com/v1alpha2');
    expect(m.kind).toBe('Plugin');
    expect(m.metadata.name).toBe('vhosttrace');
    expect(m.metadata.name).toMatch(/^[\w-]+$/);
    expect(FILE.endsWith(`/${m.metadata.name}.yaml`)).toBe(true);
    expect(m.spec.shortDescription).toBeTruthy();
    expect(m.spec.version).toMatch(/^v\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$/);
    expect(m.spec.platforms.length).toBeGreaterThan(0);
    for (const p of m.spec.platforms) {
      expect(p.uri).toMatch(/^https:\/\//);
      expect(p.sha256).toMatch(/^[a-f0-9]{64}$/);
      expect(p.bin).toBe(BIN);
      expect(p.files.length).toBeGreaterThan(0);
      const sel = p.selector;
      const keys = [...Object.keys(sel.matchLabels ?? {}), ...(sel.matchExpressions ?? []).map((e: { key: string }) => e.key)];
      expect(keys.length).toBeGreaterThan(0);
      for (const k of keys) expect(['os', 'arch']).toContain(k);
    }
  });

  it("is the release manifest of package.json's version, as `npm run build` writes it (only the sha256 comes from the build)", () => {
    expect(m.spec.version).toBe(`v${version}`);
    expect(m.spec.platforms[0].uri).toBe(releaseUri(version));
    expect(text).toBe(krewManifest(version, m.spec.platforms[0].sha256));
  });
});

describe('the archive', () => {
  it('holds the one executable file, byte for byte, and is the same bytes each time', () => {
    const content = Buffer.from('#!/usr/bin/env node\nconsole.log(1)\n'.repeat(100));
    const archive = tarGz(BIN, content);
    expect(sha256(tarGz(BIN, content))).toBe(sha256(archive));
    const dir = mkdtempSync(join(tmpdir(), 'krew-'));
    try {
      writeFileSync(join(dir, 'a.tar.gz'), archive);
      expect(execFileSync('tar', ['-tvzf', 'a.tar.gz'], { cwd: dir, encoding: 'utf8' })).toMatch(new RegExp(`^-rwxr-xr-x .* ${content.length} .* ${BIN}\\n$`));
      execFileSync('tar', ['-xzf', 'a.tar.gz'], { cwd: dir });
      expect(readFileSync(join(dir, BIN))).toEqual(content);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
