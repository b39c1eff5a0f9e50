// The demo on a real kernel: a Debian 6.12 guest as a Kubernetes node (containerd, kubelet,
// kube-proxy) joined to a real control plane on loopback, the product installed with helm from
// the image built here, KubeVirt-shaped VMs whose compute containers move real traffic through
// /dev/vhost-net, and a VhostTrace applied with kubectl. It prints what kubectl and `kubectl
// vhosttrace` show, and fails unless the trace's status equals the traffic's ground truth (the
// kernel's own vhost_net events, checked against the traffic driver). Run: npm run demo
// (test/demo/start prepares the binaries, kernel and images first).
import { spawnSync } from 'node:child_process';
import { join, resolve } from 'node:path';
import { stringify } from 'yaml';
import { fromValues, summarize } from '../../src/api/histogram.js';
import type { VhostTraceReport } from '../../src/api/v1alpha1.js';
import { eventually, startCluster, type Cluster } from '../harness/cluster.js';
import { testBinaries } from '../harness/controlplane.js';
import { installCRDs } from '../harness/kube.js';
import { VMI_CRD } from '../harness/kubevirt.js';
import type { RunEvent } from '../kernel/ground-truth.js';
import { testedKernel } from '../kernel/testbed.js';
import { archive, imageRef } from '../node/images.js';
import { NodeEgress, nodeClusterOptions, startNode, type RealNode } from '../node/node.js';
import { startVms, vmRound, type VmSpec } from '../node/vms.js';
import { canon, check, say } from './show.js';

const REPO = resolve(import.meta.dirname, '../..');
const KERNEL = '6.12';
const NODE = 'node-1';
const NS = 'prod';
const TRACE = 'batching';
const API = '/apis/vhosttrace.io/v1alpha1';

/** The VMs: "db" has two queue pairs (multiqueue, two vhost-net devices); RX and TX traffic. */
const VMS: VmSpec[] = [
  {
    namespace: NS, name: 'db', queues: [
      [{ name: 'db-rx', direction: 'rx', frames: 200, batch: 50, post: 20, sizes: [64, 1514] }],
      [{ name: 'db-tx', direction: 'tx', frames: 160, batch: 40, sizes: [128, 1514] }],
    ],
  },
  { namespace: NS, name: 'web', queues: [[{ name: 'web-tx', direction: 'tx', frames: 120, batch: 8, sizes: [512, 9014] }, { name: 'web-rx', direction: 'rx', frames: 90, batch: 30, sizes: [256] }]] },
];

const elapsed = (t0: number) => `${((Date.now() - t0) / 1000).toFixed(0)} s`;

async function demo(): Promise<void> {
  const t0 = Date.now();
  const k = testedKernel(KERNEL);
  say(`Images: the product's, built from the Dockerfile with buildah, and the pause image`);
  const product = archive('test/image/build');
  const pause = archive('test/node/pause-image');
  const image = imageRef(product);
  console.log(`  ${image.repository}:${image.tag} (${product})`);
  const bins = await testBinaries(['helm', 'kubectl']);
  const egress = new NodeEgress();
  let cluster: Cluster | undefined;
  let node: RealNode | undefined;
  try {
    say('A control plane on loopback: etcd, kube-apiserver, kube-controller-manager, kube-scheduler');
    cluster = await startCluster({ extras: ['kube-controller-manager', 'kube-scheduler'], log: (l) => console.log(`  ${l}`), ...(await nodeClusterOptions(egress)) });
    const c = cluster;
    const kubectl = (...args: string[]) => {
      // dist/plugin/ on PATH: kubectl finds the plugin `npm run build` bundled there, as krew would put it.
      const env = { ...process.env, PATH: `${join(REPO, 'dist', 'plugin')}:${process.env.PATH}` };
      const r = spawnSync(bins.kubectl!, [...args, '--kubeconfig', c.kubeconfig], { encoding: 'utf8', env });
      if (r.status !== 0) throw new Error(`kubectl ${args.join(' ')}: ${r.stderr}`);
      return r.stdout.trimEnd();
    };
    const show = (...args: string[]) => {
      say(`kubectl ${args.join(' ')}`);
      console.log(kubectl(...args).replace(/^/gm, '  '));
    };

    say(`Booting Debian ${KERNEL} (linux ${k.release}, the patched vhost_net) in qemu as ${NODE}: containerd, kubelet, kube-proxy (TCG: 2-5 minutes)`);
    node = await startNode({
      cluster: c, egress, kernel: KERNEL, name: NODE, images: [pause, product],
      labels: { 'kubevirt.io/schedulable': 'true' },
      log: (l) => console.log(`  [${elapsed(t0)}] ${l}`),
    });
    show('get', 'nodes', '-o', 'wide');

    say('helm install vhosttrace charts/vhosttrace -n vhosttrace-system --create-namespace (about a minute)');
    const helm = spawnSync(bins.helm!, [
      'install', 'vhosttrace', 'charts/vhosttrace', '--namespace', 'vhosttrace-system', '--create-namespace', '--kubeconfig', c.kubeconfig,
      '--set', `image.repository=${image.repository}`, '--set', `image.tag=${image.tag}`, '--set', 'image.pullPolicy=Never',
      '--set', 'operator.replicas=1', '--wait', '--timeout', '10m',
    ], { cwd: REPO, encoding: 'utf8' });
    if (helm.status !== 0) throw new Error(`helm install: ${helm.stdout}${helm.stderr}`);
    console.log(helm.stdout.trimEnd().replace(/^/gm, '  '));

    say(`The VMs: KubeVirt's VirtualMachineInstance objects and their virt-launcher pods in ${NS}`);
    await installCRDs(c.client, 60_000, [VMI_CRD]);
    kubectl('create', 'namespace', NS);
    const trace = { apiVersion: 'vhosttrace.io/v1alpha1', kind: 'VhostTrace', metadata: { name: TRACE, namespace: NS }, spec: { interval: '2s' } };
    const pods = await startVms(c.client, node, VMS, `${image.repository}:${image.tag}`, 1);
    await eventually(async () => {
      const list = (await c.client.request('GET', `/api/v1/namespaces/${NS}/pods`)).body.items as { status: { phase: string } }[];
      return list.length === VMS.length && list.every((p) => p.status.phase === 'Running');
    }, 600_000, 'the virt-launcher pods Running', 2000);
    show('get', 'pods', '-n', NS, '-L', 'kubevirt.io,vmi.kubevirt.io/id');

    say('kubectl apply -f - <<EOF');
    console.log(stringify(trace).trimEnd().replace(/^/gm, '  '));
    console.log('  EOF');
    const applied = spawnSync(bins.kubectl!, ['apply', '-f', '-', '--kubeconfig', c.kubeconfig], { input: JSON.stringify(trace), encoding: 'utf8' });
    if (applied.status !== 0) throw new Error(`kubectl apply: ${applied.stderr}`);
    console.log(`  ${applied.stdout.trim()}`);
    await eventually(async () => {
      const r = await c.client.request<VhostTraceReport>('GET', `${API}/namespaces/${NS}/vhosttracereports/${TRACE}.${NODE}`);
      return r.body?.status?.state === 'Reporting';
    }, 600_000, 'the agent pod started by the DaemonSet, and its first report', 2000);
    show('get', 'pods', '-n', 'vhosttrace-system', '-o', 'wide');

    say('Traffic: each VM\'s drivers move frames through /dev/vhost-net and a tap, one VM at a time, the kernel\'s vhost_net events as the witness');
    const runs = await vmRound(c.client, node, pods, 1, 'events');
    for (const [vm, events] of runs) console.log(`  ${vm}: ${events.filter((e) => e.direction === 'rx').length} RX and ${events.filter((e) => e.direction === 'tx').length} TX runs of the vhost worker`);

    say('Checking the numbers: the status must hold exactly what the kernel counted');
    const all = [...runs.values()].flat();
    const want = (events: RunEvent[], dir: 'rx' | 'tx') => {
      const mine = events.filter((e) => e.direction === dir);
      return { packets: summarize(fromValues(mine.map((e) => e.packets))), bytes: summarize(fromValues(mine.map((e) => e.bytes))) };
    };
    const path = `${API}/namespaces/${NS}/vhosttraces/${TRACE}`;
    const status = await eventually(async () => {
      const s = (await c.client.request('GET', path)).body?.status;
      return canon(s?.summary?.rx) === canon(want(all, 'rx')) && canon(s?.summary?.tx) === canon(want(all, 'tx')) ? s : undefined;
    }, 120_000, "the trace's summary holding every run", 1000).catch(async () => (await c.client.request('GET', path)).body?.status);
    for (const dir of ['rx', 'tx'] as const) check(`the ${dir} histograms of the whole trace`, status?.summary?.[dir], want(all, dir));
    for (const [key, events] of runs) {
      const [ns, name] = key.split('/');
      const s = (status?.vms ?? []).find((v: { namespace: string; name: string }) => v.namespace === ns && v.name === name);
      for (const dir of ['rx', 'tx'] as const) {
        // Per VM the status keeps the summary numbers without buckets (the reports hold those).
        const { packets: { buckets: _p, ...packets }, bytes: { buckets: _b, ...bytes } } = want(events, dir);
        check(`${key}'s ${dir} summary`, s?.[dir], { packets, bytes });
      }
    }

    show('get', 'vht', '-n', NS);
    show('get', 'vhtr', '-n', NS);
    // The plugin (dist/plugin/kubectl-vhosttrace) through the real kubectl: the whole trace, as the seed
    // BCC script printed it, then one VM from its node's report.
    show('vhosttrace', 'show', TRACE, '-n', NS);
    const [first] = runs.keys();
    show('vhosttrace', 'show', TRACE, '-n', NS, '--vm', first!);
    say(`Done in ${elapsed(t0)}. Everything above ran on this machine: no packet left it.`);
  } finally {
    await node?.stop();
    await cluster?.stop();
    egress.stop();
  }
}

demo().then(
  () => process.exit(0),
  (err: Error) => {
    console.error(`demo failed: ${err.stack ?? err.message}`);
    process.exit(1);
  },
);
