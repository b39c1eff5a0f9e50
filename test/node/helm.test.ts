// The product as a user runs it, on real nodes: the image built from the Dockerfile (buildah),
// `helm install` of the chart, the operator and then the agents started by real kubelets in
// Debian guests (containerd, runc, CNI, kube-proxy), one node per kernel (6.12 and 6.1) in one
// cluster, under the chart's securityContext and hostPath mounts. Traffic from the traffic
// driver on each node is traced, and each report's totals must equal that node's ground truth
// exactly. The guests' networks stay in qemu (restrict=on).
import { execFileSync, spawnSync } from 'node:child_process';
import { createServer, type Server } from 'node:net';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fromValues } from '../../src/api/histogram.js';
import type { VhostTraceReport } from '../../src/api/v1alpha1.js';
import { eventually, startCluster, tokenKubeconfig, writeReport, type Cluster } from '../harness/cluster.js';
import { installCRDs, TestClient } from '../harness/kube.js';
import { createVmi, launcherPod, VMI_CRD } from '../harness/kubevirt.js';
import { freePort, testBinaries } from '../harness/controlplane.js';
import {
  busyRuns, driverArgs, driverTruth, expectedRuns, histogramsOf, parseTrace, type DriverReport, type RunEvent, type Workload,
} from '../kernel/ground-truth.js';
import { KERNELS, testedKernel, type Kernel } from '../kernel/testbed.js';
import { HOST_FROM_GUEST, NodeEgress, nodeClusterOptions, podCidr, startNode, type RealNode } from './node.js';

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
const VMS: { namespace: string; name: string; queues: Workload[][] }[] = [
  { namespace: 'tenant-a', name: 'web', queues: [[{ name: 'web-tx', direction: 'tx', frames: 60, batch: 20, sizes: [512] }]] },
  {
    namespace: 'tenant-a', name: 'db', queues: [
      [{ name: 'db-rx', direction: 'rx', frames: 90, batch: 45, post: 15, sizes: [64, 1514] }],
      [{ name: 'db-tx', direction: 'tx', frames: 80, batch: 40, sizes: [128, 1514] }],
    ],
  },
  { namespace: 'tenant-b', name: 'cache', queues: [[{ name: 'cache-rx', direction: 'rx', frames: 70, batch: 35, sizes: [256] }]] },
];

/** Both directions, an empty histogram pair where there were no runs (as reports write them). */
const withBoth = (h: ReturnType<typeof histogramsOf>) => {
  const none = () => ({ packets: fromValues([]), bytes: fromValues([]) });
  return { rx: h.rx ?? none(), tx: h.tx ?? none() };
};

/** The last stdout line of a build script: the OCI archive it made or found in its cache. */
function archive(script: string): string {
  const r = spawnSync(join(REPO, script), { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  if (r.status !== 0) throw new Error(`${script} failed:\n${r.stderr}`);
  return r.stdout.trim().split('\n').pop()!;
}

/** The image's name as the archive carries it (buildah's oci-archive ref), for the chart. */
function imageRef(archivePath: string): { repository: string; tag: string } {
  const index = JSON.parse(execFileSync('tar', ['-xOf', archivePath, 'index.json'], { encoding: 'utf8' })) as {
    manifests: { annotations?: Record<string, string> }[];
  };
  const ref = index.manifests[0]?.annotations?.['org.opencontainers.image.ref.name'] ?? '';
  const at = ref.lastIndexOf(':');
  if (at <= 0) throw new Error(`${archivePath}: no image name in index.json (got "${ref}")`);
  return { repository: ref.slice(0, at), tag: ref.slice(at + 1) };
}

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

  /**
   * Runs the VMs on a node, each a VMI and its virt-launcher pod whose compute container runs
   * the traffic driver (one process per queue pair, at once) and then stays up as a VM would.
   * The pods start together; each waits for its gate file, which the test makes one VM at a
   * time, after a trace marker: the runs after a VM's marker are that VM's. Returns each VM's
   * runs ("namespace/name" -> runs).
   */
  const runVms = async (node: RealNode): Promise<Map<string, RunEvent[]>> => {
    const T = '/sys/kernel/tracing';
    const GATES = '/run/vhosttrace/gates';
    const on = await node.exec(`mkdir -p ${GATES}; echo 8192 > ${T}/buffer_size_kb; echo 1 > ${T}/events/vhost_net/enable; echo 0 > ${T}/tracing_on; echo > ${T}/trace; echo 1 > ${T}/tracing_on`);
    expect(on.code, on.out).toBe(0);
    const pods = await Promise.all(VMS.map(async (vm) => {
      const name = `${vm.name}-${node.name}`;
      const vmi = await createVmi(cluster.client, vm.namespace, name, { app: vm.name }, vm.queues.length);
      // One driver per queue pair, at once; each runs its workloads in turn. Then the "VM" idles.
      const script = [
        `while [ ! -e /gate/${name} ]; do sleep 0.2; done`,
        ...vm.queues.map((q, i) => `(${q.map((w) => `/driver/vhost-traffic ${driverArgs(w)}`).join(' && ')}) & q${i}=$!`),
        `if ${vm.queues.map((_, i) => `wait $q${i}`).join(' && ')}; then echo vm-done; else echo vm-failed; fi`,
        'exec sleep 1000000',
      ].join('\n');
      // Privileged and root (the image's user is 65532) for /dev/vhost-net, /dev/net/tun and
      // TUNSETIFF, which KubeVirt's device plugins and virt-launcher's capabilities would give.
      const pod = launcherPod(
        vmi, node.name,
        {
          image: `${image.repository}:${image.tag}`, imagePullPolicy: 'Never', command: ['/bin/sh', '-c', script],
          securityContext: { privileged: true, runAsUser: 0, runAsGroup: 0 },
          volumeMounts: [{ name: 'driver', mountPath: '/driver', readOnly: true }, { name: 'gate', mountPath: '/gate', readOnly: true }],
        },
        {
          restartPolicy: 'Never', terminationGracePeriodSeconds: 1,
          volumes: [{ name: 'driver', hostPath: { path: '/run/vhosttrace/bin', type: 'Directory' } }, { name: 'gate', hostPath: { path: GATES, type: 'Directory' } }],
        },
      );
      const created = await cluster.client.request('POST', `/api/v1/namespaces/${vm.namespace}/pods`, pod);
      expect(created.status, JSON.stringify(created.body)).toBe(201);
      return { key: `${vm.namespace}/${name}`, name, namespace: vm.namespace, pod: pod.metadata.name };
    }));
    const drivers = new Map<string, DriverReport[]>();
    for (const p of pods) {
      const go = await node.exec(`echo 'vm ${p.key}' > ${T}/trace_marker && touch ${GATES}/${p.name}`);
      expect(go.code, go.out).toBe(0);
      const logs = await eventually(async () => {
        const l = await cluster.client.request('GET', `/api/v1/namespaces/${p.namespace}/pods/${p.pod}/log`);
        const text = l.status === 200 ? String(l.body) : '';
        return /^vm-(done|failed)$/m.test(text) ? text : undefined;
      }, 600_000, `${p.key}: its drivers done`, 1000);
      expect(logs, p.key).toMatch(/^vm-done$/m);
      drivers.set(p.key, logs.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as DriverReport));
    }
    const off = await node.exec(`sleep 1; echo 0 > ${T}/tracing_on; cat ${T}/trace`);
    expect(off.code).toBe(0);
    const whole = parseTrace(off.out);
    expect(whole.inBuffer).toBe(whole.written);
    const header = off.out.split('\n').filter((l) => l.startsWith('#')).join('\n');
    const runs = new Map<string, RunEvent[]>();
    const marks = [...drivers.keys()].map((k) => off.out.indexOf(`tracing_mark_write: vm ${k}`));
    [...drivers].forEach(([k, reports], i) => {
      expect(marks[i], `marker of ${k}`).toBeGreaterThan(0);
      const events = parseTrace(`${header}\n${off.out.slice(marks[i], marks[i + 1] ?? undefined)}`).events;
      // Each workload's busy runs are the ones its batching implies (the driver's ground truth).
      const workloads = VMS.find((v) => k.startsWith(`${v.namespace}/${v.name}-`))!.queues.flat();
      for (const dir of ['rx', 'tx'] as const) {
        const want = workloads.flatMap((w) => (w.direction === dir ? expectedRuns(w, reports.find((r) => r.direction === dir)!.vnet_hdr_len) : []));
        expect(busyRuns(events, dir), `${node.name} ${k} ${dir}`).toEqual(want);
      }
      runs.set(k, events);
      traced.get(node.name)!.push(...events);
    });
    return runs;
  };

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
      const truth = await runVms(node);
      /** A report's VM rows by name, each as {rx, tx}. */
      const rowsOf = (r: VhostTraceReport | undefined) => new Map((r?.status?.vms ?? []).map((v) => [`${v.namespace}/${v.name}`, { rx: v.rx, tx: v.tx }]));
      const want = (vms: string[]) => new Map(vms.map((k) => [k, withBoth(histogramsOf(truth.get(k)!))]));
      const all = [...truth.keys()];
      const clusterReport = await eventually(async () => {
        const r = await get<VhostTraceReport>(reportPath(node.name));
        return all.every((k) => rowsOf(r).get(k)?.rx?.packets.count === withBoth(histogramsOf(truth.get(k)!)).rx.packets.count) ? r : undefined;
      }, 180_000, `${node.name}: the cluster trace's report listing every VM with all its runs`, 1000).catch(() => get<VhostTraceReport>(reportPath(node.name)));
      expect(rowsOf(clusterReport), node.name).toEqual(want(all));
      // Only the traffic moved outside any pod (the node-level step) is unattributed.
      const outside = traced.get(node.name)!.slice(0, traced.get(node.name)!.length - all.reduce((n, k) => n + truth.get(k)!.length, 0));
      expect(clusterReport?.status?.unattributed, node.name).toEqual(withBoth(histogramsOf(outside)));
      const mine = all.filter((k) => k.startsWith(`${TENANTS[0]}/`));
      const tenantReport = await eventually(async () => {
        const r = await get<VhostTraceReport>(`${API}/namespaces/${TENANTS[0]}/vhosttracereports/${TENANT_TRACE}.${node.name}`);
        return mine.every((k) => rowsOf(r).get(k)?.rx?.packets.count === withBoth(histogramsOf(truth.get(k)!)).rx.packets.count) ? r : undefined;
      }, 120_000, `${node.name}: ${TENANTS[0]}'s report with its VMs`, 1000);
      expect(rowsOf(tenantReport), node.name).toEqual(want(mine));
      expect(tenantReport.status?.unattributed).toBeUndefined();
      expect(tenantReport.status?.total, node.name).toEqual(withBoth(histogramsOf(mine.flatMap((k) => truth.get(k)!))));
      // The VMs stop (their pods deleted): what they moved stays theirs in the trace.
      const since = new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
      for (const k of all) {
        const [ns, name] = k.split('/');
        const pods = (await get<{ items: any[] }>(`/api/v1/namespaces/${ns}/pods?labelSelector=${encodeURIComponent(`vmi.kubevirt.io/id=${name}`)}`)).items;
        expect(pods, k).toHaveLength(1);
        expect((await cluster.client.request('DELETE', `/api/v1/namespaces/${ns}/pods/${pods[0].metadata.name}`)).status).toBe(200);
      }
      await eventually(async () => {
        for (const ns of TENANTS) if ((await get<{ items: any[] }>(`/api/v1/namespaces/${ns}/pods?fieldSelector=spec.nodeName%3D${node.name}`)).items.length) return false;
        return true;
      }, 300_000, `${node.name}: the VM pods gone`, 2000);
      const after = await eventually(async () => {
        const r = await get<VhostTraceReport>(reportPath(node.name));
        return (r?.status?.observedTime ?? '') > since ? r : undefined;
      }, 120_000, `${node.name}: a report after the VMs stopped`, 1000);
      expect(rowsOf(after), node.name).toEqual(want(all));
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
          return ['Succeeded', 'Failed'].includes(p?.status?.phase) ? p.status.phase as string : undefined;
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
    for (const n of failing) expect(n.message, n.name).toMatch(/the agent's container lacks CAP_BPF; add BPF and PERFMON/);
    const t = await get(`${API}/clustervhosttraces/${TRACE}`);
    const ready = (t.status.conditions as { type: string; reason: string; message: string }[]).find((c) => c.type === 'NodesReady');
    expect(ready).toMatchObject({ reason: 'PermissionDenied' });
    for (const n of names) expect(ready?.message).toContain(n);
    for (const p of await agentPods()) expect(p.spec.containers[0].securityContext.capabilities.add).toEqual(['PERFMON']);
    // Back to the chart's default: the nodes report again, with their counts.
    const r = helm('upgrade', 'vhosttrace', 'charts/vhosttrace', '--namespace', NS, '--reuse-values', '--set', 'agent.capabilities={BPF,PERFMON}', '--wait', '--timeout', '10m');
    expect(r.code, r.out).toBe(0);
    await each(async (node) => {
      const back = await eventually(async () => {
        const x = await get<VhostTraceReport>(reportPath(node.name));
        return x?.status?.state === 'Reporting' ? x : undefined;
      }, 600_000, `${node.name} Reporting again`, 2000);
      expect(back.status?.total, node.name).toEqual(histogramsOf(traced.get(node.name)!));
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
