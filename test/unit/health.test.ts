import { describe, expect, it } from 'vitest';
import { nodeHealth } from '../../src/agent/health.js';
import type { KernelFacts } from '../../src/agent/probe.js';
import { bpffsMounted, missingCapabilities } from '../../src/agent/probe.js';

const facts: KernelFacts = { kernel: '6.12.0-1-amd64', tracepoints: false, vhostNetLoaded: true, btf: true, bpffs: true, missingCapabilities: [] };
const t0 = new Date('2026-11-24T10:00:00Z');
const now = new Date('2026-11-24T10:00:30Z');

describe('node health', () => {
  it('a running loader with fresh snapshots: Reporting, with its mode', () => {
    const h = nodeHealth(facts, { running: true, restarts: 0, lastSnapshotMode: 'raw_tp', lastSnapshotAt: now, upSince: t0 }, now, 10_000, t0);
    expect(h).toMatchObject({ state: 'Reporting', mode: 'tracepoint', kernel: '6.12.0-1-amd64' });
    expect(h.conditions).toEqual([expect.objectContaining({ type: 'Traceable', status: 'True', reason: 'Tracepoint' })]);
  });

  it('exit code 3: Failed, TracepointMissing, with the loader’s words and which module to install', () => {
    const lastExit = { code: 3, signal: null, stderr: 'vhost-hist: no vhost_net:vhost_net_rx_end tracepoint', at: now };
    const h = nodeHealth(facts, { running: false, restarts: 1, lastExit }, now, 10_000, t0);
    expect(h.state).toBe('Failed');
    expect(h.reason).toBe('TracepointMissing');
    expect(h.message).toMatch(/^vhost-hist: no vhost_net:vhost_net_rx_end tracepoint; .*install the vhosttrace vhost_net module/);
    const unloaded = nodeHealth({ ...facts, vhostNetLoaded: false }, { running: false, restarts: 1, lastExit }, now, 10_000, t0);
    expect(unloaded.message).toMatch(/vhost_net is not loaded/);
  });

  it('exit code 5: PermissionDenied names the capability the container lacks, or else the seccomp profile', () => {
    const lastExit = { code: 5, signal: null, stderr: 'vhost-hist: bpf(BPF_PROG_LOAD): Operation not permitted', at: now };
    const h = nodeHealth({ ...facts, missingCapabilities: ['CAP_PERFMON'] }, { running: false, restarts: 1, lastExit }, now, 10_000, t0);
    expect(h).toMatchObject({ state: 'Failed', reason: 'PermissionDenied' });
    expect(h.message).toMatch(/Operation not permitted; bpf\(\) was refused: the agent's container lacks CAP_PERFMON; add BPF and PERFMON/);
    const both = nodeHealth(facts, { running: false, restarts: 1, lastExit }, now, 10_000, t0);
    expect(both.message).toMatch(/holds CAP_BPF and CAP_PERFMON: its seccomp profile must allow bpf\(\)/);
  });

  it('reads the needed capabilities from /proc/self/status', () => {
    // CapEff as the kernel printed it for the agent container (test/node): PERFMON (38) and BPF (39).
    expect(missingCapabilities('Name:\tnode\nCapEff:\t000000c000000000\nCapBnd:\t000000c000000000\n')).toEqual([]);
    expect(missingCapabilities('CapEff:\t0000008000000000\n')).toEqual(['CAP_PERFMON']);
    expect(missingCapabilities('CapEff:\t0000004000000000\n')).toEqual(['CAP_BPF']);
    expect(missingCapabilities('CapEff:\t000001ffffffffff\n')).toEqual([]);
    expect(missingCapabilities('')).toEqual(['CAP_PERFMON', 'CAP_BPF']);
  });

  it('a loader killed and restarting: Pending, and a LoaderRestarted condition that says how', () => {
    const lastExit = { code: null, signal: 'SIGKILL', stderr: '', at: now };
    const h = nodeHealth(facts, { running: false, restarts: 2, lastExit }, now, 10_000, t0);
    expect(h).toMatchObject({ state: 'Pending', reason: 'LoaderRestarting' });
    expect(h.conditions?.find((c) => c.type === 'LoaderRestarted')?.message).toMatch(/exited 2 time\(s\), last with signal SIGKILL/);
  });

  it('a snapshot older than the staleness limit is not Reporting', () => {
    const h = nodeHealth(facts, { running: true, restarts: 0, lastSnapshotMode: 'raw_tp', lastSnapshotAt: t0 }, now, 10_000, t0);
    expect(h.state).toBe('Pending');
  });
});

describe('bpffs detection', () => {
  it('finds a bpf mount at the given point in mountinfo', () => {
    const mi = '30 25 0:26 / /sys/fs/bpf rw,nosuid,nodev,noexec,relatime shared:9 - bpf bpf rw,mode=700\n31 25 0:27 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n';
    expect(bpffsMounted(mi, '/sys/fs/bpf')).toBe(true);
    expect(bpffsMounted(mi, '/sys/fs/cgroup')).toBe(false);
    expect(bpffsMounted('', '/sys/fs/bpf')).toBe(false);
  });
});
