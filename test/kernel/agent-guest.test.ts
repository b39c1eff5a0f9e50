// The whole node side for real: the agent (node dist/agent/main.js) runs the real loader
// (bpf/.output/vhost-hist --json --pin) inside a Debian guest with the patched vhost_net, and
// reports to a real kube-apiserver on the host, which the guest reaches over qemu's user-mode
// network (kernel/testbed/run --net user --forward PORT: 10.0.2.100:PORT is the host's loopback). The traffic driver's
// vhost worker belongs to no pod, so a ClusterVhostTrace shows its runs as unattributed; the
// report's histograms must equal the ground truth exactly: the driver's runs (as batching
// implies them) plus the empty runs the trace buffer saw, with sums equal to the frames and
// bytes the driver moved.
//
// Host and guest take turns through files in the shared output directory: the guest starts the
// agent, the host writes `go` once the agent's report says Reporting (its ledger is open), the
// guest moves traffic and writes `traffic-done`, the host writes `stop` once a report holds all
// of it (or after a timeout), the guest stops the agent with SIGTERM.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { VhostTraceReport } from '../../src/api/v1alpha1.js';
import { kubeconfigYaml, startControlPlane, type ControlPlane } from '../harness/controlplane.js';
import { installCRDs, TestClient } from '../harness/kube.js';
import {
  bufferBytes, busyRuns, driverArgs, driverTruth, expectedRuns, histogramsOf, parseTrace,
  type Direction as Dir, type DriverReport, type RunEvent, type Workload,
} from './ground-truth.js';
import type { Kernel } from './testbed.js';

const REPO = resolve(import.meta.dirname, '../..');
const RUN = join(REPO, 'kernel/testbed/run');
const LOADER = join(REPO, 'bpf/.output/vhost-hist');
const NS = 'vhosttrace-system';
const TRACE = 'guest';
const KERNELS_HERE: Kernel[] = ['6.12', '6.1'];

const WORKLOADS: Workload[] = [
  { name: 'tx-batch32-mixed', direction: 'tx', frames: 100, batch: 32, sizes: [64, 1514] },
  { name: 'rx-packet-weight', direction: 'rx', frames: 300, batch: 300, ring: 512, sizes: [60, 61, 62] },
  { name: 'tx-byte-weight', direction: 'tx', frames: 150, batch: 150, sizes: [9014] },
  { name: 'rx-starved-mixed', direction: 'rx', frames: 100, batch: 50, post: 16, sizes: [64, 1514, 9014] },
];

/** The guest's part. Waits are bounded so a host that never answers cannot hang the guest. */
function guestScript(node: string, kubeconfig: string): string {
  return `
O=$VT_OUT
uname -r > "$O/krel"
wait_host() { # FILE SECONDS: wait for the host, while the agent lives
  for _ in $(seq $(( $2 * 5 ))); do
    [ -e "$1" ] && return 0
    kill -0 "$AGENT" 2>/dev/null || { echo "agent exited before $1"; return 1; }
    sleep 0.2
  done
  echo "no $1 from the host after $2 s"; return 1
}
mkdir -p /run/vhosttrace-state /sys/fs/cgroup/qemu-outside
NODE_NAME=${node} POD_NAMESPACE=${NS} KUBECONFIG=${kubeconfig} PORT=0 \\
VHOSTTRACE_LOADER="${LOADER} --json --pin -i 1" VHOSTTRACE_LOADER_STOP="${LOADER} --stop" \\
VHOSTTRACE_STATE_DIR=/run/vhosttrace-state VHOSTTRACE_PROC_ROOT=/proc \\
  node dist/agent/main.js > "$O/agent.log" 2>&1 & AGENT=$!
wait_host "$O/go" 400
# Ground truth of every run: the trace buffer, beside the agent's loader.
T=/sys/kernel/tracing
echo 8192 > $T/buffer_size_kb; echo 1 > $T/events/vhost_net/enable
echo 0 > $T/tracing_on; echo > $T/trace; echo 1 > $T/tracing_on
${WORKLOADS.map((w) => `(echo $BASHPID > /sys/fs/cgroup/qemu-outside/cgroup.procs; exec vhost-traffic ${driverArgs(w)}) > "$O/${w.name}.json"`).join('\n')}
sleep 1
echo 0 > $T/tracing_on; cat $T/trace > "$O/trace.txt"
touch "$O/traffic-done"
wait_host "$O/stop" 200
kill -TERM $AGENT
rc=0; wait $AGENT || rc=$?
echo "agent exit=$rc"
ls /sys/fs/bpf/vhosttrace > "$O/pins.txt" || true
`;
}

interface Guest {
  outDir: string;
  /** Set once the run script has returned. */
  exited?: number;
  done: Promise<number>;
  log: () => string;
}

function startGuest(kernel: Kernel, script: string, dir: string, apiPort: string): Guest {
  const outDir = join(dir, 'out');
  const scriptPath = join(dir, 'guest.sh');
  writeFileSync(scriptPath, `set -euo pipefail\n${script}`, { mode: 0o755 });
  const args = ['--kernel', kernel, '--net', 'user', '--forward', apiPort, '--script', scriptPath, '--out', outDir, '--timeout', '900'];
  const child = spawn(RUN, args, {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (log += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (log += d));
  const g: Guest = {
    outDir,
    log: () => log,
    done: new Promise<number>((res) => child.on('close', (c) => res(c ?? -1))),
  };
  void g.done.then((c) => (g.exited = c));
  return g;
}

function tail(file: string, n = 30): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-n).join('\n');
  } catch {
    return `(no ${file})`;
  }
}

function guestTrouble(g: Guest): string {
  return `--- test bed ---\n${g.log()}\n--- agent.log (tail) ---\n${tail(join(g.outDir, 'agent.log'))}\n--- console (tail) ---\n${tail(join(g.outDir, 'console.log'))}`;
}

/** Polls `get` until it returns a value; fails when time is up or the guest has exited. */
async function until<T>(g: Guest, what: string, get: () => Promise<T | undefined>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await get().catch(() => undefined);
    if (v !== undefined) return v;
    if (g.exited !== undefined) throw new Error(`guest exited (${g.exited}) while waiting for ${what}\n${guestTrouble(g)}`);
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}\n${guestTrouble(g)}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

let cp: ControlPlane;
let c: TestClient;
let work: string;

beforeAll(async () => {
  // The guest runs the host's files over 9p: build the loader and the agent here.
  const make = spawnSync('flock', ['/tmp/vhosttrace-bpf-build.lock', 'make', '-s', '-C', join(REPO, 'bpf')], { encoding: 'utf8' });
  if (make.status !== 0) throw new Error(`make -C bpf failed:\n${make.stdout}${make.stderr}`);
  const tsc = spawnSync('npx', ['tsc', '-p', 'tsconfig.build.json'], { cwd: REPO, encoding: 'utf8' });
  if (tsc.status !== 0) throw new Error(`tsc failed:\n${tsc.stdout}${tsc.stderr}`);
  cp = await startControlPlane();
  c = new TestClient(cp.kubeconfig);
  await installCRDs(c);
  work = mkdtempSync(join(tmpdir(), 'vhosttrace-agent-guest-'));
  await c.request('POST', '/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: NS } });
  const r = await c.request('POST', '/apis/vhosttrace.io/v1alpha1/clustervhosttraces', {
    apiVersion: 'vhosttrace.io/v1alpha1', kind: 'ClusterVhostTrace', metadata: { name: TRACE }, spec: { interval: '1s' },
  });
  if (r.status !== 201) throw new Error(`ClusterVhostTrace: ${JSON.stringify(r.body)}`);
}, 600_000);

afterAll(async () => {
  await cp?.stop();
  if (work && !process.env.VHOSTTRACE_KEEP_CONTROL_PLANE) rmSync(work, { recursive: true, force: true });
});

describe.each(KERNELS_HERE)('the agent in a Debian %s guest', (kernel) => {
  const node = `guest-${kernel.replace('.', '-')}`;
  let g: Guest;
  let report: VhostTraceReport;
  let drivers: DriverReport[];
  let traced: RunEvent[];
  let traceLost: string;

  beforeAll(async () => {
    const dir = mkdtempSync(join(work, `${node}-`));
    const created = await c.request('POST', '/api/v1/nodes', {
      apiVersion: 'v1', kind: 'Node', metadata: { name: node, labels: { 'kubevirt.io/schedulable': 'true' } },
    });
    if (created.status !== 201) throw new Error(`node: ${JSON.stringify(created.body)}`);
    // The guest's view of the API server: qemu's forward to the host's loopback, same port.
    const port = new URL(cp.server).port;
    const kubeconfig = join(dir, 'kubeconfig-guest');
    writeFileSync(kubeconfig, kubeconfigYaml(`https://10.0.2.100:${port}`, cp.pki));
    g = startGuest(kernel, guestScript(node, kubeconfig), dir, port);
    const path = `/apis/vhosttrace.io/v1alpha1/namespaces/${NS}/vhosttracereports/cluster.${TRACE}.${node}`;
    const get = async () => {
      const r = await c.request<VhostTraceReport>('GET', path);
      return r.status === 200 ? r.body : undefined;
    };

    // 1. The agent in the guest reports; its ledger is open from then on.
    await until(g, `a Reporting report ${path}`, async () => ((await get())?.status?.state === 'Reporting' ? true : undefined), 600_000);
    writeFileSync(join(g.outDir, 'go'), '');
    // 2. The guest moves the traffic.
    await until(g, 'the traffic', async () => (existsSync(join(g.outDir, 'traffic-done')) ? true : undefined), 300_000);
    drivers = WORKLOADS.map((w) => JSON.parse(readFileSync(join(g.outDir, `${w.name}.json`), 'utf8')) as DriverReport);
    const trace = parseTrace(readFileSync(join(g.outDir, 'trace.txt'), 'utf8'));
    traceLost = trace.inBuffer === trace.written ? '' : `${trace.inBuffer}/${trace.written}`;
    traced = trace.events;
    // 3. A report that holds every traced run (or whatever came last, to be judged below).
    const runs = (d: Dir) => traced.filter((e) => e.direction === d).length;
    let last: VhostTraceReport | undefined;
    await until(g, 'a report with every traced run', async () => {
      last = await get();
      const t = last?.status?.total;
      return t?.rx?.packets.count === runs('rx') && t?.tx?.packets.count === runs('tx') ? true : undefined;
    }, 90_000).catch(() => undefined); // judged by the tests below
    report = last!;
    const h = (x?: { count: number; sum: number; buckets: number[] }) => (x ? `count ${x.count} sum ${x.sum} buckets [${x.buckets.join(',')}]` : '-');
    const t = report?.status?.total;
    console.log(`${kernel}: report ${report?.metadata.name} observed ${report?.status?.observedTime}, state ${report?.status?.state}, mode ${report?.status?.mode}, kernel ${report?.status?.kernel}\n` +
      (['rx', 'tx'] as const).map((d) => `  ${d} packets ${h(t?.[d]?.packets)}\n  ${d} bytes   ${h(t?.[d]?.bytes)}`).join('\n'));
    writeFileSync(join(g.outDir, 'stop'), '');
    const code = await g.done;
    if (code !== 0) throw new Error(`guest script exited ${code}\n${guestTrouble(g)}`);
  }, 1_500_000);

  it('the agent reported from the guest through the API server: Reporting, tracepoint mode, the guest kernel', () => {
    expect(report, guestTrouble(g)).toBeDefined();
    const krel = readFileSync(join(g.outDir, 'krel'), 'utf8').trim();
    expect(krel).toMatch(kernel === '6.1' ? /^6\.1\./ : /^6\.12\./);
    expect(report.spec.nodeName).toBe(node);
    expect(report.status).toMatchObject({ state: 'Reporting', mode: 'tracepoint', kernel: krel });
    expect(report.status!.vms ?? []).toEqual([]);
  });

  it('the traffic driver moved exactly its workloads, and the trace buffer lost nothing', () => {
    expect(traceLost).toBe('');
    for (const [i, w] of WORKLOADS.entries()) {
      const d = drivers[i]!;
      expect(d.frames, w.name).toBe(w.frames);
      expect(d.foreign_frames, w.name).toBe(0);
      if (w.direction === 'tx') expect(d.tap_seen, w.name).toBe(w.frames);
    }
    // Every run that moved something is one the batching implies, in order.
    for (const dir of ['rx', 'tx'] as const) {
      const want = WORKLOADS.flatMap((w, i) => (w.direction === dir ? expectedRuns(w, drivers[i]!.vnet_hdr_len) : []));
      expect(busyRuns(traced, dir), dir).toEqual(want);
    }
  });

  it("the report's totals equal the driver's ground truth exactly, all of it unattributed", () => {
    const empty = { rx: traced.filter((e) => e.direction === 'rx' && e.packets === 0).length, tx: traced.filter((e) => e.direction === 'tx' && e.packets === 0).length };
    const truth = histogramsOf(driverTruth(WORKLOADS, drivers, empty));
    // The same histograms from the trace buffer's runs, one by one.
    expect(histogramsOf(traced)).toEqual(truth);
    expect(report.status!.total).toEqual(truth);
    expect(report.status!.unattributed).toEqual(truth);
    for (const dir of ['rx', 'tx'] as const) {
      const moved = drivers.filter((d) => d.direction === dir);
      expect(report.status!.total![dir]!.packets.sum, dir).toBe(moved.reduce((s, d) => s + d.frames, 0));
      expect(report.status!.total![dir]!.bytes.sum, dir).toBe(moved.reduce((s, d) => s + d.bytes, 0));
    }
  });

  it('the agent stopped on SIGTERM and left its pins for a successor', () => {
    const out = readFileSync(join(g.outDir, 'stdout'), 'utf8');
    expect(out).toMatch(/^agent exit=0$/m);
    expect(readFileSync(join(g.outDir, 'pins.txt'), 'utf8')).toMatch(/^meta$/m);
  });

  it('one frame missing from a report would fail the comparison', () => {
    const empty = { rx: 0, tx: 0 };
    const truth = histogramsOf(driverTruth(WORKLOADS, drivers, empty));
    // The first run loses its first frame (64 bytes and the header).
    const lost = bufferBytes(WORKLOADS[0]!, 0, drivers[0]!.vnet_hdr_len);
    const short = driverTruth(WORKLOADS, drivers, empty).map((r, i) => (i === 0 ? { ...r, packets: r.packets - 1, bytes: r.bytes - lost } : r));
    expect(histogramsOf(short)).not.toEqual(truth);
  });
});
