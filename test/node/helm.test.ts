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
import { eventually, startCluster, tokenKubeconfig, writeReport, type Cluster } from '../harness/cluster.js';
import { TestClient } from '../harness/kube.js';
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

  /** Moves the workloads with the traffic driver in the guest, with the trace buffer as a witness. */
  const traffic = async (workloads: Workload[]) => {
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
      expect(busyRuns(parsed.events, dir), dir).toEqual(want);
    }
    return { drivers: reports, traced: parsed.events };
  };

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
    const first = await traffic(WORKLOADS);
    drivers = first.drivers;
    traced = first.traced;
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

  it("the admission policy takes the token the kubelet projected into the agent pod: its node's report, no other", async () => {
    // /var/run is a symlink to /run in the image; the kubelet's mount is resolved inside it.
    const read = await node.exec(`cat /proc/$(pgrep -f 'dist/agent/main.js' | head -1)/root/run/secrets/kubernetes.io/serviceaccount/token`);
    expect(read.code, read.out).toBe(0);
    const agent = new TestClient(tokenKubeconfig(cluster.cp, 'agent-projected', read.out.trim()));
    const who = await agent.request('POST', '/apis/authentication.k8s.io/v1/selfsubjectreviews', { apiVersion: 'authentication.k8s.io/v1', kind: 'SelfSubjectReview' });
    expect(who.body.status.userInfo.username).toBe(`system:serviceaccount:${NS}:vhosttrace-agent`);
    expect(who.body.status.userInfo.extra['authentication.kubernetes.io/node-name']).toEqual([nodeName]);
    // The agent's own report was written with this token: it is there, by the agent's manager.
    const own = await get(`${API}/namespaces/${NS}/vhosttracereports/cluster.${TRACE}.${nodeName}`);
    expect(own.metadata.managedFields.map((f: { manager: string }) => f.manager)).toContain('vhosttrace-agent');
    const trace = await get(`${API}/clustervhosttraces/${TRACE}`);
    await expect(writeReport(agent, trace, 'another-node', { state: 'Reporting' }, NS)).rejects.toThrow(
      new RegExp(`403.*the agent on node ${nodeName} may write only its own node's reports, not another-node's`),
    );
  }, 300_000);

  it('the agent pod deleted mid-trace: its replacement continues the counts exactly', async () => {
    const [old] = await podsOf('app.kubernetes.io/component=agent');
    const del = await cluster.client.request('DELETE', `/api/v1/namespaces/${NS}/pods/${old.metadata.name}`);
    expect(del.status).toBe(200);
    await eventually(async () => {
      const [p] = await podsOf('app.kubernetes.io/component=agent');
      return p && p.metadata.name !== old.metadata.name && p.status.phase === 'Running' && p.status.containerStatuses?.[0]?.ready;
    }, 600_000, 'a new agent pod Running and ready', 2000);
    const path = `${API}/namespaces/${NS}/vhosttracereports/cluster.${TRACE}.${nodeName}`;
    const since = new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
    await eventually(async () => {
      const r = await get<VhostTraceReport>(path);
      return r?.status?.state === 'Reporting' && (r.status.observedTime ?? '') >= since;
    }, 300_000, 'a report from the new agent', 2000);
    // More traffic, traced by the new agent: the report must hold the old and the new runs.
    const more = await traffic([WORKLOADS[0]!]);
    traced = [...traced, ...more.traced];
    const runs = (d: 'rx' | 'tx') => traced.filter((e) => e.direction === d).length;
    const r = await eventually(async () => {
      const x = await get<VhostTraceReport>(path);
      const t = x?.status?.total;
      return t?.rx?.packets.count === runs('rx') && t?.tx?.packets.count === runs('tx') ? x : undefined;
    }, 120_000, 'a report holding the runs of both agents', 1000).catch(async () => get<VhostTraceReport>(path));
    expect(r?.status?.total).toEqual(histogramsOf(traced));
  }, 1_200_000);

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
      // The API server reaches the kubelet only through the egress proxy (pod logs work) and a
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

  it("without CAP_BPF (the values override above) the trace's status names the node, PermissionDenied and CAP_BPF", async () => {
    type NodeState = { name: string; state: string; reason?: string; message?: string };
    let seen: NodeState | undefined;
    const failing = await eventually(async () => {
      const t = await get(`${API}/clustervhosttraces/${TRACE}`);
      const n = (seen = (t?.status?.nodes as NodeState[] | undefined)?.find((x) => x.name === nodeName));
      // ReportStale first, while the old agent is gone and the new one starts.
      return n?.state === 'Failed' && n.reason === 'PermissionDenied' ? { n, t } : undefined;
    }, 600_000, `${nodeName} Failed with PermissionDenied in the trace's status`, 2000).catch((e: Error) => {
      throw new Error(`${e.message}; the node's last state: ${JSON.stringify(seen)}`);
    });
    expect(failing.n.reason).toBe('PermissionDenied');
    expect(failing.n.message).toMatch(/the agent's container lacks CAP_BPF; add BPF and PERFMON/);
    const ready = (failing.t.status.conditions as { type: string; reason: string; message: string }[]).find((c) => c.type === 'NodesReady');
    expect(ready).toMatchObject({ reason: 'PermissionDenied' });
    expect(ready?.message).toContain(nodeName);
    const [agentPod] = await podsOf('app.kubernetes.io/component=agent');
    expect(agentPod.spec.containers[0].securityContext.capabilities.add).toEqual(['PERFMON']);
    // Back to the chart's default: the node reports again, with its counts.
    const r = helm('upgrade', 'vhosttrace', 'charts/vhosttrace', '--namespace', NS, '--reuse-values', '--set', 'agent.capabilities={BPF,PERFMON}', '--wait', '--timeout', '10m');
    expect(r.code, r.out).toBe(0);
    const path = `${API}/namespaces/${NS}/vhosttracereports/cluster.${TRACE}.${nodeName}`;
    const back = await eventually(async () => {
      const x = await get<VhostTraceReport>(path);
      return x?.status?.state === 'Reporting' ? x : undefined;
    }, 600_000, 'the node Reporting again', 2000);
    expect(back.status?.total).toEqual(histogramsOf(traced));
  }, 1_500_000);

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
