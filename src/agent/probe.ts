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
  /** A bpf filesystem is mounted at the pin directory's parent. */
  bpffs: boolean;
  /** Of the capabilities the loader needs (NEEDED_CAPABILITIES), those this process lacks. */
  missingCapabilities: string[];
}

/** What the loader needs: CAP_BPF (load, maps, pins) and CAP_PERFMON (attach to tracepoints). */
export const NEEDED_CAPABILITIES: Record<string, number> = { CAP_PERFMON: 38, CAP_BPF: 39 };

/** The needed capabilities missing from /proc/self/status's CapEff (all of them if unreadable). */
export function missingCapabilities(status: string): string[] {
  const hex = /^CapEff:\s*([0-9a-f]+)$/m.exec(status)?.[1];
  const eff = hex === undefined ? 0n : BigInt(`0x${hex}`);
  return Object.entries(NEEDED_CAPABILITIES)
    .filter(([, bit]) => (eff & (1n << BigInt(bit))) === 0n)
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

/** True if mountinfo lists a bpf filesystem mounted at `at`. */
export function bpffsMounted(mountinfo: string, at: string): boolean {
  return mountinfo.split('\n').some((line) => {
    const [pre, post] = line.split(' - ');
    return pre?.split(' ')[4] === at && post?.split(' ')[0] === 'bpf';
  });
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
  return {
    kernel: release(),
    tracepoints: rx && tx,
    vhostNetLoaded,
    btf,
    bpffs: bpffsMounted(mountinfo, paths.bpffs),
    missingCapabilities: missingCapabilities(status),
  };
}
