import { describe, expect, it } from 'vitest';
import { nodeHealth } from '../../src/agent/health.js';
import type { KernelFacts } from '../../src/agent/probe.js';
import { fsTypeAt, hasCapability, missingCapabilities, seccompMode } from '../../src/agent/probe.js';

const facts: KernelFacts = { kernel: '6.12.0-1-amd64', tracepoints: false, vhostNetLoaded: true, btf: true, bpffsType: 'bpf', missingCapabilities: [], sysAdmin: false };
const t0 = new Date('2026-11-24T10:00:00Z');
const now = new Date('2026-11-24T10:00:30Z');

describe('node health', () => {
  it('a running loader with fresh snapshots: Reporting, with its mode', () => {
    const h = nodeHealth(facts, { running: true, restarts: 0, lastSnapshotMode: 'raw_tp', lastSnapshotAt: now, upSince: t0 }, now, 10_000, t0);
    expect(h).toMatchObject({ state: 'Reporting', mode: 'tracepoint', kernel: '6.12.0-1-amd64' });
    expect(h.conditions).toEqual([expect.objectContaining({ type: 'Traceable', status: 'True', reason: 'Tracepoint' })]);
  });

  it('stock mode refused under CAP_BPF and CAP_PERFMON: the hint names CAP_SYS_ADMIN (module BTF) or the patched module', () => {
    const lastExit = { code: 5, signal: null, stderr: "vhost-hist: load stock-mode programs: Operation not permitted (they need vhost_net's BTF, which the kernel gives only to CAP_SYS_ADMIN)", at: now };
    const h = nodeHealth({ ...facts, seccomp: 2 }, { running: false, restarts: 1, lastExit }, now, 10_000, t0);
    expect(h).toMatchObject({ state: 'Failed', reason: 'PermissionDenied' });
    expect(h.message).toMatch(/CAP_SYS_ADMIN\); stock mode .* agent\.capabilities=\{BPF,PERFMON,SYS_ADMIN\}\), or load the vhosttrace vhost_net module/);
    // With CAP_SYS_ADMIN held, the refusal is someone else's: the seccomp hint.
    const admin = nodeHealth({ ...facts, seccomp: 2, sysAdmin: true }, { running: false, restarts: 1, lastExit }, now, 10_000, t0);
    expect(admin.message).toMatch(/seccomp profile refuses bpf\(\)/);
    expect(hasCapability('CapEff:\t000001ffffffffff\n', 21)).toBe(true);
    expect(hasCapability('CapEff:\t000000c000000000\n', 21)).toBe(false);
    expect(hasCapability('', 21)).toBe(false);
  });

  it('detached by the node annotation: Pending, Detached, says how to undo it; afterwards a condition says what happened', () => {
    const stopped = { code: 0, signal: null, stderr: '', at: t0 };
    const detached = { since: t0, why: 'module upgrade', modeBefore: 'raw_tp' as const };
    const h = nodeHealth(facts, { running: false, restarts: 0, lastExit: stopped, detached }, now, 10_000, t0);
    expect(h).toMatchObject({ state: 'Pending', reason: 'Detached' });
    expect(h.message).toMatch(/vhosttrace\.io\/detach=module upgrade: .*rmmod vhost_net.*remove the annotation/);
    expect(h.conditions).toEqual([expect.objectContaining({ type: 'Traceable', status: 'False', reason: 'Detached', lastTransitionTime: '2026-11-24T10:00:00Z' })]);

    const lastDetach = { ...detached, until: now };
    const again = nodeHealth(facts, { running: true, restarts: 0, lastExit: stopped, lastSnapshotMode: 'fentry', lastSnapshotAt: now, upSince: now, lastDetach }, now, 10_000, t0);
    expect(again).toMatchObject({ state: 'Reporting', mode: 'fentry' });
    const cond = again.conditions!.find((c) => c.type === 'Detached')!;
    expect(cond).toMatchObject({ status: 'False', reason: 'Reattached', lastTransitionTime: '2026-11-24T10:00:30Z' });
    expect(cond.message).toMatch(/from 2026-11-24T10:00:00Z to 2026-11-24T10:00:30Z: .*carried over; counting with fentry now, tracepoint before$/);
    // The same mode before and after: no mode clause.
    const same = nodeHealth(facts, { running: true, restarts: 0, lastSnapshotMode: 'raw_tp', lastSnapshotAt: now, upSince: now, lastDetach }, now, 10_000, t0);
    expect(same.conditions!.find((c) => c.type === 'Detached')!.message).toMatch(/carried over$/);
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
    // Both capabilities held, in a seccomp filter: the profile refused it.
    const filtered = nodeHealth({ ...facts, seccomp: 2 }, { running: false, restarts: 1, lastExit }, now, 10_000, t0);
    expect(filtered.message).toMatch(/holds CAP_BPF and CAP_PERFMON: its seccomp profile refuses bpf\(\) or perf_event_open\(\) .*agent\.seccompProfile$/);
    // No seccomp at all: neither capabilities nor seccomp, so a security module.
    const lsm = nodeHealth({ ...facts, seccomp: 0 }, { running: false, restarts: 1, lastExit }, now, 10_000, t0);
    expect(lsm.message).toMatch(/no seccomp profile applies: a security module \(AppArmor, SELinux\) or kernel lockdown refused it/);
  });

  it('exit code 6: BPFFSMissing says what the agent found at /sys/fs/bpf and what to run on the node', () => {
    const lastExit = { code: 6, signal: null, stderr: 'vhost-hist: /sys/fs/bpf: not a bpf filesystem', at: now };
    const h = nodeHealth({ ...facts, bpffsType: 'sysfs' }, { running: false, restarts: 1, lastExit }, now, 10_000, t0);
    expect(h).toMatchObject({ state: 'Failed', reason: 'BPFFSMissing' });
    expect(h.message).toMatch(/the agent's \/sys\/fs\/bpf is sysfs, not a bpf filesystem: mount bpffs on the node \(`mount -t bpf bpf \/sys\/fs\/bpf`, shared: `mount --make-shared \/sys\/fs\/bpf`/);
  });

  it('reads the seccomp mode from /proc/self/status', () => {
    expect(seccompMode('Name:\tnode\nSeccomp:\t2\nSeccomp_filters:\t1\n')).toBe(2);
    expect(seccompMode('Seccomp:\t0\n')).toBe(0);
    expect(seccompMode('Name:\tnode\n')).toBeUndefined();
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
    expect(fsTypeAt(mi, '/sys/fs/bpf')).toBe('bpf');
    expect(fsTypeAt(mi, '/sys/fs/cgroup')).not.toBe('bpf');
    expect(fsTypeAt('', '/sys/fs/bpf')).toBeUndefined();
  });

  it('names what a path lookup finds there: the longest mount above it, the later of two on one point', () => {
    // A node without bpffs: the agent's hostPath is a bind of sysfs's empty directory.
    const sysfsOnly = '22 1 0:21 / /sys rw - sysfs sysfs rw\n40 22 0:21 /fs/bpf /sys/fs/bpf rw master:5 - sysfs sysfs rw\n';
    expect(fsTypeAt(sysfsOnly, '/sys/fs/bpf')).toBe('sysfs');
    expect(fsTypeAt('22 1 0:21 / /sys rw - sysfs sysfs rw\n', '/sys/fs/bpf')).toBe('sysfs');
    expect(fsTypeAt('1 0 8:1 / / rw - ext4 /dev/vda rw\n', '/sys/fs/bpf')).toBe('ext4');
    expect(fsTypeAt(`${sysfsOnly}41 40 0:30 / /sys/fs/bpf rw - bpf bpf rw\n`, '/sys/fs/bpf')).toBe('bpf');
    expect(fsTypeAt('22 1 0:21 / /sys/fs/bpfx rw - bpf bpf rw\n', '/sys/fs/bpf')).toBeUndefined();
  });
});
