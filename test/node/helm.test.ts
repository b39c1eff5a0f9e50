// The product as a user runs it, on a real node: the image built from the Dockerfile (buildah),
// `helm install` of the chart, the operator and then the agent started by a real kubelet in a
// Debian guest (containerd, runc, CNI, kube-proxy), under the chart's securityContext and hostPath
// mounts. Traffic from the traffic driver on that node is traced, and the report's totals must
// equal its ground truth exactly. The guest's network stays in qemu (restrict=on).
import { execFileSync, spawnSync } from 'node:child_process';
import { createServer, type Server } from 'node:net';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { VhostTraceReport } from '../../src/api/v1alpha1.js';
import { eventually, startCluster, type Cluster } from '../harness/cluster.js';
import { freePort, testBinaries } from '../harness/controlplane.js';
import {
  busyRuns, driverArgs, driverTruth, expectedRuns, histogramsOf, parseTrace, type DriverReport, type RunEvent, type Workload,
} from '../kernel/ground-truth.js';
import { KERNELS, testedKernel, type Kernel } from '../kernel/testbed.js';
import { HOST_FROM_GUEST, NodeEgress, nodeClusterOptions, startNode, type RealNode } from './node.js';

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

describe.each(KERNELS_HERE)('a real node on Debian %s: the image, helm install, the agent as a pod', (kernel) => {
  const nodeName = `node-${kernel.replace('.', '-')}`;
  let cluster: Cluster;
  const egress = new NodeEgress();
  let node: RealNode;
  let helm: (...args: string[]) => { code: number; out: string };
  let image: { repository: string; tag: string };
  const log = (l: string) => console.log(`[${kernel}] ${l}`);

  beforeAll(async () => {
    const k = testedKernel(kernel);
    log(`Debian ${k.version} (linux ${k.release})`);
    const t0 = Date.now();
    const product = archive('test/image/build');
    const pause = archive('test/node/pause-image');
    image = imageRef(product);
    log(`images ready in ${((Date.now() - t0) / 1000).toFixed(0)} s: ${image.repository}:${image.tag}`);
    const bins = await testBinaries(['helm'], log);
    cluster = await startCluster({ extras: ['kube-controller-manager', 'kube-scheduler'], log, ...(await nodeClusterOptions(egress)) });
    helm = (...args: string[]) => {
      const r = spawnSync(bins.helm!, [...args, '--kubeconfig', cluster.kubeconfig], { cwd: REPO, encoding: 'utf8' });
      return { code: r.status ?? -1, out: `${r.stdout}${r.stderr}` };
    };
    node = await startNode({
      cluster,
      egress,
      kernel,
      name: nodeName,
      images: [pause, product],
      labels: { 'kubevirt.io/schedulable': 'true' },
      log,
    });
  }, 1_800_000);

  afterAll(async () => {
    await node?.stop();
    await cluster?.stop();
    egress.stop();
  }, 120_000);

  const get = async <T = any>(path: string) => (await cluster.client.request<T>('GET', path)).body;
  const podsOf = async (selector: string) =>
    (await get<{ items: any[] }>(`/api/v1/namespaces/${NS}/pods?labelSelector=${encodeURIComponent(selector)}`)).items;

  it('helm install runs the operator from the built image on the node', async () => {
    const r = helm(
      'install', 'vhosttrace', 'charts/vhosttrace', '--namespace', NS, '--create-namespace',
      '--set', `image.repository=${image.repository}`, '--set', `image.tag=${image.tag}`, '--set', 'image.pullPolicy=Never',
      '--set', 'operator.replicas=1', '--wait', '--timeout', '10m',
    );
    expect(r.code, r.out).toBe(0);
    const [pod] = await podsOf('app.kubernetes.io/component=operator');
    expect(pod?.spec.nodeName).toBe(nodeName);
    expect(pod?.status.phase).toBe('Running');
    expect(pod?.spec.containers[0].image).toBe(`${image.repository}:${image.tag}`);
  }, 900_000);

  let report: VhostTraceReport | undefined;
  let drivers: DriverReport[] = [];
  let traced: RunEvent[] = [];

  it("a ClusterVhostTrace starts the agent pod under the chart's securityContext, and it reports", async () => {
    const created = await cluster.client.request('POST', `${API}/clustervhosttraces`, {
      apiVersion: 'vhosttrace.io/v1alpha1', kind: 'ClusterVhostTrace', metadata: { name: TRACE }, spec: { interval: '1s' },
    });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const agent = await eventually(async () => {
      const [p] = await podsOf('app.kubernetes.io/component=agent');
      return p?.status.phase === 'Running' ? p : undefined;
    }, 600_000, 'the agent pod Running', 2000);
    expect(agent.spec.nodeName).toBe(nodeName);
    const sc = agent.spec.containers[0].securityContext;
    expect(sc).toMatchObject({
      privileged: false, allowPrivilegeEscalation: false, readOnlyRootFilesystem: true,
      capabilities: { drop: ['ALL'], add: ['BPF', 'PERFMON'] }, seccompProfile: { type: 'RuntimeDefault' },
    });
    // What the kernel gave the container, read in the guest from the agent's own process.
    const status = await node.exec(`grep -E '^(CapEff|Seccomp):' /proc/$(pgrep -f 'dist/agent/main.js' | head -1)/status`);
    expect(status.code, status.out).toBe(0);
    // CAP_PERFMON (38) and CAP_BPF (39) only; seccomp mode 2 (filter).
    expect(status.out).toMatch(/^CapEff:\s+000000c000000000$/m);
    expect(status.out).toMatch(/^Seccomp:\s+2$/m);
    const path = `${API}/namespaces/${NS}/vhosttracereports/cluster.${TRACE}.${nodeName}`;
    await eventually(async () => (await get<VhostTraceReport>(path))?.status?.state === 'Reporting', 600_000, `${path} Reporting`, 2000);
  }, 1_200_000);

  it("traffic on the node is traced: the report's totals equal the driver's ground truth exactly", async () => {
    const run = await node.exec(`
T=/sys/kernel/tracing
echo 8192 > $T/buffer_size_kb; echo 1 > $T/events/vhost_net/enable
echo 0 > $T/tracing_on; echo > $T/trace; echo 1 > $T/tracing_on
${WORKLOADS.map((w) => `vhost-traffic ${driverArgs(w)}`).join('\n')}
sleep 1
echo 0 > $T/tracing_on
echo '--- trace'
cat $T/trace`, 300_000);
    expect(run.code, run.out).toBe(0);
    const [json, trace = ''] = run.out.split('--- trace\n');
    drivers = json!.trim().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as DriverReport);
    expect(drivers).toHaveLength(WORKLOADS.length);
    const parsed = parseTrace(trace);
    expect(parsed.inBuffer).toBe(parsed.written);
    traced = parsed.events;
    for (const dir of ['rx', 'tx'] as const) {
      const want = WORKLOADS.flatMap((w, i) => (w.direction === dir ? expectedRuns(w, drivers[i]!.vnet_hdr_len) : []));
      expect(busyRuns(traced, dir), dir).toEqual(want);
    }
    const runs = (d: 'rx' | 'tx') => traced.filter((e) => e.direction === d).length;
    const path = `${API}/namespaces/${NS}/vhosttracereports/cluster.${TRACE}.${nodeName}`;
    report = await eventually(async () => {
      const r = await get<VhostTraceReport>(path);
      const t = r?.status?.total;
      return t?.rx?.packets.count === runs('rx') && t?.tx?.packets.count === runs('tx') ? r : undefined;
    }, 120_000, 'a report holding every traced run', 1000).catch(async () => get<VhostTraceReport>(path));
    const empty = { rx: traced.filter((e) => e.direction === 'rx' && e.packets === 0).length, tx: traced.filter((e) => e.direction === 'tx' && e.packets === 0).length };
    const truth = histogramsOf(driverTruth(WORKLOADS, drivers, empty));
    expect(histogramsOf(traced)).toEqual(truth);
    expect(report?.status?.mode).toBe('tracepoint');
    expect(report?.status?.total).toEqual(truth);
    for (const dir of ['rx', 'tx'] as const) {
      const moved = drivers.filter((d) => d.direction === dir);
      expect(report!.status!.total![dir]!.packets.sum, dir).toBe(moved.reduce((s, d) => s + d.frames, 0));
      expect(report!.status!.total![dir]!.bytes.sum, dir).toBe(moved.reduce((s, d) => s + d.bytes, 0));
    }
  }, 600_000);

  it('the network stays in the guest: a pod reaches the API server and nothing else on the host', async () => {
    // A listener on the host's loopback that no forward leads to: restrict=off would reach it.
    const port = await freePort();
    let reached = 0;
    const server: Server = createServer((s) => {
      reached++;
      s.destroy();
    });
    await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
    const apiPort = new URL(cluster.cp.server).port;
    const probe = (name: string, host: string, p: string) => ({
      apiVersion: 'v1', kind: 'Pod',
      metadata: { name, namespace: NS },
      spec: {
        restartPolicy: 'Never', nodeName,
        containers: [{
          name: 'probe', image: `${image.repository}:${image.tag}`, imagePullPolicy: 'Never',
          command: ['node', '-e', `const s=require('net').connect(${p},'${host}');s.setTimeout(8000);` +
            `s.on('connect',()=>{console.log('connected');process.exit(0)});` +
            `s.on('timeout',()=>{console.log('timeout');process.exit(1)});s.on('error',e=>{console.log(e.code);process.exit(1)})`],
        }],
      },
    });
    try {
      for (const [name, host, p] of [['probe-api', HOST_FROM_GUEST, apiPort], ['probe-host', HOST_FROM_GUEST, String(port)], ['probe-alias', '10.0.2.2', String(port)]] as const) {
        const r = await cluster.client.request('POST', `/api/v1/namespaces/${NS}/pods`, probe(name, host, p));
        expect(r.status, JSON.stringify(r.body)).toBe(201);
      }
      const phase = (name: string) =>
        eventually(async () => {
          const p = await get(`/api/v1/namespaces/${NS}/pods/${name}`);
          return ['Succeeded', 'Failed'].includes(p?.status?.phase) ? p.status.phase as string : undefined;
        }, 300_000, `${name} finished`, 2000);
      expect(await phase('probe-api')).toBe('Succeeded');
      expect(await phase('probe-host')).toBe('Failed');
      expect(await phase('probe-alias')).toBe('Failed');
      expect(reached).toBe(0);
    } finally {
      server.close();
    }
  }, 600_000);

  it('helm uninstall after the trace is gone leaves only the CRDs: no agent pod, DaemonSet or pins', async () => {
    const del = await cluster.client.request('DELETE', `${API}/clustervhosttraces/${TRACE}`);
    expect(del.status).toBe(200);
    await eventually(async () => (await podsOf('app.kubernetes.io/component=agent')).length === 0, 300_000, 'no agent pod', 2000);
    const r = helm('uninstall', 'vhosttrace', '--namespace', NS, '--wait', '--timeout', '5m');
    expect(r.code, r.out).toBe(0);
    await eventually(async () => (await podsOf('app.kubernetes.io/name=vhosttrace')).length === 0, 300_000, 'no vhosttrace pod', 2000);
    const ds = await get<{ items: unknown[] }>(`/apis/apps/v1/namespaces/${NS}/daemonsets`);
    expect(ds.items).toEqual([]);
    const crds = await get<{ items: { metadata: { name: string } }[] }>('/apis/apiextensions.k8s.io/v1/customresourcedefinitions');
    expect(crds.items.map((c) => c.metadata.name).filter((n) => n.endsWith('vhosttrace.io')).length).toBeGreaterThan(0);
    const pins = await node.exec('ls -A /sys/fs/bpf/vhosttrace 2>/dev/null | wc -l');
    expect(pins.out.trim()).toBe('0');
  }, 600_000);
});
