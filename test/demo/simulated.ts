// The simulated demo, quick and without a kernel: a real etcd and kube-apiserver, the real
// operator process, two simulated KubeVirt nodes each with a real agent process, and a
// VhostTrace applied as a user would; the kernel side is synthetic loader snapshots that the
// agents replay (test/demo/real.ts runs the real one). Run: npm run demo -- --simulated
import { mkdtempSync, rmSync, writeFileSync, openSync, closeSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { stringify } from 'yaml';
import { fromValues, summarize } from '../../src/api/histogram.js';
import { main as kubectlVhosttrace } from '../../src/cli/main.js';
import { freePort, startControlPlane } from '../harness/controlplane.js';
import { podCgroup, recording, startAgent, type AgentProcess, type Workload } from '../harness/agents.js';
import { installCRDs, TestClient } from '../harness/kube.js';
import { check, say as show } from './show.js';

/** Every heading says it: nothing here comes from a kernel. */
const say = (s: string) => show(`[simulated] ${s}`);

const REPO = resolve(import.meta.dirname, '../..');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A deterministic spread of runs: `n` values, `share` of them from each [value, weight]. */
function runs(n: number, mix: Array<[number, number]>, seed: number): number[] {
  const total = mix.reduce((a, [, w]) => a + w, 0);
  const out: number[] = [];
  let x = seed;
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) % 2 ** 31;
    let r = (x / 2 ** 31) * total;
    const [v] = mix.find(([, w]) => (r -= w) < 0) ?? mix[0]!;
    out.push(v);
  }
  return out;
}

async function table(c: TestClient, path: string): Promise<string> {
  const r = await c.request('GET', path, undefined, { accept: 'application/json;as=Table;v=v1;g=meta.k8s.io' });
  const cols = r.body.columnDefinitions.filter((d: any) => d.priority === 0);
  const idx = cols.map((d: any) => r.body.columnDefinitions.indexOf(d));
  const rows = [cols.map((d: any) => d.name.toUpperCase()), ...r.body.rows.map((row: any) => idx.map((i: number) => String(row.cells[i] ?? '<none>')))];
  const widths = rows[0].map((_: string, i: number) => Math.max(...rows.map((x: string[]) => x[i]!.length)));
  return rows.map((x: string[]) => x.map((v, i) => v.padEnd(widths[i]! + 3)).join('').trimEnd()).join('\n');
}

/** The summaries the replayed runs must roll up to: packets per run, and bytes per run. */
function truth(ws: Workload[], dir: 'rx' | 'tx') {
  const mine = ws.filter((w) => w.direction === dir);
  return {
    packets: summarize(fromValues(mine.flatMap((w) => w.runs))),
    bytes: summarize(fromValues(mine.flatMap((w) => w.runs.map((r) => r * w.frameBytes)))),
  };
}

async function demo(): Promise<void> {
  const work = mkdtempSync(join(tmpdir(), 'vhosttrace-demo-'));
  say('Starting etcd and kube-apiserver on loopback (built from the Go module proxy, cached)');
  const cp = await startControlPlane({ log: (l) => console.log(`  ${l}`) });
  const agents: AgentProcess[] = [];
  let operator: ReturnType<typeof spawn> | undefined;
  try {
    const c = new TestClient(cp.kubeconfig);
    await installCRDs(c);
    console.log('  CRDs installed: vhosttraces, clustervhosttraces, vhosttracereports (vhosttrace.io/v1alpha1)');
    for (const ns of ['prod', 'vhosttrace-system']) {
      await c.request('POST', '/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } });
      // default for pods; vhosttrace-agent owns the agent DaemonSet (the operator makes none without it)
      for (const sa of ['default', 'vhosttrace-agent']) await c.request('POST', `/api/v1/namespaces/${ns}/serviceaccounts`, { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: sa } });
    }

    say('Starting the operator (node dist/operator/main.js)');
    const cfg = join(work, 'operator.yaml');
    writeFileSync(cfg, `metricsPort: ${await freePort()}\n`);
    const fd = openSync(join(work, 'operator.log'), 'a');
    operator = spawn(process.execPath, [join(REPO, 'dist/operator/main.js')], {
      env: { ...process.env, KUBECONFIG: cp.kubeconfig, POD_NAMESPACE: 'vhosttrace-system', POD_NAME: 'demo-operator', VHOSTTRACE_OPERATOR_CONFIG: cfg },
      stdio: ['ignore', fd, fd],
    });
    closeSync(fd);
    console.log(`  logs: ${join(work, 'operator.log')}`);

    say('Two KubeVirt nodes with three VMs (virt-launcher pods), and a node without KubeVirt');
    const vms: Array<[string, string, Array<[number, number]>, number]> = [
      ['node-a', 'db-0', [[0, 15], [1, 70], [2, 8], [5, 4], [40, 3]], 1526],
      ['node-a', 'web-0', [[1, 20], [8, 30], [64, 30], [256, 20]], 1526],
      ['node-b', 'db-1', [[0, 10], [1, 80], [3, 10]], 1526],
    ];
    for (const [node, kubevirt] of [['node-a', true], ['node-b', true], ['node-c', false]] as const) {
      await c.request('POST', '/api/v1/nodes', { apiVersion: 'v1', kind: 'Node', metadata: { name: node, labels: kubevirt ? { 'kubevirt.io/schedulable': 'true' } : {} } });
    }
    const workloads: Record<string, Workload[]> = { 'node-a': [], 'node-b': [] };
    const byVm: Record<string, Workload[]> = {};
    for (const [node, vm, mix, frame] of vms) {
      const pod = await c.request('POST', '/api/v1/namespaces/prod/pods', {
        apiVersion: 'v1', kind: 'Pod',
        metadata: { name: `virt-launcher-${vm}-x7k2p`, labels: { 'kubevirt.io': 'virt-launcher', 'kubevirt.io/created-by': `vmi-${vm}`, 'vm.kubevirt.io/name': vm, app: vm.split('-')[0]! }, annotations: { 'kubevirt.io/domain': vm } },
        spec: { nodeName: node, automountServiceAccountToken: false, containers: [{ name: 'compute', image: 'virt-launcher' }] },
      });
      const id = podCgroup(join(work, node, 'cg'), pod.body.metadata.uid);
      byVm[vm] = [
        { cgroupId: id, direction: 'rx', runs: runs(20_000, mix, id), frameBytes: frame },
        { cgroupId: id, direction: 'tx', runs: runs(15_000, [[0, 5], [1, 90], [2, 5]], id + 1), frameBytes: 66 },
      ];
      workloads[node]!.push(...byVm[vm]!);
      console.log(`  prod/${vm} on ${node}`);
    }

    say('Starting one agent per KubeVirt node (real agent processes replaying synthetic loader snapshots: no kernel)');
    for (const node of ['node-a', 'node-b']) {
      agents.push(startAgent({ node, dir: join(work, node), kubeconfig: cp.kubeconfig, frames: recording(workloads[node]!, 6, 10), frameSeconds: 1, loaderIntervalSeconds: 1 }));
    }

    const trace = { apiVersion: 'vhosttrace.io/v1alpha1', kind: 'VhostTrace', metadata: { name: 'batching', namespace: 'prod' }, spec: { duration: '1m', interval: '2s' } };
    say('kubectl apply -f - <<EOF');
    console.log(stringify(trace).trimEnd().replace(/^/gm, '  '));
    console.log('  EOF');
    await c.apply('/apis/vhosttrace.io/v1alpha1/namespaces/prod/vhosttraces/batching', trace, 'kubectl');

    say('kubectl get vht -n prod   (every 3 s while the agents report)');
    for (let i = 0; i < 7; i++) {
      await sleep(3000);
      console.log(`${(await table(c, '/apis/vhosttrace.io/v1alpha1/namespaces/prod/vhosttraces')).replace(/^/gm, '  ')}\n`);
    }
    const ds = await c.request('GET', '/apis/apps/v1/namespaces/vhosttrace-system/daemonsets');
    console.log(`  the operator's agent DaemonSet: ${ds.body.items.map((d: any) => d.metadata.name).join(', ') || '(none)'}`);

    say('kubectl get vhtr -n prod   (one report per node, written by its agent)');
    console.log((await table(c, '/apis/vhosttrace.io/v1alpha1/namespaces/prod/vhosttracereports')).replace(/^/gm, '  '));

    say('Checking the numbers: the status must hold exactly what the agents replayed');
    const all = Object.values(workloads).flat();
    const path = '/apis/vhosttrace.io/v1alpha1/namespaces/prod/vhosttraces/batching';
    let status: any;
    for (let i = 0; i < 30; i++) {
      status = (await c.request('GET', path)).body?.status;
      if (status?.summary?.rx?.packets?.count === truth(all, 'rx').packets.count && status?.nodesReporting === '2/2') break;
      await sleep(1000);
    }
    check('nodes reporting', status?.nodesReporting, '2/2');
    for (const dir of ['rx', 'tx'] as const) check(`the cluster-wide ${dir} histograms`, status?.summary?.[dir], truth(all, dir));
    for (const [, vm] of vms) {
      const s = (status?.vms ?? []).find((v: any) => v.namespace === 'prod' && v.name === vm);
      // Per VM the status keeps the summary numbers without buckets (the reports hold those).
      const t = (dir: 'rx' | 'tx') => {
        const { packets: { buckets: _p, ...packets }, bytes: { buckets: _b, ...bytes } } = truth(byVm[vm]!, dir);
        return { packets, bytes };
      };
      for (const dir of ['rx', 'tx'] as const) check(`prod/${vm}'s ${dir} summary`, s?.[dir], t(dir));
    }

    process.env.KUBECONFIG = cp.kubeconfig;
    say('kubectl vhosttrace hist batching -n prod   (cluster-wide, as the seed BCC script printed it)');
    await kubectlVhosttrace(['hist', 'batching', '-n', 'prod']);
    say('kubectl vhosttrace hist batching -n prod --vm prod/web-0   (one VM, from the reports)');
    await kubectlVhosttrace(['hist', 'batching', '-n', 'prod', '--vm', 'prod/web-0']);
    say(`Done (simulated: the numbers are synthetic; \`npm run demo\` runs the real kernel).${process.env.VHOSTTRACE_KEEP_DEMO ? ` Files and logs: ${work}` : " (VHOSTTRACE_KEEP_DEMO=1 keeps the logs and files)"}`);
  } finally {
    await Promise.all(agents.map((a) => a.stop().catch(() => {})));
    operator?.kill('SIGTERM');
    await cp.stop();
    if (!process.env.VHOSTTRACE_KEEP_DEMO) rmSync(work, { recursive: true, force: true });
  }
}

demo().then(
  () => process.exit(0),
  (err: Error) => {
    console.error(`demo failed: ${err.stack ?? err.message}`);
    process.exit(1);
  },
);
