// kernel/module/prepare applies the project's patch to the resolved Debian kernel's own source
// without fuzz, and refuses a source it would only fit by fuzz, naming the series, the version,
// the hunk and what to do. This runs on the host, on the sources the test bed fetched.
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { KERNELS, testedKernel } from './testbed.js';

const PREPARE = fileURLToPath(new URL('../../kernel/module/prepare', import.meta.url));
const PATCHES = fileURLToPath(new URL('../../kernel/patches/', import.meta.url));

function prepare(kernel: string, source: string) {
  const k = testedKernel(kernel);
  const out = join(mkdtempSync(join(tmpdir(), 'vt-prepare-')), 'module');
  const r = spawnSync(
    PREPARE,
    ['--source', source, '--series', kernel, '--kernel-release', k.release, '--package-version', k.version, '--out', out],
    { encoding: 'utf8' },
  );
  return { code: r.status, err: r.stderr, out };
}

describe.each(KERNELS)('Debian %s: the patch on the tested kernel source', (kernel) => {
  it('applies without fuzz, and the module source has both tracepoints', () => {
    const k = testedKernel(kernel);
    const r = prepare(kernel, join(k.cache, 'src'));
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    const net = readFileSync(join(r.out, 'net.c'), 'utf8');
    expect(net.match(/trace_vhost_net_tx_end\(/g)).toHaveLength(2);
    expect(net.match(/trace_vhost_net_rx_end\(/g)).toHaveLength(1);
  });

  it('refuses a source that the patch fits only with fuzz, and says which hunk and what to do', () => {
    const k = testedKernel(kernel);
    const src = mkdtempSync(join(tmpdir(), 'vt-src-'));
    cpSync(join(k.cache, 'src'), src, { recursive: true });
    // The outermost context line of the handle_tx_copy hunk changes, as a point release might
    // change it: plain `patch` (fuzz 2) would still place the hunk.
    const netPath = join(src, 'drivers/vhost/net.c');
    const net = readFileSync(netPath, 'utf8');
    const line = '\t} while (likely(!vhost_exceeds_weight(vq, ++sent_pkts, total_len)));\n\n\tvhost_tx_batch(';
    expect(net).toContain(line);
    writeFileSync(netPath, net.replace(line, line.replace('total_len)));', 'total_len) ));')));
    const dir = join(PATCHES, kernel);
    const patch = readFileSync(join(dir, readdirSync(dir).find((f) => f.endsWith('.patch'))!), 'utf8');
    const netPart = patch.split(/^(?=diff --git )/m).find((part) => part.startsWith('diff --git a/drivers/vhost/net.c'));
    const fuzzy = spawnSync('patch', ['-d', src, '-p1', '--dry-run'], { input: netPart, encoding: 'utf8' });
    expect(fuzzy.stdout).toMatch(/Hunk #2 succeeded at \d+ with fuzz 1/);

    const r = prepare(kernel, src);
    expect(r.code).toBe(3);
    expect(r.err).toContain(`does not apply cleanly (without fuzz)`);
    expect(r.err).toContain(`to linux-source-${kernel} ${k.version} (kernel ${k.release})`);
    expect(r.err).toMatch(/Hunk #2 FAILED at \d+/);
    expect(r.err).toContain('rebase the patch');
  });
});
