// KubeVirt-shaped VMs on a real node, for the node test and the demo: each a VMI and its
// virt-launcher pod whose compute container runs the traffic driver in rounds, and the witness
// (the trace buffer) that splits a round's runs by VM and checks them against the driver.
import { eventually } from '../harness/cluster.js';
import type { TestClient } from '../harness/kube.js';
import { createVmi, launcherPod } from '../harness/kubevirt.js';
import {
  busyRuns, driverArgs, expectedRuns, KPROBE_OFF, KPROBE_ON, kprobeHits, parseTrace, type DriverReport, type RunEvent, type Workload,
} from '../kernel/ground-truth.js';
import type { RealNode } from './node.js';

/** A VM: one driver per queue pair (multiqueue: one vhost-net device each), run at once. */
export interface VmSpec {
  namespace: string;
  name: string;
  queues: Workload[][];
}

export interface VmPod {
  /** "namespace/name" of the VMI (the VM's name in reports). */
  key: string;
  name: string;
  namespace: string;
  pod: string;
  spec: VmSpec;
}

/** How a round's runs are witnessed: the patched module's events, or kprobes on the stock one. */
export type Witness = 'events' | 'kprobes';

const T = '/sys/kernel/tracing';
const GATES = '/run/vhosttrace/gates';

/**
 * Starts the VMs on a node (VMI names get the node's name appended). The compute container
 * runs the drivers once per round, when the round's gate file appears, and in between stays up
 * as a VM would (holding no /dev/vhost-net: its drivers have exited).
 */
export async function startVms(client: TestClient, node: RealNode, vms: VmSpec[], image: string, rounds: number): Promise<VmPod[]> {
  const dir = await node.exec(`mkdir -p ${GATES}`);
  if (dir.code !== 0) throw new Error(`${node.name}: mkdir ${GATES}: ${dir.out}`);
  return Promise.all(vms.map(async (vm) => {
    const name = `${vm.name}-${node.name}`;
    const vmi = await createVmi(client, vm.namespace, name, { app: vm.name }, vm.queues.length);
    const script = [
      `for round in $(seq ${rounds}); do`,
      `  while [ ! -e /gate/${name}.$round ]; do sleep 0.2; done`,
      ...vm.queues.map((q, i) => `  (${q.map((w) => `/driver/vhost-traffic ${driverArgs(w)}`).join(' && ')}) & q${i}=$!`),
      `  if ${vm.queues.map((_, i) => `wait $q${i}`).join(' && ')}; then echo vm-done-$round; else echo vm-failed-$round; fi`,
      'done',
      'exec sleep 1000000',
    ].join('\n');
    // Privileged and root (the image's user is 65532) for /dev/vhost-net, /dev/net/tun and
    // TUNSETIFF, which KubeVirt's device plugins and virt-launcher's capabilities would give.
    const pod = launcherPod(
      vmi, node.name,
      {
        image, imagePullPolicy: 'Never', command: ['/bin/sh', '-c', script],
        securityContext: { privileged: true, runAsUser: 0, runAsGroup: 0 },
        volumeMounts: [{ name: 'driver', mountPath: '/driver', readOnly: true }, { name: 'gate', mountPath: '/gate', readOnly: true }],
      },
      {
        restartPolicy: 'Never', terminationGracePeriodSeconds: 1,
        volumes: [{ name: 'driver', hostPath: { path: '/run/vhosttrace/bin', type: 'Directory' } }, { name: 'gate', hostPath: { path: GATES, type: 'Directory' } }],
      },
    );
    const created = await client.request('POST', `/api/v1/namespaces/${vm.namespace}/pods`, pod);
    if (created.status !== 201) throw new Error(`pod of ${vm.namespace}/${name}: ${JSON.stringify(created.body)}`);
    return { key: `${vm.namespace}/${name}`, name, namespace: vm.namespace, pod: pod.metadata.name, spec: vm };
  }));
}

/**
 * One round of the VMs' traffic on a node; returns the round's runs per VM key. The VMs go one
 * at a time, each after a trace marker, so the trace splits into each VM's runs. With the
 * patched module its vhost_net events are every run, and each workload's busy runs must be the
 * ones the driver's batching implies; on the stock module kprobes on handle_rx/handle_tx count
 * the runs and the driver's batching gives the busy ones (the rest moved nothing).
 */
export async function vmRound(client: TestClient, node: RealNode, pods: VmPod[], round: number, witness: Witness): Promise<Map<string, RunEvent[]>> {
  const on = await node.exec(`echo 8192 > ${T}/buffer_size_kb; ${witness === 'events' ? `echo 1 > ${T}/events/vhost_net/enable` : KPROBE_ON(T)}; echo 0 > ${T}/tracing_on; echo > ${T}/trace; echo 1 > ${T}/tracing_on`);
  if (on.code !== 0) throw new Error(`${node.name}: tracing on (${witness}): ${on.out}`);
  const drivers = new Map<string, DriverReport[]>();
  for (const p of pods) {
    const go = await node.exec(`echo 'vm ${p.key}' > ${T}/trace_marker && touch ${GATES}/${p.name}.${round}`);
    if (go.code !== 0) throw new Error(`${node.name}: gate of ${p.key}: ${go.out}`);
    const end = new RegExp(`^vm-(done|failed)-${round}$`, 'm');
    const logs = await eventually(async () => {
      const l = await client.request('GET', `/api/v1/namespaces/${p.namespace}/pods/${p.pod}/log`);
      const text = l.status === 200 ? String(l.body) : '';
      return end.test(text) ? text : undefined;
    }, 600_000, `${p.key}: its drivers done (round ${round})`, 1000);
    if (!new RegExp(`^vm-done-${round}$`, 'm').test(logs)) throw new Error(`${p.key}: a driver failed in round ${round}:\n${logs}`);
    // This round's driver reports: after the last round's end line.
    const mine = round > 1 ? logs.slice(logs.indexOf(`vm-done-${round - 1}`)) : logs;
    drivers.set(p.key, mine.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as DriverReport));
  }
  const off = await node.exec(`sleep 1; echo 0 > ${T}/tracing_on; cat ${T}/trace${witness === 'kprobes' ? `; ${KPROBE_OFF(T)}` : ''}`);
  if (off.code !== 0) throw new Error(`${node.name}: reading the trace: ${off.out.slice(-2000)}`);
  const whole = parseTrace(off.out);
  if (whole.inBuffer !== whole.written) throw new Error(`${node.name}: the trace buffer overran (${whole.inBuffer} of ${whole.written} entries kept)`);
  const header = off.out.split('\n').filter((l) => l.startsWith('#')).join('\n');
  const runs = new Map<string, RunEvent[]>();
  const keys = [...drivers.keys()];
  keys.forEach((k, i) => {
    const from = off.out.indexOf(`tracing_mark_write: vm ${k}`);
    const to = i + 1 < keys.length ? off.out.indexOf(`tracing_mark_write: vm ${keys[i + 1]}`) : undefined;
    if (from < 0) throw new Error(`${node.name}: no trace marker for ${k}`);
    const segment = off.out.slice(from, to);
    const reports = drivers.get(k)!;
    const workloads = pods.find((p) => p.key === k)!.spec.queues.flat();
    const busy = (dir: 'rx' | 'tx') => workloads.flatMap((w) => (w.direction === dir ? expectedRuns(w, reports.find((r) => r.direction === dir)!.vnet_hdr_len) : []));
    const events: RunEvent[] = [];
    if (witness === 'events') {
      events.push(...parseTrace(`${header}\n${segment}`).events);
      for (const dir of ['rx', 'tx'] as const) {
        const got = JSON.stringify(busyRuns(events, dir));
        if (got !== JSON.stringify(busy(dir))) throw new Error(`${node.name} ${k} ${dir}: the traced busy runs are not the driver's:\n  traced ${got}\n  driver ${JSON.stringify(busy(dir))}`);
      }
    } else {
      const hits = kprobeHits(segment);
      for (const dir of ['rx', 'tx'] as const) {
        const b = busy(dir);
        if (hits[dir] < b.length) throw new Error(`${node.name} ${k} ${dir}: ${hits[dir]} calls of handle_${dir}, fewer than the driver's ${b.length} busy runs`);
        events.push(...b, ...Array.from({ length: hits[dir] - b.length }, () => ({ direction: dir, packets: 0, bytes: 0 })));
      }
    }
    runs.set(k, events);
  });
  return runs;
}
