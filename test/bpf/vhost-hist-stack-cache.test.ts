// The stack-keyed slot cache (vhost-hist's default, docs/bpf.md) on a real tracepoint: the
// host has no vhost_net, so two loaders attach to raw_syscalls:sys_enter side by side, one
// with the cache and one that looks the cgroup up on every event (bpf_get_current_cgroup_id,
// the reference). Both see the same events; while processes are born, exit (their stacks go to
// new processes in the other cgroup) and move between cgroups, the histograms of the test's
// cgroups must be equal. Needs root and cgroup v2.
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SnapshotStream, type LoaderSnapshot } from '../../src/loader/snapshot.js';
import { missing } from '../harness/prereq.js';

const ROOT = new URL('../..', import.meta.url).pathname;
const LOADER = join(ROOT, 'bpf/.output/vhost-hist');

function cgroup2Root(): string | null {
  for (const line of readFileSync('/proc/mounts', 'utf8').split('\n')) {
    const [, mnt, type] = line.split(' ');
    if (type === 'cgroup2' && mnt) return mnt;
  }
  return null;
}

/** A loader on sys_enter whose JSON lines can be awaited; `stop` returns the last one. */
function startLoader(cache: string) {
  const p = spawn(LOADER, ['--json', '-i', '0.1', '--cache', cache, '--max-cgroups', '4096', '--raw-tp-names', 'sys_enter,sys_enter'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const stream = new SnapshotStream();
  const lines: LoaderSnapshot[] = [];
  let stderr = '';
  p.stdout.on('data', (d: Buffer) => lines.push(...stream.push(d.toString())));
  p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  // 'close', not 'exit': the last line may still be in the pipe when the process exits.
  const exit = new Promise<number | null>((resolve) => p.on('close', resolve));
  return {
    async attached(): Promise<void> {
      for (let i = 0; lines.length === 0; i++) {
        if (p.exitCode !== null || i > 200) throw new Error(`loader --cache ${cache} did not start: ${stderr}`);
        await sleep(50);
      }
    },
    async stop(): Promise<LoaderSnapshot> {
      p.kill('SIGTERM');
      const code = await exit;
      if (code !== 0) throw new Error(`loader --cache ${cache} exited ${code}: ${stderr}`);
      return lines[lines.length - 1]!;
    },
  };
}

function histogramsOf(snap: LoaderSnapshot, cgroupId: number) {
  return snap.histograms.filter((e) => e.cgroupId === cgroupId);
}

function events(snap: LoaderSnapshot): number {
  return snap.histograms.reduce((n, e) => n + e.packets.count, 0);
}

function waitStopped(pid: number): void {
  for (let i = 0; i < 1000; i++) {
    // State is the field after "(comm)".
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    if (stat.slice(stat.lastIndexOf(')') + 2).startsWith('T')) return;
    spawnSync('sleep', ['0.01']);
  }
  throw new Error(`process ${pid} did not stop`);
}

const root = cgroup2Root();
const a = root && join(root, `vhosttrace-test-stack-a-${process.pid}`);
const b = root && join(root, `vhosttrace-test-stack-b-${process.pid}`);

beforeAll(() => {
  const r = spawnSync('flock', ['/tmp/vhosttrace-bpf-build.lock', 'make', '-s', '-C', join(ROOT, 'bpf')], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`make -C bpf failed:\n${r.stdout}${r.stderr}`);
  if (a && b) {
    mkdirSync(a);
    mkdirSync(b);
  }
}, 300_000);

afterAll(() => {
  for (const dir of [a, b]) if (dir) rmdirSync(dir);
});

describe('stack-keyed slot cache', () => {
  it.skipIf(missing('a cgroup v2 mount', !!root, 'mount cgroup2 at /sys/fs/cgroup (the agent needs cgroup v2 ids too)'))('attributes every event exactly as a cgroup lookup per event does, while stacks are reused and tasks move', async () => {
    const cached = startLoader('stack');
    const reference = startLoader('none');
    await Promise.all([cached.attached(), reference.attached()]);

    // Births and exits: two shells, one in each cgroup, each forking short-lived children, so
    // that a child in one cgroup often gets the kernel stack a child in the other just freed.
    const churn = spawnSync('bash', ['-c', `
      bash -c 'echo $$ > ${a}/cgroup.procs; for ((i = 0; i < 300; i++)); do /bin/true; done' &
      bash -c 'echo $$ > ${b}/cgroup.procs; for ((i = 0; i < 300; i++)); do /bin/true; done' &
      wait`], { encoding: 'utf8' });
    expect(churn.status, churn.stderr).toBe(0);

    // A move: a shell makes syscalls in a, stops, is moved to b, and makes syscalls again
    // without forking (so no exit refreshes the cache for it: only the move can).
    const mover = spawn('bash', ['-c', `echo $$ > ${a}/cgroup.procs
      for ((i = 0; i < 200; i++)); do echo x > /dev/null; done
      kill -STOP $$
      for ((i = 0; i < 200; i++)); do echo x > /dev/null; done`], { stdio: 'ignore' });
    const moverExit = new Promise((resolve) => mover.on('exit', resolve));
    waitStopped(mover.pid!);
    writeFileSync(join(b!, 'cgroup.procs'), String(mover.pid));
    process.kill(mover.pid!, 'SIGCONT');
    await moverExit;

    const [snapCached, snapReference] = await Promise.all([cached.stop(), reference.stop()]);
    for (const dir of [a!, b!]) {
      const id = statSync(dir).ino;
      const want = histogramsOf(snapReference, id);
      expect(want.map((e) => e.direction)).toEqual(['rx', 'tx']);
      expect(want[0]!.packets.count).toBeGreaterThan(600);
      expect(histogramsOf(snapCached, id), `cgroup ${dir}`).toEqual(want);
    }
    // The fast path did the work: a miss per cache generation and CPU, not per event.
    expect(snapCached.counters.slowPath).toBeLessThan(events(snapCached) / 4);
  }, 60_000);
});
