// The product as a user runs it, on real nodes: the image built from the Dockerfile (buildah),
// `helm install` of the chart, the operator and then the agents started by real kubelets in
// Debian guests (containerd, runc, CNI, kube-proxy), one node per kernel (6.12 and 6.1) in one
// cluster, under the chart's securityContext and hostPath mounts. Traffic from the traffic
// driver on each node is traced, and each report's totals must equal that node's ground truth
// exactly. The guests' networks stay in qemu (restrict=on).
import { spawnSync } from 'node:child_process';
import { createServer, type Server } from 'node:net';
import { resolve } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { fromValues, summarize } from '../../src/api/histogram.js';
import type { VhostTraceReport } from '../../src/api/v1alpha1.js';
import { eventually, startCluster, tokenKubeconfig, writeReport, type Cluster } from '../harness/cluster.js';
import { installCRDs, TestClient } from '../harness/kube.js';
import { VMI_CRD } from '../harness/kubevirt.js';
import { freePort, testBinaries } from '../harness/controlplane.js';
import {
  busyRuns, driverArgs, driverTruth, expectedRuns, histogramsOf, parseTrace, type DriverReport, type RunEvent, type Workload,
} from '../kernel/ground-truth.js';
import { KERNELS, testedKernel, type Kernel } from '../kernel/testbed.js';
import { HOST_FROM_GUEST, NodeEgress, nodeClusterOptions, podCidr, startNode, type RealNode } from './node.js';
import { archive, imageRef } from './images.js';
import { startVms, vmRound as vmTraffic, type VmPod, type VmSpec, type Witness } from './vms.js';

const REPO = resolve(import.meta.dirname, '../..');
const NS = 'vhosttrace-system';
const TRACE = 'real-node';
const API = '/apis/vhosttrace.io/v1alpha1';
const only = process.env.VHOSTTRACE_NODE_KERNELS?.split(',') as Kernel[] | undefined;
const KERNELS_HERE = only ?? KERNELS;

const WORKLOADS: Workload[] = [
  { name: 'tx-batch32-mixed', direction: 'tx', frames: 100, batch: 32, sizes: [64, 1514] },
  { name: 'rx-starved-mixed', direction: 'rx', frames: 100, batch: 50, post: 16, sizes: [64, 1514, 9014] },
];

/**
 * The VMs each node runs, in two tenants: "db" has two queue pairs (multiqueue: two vhost-net
 * devices, one driver each, at once). Each workload's direction is its VM's only one of that
 * direction, so a driver's report is found by its direction.
 */
const TENANTS = ['tenant-a', 'tenant-b'];
const TENANT_TRACE = 'vms';
const VMS: VmSpec[] = [
  { namespace: 'tenant-a', name: 'web', queues: [[{ name: 'web-tx', direction: 'tx', frames: 60, batch: 20, sizes: [512] }]] },
  {
    namespace: 'tenant-a', name: 'db', queues: [
      [{ name: 'db-rx', direction: 'rx', frames: 90, batch: 45, post: 15, sizes: [64, 1514] }],
      [{ name: 'db-tx', direction: 'tx', frames: 80, batch: 40, sizes: [128, 1514] }],
    ],
  },
  { namespace: 'tenant-b', name: 'cache', queues: [[{ name: 'cache-rx', direction: 'rx', frames: 70, batch: 35, sizes: [256] }]] },
];

/** Rounds of traffic each VM runs: on the patched module (step 4), on the stock one (after the reload). */
const ROUNDS = 2;

/** Both directions, an empty histogram pair where there were no runs (as reports write them). */
const withBoth = (h: ReturnType<typeof histogramsOf>) => {
  const none = () => ({ packets: fromValues([]), bytes: fromValues([]) });
  return { rx: h.rx ?? none(), tx: h.tx ?? none() };
};

type NodeState = { name: string; state: string; reason?: string; message?: string };

describe(`a real cluster of ${KERNELS_HERE.length} node(s), Debian ${KERNELS_HERE.join(' and ')}: the image, helm install, the agents as pods`, () => {
  const names = KERNELS_HERE.map((k) => `node-${k.replace('.', '-')}`);
  let cluster: Cluster;
  const egress = new NodeEgress();
  let nodes: RealNode[] = [];
  let helm: (...args: string[]) => { code: number; out: string };
  let image: { repository: string; tag: string };
  const t0 = Date.now();
  const log = (l: string) => console.log(`[${((Date.now() - t0) / 1000).toFixed(0).padStart(4)} s] ${l}`);
  /** Every run traced on each node so far (by node name): what its report must hold. */
  const traced = new Map<string, RunEvent[]>(names.map((n) => [n, []]));

  beforeAll(async () => {
    for (const k of KERNELS_HERE) {
      const v = testedKernel(k);
      log(`${k}: Debian ${v.version} (linux ${v.release})`);
    }
    const product = archive('test/image/build');
    const pause = archive('test/node/pause-image');
    image = imageRef(product);
    log(`images ready: ${image.repository}:${image.tag}`);
    const bins = await testBinaries(['helm'], log);
    cluster = await startCluster({ extras: ['kube-controller-manager', 'kube-scheduler'], log, ...(await nodeClusterOptions(egress)) });
    helm = (...args: string[]) => {
      const r = spawnSync(bins.helm!, [...args, '--kubeconfig', cluster.kubeconfig], { cwd: REPO, encoding: 'utf8' });
      return { code: r.status ?? -1, out: `${r.stdout}${r.stderr}` };
    };
    // The guests boot side by side: one TCG thread each.
    const started = await Promise.allSettled(
      KERNELS_HERE.map((kernel, i) =>
        startNode({
          cluster, egress, kernel, name: names[i]!, podCidr: podCidr(i),
          images: [pause, product],
          labels: { 'kubevirt.io/schedulable': 'true' },
          log: (l) => log(`[${kernel}] ${l}`),
        }),
      ),
    );
    nodes = started.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
    const failed = started.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
  }, 1_800_000);

  afterAll(async () => {
    await Promise.all(nodes.map((n) => n.stop()));
    await cluster?.stop();
    egress.stop();
  }, 120_000);

  const get = async <T = any>(path: string) => (await cluster.client.request<T>('GET', path)).body;
  const podsOf = async (selector: string) =>
    (await get<{ items: any[] }>(`/api/v1/namespaces/${NS}/pods?labelSelector=${encodeURIComponent(selector)}`)).items;

  /** One pod in a line: where, its phase, and why its container waits or ended. */
  const podLine = (p: any) => {
    const c = p.status?.containerStatuses?.[0];
    const why = c?.state?.waiting?.reason ?? c?.state?.terminated?.reason ?? '';
    return `pod ${p.metadata.namespace}/${p.metadata.name} on ${p.spec.nodeName}: ${p.status?.phase} ${why} restarts ${c?.restartCount ?? '-'}${p.metadata.deletionTimestamp ? ' (deleting)' : ''}`;
  };

  /** What a failed step leaves its reader: each guest running or why not, the nodes' Ready, the pods, Warning events, the kubelets' last lines. */
  const diagnose = async () => {
    const out = ['--- after the failure'];
    for (const n of nodes) out.push(n.ended() ?? `${n.name}: the guest runs`);
    try {
      for (const n of (await get<{ items: any[] }>('/api/v1/nodes')).items) {
        const ready = n.status?.conditions?.find((c: { type: string }) => c.type === 'Ready');
        out.push(`node ${n.metadata.name}: Ready=${ready?.status} ${ready?.reason ?? ''} heartbeat ${ready?.lastHeartbeatTime}`);
      }
      for (const p of (await get<{ items: any[] }>('/api/v1/pods')).items) out.push(podLine(p));
      const events = (await get<{ items: any[] }>('/api/v1/events?fieldSelector=type%3DWarning')).items.slice(-15);
      for (const e of events) out.push(`event ${e.involvedObject?.kind}/${e.involvedObject?.name}: ${e.reason}: ${String(e.message).slice(0, 200)}`);
    } catch (e) {
      out.push(`the API server: ${(e as Error).message}`);
    }
    for (const n of nodes) {
      out.push(`--- ${n.name} kubelet`, n.logTail('kubelet', 15), `--- ${n.name} console (the guest kernel)`, n.logTail('console', 15));
      // A guest that still runs commands: its load, memory (its state is in tmpfs), stuck tasks and its kernel's last words.
      const ps = 'cat /proc/loadavg; free -m; df -m -t tmpfs | sort -k3 -n | tail -n 4; ps -eo pid,stat,wchan:24,etimes,comm --sort=-etimes | awk \'$2 ~ /^D/\' | head -20; dmesg | tail -n 15';
      const r = await n.exec(ps, 20_000).catch((e: Error) => ({ code: -1, out: e.message }));
      out.push(`--- ${n.name} load, memory, D-state tasks, dmesg (exit ${r.code})`, r.out);
    }
    return out.join('\n');
  };

  // The steps build on each other: once one fails the rest fail at once and name it, rather
  // than each waiting out its own timeouts on a cluster that cannot do what it needs.
  let failedStep: string | undefined;
  beforeEach(({ task, onTestFailed }) => {
    if (failedStep) throw new Error(`not run: the step "${failedStep}" failed, and every step builds on those before it`);
    const gone = nodes.map((n) => n.ended()).filter(Boolean);
    if (gone.length) throw new Error(gone.join('\n'));
    onTestFailed(async () => {
      failedStep = task.name;
      console.log(await diagnose());
    });
  });
  const agentPods = async () => podsOf('app.kubernetes.io/component=agent');
  const reportPath = (node: string) => `${API}/namespaces/${NS}/vhosttracereports/cluster.${TRACE}.${node}`;
  const nodeStates = async () => ((await get(`${API}/clustervhosttraces/${TRACE}`))?.status?.nodes ?? []) as NodeState[];
  const each = <T>(fn: (node: RealNode, i: number) => Promise<T>) => Promise.all(nodes.map(fn));

  /** Moves the workloads with the traffic driver on a node, with the trace buffer as a witness. */
  const traffic = async (node: RealNode, workloads: Workload[]) => {
    const run = await node.exec(`
T=/sys/kernel/tracing
echo 8192 > $T/buffer_size_kb; echo 1 > $T/events/vhost_net/enable
echo 0 > $T/tracing_on; echo > $T/trace; echo 1 > $T/tracing_on
${workloads.map((w) => `vhost-traffic ${driverArgs(w)}`).join('\n')}
sleep 1
echo 0 > $T/tracing_on
echo '--- trace'
cat $T/trace`, 300_000);
    expect(run.code, run.out).toBe(0);
    const [json, trace = ''] = run.out.split('--- trace\n');
    const reports = json!.trim().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as DriverReport);
    expect(reports).toHaveLength(workloads.length);
    const parsed = parseTrace(trace);
    expect(parsed.inBuffer).toBe(parsed.written);
    // Every run that moved something is one the batching implies, in order.
    for (const dir of ['rx', 'tx'] as const) {
      const want = workloads.flatMap((w, i) => (w.direction === dir ? expectedRuns(w, reports[i]!.vnet_hdr_len) : []));
      expect(busyRuns(parsed.events, dir), `${node.name} ${dir}`).toEqual(want);
    }
    traced.get(node.name)!.push(...parsed.events);
    return { drivers: reports, events: parsed.events };
  };

  /** Each node's VM pods (step 4 starts them, later steps run more rounds in them). */
  const vmPods = new Map<string, VmPod[]>();
  /** Each VM's runs so far, by "namespace/name": what its row must hold. */
  const vmRuns = new Map<string, RunEvent[]>();
  const T = '/sys/kernel/tracing';
  /** A round of the VMs on a node (vms.ts), its runs kept as each VM's and the node's. */
  const vmRound = async (node: RealNode, pods: VmPod[], round: number, witness: Witness) => {
    const runs = await vmTraffic(cluster.client, node, pods, round, witness);
    for (const [k, events] of runs) {
      vmRuns.set(k, [...(vmRuns.get(k) ?? []), ...events]);
      traced.get(node.name)!.push(...events);
    }
    return runs;
  };

  /** A report's VM rows by name, each as {rx, tx}. */
  const rowsOf = (r: VhostTraceReport | undefined) => new Map((r?.status?.vms ?? []).map((v) => [`${v.namespace}/${v.name}`, { rx: v.rx, tx: v.tx }]));
  /** What those rows must be: each VM's runs so far. */
  const vmRows = (vms: string[]) => new Map(vms.map((k) => [k, withBoth(histogramsOf(vmRuns.get(k)!))]));

  /** The node's report once it holds every run traced there so far; its totals must be exactly those. */
  const expectReportHoldsAll = async (node: RealNode) => {
    const runs = traced.get(node.name)!;
    const count = (d: 'rx' | 'tx') => runs.filter((e) => e.direction === d).length;
    const r = await eventually(async () => {
      const x = await get<VhostTraceReport>(reportPath(node.name));
      const t = x?.status?.total;
      return t?.rx?.packets.count === count('rx') && t?.tx?.packets.count === count('tx') ? x : undefined;
    }, 120_000, `${node.name}: a report holding every traced run`, 1000).catch(async () => get<VhostTraceReport>(reportPath(node.name)));
    expect(r?.status?.total, node.name).toEqual(histogramsOf(runs));
    return r!;
  };

  it('helm install runs the operator from the built image on a node', async () => {
    const r = helm(
      'install', 'vhosttrace', 'charts/vhosttrace', '--namespace', NS, '--create-namespace',
      '--set', `image.repository=${image.repository}`, '--set', `image.tag=${image.tag}`, '--set', 'image.pullPolicy=Never',
      // Both nodes' agents at once in a rollout (the chart's default replaces 10% at a time).
      '--set', 'operator.replicas=1', '--set', 'agent.maxUnavailable=100%', '--wait', '--timeout', '10m',
    );
    expect(r.code, r.out).toBe(0);
    const [pod] = await podsOf('app.kubernetes.io/component=operator');
    expect(names).toContain(pod?.spec.nodeName);
    expect(pod?.status.phase).toBe('Running');
    expect(pod?.spec.containers[0].image).toBe(`${image.repository}:${image.tag}`);
  }, 900_000);

  it("a ClusterVhostTrace starts an agent pod on every node under the chart's securityContext, and each reports", async () => {
    const created = await cluster.client.request('POST', `${API}/clustervhosttraces`, {
      apiVersion: 'vhosttrace.io/v1alpha1', kind: 'ClusterVhostTrace', metadata: { name: TRACE }, spec: { interval: '1s' },
    });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const agents = await eventually(async () => {
      const ps = (await agentPods()).filter((p) => p.status.phase === 'Running');
      return ps.length === nodes.length ? ps : undefined;
    }, 600_000, 'an agent pod Running on every node', 2000);
    expect(agents.map((p) => p.spec.nodeName).sort()).toEqual([...names].sort());
    for (const agent of agents) {
      expect(agent.spec.containers[0].securityContext).toMatchObject({
        privileged: false, allowPrivilegeEscalation: false, readOnlyRootFilesystem: true,
        capabilities: { drop: ['ALL'], add: ['BPF', 'PERFMON'] }, seccompProfile: { type: 'RuntimeDefault' },
      });
    }
    await each(async (node) => {
      // What the kernel gave the container, read in the guest from the agent's own process.
      const status = await node.exec(`grep -E '^(CapEff|Seccomp):' /proc/$(pgrep -f 'dist/agent/main.js' | head -1)/status`);
      expect(status.code, status.out).toBe(0);
      // CAP_PERFMON (38) and CAP_BPF (39) only; seccomp mode 2 (filter).
      expect(status.out, node.name).toMatch(/^CapEff:\s+000000c000000000$/m);
      expect(status.out, node.name).toMatch(/^Seccomp:\s+2$/m);
      await eventually(async () => (await get<VhostTraceReport>(reportPath(node.name)))?.status?.state === 'Reporting', 600_000, `${node.name} Reporting`, 2000);
    });
    const t = await eventually(async () => {
      const x = await get(`${API}/clustervhosttraces/${TRACE}`);
      return x?.status?.nodesReporting === `${nodes.length}/${nodes.length}` ? x : undefined;
    }, 120_000, 'the trace counting every node as reporting', 2000);
    expect(t.status.phase).toBe('Running');
  }, 1_200_000);

  it("traffic on each node is traced: each report's totals equal that node's ground truth exactly, the trace's summary their sum", async () => {
    await each(async (node) => {
      const { drivers, events } = await traffic(node, WORKLOADS);
      const empty = { rx: events.filter((e) => e.direction === 'rx' && e.packets === 0).length, tx: events.filter((e) => e.direction === 'tx' && e.packets === 0).length };
      const truth = histogramsOf(driverTruth(WORKLOADS, drivers, empty));
      expect(histogramsOf(events), node.name).toEqual(truth);
      const report = await expectReportHoldsAll(node);
      expect(report.status?.total, node.name).toEqual(truth);
      expect(report.status?.mode).toBe('tracepoint');
      for (const dir of ['rx', 'tx'] as const) {
        const moved = drivers.filter((d) => d.direction === dir);
        expect(report.status!.total![dir]!.packets.sum, `${node.name} ${dir}`).toBe(moved.reduce((s, d) => s + d.frames, 0));
        expect(report.status!.total![dir]!.bytes.sum, `${node.name} ${dir}`).toBe(moved.reduce((s, d) => s + d.bytes, 0));
      }
    });
    const all = [...traced.values()].flat();
    const runs = (d: 'rx' | 'tx') => all.filter((e) => e.direction === d).length;
    await eventually(async () => {
      const s = (await get(`${API}/clustervhosttraces/${TRACE}`))?.status?.summary;
      return s?.rx?.packets.count === runs('rx') && s?.tx?.packets.count === runs('tx');
    }, 120_000, "the trace's summary counting the runs of every node", 1000);
  }, 600_000);

  it("VMs in virt-launcher pods, two tenants: each VM's histograms equal its own runs exactly, and a VhostTrace sees only its namespace's VMs", async () => {
    await installCRDs(cluster.client, 60_000, [VMI_CRD]);
    for (const ns of TENANTS) {
      const r = await cluster.client.request('POST', '/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } });
      expect(r.status, JSON.stringify(r.body)).toBe(201);
    }
    const tenantTrace = await cluster.client.request('POST', `${API}/namespaces/${TENANTS[0]}/vhosttraces`, {
      apiVersion: 'vhosttrace.io/v1alpha1', kind: 'VhostTrace', metadata: { name: TENANT_TRACE }, spec: { interval: '1s' },
    });
    expect(tenantTrace.status, JSON.stringify(tenantTrace.body)).toBe(201);
    await each(async (node) => {
      const pods = await startVms(cluster.client, node, VMS, `${image.repository}:${image.tag}`, ROUNDS);
      vmPods.set(node.name, pods);
      const truth = await vmRound(node, pods, 1, 'events');
      const all = [...truth.keys()];
      const clusterReport = await eventually(async () => {
        const r = await get<VhostTraceReport>(reportPath(node.name));
        return all.every((k) => rowsOf(r).get(k)?.rx?.packets.count === withBoth(histogramsOf(truth.get(k)!)).rx.packets.count) ? r : undefined;
      }, 180_000, `${node.name}: the cluster trace's report listing every VM with all its runs`, 1000).catch(() => get<VhostTraceReport>(reportPath(node.name)));
      expect(rowsOf(clusterReport), node.name).toEqual(vmRows(all));
      // Only the traffic moved outside any pod (the node-level step) is unattributed.
      const outside = traced.get(node.name)!.slice(0, traced.get(node.name)!.length - all.reduce((n, k) => n + truth.get(k)!.length, 0));
      expect(clusterReport?.status?.unattributed, node.name).toEqual(withBoth(histogramsOf(outside)));
      const mine = all.filter((k) => k.startsWith(`${TENANTS[0]}/`));
      const tenantReport = await eventually(async () => {
        const r = await get<VhostTraceReport>(`${API}/namespaces/${TENANTS[0]}/vhosttracereports/${TENANT_TRACE}.${node.name}`);
        return mine.every((k) => rowsOf(r).get(k)?.rx?.packets.count === withBoth(histogramsOf(truth.get(k)!)).rx.packets.count) ? r : undefined;
      }, 120_000, `${node.name}: ${TENANTS[0]}'s report with its VMs`, 1000);
      expect(rowsOf(tenantReport), node.name).toEqual(vmRows(mine));
      expect(tenantReport.status?.unattributed).toBeUndefined();
      expect(tenantReport.status?.total, node.name).toEqual(withBoth(histogramsOf(mine.flatMap((k) => truth.get(k)!))));
    });
    // In the statuses: every VM of both nodes in the cluster trace's, only tenant-a's in the VhostTrace's.
    const listed = async (path: string) => ((await get(path))?.status?.vms ?? []).map((v: { namespace: string; name: string }) => `${v.namespace}/${v.name}`).sort();
    const everyVm = nodes.flatMap((n) => VMS.map((vm) => `${vm.namespace}/${vm.name}-${n.name}`)).sort();
    await eventually(async () => JSON.stringify(await listed(`${API}/clustervhosttraces/${TRACE}`)) === JSON.stringify(everyVm), 120_000, 'every VM in the cluster trace\'s status', 1000);
    await eventually(async () => JSON.stringify(await listed(`${API}/namespaces/${TENANTS[0]}/vhosttraces/${TENANT_TRACE}`)) === JSON.stringify(everyVm.filter((k) => k.startsWith(`${TENANTS[0]}/`))), 120_000, `${TENANTS[0]}'s VMs only in its trace's status`, 1000);
    expect((await cluster.client.request('DELETE', `${API}/namespaces/${TENANTS[0]}/vhosttraces/${TENANT_TRACE}`)).status).toBe(200);
  }, 1_200_000);

  it('the admission policy takes the token the kubelet projected into each agent pod: its node\'s report, no other', async () => {
    await each(async (node, i) => {
      // /var/run is a symlink to /run in the image; the kubelet's mount is resolved inside it.
      const read = await node.exec(`cat /proc/$(pgrep -f 'dist/agent/main.js' | head -1)/root/run/secrets/kubernetes.io/serviceaccount/token`);
      expect(read.code, read.out).toBe(0);
      const agent = new TestClient(tokenKubeconfig(cluster.cp, `agent-projected-${node.name}`, read.out.trim()));
      const who = await agent.request('POST', '/apis/authentication.k8s.io/v1/selfsubjectreviews', { apiVersion: 'authentication.k8s.io/v1', kind: 'SelfSubjectReview' });
      expect(who.body.status.userInfo.username).toBe(`system:serviceaccount:${NS}:vhosttrace-agent`);
      expect(who.body.status.userInfo.extra['authentication.kubernetes.io/node-name']).toEqual([node.name]);
      // The agent's own report was written with this token: it is there, by the agent's manager.
      const own = await get(reportPath(node.name));
      expect(own.metadata.managedFields.map((f: { manager: string }) => f.manager)).toContain('vhosttrace-agent');
      // Another real node's report (or an unknown node's, with one node) is refused.
      const other = names[(i + 1) % names.length] !== node.name ? names[(i + 1) % names.length]! : 'another-node';
      const trace = await get(`${API}/clustervhosttraces/${TRACE}`);
      await expect(writeReport(agent, trace, other, { state: 'Reporting' }, NS)).rejects.toThrow(
        new RegExp(`403.*the agent on node ${node.name} may write only its own node's reports, not ${other}'s`),
      );
    });
  }, 300_000);

  it("the agent pods deleted mid-trace: the replacements continue the counts exactly; where /sys/fs/bpf is not a shared mount, the status says what to run", async () => {
    // The last node's bpffs made private first: its new agent cannot start until it is shared again.
    const stuck = nodes[nodes.length - 1]!;
    const private_ = await stuck.exec('mount --make-private /sys/fs/bpf && findmnt -no PROPAGATION /sys/fs/bpf');
    expect(private_.out.trim()).toBe('private');
    const old = await agentPods();
    for (const p of old) expect((await cluster.client.request('DELETE', `/api/v1/namespaces/${NS}/pods/${p.metadata.name}`)).status).toBe(200);
    const gone = new Set(old.map((p) => p.metadata.name));
    const since = new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
    /** The new agent on a node reports; more traffic, traced by it, and the report holds the old and the new runs. */
    const continues = async (node: RealNode, w: Workload) => {
      await eventually(async () => {
        const r = await get<VhostTraceReport>(reportPath(node.name));
        const [pod] = (await agentPods()).filter((p) => p.spec.nodeName === node.name && !gone.has(p.metadata.name));
        return pod?.status.containerStatuses?.[0]?.ready && r?.status?.state === 'Reporting' && (r.status.observedTime ?? '') >= since;
      }, 600_000, `${node.name}: a new agent pod ready and its report`, 2000);
      await traffic(node, [w]);
      await expectReportHoldsAll(node);
    };
    await each(async (node) => {
      if (node !== stuck) return continues(node, WORKLOADS[0]!);
      let seen: NodeState | undefined;
      const failing = await eventually(async () => {
        seen = (await nodeStates()).find((n) => n.name === node.name);
        return seen?.reason === 'AgentNotRunning' ? seen : undefined;
      }, 300_000, `${node.name} AgentNotRunning in the trace's status`, 2000).catch((e: Error) => {
        throw new Error(`${e.message}; the node's last state: ${JSON.stringify(seen)}`);
      });
      expect(failing.state).toBe('Failed');
      expect(failing.message).toMatch(/^agent pod vhosttrace-agent-\w+ cannot start: \/sys\/fs\/bpf is not a shared mount on the node; run `mount --make-shared \/sys\/fs\/bpf` there/);
      // Done as the message says: the kubelet's next try starts the agent, which takes the pins over.
      const shared = await node.exec('mount --make-shared /sys/fs/bpf && findmnt -no PROPAGATION /sys/fs/bpf');
      expect(shared.out.trim()).toBe('shared');
      await continues(node, WORKLOADS[1]!);
    });
  }, 1_200_000);

  /** The trace's summary once it counts every run traced on every node; it must be exactly their merge. */
  const expectSummaryHoldsAll = async () => {
    const all = [...traced.values()].flat();
    const count = (d: 'rx' | 'tx') => all.filter((e) => e.direction === d).length;
    const s = await eventually(async () => {
      const x = (await get(`${API}/clustervhosttraces/${TRACE}`))?.status?.summary;
      return x?.rx?.packets.count === count('rx') && x?.tx?.packets.count === count('tx') ? x : undefined;
    }, 180_000, "the trace's summary counting every traced run", 1000).catch(async () => (await get(`${API}/clustervhosttraces/${TRACE}`))?.status?.summary);
    // The summary carries percentiles too (summarize).
    const h = histogramsOf(all);
    const sum = (d: 'rx' | 'tx') => ({ packets: summarize(h[d]!.packets), bytes: summarize(h[d]!.bytes) });
    expect(s).toEqual({ rx: sum('rx'), tx: sum('tx') });
  };

  /** The agent's programs attached on a node: their pinned links, and vhost_net's references (2: the RX and TX links). */
  const attached = async (node: RealNode) => {
    const r = await node.exec(`cat /sys/module/vhost_net/refcnt; ls /sys/fs/bpf/vhosttrace | grep -c '^link_' || true`);
    const [refcnt, links] = r.out.trim().split('\n').map(Number);
    return { refcnt, links };
  };
  /** The agent's logs on a node (this container's, and the last one's if it restarted), for failure messages. */
  const agentLogs = async (node: RealNode) => {
    const [pod] = (await agentPods()).filter((p) => p.spec.nodeName === node.name);
    if (!pod) return '(no agent pod)';
    const path = `/api/v1/namespaces/${NS}/pods/${pod.metadata.name}/log?tailLines=40`;
    const prev = await cluster.client.request('GET', `${path}&previous=true`);
    const now = await cluster.client.request('GET', path);
    return `${prev.status === 200 ? `--- previous container\n${String(prev.body)}` : ''}--- ${pod.metadata.name}\n${String(now.body)}`;
  };

  it('faults at once on the real nodes: the loader killed in each agent pod, the operator pod deleted, kube-apiserver down for a minute, traffic meanwhile; afterwards every count exact, none twice', async () => {
    // The loader SIGKILLed inside each agent pod: its pinned programs count on while it restarts.
    await each(async (node) => {
      expect(await attached(node), `${node.name} before the faults\n${await agentLogs(node)}`).toEqual({ refcnt: 2, links: 4 });
      const kill = await node.exec('pid=$(pgrep -x vhost-hist) && kill -9 $pid && echo "killed $pid"');
      expect(kill.out, node.name).toMatch(/^killed \d+$/m);
    });
    // The operator pod deleted, and kube-apiserver stopped right after (etcd keeps running).
    const [op] = await podsOf('app.kubernetes.io/component=operator');
    expect((await cluster.client.request('DELETE', `/api/v1/namespaces/${NS}/pods/${op.metadata.name}`)).status).toBe(200);
    await cluster.cp.stopApiServer();
    const down = Date.now();
    try {
      // Traffic on both nodes while the agents cannot report and the operator is gone.
      await each(async (node) => {
        await traffic(node, WORKLOADS);
      });
      await new Promise((r) => setTimeout(r, Math.max(0, 60_000 - (Date.now() - down))));
    } finally {
      await cluster.cp.startApiServer();
    }
    log(`kube-apiserver was down for ${((Date.now() - down) / 1000).toFixed(0)} s`);
    await eventually(async () => {
      const ps = await podsOf('app.kubernetes.io/component=operator');
      return ps.some((p) => p.metadata.name !== op.metadata.name && p.status.containerStatuses?.[0]?.ready);
    }, 600_000, 'a new operator pod ready', 2000);
    await each(async (node) => {
      const r = await expectReportHoldsAll(node);
      // (The LoaderRestarted condition is the agent process's own count, and in these TCG guests
      // the kubelet sometimes restarts a starved agent during the outage: test/api checks it.)
      const [pod] = (await agentPods()).filter((p) => p.spec.nodeName === node.name);
      log(`${node.name}: agent container restarts ${pod?.status.containerStatuses?.[0]?.restartCount}`);
      // None of it went to the VMs: their rows are still just their own runs.
      expect(rowsOf(r), node.name).toEqual(vmRows(vmPods.get(node.name)!.map((p) => p.key)));
      // And the programs are still attached, holding vhost_net.
      expect(await attached(node), `${node.name}\n${await agentLogs(node)}`).toEqual({ refcnt: 2, links: 4 });
    });
    // The new operator's roll-up: the exact merge of every run on both nodes.
    await expectSummaryHoldsAll();
  }, 1_200_000);

  it('vhost_net reloaded under the trace: refused while traced; detached by the node annotation, the stock module loaded and reattached; stock mode needs CAP_SYS_ADMIN and the status says so; with it each VM counts on exactly in fentry mode; then the VM pods deleted, their counts stay', async () => {
    const annotate = (node: string, why: string | null) =>
      cluster.client.request('PATCH', `/api/v1/nodes/${node}`, { metadata: { annotations: { 'vhosttrace.io/detach': why } } }, { 'content-type': 'application/merge-patch+json' });
    await each(async (node) => {
      // The agent's links hold the module, though no VM has /dev/vhost-net open now.
      const busy = await node.exec('rmmod vhost_net');
      expect(busy.code, `${node.name}: ${busy.out}\n${await agentLogs(node)}`).not.toBe(0);
      expect(busy.out, node.name).toMatch(/vhost_net is in use/);
      expect((await annotate(node.name, 'swap in the stock module')).status).toBe(200);
      const detached = await eventually(async () => {
        const r = await get<VhostTraceReport>(reportPath(node.name));
        return r?.status?.reason === 'Detached' ? r : undefined;
      }, 120_000, `${node.name}: its report Detached`, 1000);
      expect(detached.status?.state).toBe('Pending');
      expect(detached.status?.message).toMatch(/vhosttrace\.io\/detach=swap in the stock module/);
      expect(detached.status?.total, node.name).toEqual(histogramsOf(traced.get(node.name)!));
      expect((await node.exec('ls -A /sys/fs/bpf/vhosttrace 2>/dev/null | wc -l')).out.trim(), node.name).toBe('0');
      // Freed links drop their module references a moment after the unpin (RCU): retry rmmod.
      const swap = await node.exec(`for i in $(seq 50); do rmmod vhost_net 2>/dev/null && break; sleep 0.2; done
modprobe vhost_net && test ! -e ${T}/events/vhost_net && echo stock-module`);
      expect(swap.out, node.name).toMatch(/^stock-module$/m);
      expect((await annotate(node.name, null)).status).toBe(200);
      // Stock mode attaches by vhost_net's BTF, which the kernel gives only to CAP_SYS_ADMIN:
      // under the chart's default capabilities the node says so, and what to do.
      const refused = await eventually(async () => {
        const r = await get<VhostTraceReport>(reportPath(node.name));
        return r?.status?.reason === 'PermissionDenied' ? r : undefined;
      }, 180_000, `${node.name}: stock mode refused, and the report saying why`, 1000);
      expect(refused.status?.message, node.name).toMatch(/load stock-mode programs: Operation not permitted .*CAP_SYS_ADMIN.*agent\.capabilities=\{BPF,PERFMON,SYS_ADMIN\}/);
      expect(refused.status?.total, node.name).toEqual(histogramsOf(traced.get(node.name)!));
      expect(refused.status?.conditions?.find((k) => k.type === 'Detached')).toMatchObject({ status: 'False', reason: 'Reattached' });
    });
    const r = helm('upgrade', 'vhosttrace', 'charts/vhosttrace', '--namespace', NS, '--reuse-values', '--set', 'agent.capabilities={BPF,PERFMON,SYS_ADMIN}', '--wait', '--timeout', '10m');
    expect(r.code, r.out).toBe(0);
    log('helm upgrade to {BPF,PERFMON,SYS_ADMIN} done');
    await each(async (node) => {
      const back = await eventually(async () => {
        const x = await get<VhostTraceReport>(reportPath(node.name));
        return x?.status?.state === 'Reporting' && x.status.mode === 'fentry' ? x : undefined;
      }, 600_000, `${node.name}: Reporting again, in fentry mode`, 2000);
      expect(back.status?.total, node.name).toEqual(histogramsOf(traced.get(node.name)!));
      // The VMs' second round, on the stock module.
      const pods = vmPods.get(node.name)!;
      await vmRound(node, pods, 2, 'kprobes');
      const keys = pods.map((p) => p.key);
      const both = await eventually(async () => {
        const x = await get<VhostTraceReport>(reportPath(node.name));
        return keys.every((k) => rowsOf(x).get(k)?.rx?.packets.count === vmRows([k]).get(k)!.rx.packets.count && rowsOf(x).get(k)?.tx?.packets.count === vmRows([k]).get(k)!.tx.packets.count) ? x : undefined;
      }, 180_000, `${node.name}: every VM's row holding both rounds`, 1000).catch(() => get<VhostTraceReport>(reportPath(node.name)));
      expect(rowsOf(both), node.name).toEqual(vmRows(keys));
      expect(both?.status?.total, node.name).toEqual(histogramsOf(traced.get(node.name)!));
      // The VMs stop (their pods deleted): what they moved stays theirs in the trace.
      const since = new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
      for (const p of pods) expect((await cluster.client.request('DELETE', `/api/v1/namespaces/${p.namespace}/pods/${p.pod}`)).status).toBe(200);
      await eventually(async () => {
        for (const ns of TENANTS) if ((await get<{ items: any[] }>(`/api/v1/namespaces/${ns}/pods?fieldSelector=spec.nodeName%3D${node.name}`)).items.length) return false;
        return true;
      }, 300_000, `${node.name}: the VM pods gone`, 2000);
      const after = await eventually(async () => {
        const x = await get<VhostTraceReport>(reportPath(node.name));
        return (x?.status?.observedTime ?? '') > since ? x : undefined;
      }, 120_000, `${node.name}: a report after the VMs stopped`, 1000);
      expect(rowsOf(after), node.name).toEqual(vmRows(keys));
    });
    await expectSummaryHoldsAll();
  }, 1_200_000);

  it('the network stays in the guests: a pod reaches the API server and nothing else on the host', async () => {
    // A listener on the host's loopback that no forward leads to: restrict=off would reach it.
    const port = await freePort();
    let reached = 0;
    const server: Server = createServer((s) => {
      reached++;
      s.destroy();
    });
    await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
    const apiPort = new URL(cluster.cp.server).port;
    const targets = { api: [HOST_FROM_GUEST, apiPort], host: [HOST_FROM_GUEST, String(port)], alias: ['10.0.2.2', String(port)] };
    // One pod per node tries each target in turn and prints "<what> <outcome>" for each.
    const script = `const net=require('net');const t=${JSON.stringify(targets)};` +
      `(async()=>{for(const[w,[h,p]]of Object.entries(t))console.log(w,await new Promise((r)=>{` +
      `const s=net.connect(Number(p),h);s.setTimeout(8000);s.on('connect',()=>{s.destroy();r('connected')});` +
      `s.on('timeout',()=>{s.destroy();r('timeout')});s.on('error',(e)=>r(e.code))}))})()`;
    const probe = (name: string, nodeName: string) => ({
      apiVersion: 'v1', kind: 'Pod',
      metadata: { name, namespace: NS },
      spec: {
        restartPolicy: 'Never', nodeName,
        containers: [{ name: 'probe', image: `${image.repository}:${image.tag}`, imagePullPolicy: 'Never', command: ['node', '-e', script] }],
      },
    });
    try {
      await each(async (node) => {
        const name = `probe-${node.name}`;
        const r = await cluster.client.request('POST', `/api/v1/namespaces/${NS}/pods`, probe(name, node.name));
        expect(r.status, JSON.stringify(r.body)).toBe(201);
        const phase = await eventually(async () => {
          const p = await get(`/api/v1/namespaces/${NS}/pods/${name}`);
          if (['Succeeded', 'Failed'].includes(p?.status?.phase)) return p.status.phase as string;
          throw new Error(podLine(p));
        }, 300_000, `${name} finished`, 2000);
        expect(phase).toBe('Succeeded');
        // Read through the API server, which reaches the kubelet only through the egress proxy.
        const logs = await cluster.client.request('GET', `/api/v1/namespaces/${NS}/pods/${name}/log`);
        expect(logs.status, JSON.stringify(logs.body)).toBe(200);
        const outcome = Object.fromEntries(String(logs.body).trim().split('\n').map((l) => l.split(' ')));
        expect(Object.keys(outcome), String(logs.body)).toEqual(['api', 'host', 'alias']);
        expect(outcome.api, node.name).toBe('connected');
        for (const w of ['host', 'alias']) expect(outcome[w], `${node.name} ${w}`).not.toBe('connected');
      });
      expect(reached).toBe(0);
      // The API server reaches a kubelet only through the egress proxy (pod logs work) and a
      // pod's own address not at all (the proxy subresource is refused there, not routed out).
      const [op] = await podsOf('app.kubernetes.io/component=operator');
      const logs = await cluster.client.request('GET', `/api/v1/namespaces/${NS}/pods/${op.metadata.name}/log?tailLines=3`);
      expect(logs.status, JSON.stringify(logs.body)).toBe(200);
      expect(String(logs.body)).toMatch(/"level":\d+/);
      const proxied = await cluster.client.request('GET', `/api/v1/namespaces/${NS}/pods/${op.metadata.name}:8080/proxy/metrics`);
      expect(proxied.status).not.toBe(200);
      expect(egress.refused).toContain(`${op.status.podIP}:8080`);
    } finally {
      server.close();
    }
  }, 600_000);

  it('helm upgrade with changed values rolls the operator out (log level, and one agent capability less)', async () => {
    const [before] = await podsOf('app.kubernetes.io/component=operator');
    const r = helm(
      'upgrade', 'vhosttrace', 'charts/vhosttrace', '--namespace', NS, '--reuse-values',
      '--set', 'operator.logLevel=debug', '--set', 'agent.capabilities={PERFMON}', '--wait', '--timeout', '10m',
    );
    expect(r.code, r.out).toBe(0);
    log('helm upgrade (debug, {PERFMON}) done');
    const running = (await podsOf('app.kubernetes.io/component=operator')).filter(
      (p) => p.status.phase === 'Running' && !p.metadata.deletionTimestamp,
    );
    expect(running).toHaveLength(1);
    expect(running[0].metadata.name).not.toBe(before.metadata.name);
    const env = running[0].spec.containers[0].env as { name: string; value?: string }[];
    expect(env.find((e) => e.name === 'LOG_LEVEL')?.value).toBe('debug');
  }, 900_000);

  it("without CAP_BPF (the values override above) the trace's status names each node, PermissionDenied and CAP_BPF", async () => {
    let seen: NodeState[] = [];
    const failing = await eventually(async () => {
      seen = (await nodeStates()).filter((n) => names.includes(n.name));
      // ReportStale first, while the old agents are gone and the new ones start.
      return seen.length === names.length && seen.every((n) => n.state === 'Failed' && n.reason === 'PermissionDenied') ? seen : undefined;
    }, 600_000, `every node Failed with PermissionDenied in the trace's status`, 2000).catch((e: Error) => {
      throw new Error(`${e.message}; the nodes' last states: ${JSON.stringify(seen)}`);
    });
    log('every node PermissionDenied in the status');
    for (const n of failing) expect(n.message, n.name).toMatch(/the agent's container lacks CAP_BPF; add BPF and PERFMON/);
    const t = await get(`${API}/clustervhosttraces/${TRACE}`);
    const ready = (t.status.conditions as { type: string; reason: string; message: string }[]).find((c) => c.type === 'NodesReady');
    expect(ready).toMatchObject({ reason: 'PermissionDenied' });
    for (const n of names) expect(ready?.message).toContain(n);
    for (const p of await agentPods()) expect(p.spec.containers[0].securityContext.capabilities.add).toEqual(['PERFMON']);
    // The counts stay: the report keeps them while no loader runs.
    await each(async (node) => {
      expect((await get<VhostTraceReport>(reportPath(node.name)))?.status?.total, node.name).toEqual(histogramsOf(traced.get(node.name)!));
    });
  }, 1_500_000);

  it('helm uninstall after the trace is gone leaves only the CRDs: no agent pod, DaemonSet or pins', async () => {
    const del = await cluster.client.request('DELETE', `${API}/clustervhosttraces/${TRACE}`);
    expect(del.status).toBe(200);
    await eventually(async () => (await agentPods()).length === 0, 300_000, 'no agent pod', 2000);
    const r = helm('uninstall', 'vhosttrace', '--namespace', NS, '--wait', '--timeout', '5m');
    expect(r.code, r.out).toBe(0);
    await eventually(async () => (await podsOf('app.kubernetes.io/name=vhosttrace')).length === 0, 300_000, 'no vhosttrace pod', 2000);
    const ds = await get<{ items: unknown[] }>(`/apis/apps/v1/namespaces/${NS}/daemonsets`);
    expect(ds.items).toEqual([]);
    const crds = await get<{ items: { metadata: { name: string } }[] }>('/apis/apiextensions.k8s.io/v1/customresourcedefinitions');
    expect(crds.items.map((c) => c.metadata.name).filter((n) => n.endsWith('vhosttrace.io')).length).toBeGreaterThan(0);
    await each(async (node) => {
      const pins = await node.exec('ls -A /sys/fs/bpf/vhosttrace 2>/dev/null | wc -l');
      expect(pins.out.trim(), node.name).toBe('0');
    });
  }, 600_000);
});
