// A real Prometheus (Debian's) scrapes a real agent: the agent's /metrics, read strictly, holds
// the numbers of its VhostTraceReport; and every query of the Grafana dashboard and every alert
// of the chart's PrometheusRule, run by that Prometheus, answers with those numbers,
// histogram_quantile over the log2 buckets included (computed here by hand).
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { fromValues, slotMax } from '../../src/api/histogram.js';
import type { RawHistogram, VhostTraceReport } from '../../src/api/v1alpha1.js';
import { recording, podCgroup, startAgent, type AgentProcess, type Workload } from '../harness/agents.js';
import { eventually, renderChart } from '../harness/cluster.js';
import { freePort, logTail } from '../harness/controlplane.js';
import { installCRDs, TestClient } from '../harness/kube.js';
import { createVmi, launcherPod, VMI_CRD } from '../harness/kubevirt.js';
import { missing } from '../harness/prereq.js';
import { dashboardQueries, parseExposition, prometheusInstalled, startPrometheus, valueOf, type PrometheusProcess, type Sample } from '../harness/prometheus.js';

const NS = 'prom-vms';
const NODE = 'prom-node-1';
const NODE_LABELS = { 'vhosttrace.io/prometheus-test': 'node' };
const DASHBOARD = join(import.meta.dirname, '../../charts/vhosttrace/dashboards/vhosttrace.json');
const PACKET_SLOTS = 10;
const BYTE_SLOTS = 21;

const skip = missing('Debian prometheus (prometheus, promtool)', prometheusInstalled(), 'run test/setup (apt-get install prometheus)');

let c: TestClient;
let work: string;
let agent: AgentProcess | undefined;
let prom: PrometheusProcess | undefined;
let port: number;
let startedAt: number;
const truth: Workload[] = [];
const vmOf = new Map<number, string>();

const runs = (n: number, f: (i: number) => number) => Array.from({ length: n }, (_, i) => f(i));

beforeAll(async () => {
  if (skip) return;
  c = new TestClient(inject('kubeconfig'));
  await installCRDs(c);
  await installCRDs(c, 30_000, [VMI_CRD]);
  await c.apply(`/api/v1/namespaces/${NS}`, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: NS } });
  await c.request('POST', `/api/v1/namespaces/${NS}/serviceaccounts`, { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'default' } });
  // Labelled for this file's trace only: other files' traces (default selector) never pick it.
  await c.apply(`/api/v1/nodes/${NODE}`, { apiVersion: 'v1', kind: 'Node', metadata: { name: NODE, labels: NODE_LABELS } });
  work = mkdtempSync(join(tmpdir(), 'vhosttrace-prom-'));
  const cg = join(work, 'cg');
  const pods: Record<string, number> = {};
  for (const vm of ['vm-1', 'vm-2']) {
    const vmi = await createVmi(c, NS, vm);
    const r = await c.request('POST', `/api/v1/namespaces/${NS}/pods`, launcherPod(vmi, NODE));
    if (r.status !== 201) throw new Error(`pod of ${vm}: ${JSON.stringify(r.body)}`);
    pods[vm] = podCgroup(cg, r.body.metadata.uid);
    vmOf.set(pods[vm], vm);
  }
  // vm-1 RX: 100 runs that moved nothing among 600 of 1..7 packets; vm-1 TX: 50 runs at the
  // 256-packet weight among 150 of 1..3; vm-2 RX: 1..32 packets.
  truth.push(
    { cgroupId: pods['vm-1']!, direction: 'rx', runs: [...runs(100, () => 0), ...runs(600, (i) => (i % 7) + 1)], frameBytes: 1514 },
    { cgroupId: pods['vm-1']!, direction: 'tx', runs: [...runs(50, () => 256), ...runs(150, (i) => (i % 3) + 1)], frameBytes: 2048 },
    { cgroupId: pods['vm-2']!, direction: 'rx', runs: runs(1000, (i) => 1 + (i % 32)), frameBytes: 512 },
  );
  const r = await c.request('POST', `/apis/vhosttrace.io/v1alpha1/namespaces/${NS}/vhosttraces`, {
    apiVersion: 'vhosttrace.io/v1alpha1', kind: 'VhostTrace', metadata: { name: 'prom' }, spec: { interval: '1s', nodeSelector: { matchLabels: NODE_LABELS } },
  });
  if (r.status !== 201) throw new Error(`trace: ${JSON.stringify(r.body)}`);

  // Prometheus first, so that its first scrape of the agent sees the idle frames' zeros. The
  // target carries `node` as the chart's PodMonitor relabels it, and honors the agent's labels.
  port = await freePort();
  prom = await startPrometheus([
    { job_name: 'vhosttrace-agent', honor_labels: true, static_configs: [{ targets: [`127.0.0.1:${port}`], labels: { node: NODE } }] },
  ]);
  startedAt = Date.now();
  agent = startAgent({ node: NODE, dir: work, kubeconfig: inject('kubeconfig'), frames: recording(truth, 20, 6), frameSeconds: 0.4, env: { PORT: String(port) } });
}, 180_000);

afterAll(async () => {
  await agent?.stop().catch(() => {});
  await prom?.stop().catch(() => {});
  if (work) rmSync(work, { recursive: true, force: true });
});

/** What the VM's report and /metrics must hold, from the recording. */
function expected(vm: string, direction: 'rx' | 'tx'): { packets: RawHistogram; bytes: RawHistogram } | undefined {
  const ws = truth.filter((w) => w.direction === direction && vmOf.get(w.cgroupId) === vm);
  if (!ws.length) return undefined;
  return { packets: fromValues(ws.flatMap((w) => w.runs)), bytes: fromValues(ws.flatMap((w) => w.runs.map((r) => r * w.frameBytes))) };
}

/** histogram_quantile by hand: find the bucket that holds rank q*count, interpolate linearly in it. */
function quantile(q: number, h: RawHistogram, slots: number): number {
  const bounds = Array.from({ length: slots }, (_, k) => slotMax(k));
  const cumulative: number[] = [];
  bounds.forEach((_, k) => cumulative.push((cumulative[k - 1] ?? 0) + (h.buckets[k] ?? 0)));
  const rank = q * h.count;
  const k = cumulative.findIndex((n) => n >= rank);
  if (k < 0) return bounds.at(-1)!; // in the +Inf bucket: the highest finite bound
  const lower = k === 0 ? 0 : bounds[k - 1]!; // the lowest bucket starts at 0
  const below = k === 0 ? 0 : cumulative[k - 1]!;
  return lower + ((bounds[k]! - lower) * (rank - below)) / (cumulative[k]! - below);
}

let report: VhostTraceReport;

describe.skipIf(skip)('a real Prometheus scraping a real agent', () => {
  beforeAll(async () => {
    const total = truth.reduce((n, w) => n + w.runs.length, 0);
    report = await eventually(
      async () => {
        const r = await c.request<VhostTraceReport>('GET', `/apis/vhosttrace.io/v1alpha1/namespaces/${NS}/vhosttracereports/prom.${NODE}`);
        const t = r.body.status?.total;
        return r.status === 200 && (t?.rx?.packets.count ?? 0) + (t?.tx?.packets.count ?? 0) === total && r.body;
      },
      90_000,
      `the report of the whole recording\n${agent ? logTail(agent.logFile, 20) : ''}`,
    );
    // And a scrape that has it too.
    await eventually(async () => (await prom!.query('sum(vhosttrace_vhost_run_packets_count)')).at(0)?.value === total, 30_000, `a scrape with all runs\n${prom!.log().slice(-1500)}`);
  }, 150_000);

  it("the agent's /metrics, parsed strictly, holds the report's histograms per VM and direction", async () => {
    const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    const samples: Sample[] = parseExposition(text);
    const vms = report.status!.vms!;
    expect(vms.map((v) => v.name).sort()).toEqual(['vm-1', 'vm-2']);
    let series = 0;
    for (const v of vms) {
      for (const direction of ['rx', 'tx'] as const) {
        const h = v[direction];
        const want = expected(v.name, direction);
        if (!want) {
          expect(h?.packets.count ?? 0, `${v.name} ${direction}`).toBe(0);
          continue;
        }
        expect(h, `${v.name} ${direction}`).toEqual(want);
        if (!h) continue;
        series++;
        for (const [metric, hist, slots] of [['vhosttrace_vhost_run_packets', h.packets, PACKET_SLOTS], ['vhosttrace_vhost_run_bytes', h.bytes, BYTE_SLOTS]] as const) {
          const labels = { direction, namespace: NS, vm: v.name };
          expect(valueOf(samples, `${metric}_count`, labels)).toBe(hist.count);
          expect(valueOf(samples, `${metric}_sum`, labels)).toBe(hist.sum);
          let cumulative = 0;
          for (let k = 0; k < slots; k++) {
            cumulative += hist.buckets[k] ?? 0;
            expect(valueOf(samples, `${metric}_bucket`, { ...labels, le: String(slotMax(k)) }), `${metric} ${v.name} ${direction} slot ${k}`).toBe(cumulative);
          }
          expect(valueOf(samples, `${metric}_bucket`, { ...labels, le: '+Inf' })).toBe(hist.count);
        }
      }
    }
    expect(series).toBe(3);
    expect(samples.filter((s) => s.name === 'vhosttrace_vhost_run_packets_count')).toHaveLength(3);
    expect(valueOf(samples, 'vhosttrace_agent_loader_up', {})).toBe(1);
  });

  it("every dashboard query runs and answers with the report's numbers: heatmaps, quantiles, the alerts' series", async () => {
    const dashboard = JSON.parse(readFileSync(DASHBOARD, 'utf8'));
    // A window that holds every sample since Prometheus started, as $__rate_interval would on a
    // panel spanning the whole test.
    const window = `${Math.ceil((Date.now() - startedAt) / 1000) + 60}s`;
    const queries = dashboardQueries(dashboard, { node: NODE, namespace: NS, vm: '.*', __rate_interval: window, datasource: 'prometheus' });
    expect(queries.length).toBeGreaterThanOrEqual(12);
    const results = new Map<string, { metric: Record<string, string>; value: number }[]>();
    const now = Date.now() / 1000;
    for (const q of queries) {
      const r = await prom!.query(q.expr, now);
      expect(r.length, `panel "${q.panel}" ${q.refId} answered nothing: ${q.expr}`).toBeGreaterThan(0);
      results.set(`${q.panel}/${q.refId}`, r);
    }
    const only = (panel: string, refId = 'A') => {
      const r = results.get(`${panel}/${refId}`);
      if (!r) throw new Error(`no panel "${panel}" ${refId} in the dashboard`);
      return r;
    };
    const h = (vm: string, d: 'rx' | 'tx') => expected(vm, d)!;

    // Heatmaps: increase() per le over the whole window. The first scrape saw zeros, so the
    // increase is the count times one extrapolation factor shared by every bucket: each bucket's
    // share of the +Inf bucket is exact.
    for (const [panel, pick] of [
      ['RX packets per run', () => [h('vm-1', 'rx').packets, h('vm-2', 'rx').packets]],
      ['RX bytes per run', () => [h('vm-1', 'rx').bytes, h('vm-2', 'rx').bytes]],
      ['TX packets per run', () => [h('vm-1', 'tx').packets]],
      ['TX bytes per run', () => [h('vm-1', 'tx').bytes]],
    ] as const) {
      const hists = pick();
      const slots = panel.includes('packets') ? PACKET_SLOTS : BYTE_SLOTS;
      const count = hists.reduce((n, x) => n + x.count, 0);
      const byLe = new Map(only(panel).map((s) => [s.metric.le!, s.value]));
      expect(byLe.size, panel).toBe(slots + 1);
      const inf = byLe.get('+Inf')!;
      expect(inf, panel).toBeGreaterThanOrEqual(count);
      expect(inf, panel).toBeLessThan(count * 1.2);
      let cumulative = 0;
      for (let k = 0; k < slots; k++) {
        cumulative += hists.reduce((n, x) => n + (x.buckets[k] ?? 0), 0);
        expect(byLe.get(String(slotMax(k)))! / inf, `${panel} le=${slotMax(k)}`).toBeCloseTo(cumulative / count, 9);
      }
    }

    // Quantiles: histogram_quantile of rates is that of the counts (one factor for all buckets).
    for (const [panel, field, slots] of [['Packets per run: p50 and p99', 'packets', PACKET_SLOTS], ['Bytes per run: p50 and p99', 'bytes', BYTE_SLOTS]] as const) {
      for (const [refId, q] of [['A', 0.5], ['B', 0.99]] as const) {
        const got = only(panel, refId);
        expect(got, `${panel} ${refId}`).toHaveLength(3);
        for (const s of got) {
          expect(s.metric).toMatchObject({ node: NODE, namespace: NS });
          const want = quantile(q, h(s.metric.vm!, s.metric.direction as 'rx' | 'tx')[field], slots);
          expect(s.value, `${panel} ${refId} ${s.metric.vm} ${s.metric.direction}`).toBeCloseTo(want, 6);
        }
      }
    }
    // Checked by hand once: vm-2's 1000 RX runs are 1..32 in turn (1..8 32 times, 9..32 31 times);
    // up to le=15 hold 8*32 + 7*31 = 473, (15, 31] holds 16*31 = 496, so rank 500 gives
    // p50 = 15 + 16 * (500 - 473) / 496.
    expect(only('Packets per run: p50 and p99', 'A').find((s) => s.metric.vm === 'vm-2')!.value).toBeCloseTo(15 + (16 * 27) / 496, 9);

    // The alerts' series: vm-1's RX runs that moved nothing (100 of 700), its TX runs at the
    // weight (50 of 200); vm-2 has neither.
    const ratio = (panel: string) => Object.fromEntries(only(panel).map((s) => [`${s.metric.vm}/${s.metric.direction ?? 'rx'}`, s.value]));
    expect(ratio('RX runs that moved nothing (alert VhostNetRxRunsEmpty)')).toEqual({ 'vm-1/rx': expect.closeTo(100 / 700, 9), 'vm-2/rx': 0 });
    expect(ratio('Runs at the weight limit (alert VhostNetRunsAtWeightLimit)')).toEqual({ 'vm-1/rx': 0, 'vm-1/tx': expect.closeTo(50 / 200, 9), 'vm-2/rx': 0 });
    const agentPanel = only('Agents: loader up, detached, active traces (alert VhostTraceNodeCannotTrace)');
    expect(agentPanel).toEqual([expect.objectContaining({ metric: expect.objectContaining({ node: NODE }), value: 1 })]);
    expect(only('Agents: loader up, detached, active traces (alert VhostTraceNodeCannotTrace)', 'B')[0]!.value).toBe(0);
    expect(only('Agents: loader up, detached, active traces (alert VhostTraceNodeCannotTrace)', 'C')[0]!.value).toBe(1);
    const writes = Object.fromEntries(only('Report writes and loader restarts (alerts VhostTraceReportsStale, VhostTraceLoaderRestarting)').map((s) => [s.metric.result, s.value]));
    expect(writes.ok).toBeGreaterThan(0);
    expect(writes.error).toBe(0);
    expect(only('Dropped keys')[0]!.value).toBe(0);
  });

  it('the PrometheusRule: the VM alerts find exactly the VMs past their thresholds, the agent alerts nothing on a healthy node', async () => {
    const { docs } = await renderChart('vhosttrace-system', ['metrics.prometheusRule.enabled=true']);
    const rules = docs.find((d) => d.kind === 'PrometheusRule').spec.groups.flatMap((g: any) => g.rules) as { alert: string; expr: string }[];
    // The defaults' thresholds (0.5, 0.25, 1 run/s) lowered for a recording of seconds: helm's
    // --set gives floats as strings, which values.schema.json refuses.
    const lowered = (e: string) => e.replace(/\) > 0\.5\n/, ') > 0.1\n').replace(/\) > 0\.25\n/, ') > 0.2\n').replace(/\[10m\]\)\) > 1\n?$/, '[10m])) > 0.01\n');
    const firing: Record<string, Record<string, string>[]> = {};
    for (const r of rules) firing[r.alert] = (await prom!.query(lowered(r.expr))).map((s) => s.metric);
    expect(firing).toEqual({
      VhostNetRxRunsEmpty: [{ node: NODE, namespace: NS, vm: 'vm-1' }],
      VhostNetRunsAtWeightLimit: [{ direction: 'tx', node: NODE, namespace: NS, vm: 'vm-1' }],
      VhostTraceNodeCannotTrace: [],
      VhostTraceLoaderRestarting: [],
      VhostTraceReportsStale: [],
      VhostTraceMapsFull: [],
    });
  });
});
