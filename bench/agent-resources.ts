// The agent's memory and CPU with 256 VM cgroups at a 1 s report interval, against a real
// API server, with a replayed loader whose counts change every second. Run:
//   npm run bench:agent     (BENCH_INTERVAL=10s, BENCH_VMS=..., BENCH_MEASURE_S=... to vary it;
//   BENCH_AGENT_NODE_ARGS replaces the agent's node flags, BENCH_AGENT_LOG keeps its log)
// BENCH_BASELINE_DIST=<another build's dist/> runs that build beside this one, as a second
// node with the same load, and reports both: on a shared host only a side-by-side run
// compares two builds fairly. BENCH_BASELINE_NODE_ARGS alone compares node flags on this build.
// Writes bench/results/agent-resources-<interval>.json.
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { podCgroup, recording, startAgent, type AgentProcess, type Workload } from '../test/harness/agents.js';
import { startControlPlane } from '../test/harness/controlplane.js';
import { installCRDs, TestClient } from '../test/harness/kube.js';
import { AGENT_NODE_FLAGS } from '../src/agent/node-flags.js';
import type { LoaderSnapshot } from '../src/loader/snapshot.js';

const VMS = Number(process.env.BENCH_VMS ?? 256);
const WARMUP_S = Number(process.env.BENCH_WARMUP_S ?? 15);
const MEASURE_S = Number(process.env.BENCH_MEASURE_S ?? 60);
const INTERVAL = process.env.BENCH_INTERVAL ?? '1s';
const nodeArgs = (v: string | undefined) => v?.split(' ').filter(Boolean) ?? AGENT_NODE_FLAGS;
const BASELINE = process.env.BENCH_BASELINE_DIST ?? (process.env.BENCH_BASELINE_NODE_ARGS ? resolve(import.meta.dirname, '../dist') : undefined);
const CLK_TCK = 100; // USER_HZ on Linux x86-64

function procStats(pid: number): { rssKiB: number; cpuTicks: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const rssKiB = Number(/^VmRSS:\s+(\d+)/m.exec(status)?.[1] ?? 0);
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { rssKiB, cpuTicks: Number(fields[11]) + Number(fields[12]) }; // utime + stime
}

/** The commit a checkout is at, "-dirty" if its src/ has changes (a baseline is usually a `git worktree`). */
function commitOf(dir: string): string | undefined {
  const git = (...args: string[]) => spawnSync('git', ['-C', dir, ...args], { encoding: 'utf8' });
  const head = git('rev-parse', '--short', 'HEAD');
  if (head.status !== 0) return undefined;
  return head.stdout.trim() + (git('status', '--porcelain', '--untracked-files=no', '--', 'src').stdout.trim() ? '-dirty' : '');
}

/** A node with VMS virt-launcher pods and their cgroups, and an agent for it. */
async function benchNode(c: TestClient, work: string, node: string, kubeconfig: string, args: string[], dist?: string): Promise<AgentProcess> {
  await c.request('POST', '/api/v1/nodes', { apiVersion: 'v1', kind: 'Node', metadata: { name: node, labels: { 'kubevirt.io/schedulable': 'true' } } });
  const workloads: Workload[] = [];
  for (let i = 0; i < VMS; i++) {
    const r = await c.request('POST', '/api/v1/namespaces/default/pods', {
      apiVersion: 'v1', kind: 'Pod',
      metadata: { name: `virt-launcher-${node}-vm${i}`, labels: { 'kubevirt.io': 'virt-launcher', 'kubevirt.io/created-by': `uid-${node}-${i}` }, annotations: { 'kubevirt.io/domain': `${node}-vm${i}` } },
      spec: { nodeName: node, automountServiceAccountToken: false, containers: [{ name: 'compute', image: 'x' }] },
    });
    const id = podCgroup(join(work, node, 'cg'), r.body.metadata.uid);
    // Runs spread over many slots, so every histogram is long (the heavy case).
    const runs = Array.from({ length: 4000 }, (_, k) => (k * 2654435761) % 300);
    workloads.push({ cgroupId: id, direction: 'rx', runs, frameBytes: 1500 }, { cgroupId: id, direction: 'tx', runs, frameBytes: 700 });
  }
  const steps = WARMUP_S + MEASURE_S + 10;
  // Another build's replay reads the loader's lines as that build knows them; one from before
  // formatSnapshotLine reads version 1, keyed objects.
  const formatLine = dist ? ((await import(join(dist, 'loader/snapshot.js'))) as { formatSnapshotLine?: (s: LoaderSnapshot) => string }).formatSnapshotLine ?? ((s: LoaderSnapshot) => JSON.stringify({ ...s, version: 1 })) : undefined;
  return startAgent({ node, dir: join(work, node), kubeconfig, frames: recording(workloads, 2, steps), frameSeconds: 1, loaderIntervalSeconds: 1, dist, nodeArgs: args, formatLine });
}

export async function benchAgent(): Promise<object> {
  const cp = await startControlPlane();
  const c = new TestClient(cp.kubeconfig);
  const work = mkdtempSync(join(tmpdir(), 'vhosttrace-bench-'));
  try {
    await installCRDs(c);
    await c.request('POST', '/api/v1/namespaces/default/serviceaccounts', { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'default' } });
    await c.request('POST', '/apis/vhosttrace.io/v1alpha1/namespaces/default/vhosttraces', {
      apiVersion: 'vhosttrace.io/v1alpha1', kind: 'VhostTrace', metadata: { name: 'bench' }, spec: { interval: INTERVAL },
    });
    const agents = [await benchNode(c, work, 'bench-node', cp.kubeconfig, nodeArgs(process.env.BENCH_AGENT_NODE_ARGS))];
    if (BASELINE) agents.push(await benchNode(c, work, 'bench-baseline', cp.kubeconfig, nodeArgs(process.env.BENCH_BASELINE_NODE_ARGS), BASELINE));
    await new Promise((r) => setTimeout(r, WARMUP_S * 1000));
    const first = agents.map((a) => procStats(a.proc.pid!));
    const maxRss = first.map((s) => s.rssKiB);
    const t0 = Date.now();
    const timer = setInterval(() => agents.forEach((a, i) => (maxRss[i] = Math.max(maxRss[i]!, procStats(a.proc.pid!).rssKiB))), 500);
    await new Promise((r) => setTimeout(r, MEASURE_S * 1000));
    clearInterval(timer);
    const last = agents.map((a) => procStats(a.proc.pid!));
    const seconds = (Date.now() - t0) / 1000;
    const report = await c.request('GET', '/apis/vhosttrace.io/v1alpha1/namespaces/default/vhosttracereports/bench.bench-node');
    for (const a of agents) await a.stop();
    // BENCH_AGENT_LOG=<file> keeps the agent's log (with --trace-gc in BENCH_AGENT_NODE_ARGS, its GCs).
    if (process.env.BENCH_AGENT_LOG) copyFileSync(agents[0]!.logFile, process.env.BENCH_AGENT_LOG);
    const usage = (i: number) => ({
      agentCpuPercentOfOneCore: Number((((last[i]!.cpuTicks - first[i]!.cpuTicks) / CLK_TCK / seconds) * 100).toFixed(2)),
      agentRssMiB: Number((last[i]!.rssKiB / 1024).toFixed(1)),
      agentMaxRssMiB: Number((maxRss[i]! / 1024).toFixed(1)),
    });
    const result = {
      vms: VMS,
      cgroupDirections: 2 * VMS,
      interval: INTERVAL,
      measuredSeconds: Math.round(seconds),
      commit: commitOf(resolve(import.meta.dirname, '..')),
      ...usage(0),
      ...(BASELINE ? { baseline: { dist: BASELINE, commit: commitOf(resolve(BASELINE, '..')), nodeArgs: nodeArgs(process.env.BENCH_BASELINE_NODE_ARGS), ...usage(1) } } : {}),
      reportBytes: JSON.stringify(report.body).length,
      reportVms: report.body.status?.vms?.length ?? 0,
      node: process.version,
      date: new Date().toISOString(),
    };
    const out = resolve(import.meta.dirname, 'results');
    mkdirSync(out, { recursive: true });
    writeFileSync(join(out, `agent-resources-${INTERVAL}${BASELINE ? '-vs-baseline' : ''}.json`), JSON.stringify(result, null, 2) + '\n');
    return result;
  } finally {
    await cp.stop();
    rmSync(work, { recursive: true, force: true });
  }
}
