// Reads the host's cgroup tree and /proc into the plain data attribution.ts joins. Thin I/O.
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { parseProcCgroup, podUidFromCgroupPath, vhostOwner, type VhostWorker } from './attribution.js';

/** Where the unified (v2) hierarchy is: the root itself, or /unified on hybrid v1 hosts. */
export async function unifiedRoot(cgroupRoot: string): Promise<string | undefined> {
  for (const dir of [cgroupRoot, join(cgroupRoot, 'unified')]) {
    try {
      await stat(join(dir, 'cgroup.controllers')); // exists only in a cgroup2 mount
      return dir;
    } catch {
      /* try the next */
    }
  }
  try {
    await stat(join(cgroupRoot, 'unified', 'cgroup.procs')); // hybrid without controllers file
    return join(cgroupRoot, 'unified');
  } catch {
    return undefined;
  }
}

/**
 * Maps cgroup id (the directory's inode, as the kernel's cgroup id is on cgroup v2) to path,
 * for the kubelet's subtrees. Bounded: stops after `limit` directories.
 */
export async function scanCgroups(root: string, limit = 50_000): Promise<Map<number, string>> {
  const out = new Map<number, string>();
  const queue: string[] = [''];
  while (queue.length > 0 && out.size < limit) {
    const rel = queue.shift()!;
    let entries;
    try {
      entries = await readdir(join(root, rel), { withFileTypes: true });
    } catch {
      continue; // removed while walking
    }
    for (const e of entries) {
      if (!e.isDirectory()) continue;
      const childRel = `${rel}/${e.name}`;
      // Only the kubelet's part of the tree can hold pods; the rest is skipped.
      if (rel === '' && !e.name.startsWith('kubepods')) continue;
      try {
        const st = await stat(join(root, childRel));
        out.set(st.ino, childRel);
      } catch {
        continue;
      }
      queue.push(childRel);
    }
  }
  return out;
}

async function readText(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch {
    return undefined;
  }
}

async function describeWorker(dir: string, tid: number, kind: VhostWorker['kind'], owner: number, unified?: string): Promise<VhostWorker> {
  const w: VhostWorker = { tid, ownerPid: owner, kind };
  const cg = parseProcCgroup((await readText(join(dir, 'cgroup'))) ?? '');
  if (cg.v2 !== undefined) {
    w.cgroupPath = cg.v2;
    if (unified) {
      try {
        w.cgroupId = (await stat(join(unified, cg.v2))).ino;
      } catch {
        /* cgroup gone */
      }
    }
  }
  for (const p of cg.v1) {
    const uid = podUidFromCgroupPath(p);
    if (uid) {
      w.v1PodUid = uid;
      break;
    }
  }
  return w;
}

/**
 * Finds vhost worker threads in /proc: kthreads named "vhost-<owner pid>" (children of
 * kthreadd, pid 2) before Linux 6.4, and from 6.4 threads of the owner (vhost_task) with the
 * same name.
 */
export async function scanVhostWorkers(proc: string, unified?: string): Promise<VhostWorker[]> {
  const workers: VhostWorker[] = [];
  let pids: string[];
  try {
    pids = (await readdir(proc)).filter((d) => /^\d+$/.test(d));
  } catch {
    return [];
  }
  for (const pid of pids) {
    const dir = join(proc, pid);
    const comm = (await readText(join(dir, 'comm'))) ?? '';
    const owner = vhostOwner(comm);
    if (owner !== undefined) {
      const status = (await readText(join(dir, 'status'))) ?? '';
      if (/^PPid:\s*2$/m.test(status)) workers.push(await describeWorker(dir, Number(pid), 'kthread', owner, unified));
      continue;
    }
    // vhost_task workers live among the owner's threads.
    let tids: string[];
    try {
      tids = await readdir(join(dir, 'task'));
    } catch {
      continue;
    }
    for (const tid of tids) {
      if (tid === pid) continue;
      const tdir = join(dir, 'task', tid);
      const tcomm = (await readText(join(tdir, 'comm'))) ?? '';
      if (vhostOwner(tcomm) === Number(pid)) workers.push(await describeWorker(tdir, Number(tid), 'vhost_task', Number(pid), unified));
    }
  }
  return workers;
}
