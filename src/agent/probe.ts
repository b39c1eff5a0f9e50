// The kernel probe at agent start: what the node offers for tracing. Thin I/O; the meaning of
// the facts is decided in health.ts.
import { access, readFile } from 'node:fs/promises';
import { release } from 'node:os';
import { join } from 'node:path';

export interface KernelFacts {
  kernel: string;
  /** vhost_net:vhost_net_rx_end and _tx_end exist in tracefs (the patched module is loaded). */
  tracepoints: boolean;
  vhostNetLoaded: boolean;
  btf: boolean;
  /** The filesystem at the pin directory's parent: 'bpf', or 'sysfs' when the node has none. */
  bpffsType?: string;
  /** /proc/self/status's Seccomp: 0 none, 1 strict, 2 filter (a profile applies). */
  seccomp?: number;
  /** Of the capabilities the loader needs (NEEDED_CAPABILITIES), those this process lacks. */
  missingCapabilities: string[];
  /**
   * CapEff holds CAP_SYS_ADMIN. Stock mode attaches to vhost_net's functions by the module's
   * BTF, and the kernel hands module BTF out (BPF_BTF_GET_NEXT_ID, _GET_FD_BY_ID) only to it.
   */
  sysAdmin: boolean;
}

/** What the loader needs: CAP_BPF (load, maps, pins) and CAP_PERFMON (attach to tracepoints). */
export const NEEDED_CAPABILITIES: Record<string, number> = { CAP_PERFMON: 38, CAP_BPF: 39 };

const CAP_SYS_ADMIN = 21;

/** Whether /proc/self/status's CapEff holds capability bit `bit` (no, if unreadable). */
export function hasCapability(status: string, bit: number): boolean {
  const hex = /^CapEff:\s*([0-9a-f]+)$/m.exec(status)?.[1];
  return hex !== undefined && (BigInt(`0x${hex}`) & (1n << BigInt(bit))) !== 0n;
}

/** The needed capabilities missing from /proc/self/status's CapEff (all of them if unreadable). */
export function missingCapabilities(status: string): string[] {
  return Object.entries(NEEDED_CAPABILITIES)
    .filter(([, bit]) => !hasCapability(status, bit))
    .map(([name]) => name);
}

export interface ProbePaths {
  tracefs: string;
  sys: string;
  bpffs: string;
  mountinfo: string;
  status: string;
}

export const DEFAULT_PROBE_PATHS: ProbePaths = {
  tracefs: '/sys/kernel/tracing',
  sys: '/sys',
  bpffs: '/sys/fs/bpf',
  mountinfo: '/proc/self/mountinfo',
  status: '/proc/self/status',
};

const exists = (p: string) => access(p).then(() => true, () => false);

/**
 * The type of the filesystem that mountinfo says is mounted at `at`, or of the mount `at` is
 * inside (the longest mount point above it), as a path lookup would find it.
 */
export function fsTypeAt(mountinfo: string, at: string): string | undefined {
  let best: { point: string; type: string } | undefined;
  for (const line of mountinfo.split('\n')) {
    const [pre, post] = line.split(' - ');
    const point = pre?.split(' ')[4];
    const type = post?.split(' ')[0];
    if (!point || !type) continue;
    const inside = point === at || at.startsWith(point === '/' ? '/' : `${point}/`);
    // Later lines are later mounts: on the same point they hide the earlier ones.
    if (inside && (!best || point.length >= best.point.length)) best = { point, type };
  }
  return best?.type;
}

/** /proc/self/status's Seccomp mode, if it says. */
export function seccompMode(status: string): number | undefined {
  const m = /^Seccomp:\s*(\d+)$/m.exec(status);
  return m ? Number(m[1]) : undefined;
}

export async function probeKernel(paths: ProbePaths = DEFAULT_PROBE_PATHS): Promise<KernelFacts> {
  const ev = (name: string) => join(paths.tracefs, 'events/vhost_net', name, 'format');
  const [rx, tx, vhostNetLoaded, btf, mountinfo, status] = await Promise.all([
    exists(ev('vhost_net_rx_end')),
    exists(ev('vhost_net_tx_end')),
    exists(join(paths.sys, 'module/vhost_net')),
    exists(join(paths.sys, 'kernel/btf/vmlinux')),
    readFile(paths.mountinfo, 'utf8').catch(() => ''),
    readFile(paths.status, 'utf8').catch(() => ''),
  ]);
  const bpffsType = fsTypeAt(mountinfo, paths.bpffs);
  const seccomp = seccompMode(status);
  return {
    kernel: release(),
    tracepoints: rx && tx,
    vhostNetLoaded,
    btf,
    ...(bpffsType ? { bpffsType } : {}),
    ...(seccomp !== undefined ? { seccomp } : {}),
    missingCapabilities: missingCapabilities(status),
    sysAdmin: hasCapability(status, CAP_SYS_ADMIN),
  };
}
