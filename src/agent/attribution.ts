// From a vhost worker's cgroup id to the VM it serves: cgroup id -> cgroup path -> pod UID ->
// virt-launcher pod -> VirtualMachineInstance. Pure: the host is read by host-scan.ts, the pods
// come from the API server; this module only joins them.

/** The VMI a cgroup belongs to, as reports name it. */
export interface VmRef {
  namespace: string;
  /** VMI name (see vmiFromPod). */
  name: string;
  /** VMI UID (see vmiFromPod). */
  uid: string;
  /** The virt-launcher pod's labels: KubeVirt copies the VMI's labels onto it (vmSelector). */
  labels?: Record<string, string>;
}

export interface OwnerReference {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
  controller?: boolean;
}

export interface PodInfo {
  uid: string;
  namespace: string;
  name: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  ownerReferences?: OwnerReference[];
}

/** A vhost worker thread seen in /proc. */
export interface VhostWorker {
  tid: number;
  /** The process that owns the vhost device: QEMU. */
  ownerPid: number;
  /** kthread "vhost-<pid>" before Linux 6.4; a thread of QEMU (vhost_task) from 6.4. */
  kind: 'kthread' | 'vhost_task';
  /** Its path in the unified (v2) hierarchy, from the "0::" line; absent on cgroup v1-only hosts. */
  cgroupPath?: string;
  /** Its cgroup id (the inode of that path); what the BPF programs key by. */
  cgroupId?: number;
  /** Pod UID found in its v1 hierarchy paths (cgroupfs or systemd driver), where v1 exists. */
  v1PodUid?: string;
}

const POD_UID = /pod([0-9a-f]{8}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{12})/;

/**
 * The pod UID in a kubelet cgroup path, for both cgroup drivers:
 *   systemd:  /kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod<uid with _>.slice/...
 *   cgroupfs: /kubepods/burstable/pod<uid>/<container>
 */
export function podUidFromCgroupPath(path: string): string | undefined {
  if (!path.includes('kubepods')) return undefined;
  return POD_UID.exec(path)?.[1]?.replaceAll('_', '-');
}

/**
 * The VMI a virt-launcher pod runs, or undefined for any other pod. virt-controller makes the
 * pod with a controller ownerReference to its VirtualMachineInstance, which names it exactly;
 * without one (a pod made by hand, or by an older KubeVirt), the VMI's UID is the
 * kubevirt.io/created-by label and its name the kubevirt.io/domain annotation or the
 * vmi.kubevirt.io/id label. Not vm.kubevirt.io/name: deprecated, and a sanitised hostname.
 */
export function vmiFromPod(pod: PodInfo): VmRef | undefined {
  if (pod.labels?.['kubevirt.io'] !== 'virt-launcher') return undefined;
  const owner = pod.ownerReferences?.find((o) => o.kind === 'VirtualMachineInstance' && o.apiVersion.startsWith('kubevirt.io/') && o.controller !== false);
  const uid = owner?.uid ?? pod.labels['kubevirt.io/created-by'];
  const name = owner?.name ?? pod.annotations?.['kubevirt.io/domain'] ?? pod.labels['vmi.kubevirt.io/id'];
  if (!uid || !name) return undefined;
  return { namespace: pod.namespace, name, uid, labels: pod.labels };
}

/** Parses /proc/<pid>/cgroup: the v2 path ("0::/path") and v1 paths ("N:controllers:/path"). */
export function parseProcCgroup(text: string): { v2?: string; v1: string[] } {
  const v1: string[] = [];
  let v2: string | undefined;
  for (const line of text.split('\n')) {
    const m = /^(\d+):([^:]*):(.*)$/.exec(line.trim());
    if (!m) continue;
    if (m[1] === '0' && m[2] === '') v2 = m[3];
    else v1.push(m[3]!);
  }
  return { v2, v1 };
}

/** The owner pid in a vhost worker's name ("vhost-1234"), or undefined if it is not one. */
export function vhostOwner(comm: string): number | undefined {
  const m = /^vhost-(\d+)$/.exec(comm.trim());
  return m ? Number(m[1]) : undefined;
}

/**
 * Remembers which VM each cgroup id belongs to. A mapping, once made, is kept: a pod that
 * vanishes mid-trace leaves counts that still belong to its VM, and a cgroup id is never
 * reused within a boot.
 */
export class Attributor {
  private readonly known = new Map<number, VmRef | null>();

  constructor(remembered: Iterable<[number, VmRef]> = []) {
    for (const [id, vm] of remembered) this.known.set(id, vm);
  }

  /**
   * Learns from a fresh look at the host. cgroups: id -> v2 path (from walking the hierarchy
   * and from the workers); pods: the pods on this node. Ids that lead to no VMI are recorded
   * as such only while their pod is unknown, so a pod seen later still claims them.
   */
  learn(cgroups: ReadonlyMap<number, string>, workers: readonly VhostWorker[], pods: readonly PodInfo[]): void {
    const vmByPod = new Map<string, VmRef>();
    for (const p of pods) {
      const vm = vmiFromPod(p);
      if (vm) vmByPod.set(p.uid, vm);
    }
    const paths = new Map(cgroups);
    for (const w of workers) if (w.cgroupId !== undefined && w.cgroupPath) paths.set(w.cgroupId, w.cgroupPath);
    for (const [id, path] of paths) {
      if (this.known.get(id)) continue;
      const uid = podUidFromCgroupPath(path);
      const vm = uid ? vmByPod.get(uid) : undefined;
      if (vm) this.known.set(id, vm);
    }
  }

  /** The VM of a cgroup id, or undefined when it belongs to none (or to one not yet seen). */
  vmOf(cgroupId: number): VmRef | undefined {
    return this.known.get(cgroupId) ?? undefined;
  }

  /** True if the id has not been attributed yet (worth a fresh look at the host). */
  unknown(cgroupId: number): boolean {
    return !this.known.get(cgroupId);
  }

  /** The attributed ids, for persisting across agent restarts. */
  remembered(): Array<[number, VmRef]> {
    return [...this.known].filter((e): e is [number, VmRef] => e[1] !== null);
  }
}
