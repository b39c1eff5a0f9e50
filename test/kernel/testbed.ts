// Drives kernel/testbed/run: boots a Debian kernel in qemu and runs one bash script inside it.
// See kernel/README.md for the interface.
import { execFileSync, spawn } from 'node:child_process';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const TESTBED = resolve(fileURLToPath(new URL('.', import.meta.url)), '../../kernel/testbed');
const RUN = join(TESTBED, 'run');

export type Kernel = '6.1' | '6.12';
export const KERNELS: Kernel[] = ['6.1', '6.12'];

export interface TestedKernel {
  series: string;
  /** The Debian package version the series resolved to at setup (kernel/testbed/resolve). */
  version: string;
  /** Its kernel release (uname -r). */
  release: string;
  /** The test bed's cache for it: root/ (image, headers), src/ (drivers/vhost), modules, initramfs. */
  cache: string;
}

let tested: Map<string, TestedKernel> | undefined;

/** The Debian kernel a series is tested on, as kernel/testbed/versions prints it. */
export function testedKernel(series: string): TestedKernel {
  if (!tested) {
    tested = new Map();
    const out = execFileSync(join(TESTBED, 'versions'), { encoding: 'utf8' });
    for (const line of out.trim().split('\n')) {
      const [s = '', version = '', release = '', cache = ''] = line.split(' ');
      tested.set(s, { series: s, version, release, cache });
    }
  }
  const k = tested.get(series);
  if (!k?.cache) throw new Error(`kernel/testbed/versions printed no line for series ${series}`);
  return k;
}

export interface GuestOptions {
  kernel: Kernel;
  /** The script's text; it runs under bash, chrooted into the host root, with set -euo pipefail. */
  script: string;
  unpatched?: boolean;
  /** Extra kernel command line, e.g. module parameters (vhost_net.experimental_zcopytx=1). */
  append?: string;
  timeoutSeconds?: number;
}

export interface GuestResult {
  code: number;
  stdout: string;
  /** The run's output directory: console.log, stdout, stderr, exit-code and what the script wrote to $VT_OUT. */
  outDir: string;
  /** The test bed's own log (building, booting). */
  log: string;
  read(name: string): Promise<string>;
}

async function run(cmd: string, args: string[]): Promise<{ code: number; stdout: string; log: string }> {
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let log = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (log += d));
  const code = await new Promise<number>((done, fail) => {
    child.on('error', fail);
    child.on('close', (c) => done(c ?? -1));
  });
  return { code, stdout, log };
}

/**
 * Builds the seed-placement variant of vhost_net.ko (see kernel/testbed/build-module); a guest
 * script finds it at $VT_KCACHE/module-seed-placement/vhost_net.ko.
 */
export async function buildSeedPlacementModule(kernel: Kernel): Promise<void> {
  const r = await run(join(TESTBED, 'build-module'), ['--kernel', kernel, '--seed-placement']);
  if (r.code !== 0) throw new Error(`build-module --seed-placement failed:\n${r.log}`);
}

export async function runGuest(opts: GuestOptions): Promise<GuestResult> {
  const dir = await mkdtemp(join(tmpdir(), 'vhosttrace-kernel-test-'));
  const outDir = join(dir, 'out');
  const scriptPath = join(dir, 'guest.sh');
  await writeFile(scriptPath, `set -euo pipefail\n${opts.script}`, { mode: 0o755 });
  const args = ['--kernel', opts.kernel, '--script', scriptPath, '--out', outDir];
  if (opts.unpatched) args.push('--unpatched');
  if (opts.append) args.push('--append', opts.append);
  args.push('--timeout', String(opts.timeoutSeconds ?? 600));

  const { code, stdout, log } = await run(RUN, args);
  return { code, stdout, outDir, log, read: (name) => readFile(join(outDir, name), 'utf8') };
}

/** Throws with the test bed's log and the console's tail when the guest script failed. */
export async function assertGuestOk(r: GuestResult): Promise<void> {
  if (r.code === 0) return;
  const consoleLog = await r.read('console.log').catch(() => '(no console.log)');
  throw new Error(
    `guest script exited ${r.code}; output in ${r.outDir}\n--- test bed ---\n${r.log}` +
      `\n--- console (tail) ---\n${consoleLog.split('\n').slice(-40).join('\n')}`,
  );
}
