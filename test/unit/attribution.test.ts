// Attribution on fixture trees: a fake cgroup hierarchy and /proc in a temp dir, read by the
// real scanner, joined with pods by the pure attributor.
import { mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Attributor, podUidFromCgroupPath, vmiFromPod, type PodInfo } from '../../src/agent/attribution.js';
import { scanCgroups, scanVhostWorkers, unifiedRoot } from '../../src/agent/host-scan.js';

const UID_A = '1b2c3d4e-0000-4000-8000-00000000000a';
const UID_B = '1b2c3d4e-0000-4000-8000-00000000000b';
const UID_C = '1b2c3d4e-0000-4000-8000-00000000000c';
const SYSTEMD_A = `/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${UID_A.replaceAll('-', '_')}.slice/cri-containerd-aaa.scope`;
const CGROUPFS_B = `/kubepods/besteffort/pod${UID_B}/ctr-b`;
const CGROUPFS_C = `/kubepods/burstable/pod${UID_C}/ctr-c`;

/** A virt-launcher pod as virt-controller makes it: labels, annotation, ownerReference. */
const launcher = (uid: string, ns: string, vmi: string, vmiUid: string): PodInfo => ({
  uid,
  namespace: ns,
  name: `virt-launcher-${vmi}-x`,
  labels: { 'kubevirt.io': 'virt-launcher', 'kubevirt.io/created-by': vmiUid, 'vmi.kubevirt.io/id': vmi, 'vm.kubevirt.io/name': vmi },
  annotations: { 'kubevirt.io/domain': vmi },
  ownerReferences: [{ apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachineInstance', name: vmi, uid: vmiUid, controller: true }],
});

let root: string;
const put = (path: string, text = '') => {
  mkdirSync(join(root, path, '..'), { recursive: true });
  writeFileSync(join(root, path), text);
};
const dir = (path: string) => mkdirSync(join(root, path), { recursive: true });
const ino = (path: string) => statSync(join(root, path)).ino;

/** A process or thread in the fake /proc. */
function task(path: string, comm: string, cgroup: string, ppid = 1) {
  put(`${path}/comm`, `${comm}\n`);
  put(`${path}/status`, `Name:\t${comm}\nPPid:\t${ppid}\n`);
  put(`${path}/cgroup`, cgroup);
}

beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'vhosttrace-attr-'));
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

describe('pod UID from cgroup paths', () => {
  it.each([
    [SYSTEMD_A, UID_A],
    [CGROUPFS_B, UID_B],
    [`/kubepods/pod${UID_C}`, UID_C],
    ['/system.slice/libvirtd.service', undefined],
    [`/machine.slice/pod${UID_A}`, undefined], // not the kubelet's tree
  ])('%s', (path, uid) => expect(podUidFromCgroupPath(path)).toBe(uid));
});

describe('cgroup v2 host (6.4+: vhost_task workers, systemd driver)', () => {
  it('finds the worker thread inside QEMU and attributes its cgroup id to the VMI', async () => {
    put('cg/cgroup.controllers', 'cpu memory');
    dir(`cg${SYSTEMD_A}`);
    task('proc/200', 'qemu-kvm', `0::${SYSTEMD_A}\n`);
    task('proc/200/task/200', 'qemu-kvm', `0::${SYSTEMD_A}\n`);
    task('proc/200/task/201', 'vhost-200', `0::${SYSTEMD_A}\n`);
    task('proc/200/task/202', 'CPU 0/KVM', `0::${SYSTEMD_A}\n`);
    const unified = await unifiedRoot(join(root, 'cg'));
    expect(unified).toBe(join(root, 'cg'));
    const workers = await scanVhostWorkers(join(root, 'proc'), unified);
    expect(workers).toEqual([{ tid: 201, ownerPid: 200, kind: 'vhost_task', cgroupPath: SYSTEMD_A, cgroupId: ino(`cg${SYSTEMD_A}`) }]);
    const cgroups = await scanCgroups(unified!);
    expect(cgroups.get(ino(`cg${SYSTEMD_A}`))).toBe(SYSTEMD_A);

    const a = new Attributor();
    a.learn(cgroups, workers, [launcher(UID_A, 'prod', 'db-0', 'vmi-uid-a')]);
    expect(a.vmOf(ino(`cg${SYSTEMD_A}`))).toMatchObject({ namespace: 'prod', name: 'db-0', uid: 'vmi-uid-a' });
  });
});

describe('cgroup v2 host (before 6.4: kthread workers, cgroupfs driver)', () => {
  it('finds the vhost-<pid> kthread (child of kthreadd) and attributes it', async () => {
    put('cg/cgroup.controllers', '');
    dir(`cg${CGROUPFS_B}`);
    task('proc/250', 'qemu-kvm', `0::${CGROUPFS_B}\n`);
    task('proc/300', 'vhost-250', `0::${CGROUPFS_B}\n`, 2);
    task('proc/301', 'vhost-250', `0::/\n`, 1); // a user process with that name: not a kthread
    const workers = await scanVhostWorkers(join(root, 'proc'), join(root, 'cg'));
    expect(workers).toEqual([{ tid: 300, ownerPid: 250, kind: 'kthread', cgroupPath: CGROUPFS_B, cgroupId: ino(`cg${CGROUPFS_B}`) }]);
    const a = new Attributor();
    a.learn(new Map(), workers, [launcher(UID_B, 'dev', 'web-1', 'vmi-uid-b')]);
    expect(a.vmOf(ino(`cg${CGROUPFS_B}`))).toMatchObject({ namespace: 'dev', name: 'web-1', uid: 'vmi-uid-b' });
  });
});

describe('cgroup v1 hosts', () => {
  it('hybrid: v1 controllers plus the unified hierarchy at /unified, where the ids live', async () => {
    put('cg/unified/cgroup.procs', '');
    dir(`cg/unified${CGROUPFS_C}`);
    dir(`cg/cpu,cpuacct${CGROUPFS_C}`);
    task('proc/400', 'vhost-390', `12:pids:${CGROUPFS_C}\n4:cpu,cpuacct:${CGROUPFS_C}\n0::${CGROUPFS_C}\n`, 2);
    const unified = await unifiedRoot(join(root, 'cg'));
    expect(unified).toBe(join(root, 'cg/unified'));
    const workers = await scanVhostWorkers(join(root, 'proc'), unified);
    expect(workers[0]).toMatchObject({ kind: 'kthread', v1PodUid: UID_C, cgroupId: ino(`cg/unified${CGROUPFS_C}`) });
    const a = new Attributor();
    a.learn(await scanCgroups(unified!), workers, [launcher(UID_C, 'ops', 'vm-c', 'vmi-uid-c')]);
    expect(a.vmOf(ino(`cg/unified${CGROUPFS_C}`))?.name).toBe('vm-c');
  });

  it('v1 only: the pod is known from the v1 paths, but there is no cgroup id to key by', async () => {
    dir(`cg/cpu,cpuacct${CGROUPFS_C}`);
    task('proc/400', 'vhost-390', `4:cpu,cpuacct:${CGROUPFS_C}\n1:name=systemd:${CGROUPFS_C}\n`, 2);
    const unified = await unifiedRoot(join(root, 'cg'));
    expect(unified).toBeUndefined();
    const workers = await scanVhostWorkers(join(root, 'proc'), unified);
    expect(workers).toEqual([{ tid: 400, ownerPid: 390, kind: 'kthread', v1PodUid: UID_C }]);
  });
});

describe('pods that vanish mid-trace', () => {
  it('keep their counts attributed to the VM, across agent restarts too', () => {
    const cgroups = new Map([[77, SYSTEMD_A]]);
    const a = new Attributor();
    a.learn(cgroups, [], []); // pod not yet seen: unknown, may be claimed later
    expect(a.vmOf(77)).toBeUndefined();
    expect(a.unknown(77)).toBe(true);
    a.learn(cgroups, [], [launcher(UID_A, 'prod', 'db-0', 'u')]);
    expect(a.vmOf(77)?.name).toBe('db-0');
    a.learn(new Map(), [], []); // the pod and its cgroup are gone
    expect(a.vmOf(77)?.name).toBe('db-0');
    const restarted = new Attributor(a.remembered());
    expect(restarted.vmOf(77)?.name).toBe('db-0');
  });

  it('names the VMI by the pod\'s ownerReference, else by created-by and domain or vmi.kubevirt.io/id, never by vm.kubevirt.io/name', () => {
    const pod = launcher(UID_A, 'prod', 'db-0', 'vmi-uid-1');
    expect(vmiFromPod(pod)).toMatchObject({ namespace: 'prod', name: 'db-0', uid: 'vmi-uid-1' });
    // The owner wins over labels that disagree (vm.kubevirt.io/name is a sanitised hostname).
    const owned = { ...pod, labels: { ...pod.labels, 'kubevirt.io/created-by': 'stale', 'vmi.kubevirt.io/id': 'x' }, annotations: {} };
    expect(vmiFromPod(owned)).toMatchObject({ name: 'db-0', uid: 'vmi-uid-1' });
    // No ownerReference: the labels and the annotation.
    const { ownerReferences: _, ...bare } = pod;
    expect(vmiFromPod(bare)).toMatchObject({ name: 'db-0', uid: 'vmi-uid-1' });
    expect(vmiFromPod({ ...bare, annotations: {} })).toMatchObject({ name: 'db-0', uid: 'vmi-uid-1' });
    const onlyVmName = { ...bare, annotations: {}, labels: { 'kubevirt.io': 'virt-launcher', 'kubevirt.io/created-by': 'vmi-uid-1', 'vm.kubevirt.io/name': 'db-0' } };
    expect(vmiFromPod(onlyVmName)).toBeUndefined();
    // An owner of another kind (a pod owned by a Job, say) is not a VMI.
    const jobOwned = { ...bare, labels: { 'kubevirt.io': 'virt-launcher' }, annotations: {}, ownerReferences: [{ apiVersion: 'batch/v1', kind: 'Job', name: 'j', uid: 'u' }] };
    expect(vmiFromPod(jobOwned)).toBeUndefined();
  });

  it('a pod that is not a virt-launcher attributes nothing', () => {
    const a = new Attributor();
    a.learn(new Map([[5, SYSTEMD_A]]), [], [{ uid: UID_A, namespace: 'x', name: 'nginx', labels: { app: 'nginx' } }]);
    expect(a.vmOf(5)).toBeUndefined();
  });
});
