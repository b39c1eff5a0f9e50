// The vhost-hist loader on the host kernel: --json stream, pinning, takeover after SIGKILL,
// --stop, and the distinct exit codes. The host has no vhost_net tracepoints, so raw_tp mode
// is attached to a quiet host tracepoint (--raw-tp-names) and events are fed to the pinned
// programs with BPF_PROG_TEST_RUN (vhost-hist-testrun --pinned). Needs root.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, statfsSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { LOADER_EXIT } from '../../src/loader/exit-codes.js';
import { parseProbeLine } from '../../src/loader/probe.js';
import { SnapshotStream, parseSnapshotLine, parseSnapshotLines, type LoaderSnapshot } from '../../src/loader/snapshot.js';
import { missing } from '../harness/prereq.js';

const ROOT = new URL('../..', import.meta.url).pathname;
const OUT = join(ROOT, 'bpf/.output');
const LOADER = join(OUT, 'vhost-hist');
const TESTRUN = join(OUT, 'vhost-hist-testrun');
const BPFFS = '/sys/fs/bpf';
const BPFFS_MAGIC = 0xcafe4a11;
const QUIET_TP = ['--raw-tp-names', 'xdp_exception,xdp_exception'];

const pinDir = `${BPFFS}/vhosttrace-test-loader-${process.pid}`;

function sh(cmd: string, args: string[], input = '') {
  return spawnSync(cmd, args, { input, encoding: 'utf8', maxBuffer: 1 << 24 });
}

/** Feeds events to the programs behind pinned links; returns what the pinned maps hold. */
function feed(input: string): LoaderSnapshot {
  const r = sh(TESTRUN, ['--pinned', pinDir], input);
  if (r.status !== 0) throw new Error(`testrun --pinned: ${r.stderr}`);
  return parseSnapshotLine(r.stdout.trim());
}

function rxCount(s: LoaderSnapshot): number {
  return s.histograms.filter((e) => e.direction === 'rx').reduce((n, e) => n + e.packets.count, 0);
}

/** A running loader whose JSON lines can be awaited one by one. */
function startLoader(args: string[]) {
  const p = spawn(LOADER, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const stream = new SnapshotStream();
  const lines: LoaderSnapshot[] = [];
  let waiter: (() => void) | undefined;
  let stderr = '';
  let exited = false;
  p.stdout.on('data', (d: Buffer) => {
    lines.push(...stream.push(d.toString()));
    waiter?.();
  });
  p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exit = new Promise<number | null>((resolve) =>
    p.on('exit', (code) => {
      exited = true;
      waiter?.();
      resolve(code);
    }),
  );
  return {
    async nextLine(): Promise<LoaderSnapshot> {
      while (lines.length === 0) {
        if (exited) throw new Error(`loader exited: ${stderr}`);
        await new Promise<void>((resolve) => (waiter = resolve));
      }
      return lines.shift()!;
    },
    async kill(signal: NodeJS.Signals): Promise<number | null> {
      if (!exited) p.kill(signal);
      return exit;
    },
  };
}

beforeAll(() => {
  const r = sh('flock', ['/tmp/vhosttrace-bpf-build.lock', 'make', '-s', '-C', join(ROOT, 'bpf')]);
  if (r.status !== 0) throw new Error(`make -C bpf failed:\n${r.stdout}${r.stderr}`);
  if (statfsSync(BPFFS).type !== BPFFS_MAGIC) {
    const m = sh('mount', ['-t', 'bpf', 'bpf', BPFFS]);
    if (m.status !== 0) throw new Error(`mount bpffs: ${m.stderr}`);
  }
}, 300_000);

afterEach(() => {
  sh(LOADER, ['--stop', '--pin-dir', pinDir]);
});

describe('vhost-hist --json', () => {
  it('streams one parseable cumulative line per interval, then a last one at exit, with run-time stats', () => {
    const r = sh(LOADER, ['--json', '-i', '0.2', '-d', '0.7', '--stats', ...QUIET_TP]);
    expect(r.status, r.stderr).toBe(0);
    const lines = parseSnapshotLines(r.stdout);
    expect(lines.length).toBeGreaterThanOrEqual(3);
    expect(lines.map((l) => l.seq)).toEqual(lines.map((_, i) => i));
    for (const l of lines) {
      expect(l.mode).toBe('raw_tp');
      expect(l.kernel).toBe(sh('uname', ['-r']).stdout.trim());
      expect(l.takeover).toBe(false);
      // The stack-keyed slot cache (default) attaches its two invalidation programs too.
      expect(l.progStats?.map((p) => p.name)).toEqual(['vh_rx_raw', 'vh_tx_raw', 'vh_gen_exit', 'vh_gen_attach']);
    }
  });

  it('prints only whole histograms while every CPU updates the one it reads', () => {
    // sys_enter from a syscall-bound dd per CPU, all into one histogram (--no-cgroup), read
    // every 2 ms: without the started/count check (bpf/vhost-hist.h) some copies are torn,
    // and parsing finds buckets that do not add up to the runs (about 4 a second here).
    const cpus = Number(sh('nproc', []).stdout.trim());
    const busy = Array.from({ length: cpus }, (_, cpu) =>
      spawn('taskset', ['-c', String(cpu), 'dd', 'if=/dev/zero', 'of=/dev/null', 'bs=1'], { stdio: 'ignore' }),
    );
    let r: ReturnType<typeof sh>;
    try {
      r = sh(LOADER, ['--json', '-i', '0.002', '-d', '4', '--no-cgroup', '--raw-tp-names', 'sys_enter,sys_enter']);
    } finally {
      for (const p of busy) p.kill('SIGKILL');
    }
    expect(r.status, r.stderr).toBe(0);
    const lines = parseSnapshotLines(r.stdout); // throws on the first torn histogram
    // Enough reads beside enough updates to tear some (an idle machine gives 2,000 lines and
    // several million events; the floors leave room for a loaded one).
    expect(lines.length).toBeGreaterThan(200);
    expect(lines.at(-1)!.histograms.find((e) => e.direction === 'rx')!.packets.count).toBeGreaterThan(200_000);
  });

  it('reports the kernel run stats of its programs while it runs with --stats', async () => {
    const loader = startLoader(['--json', '-i', '0.1', '--stats', '--pin-dir', pinDir, ...QUIET_TP]);
    try {
      await loader.nextLine();
      feed('rx 2 3000 25\n');
      let snap = await loader.nextLine();
      while (rxCount(snap) < 25) snap = await loader.nextLine();
      const rx = snap.progStats?.find((p) => p.name === 'vh_rx_raw');
      expect(rx?.runCount).toBe(25);
      expect(rx?.runTimeNs).toBeGreaterThan(0);
    } finally {
      await loader.kill('SIGTERM');
    }
  });
});

describe('pinning and takeover', () => {
  it('loses no counts across SIGKILL: programs keep counting, a new loader takes over, --stop unpins', async () => {
    const first = startLoader(['--json', '-i', '0.1', '--pin-dir', pinDir, ...QUIET_TP]);
    await first.nextLine();
    expect(existsSync(`${pinDir}/link_vh_rx_raw`)).toBe(true);

    expect(rxCount(feed('rx 3 1500 10\n'))).toBe(10);
    await first.kill('SIGKILL');
    // Nobody reads the maps now; the pinned links keep the programs attached.
    expect(rxCount(feed('rx 3 1500 5\ntx 1 60 2\n'))).toBe(15);

    const second = sh(LOADER, ['--json', '-d', '0.05', '--pin-dir', pinDir]);
    expect(second.status, second.stderr).toBe(0);
    const snap = parseSnapshotLines(second.stdout).pop()!;
    expect(snap.takeover).toBe(true);
    expect(snap.mode).toBe('raw_tp');
    expect(rxCount(snap)).toBe(15);
    expect(snap.histograms.find((e) => e.direction === 'tx')?.bytes).toEqual({ count: 2, sum: 120, buckets: [0, 0, 0, 0, 0, 2] });

    const stop = sh(LOADER, ['--stop', '--pin-dir', pinDir]);
    expect(stop.status).toBe(0);
    expect(stop.stderr).toMatch(/unpinned 12 objects/);
    expect(existsSync(pinDir)).toBe(false);

    // Started again after --stop: from zero.
    const fresh = sh(LOADER, ['--json', '-d', '0.05', '--pin-dir', pinDir, ...QUIET_TP]);
    const f = parseSnapshotLines(fresh.stdout).pop()!;
    expect(f.takeover).toBe(false);
    expect(f.histograms).toEqual([]);
  });

  it('re-attaches and keeps the counts when only the maps are still pinned', () => {
    expect(sh(LOADER, ['--json', '-d', '0.05', '--pin-dir', pinDir, ...QUIET_TP]).status).toBe(0);
    expect(rxCount(feed('rx 1 100 5\n'))).toBe(5);
    // As if a loader died between pinning maps and pinning links.
    for (const l of ['link_vh_rx_raw', 'link_vh_tx_raw']) rmSync(`${pinDir}/${l}`);
    const r = sh(LOADER, ['--json', '-d', '0.05', '--pin-dir', pinDir, ...QUIET_TP]);
    expect(r.status, r.stderr).toBe(0);
    const snap = parseSnapshotLines(r.stdout).pop()!;
    expect(snap.takeover).toBe(true);
    expect(rxCount(snap)).toBe(5);
    expect(existsSync(`${pinDir}/link_vh_rx_raw`)).toBe(true);
    expect(rxCount(feed('rx 1 100 1\n'))).toBe(6);
  });

  it.skipIf(missing('bpftool', sh('which', ['bpftool']).status === 0, 'apt-get install bpftool (test/setup does)'))(
    'takes over the cache_gen map of a loader from before it became a global: the same map, bumped by the new programs',
    () => {
      // What loaders up to 40b58ee pinned: a plain ARRAY map (not mmapable) of one u64.
      const gen = `${pinDir}/cache_gen`;
      sh('mkdir', ['-p', pinDir]);
      const mk = sh('bpftool', ['map', 'create', gen, 'type', 'array', 'key', '4', 'value', '8', 'entries', '1', 'name', 'cache_gen']);
      expect(mk.status, mk.stderr).toBe(0);
      const bytes = (n: bigint) => Array.from({ length: 8 }, (_, i) => String((n >> BigInt(8 * i)) & 0xffn));
      expect(sh('bpftool', ['map', 'update', 'pinned', gen, 'key', '0', '0', '0', '0', 'value', ...bytes(1000n)]).status).toBe(0);
      const read = () => {
        const r = JSON.parse(sh('bpftool', ['-j', 'map', 'lookup', 'pinned', gen, 'key', '0', '0', '0', '0']).stdout) as { value: string[] };
        return r.value.reduce((n, b, i) => n + (BigInt(Number(b)) << BigInt(8 * i)), 0n);
      };
      const id = () => (JSON.parse(sh('bpftool', ['-j', 'map', 'show', 'pinned', gen]).stdout) as { id: number }).id;
      const before = id();
      const r = sh(LOADER, ['--json', '-d', '0.05', '--pin-dir', pinDir, ...QUIET_TP]);
      expect(r.status, r.stderr).toBe(0);
      expect(id()).toBe(before);
      // The pinned links keep vh_gen_exit attached: each process that exits now bumps it.
      const start = read();
      expect(start).toBeGreaterThanOrEqual(1000n);
      for (let i = 0; i < 3; i++) expect(sh('true', []).status).toBe(0);
      expect(read()).toBeGreaterThanOrEqual(start + 3n);
      expect(rxCount(feed('rx 1 100 4\n'))).toBe(4);
    },
  );

  it('without --pin leaves nothing behind', () => {
    expect(sh(LOADER, ['--json', '-d', '0.05', ...QUIET_TP]).status).toBe(0);
    expect(existsSync('/sys/fs/bpf/vhosttrace')).toBe(false);
  });

  it('--stop with nothing pinned is not an error', () => {
    const r = sh(LOADER, ['--stop', '--pin-dir', `${pinDir}-none`]);
    expect(r.status).toBe(0);
    expect(r.stderr).toMatch(/nothing pinned/);
  });
});

describe('--probe', () => {
  it('says why no mode is possible, with the exit code a start would have', () => {
    const r = sh(LOADER, ['--probe']);
    const p = parseProbeLine(r.stdout.trim());
    expect(r.status).toBe(LOADER_EXIT.noTracepoint);
    expect(p).toMatchObject({ ok: false, mode: null, exitCode: 3, bpffs: true });
    expect(p.reason).toMatch(/no vhost_net tracepoints/);
  });

  it('names the mode when the tracepoints are there, and leaves nothing attached', () => {
    const r = sh(LOADER, ['--probe', ...QUIET_TP]);
    expect(r.status).toBe(0);
    expect(parseProbeLine(r.stdout.trim())).toMatchObject({ ok: true, mode: 'raw_tp', exitCode: 0, reason: '' });
    expect(existsSync('/sys/fs/bpf/vhosttrace')).toBe(false);
  });

  it('reports missing permission', () => {
    const r = sh('setpriv', ['--reuid', '65534', '--regid', '65534', '--clear-groups', LOADER, '--probe']);
    expect(r.status).toBe(LOADER_EXIT.noPermission);
    expect(parseProbeLine(r.stdout.trim()).reason).toMatch(/Operation not permitted/);
  });
});

describe('exit codes', () => {
  it('3: vhost_net tracepoints missing and no stock-mode targets (this host has no vhost_net)', () => {
    const r = sh(LOADER, ['--json', '-d', '0.05']);
    expect(r.status).toBe(3);
    expect(r.stderr).toMatch(/no vhost_net tracepoints, and stock mode is not possible: handle_rx not in \/sys\/kernel\/btf\/vhost_net/);
  });

  it('3: --mode raw_tp with the tracepoints missing', () => {
    const r = sh(LOADER, ['--json', '-d', '0.05', '--mode', 'raw_tp']);
    expect(r.status).toBe(3);
    expect(r.stderr).toMatch(/tracepoints missing/);
  });

  it('4: no BTF (an empty file bind-mounted over /sys/kernel/btf/vmlinux in a private mount namespace)', () => {
    const empty = join(mkdtempSync(join(tmpdir(), 'vht-')), 'empty');
    writeFileSync(empty, '');
    const r = sh('unshare', ['-m', 'sh', '-c', `mount --bind ${empty} /sys/kernel/btf/vmlinux && exec ${LOADER} --json -d 0.05`]);
    expect(r.status).toBe(4);
    expect(r.stderr).toMatch(/\/sys\/kernel\/btf\/vmlinux: not BTF/);
  });

  it('5: no permission (run as nobody)', () => {
    const r = sh('setpriv', ['--reuid', '65534', '--regid', '65534', '--clear-groups', LOADER, '--json', '-d', '0.05']);
    expect(r.status).toBe(5);
    expect(r.stderr).toMatch(/bpf\(\): Operation not permitted/);
  });

  it('6: pin dir not on bpffs', () => {
    const r = sh(LOADER, ['--json', '-d', '0.05', '--pin-dir', join(tmpdir(), 'vhosttrace')]);
    expect(r.status).toBe(6);
    expect(r.stderr).toMatch(/is not on a bpf filesystem/);
  });

  it.skipIf(missing('bpftool', sh('which', ['bpftool']).status === 0, 'apt-get install bpftool (test/setup does)'))('7: pinned state of another layout', () => {
    sh('mkdir', ['-p', pinDir]);
    const mk = sh('bpftool', ['map', 'create', `${pinDir}/meta`, 'type', 'array', 'key', '4', 'value', '24', 'entries', '1', 'name', 'meta']);
    expect(mk.status, mk.stderr).toBe(0);
    const r = sh(LOADER, ['--json', '-d', '0.05', '--pin-dir', pinDir]);
    expect(r.status).toBe(7);
    expect(r.stderr).toMatch(/holds layout 0, this loader needs 2: run --stop first/);
  });

  it('2: usage errors', () => {
    expect(sh(LOADER, ['--json', '--text']).status).toBe(2);
    expect(sh(LOADER, ['--mode', 'kprobe']).status).toBe(2);
    expect(sh(LOADER, ['--interval', '0']).status).toBe(2);
  });
});
