// The chart's Prometheus and Grafana objects: off by default; when on, accepted by the real API
// server with prometheus-operator's own CRDs (a server-side dry run), the rules accepted by
// promtool, and the alerts firing on synthetic series exactly where they should (promtool test).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { stringify } from 'yaml';
import { renderChart } from '../harness/cluster.js';
import { installCRDs, TestClient } from '../harness/kube.js';
import { missing } from '../harness/prereq.js';
import { prometheusInstalled, prometheusOperatorCRD, prometheusOperatorDir, promtool, PROMETHEUS_OPERATOR_MODULE } from '../harness/prometheus.js';

const NS = 'monitoring-chart';
const ALL_ON = ['metrics.podMonitor.enabled=true', 'metrics.prometheusRule.enabled=true', 'metrics.grafanaDashboard.enabled=true'];
const MONITORING = new Set(['PodMonitor', 'PrometheusRule']);

const operatorDir = prometheusOperatorDir();
const noCRDs = missing(`prometheus-operator's CRDs (${PROMETHEUS_OPERATOR_MODULE} in the Go module cache)`, !!operatorDir, 'run test/setup (it runs go mod download)');
const noPromtool = missing('promtool (Debian package prometheus)', prometheusInstalled(), 'run test/setup (apt-get install prometheus)');

let c: TestClient;
let docs: any[];
let work: string;

beforeAll(async () => {
  c = new TestClient(inject('kubeconfig'));
  docs = (await renderChart(NS, ALL_ON)).docs;
  work = mkdtempSync(join(tmpdir(), 'vhosttrace-rules-'));
});

afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

const ofKind = (kind: string) => docs.filter((d) => d.kind === kind);
const rule = () => ofKind('PrometheusRule')[0];

describe('the chart renders', () => {
  it('no monitoring object and no dashboard by default', async () => {
    const { docs: defaults } = await renderChart(NS);
    expect(defaults.filter((d) => MONITORING.has(d.kind) || d.metadata?.labels?.grafana_dashboard)).toEqual([]);
  });

  it('a PodMonitor per part, an agent one that keeps the VM namespace label and adds the node, a PrometheusRule, and the dashboard for the sidecar', () => {
    const pms = ofKind('PodMonitor');
    expect(pms.map((p) => p.metadata.name).sort()).toEqual(['vhosttrace-agent', 'vhosttrace-operator']);
    const agent = pms.find((p) => p.metadata.name === 'vhosttrace-agent');
    expect(agent.spec.selector.matchLabels).toEqual({ 'app.kubernetes.io/name': 'vhosttrace', 'app.kubernetes.io/component': 'agent' });
    expect(agent.spec.podMetricsEndpoints[0]).toMatchObject({ port: 'metrics', honorLabels: true, relabelings: [{ sourceLabels: ['__meta_kubernetes_pod_node_name'], targetLabel: 'node' }] });
    expect(rule().spec.groups.flatMap((g: any) => g.rules.map((r: any) => r.alert)).sort()).toEqual([
      'VhostNetRunsAtWeightLimit', 'VhostNetRxRunsEmpty', 'VhostTraceLoaderRestarting', 'VhostTraceMapsFull', 'VhostTraceNodeCannotTrace', 'VhostTraceReportsStale',
    ]);
    const cm = ofKind('ConfigMap').find((d) => d.metadata.labels?.grafana_dashboard === '1');
    expect(cm?.metadata.namespace).toBe(NS);
    expect(JSON.parse(cm.data['vhosttrace.json']).uid).toBe('vhosttrace-vhost-net');
  });
});

describe.skipIf(noCRDs)("with prometheus-operator's CRDs in the API server", () => {
  beforeAll(async () => {
    await installCRDs(c, 60_000, ['podmonitors', 'prometheusrules'].map((p) => prometheusOperatorCRD(operatorDir!, p)));
    await c.apply(`/api/v1/namespaces/${NS}`, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: NS } });
  }, 120_000);

  const dryRunCreate = (d: any) => {
    const [group, version] = d.apiVersion.includes('/') ? d.apiVersion.split('/') : ['', d.apiVersion];
    const plural = { PodMonitor: 'podmonitors', PrometheusRule: 'prometheusrules', ConfigMap: 'configmaps' }[d.kind as string]!;
    return c.request('POST', `${group ? `/apis/${group}` : '/api'}/${version}/namespaces/${d.metadata.namespace}/${plural}?dryRun=All&fieldValidation=Strict`, d);
  };

  it('accepts every rendered monitoring object and the dashboard (server-side dry run, strict fields), and stores none', async () => {
    const objs = [...docs.filter((d) => MONITORING.has(d.kind)), ...ofKind('ConfigMap').filter((d) => d.metadata.labels?.grafana_dashboard)];
    expect(objs).toHaveLength(4);
    for (const d of objs) {
      const r = await dryRunCreate(d);
      expect(r.status, `${d.kind}/${d.metadata.name}: ${JSON.stringify(r.body)}`).toBe(201);
    }
    expect((await c.request('GET', `/apis/monitoring.coreos.com/v1/namespaces/${NS}/podmonitors`)).body.items).toEqual([]);
  });

  it('refuses what the CRDs forbid, so the dry run can fail: a numeric port name, an unknown field', async () => {
    const pm = structuredClone(ofKind('PodMonitor')[0]);
    pm.spec.podMetricsEndpoints[0].port = 9090;
    expect((await dryRunCreate(pm)).status).toBe(422);
    const pr = structuredClone(rule());
    pr.spec.groups[0].rules[0].fire = 'always';
    const r = await dryRunCreate(pr);
    expect(r.status).toBe(400);
    expect(JSON.stringify(r.body)).toMatch(/unknown field.*fire/);
  });
});

describe.skipIf(noPromtool)('promtool', () => {
  const rulesFile = (groups: unknown) => {
    const f = join(work, `rules-${Math.random().toString(36).slice(2)}.yaml`);
    writeFileSync(f, stringify({ groups }));
    return f;
  };

  it('check rules: the PrometheusRule groups pass, and a broken expression does not', () => {
    const ok = promtool(['check', 'rules', rulesFile(rule().spec.groups)]);
    expect(ok.out).toContain('SUCCESS: 6 rules found');
    expect(ok.code).toBe(0);
    const broken = structuredClone(rule().spec.groups);
    broken[0].rules[0].expr = 'sum by (node (rate(x[5m]))';
    expect(promtool(['check', 'rules', rulesFile(broken)]).code).not.toBe(0);
  });

  it('test rules: each alert fires on synthetic series that mean it, and not on their near misses', () => {
    // Annotations are for people (check rules parses their templates); this test is about when
    // each alert fires, so it compares labels only.
    const groups = structuredClone(rule().spec.groups);
    for (const g of groups) for (const r of g.rules) delete r.annotations;
    const f = rulesFile(groups);
    const vm = (v: string, extra: string) => `{direction="${extra}",node="n1",namespace="ns",vm="${v}"`;
    const tests = {
      rule_files: [f],
      evaluation_interval: '1m',
      tests: [
        {
          interval: '1m',
          input_series: [
            // vm-a: 80% of its 2 RX runs a second moved nothing; vm-b: 10%; vm-c: 80% of very few runs.
            { series: `vhosttrace_vhost_run_bytes_bucket${vm('vm-a', 'rx')},le="1"}`, values: '0+96x40' },
            { series: `vhosttrace_vhost_run_bytes_count${vm('vm-a', 'rx')}}`, values: '0+120x40' },
            { series: `vhosttrace_vhost_run_bytes_bucket${vm('vm-b', 'rx')},le="1"}`, values: '0+12x40' },
            { series: `vhosttrace_vhost_run_bytes_count${vm('vm-b', 'rx')}}`, values: '0+120x40' },
            { series: `vhosttrace_vhost_run_bytes_bucket${vm('vm-c', 'rx')},le="1"}`, values: '0+4x40' },
            { series: `vhosttrace_vhost_run_bytes_count${vm('vm-c', 'rx')}}`, values: '0+5x40' },
            // vm-a TX: half its runs at 256 packets or more; vm-b TX: 10%.
            { series: `vhosttrace_vhost_run_packets_bucket${vm('vm-a', 'tx')},le="255"}`, values: '0+60x40' },
            { series: `vhosttrace_vhost_run_packets_count${vm('vm-a', 'tx')}}`, values: '0+120x40' },
            { series: `vhosttrace_vhost_run_packets_bucket${vm('vm-b', 'tx')},le="255"}`, values: '0+108x40' },
            { series: `vhosttrace_vhost_run_packets_count${vm('vm-b', 'tx')}}`, values: '0+120x40' },
            // n1 cannot trace; n2 is detached on purpose; n3 has no trace selecting it.
            { series: 'vhosttrace_agent_loader_up{node="n1"}', values: '0x40' },
            { series: 'vhosttrace_agent_detached{node="n1"}', values: '0x40' },
            { series: 'vhosttrace_agent_active_traces{node="n1"}', values: '1x40' },
            { series: 'vhosttrace_agent_loader_up{node="n2"}', values: '0x40' },
            { series: 'vhosttrace_agent_detached{node="n2"}', values: '1x40' },
            { series: 'vhosttrace_agent_active_traces{node="n2"}', values: '1x40' },
            { series: 'vhosttrace_agent_loader_up{node="n3"}', values: '0x40' },
            { series: 'vhosttrace_agent_detached{node="n3"}', values: '0x40' },
            { series: 'vhosttrace_agent_active_traces{node="n3"}', values: '0x40' },
            // n1 writes no report (only errors); n2 and n3 write theirs.
            { series: 'vhosttrace_agent_reports_total{node="n1",result="ok"}', values: '5x40' },
            { series: 'vhosttrace_agent_reports_total{node="n1",result="error"}', values: '0+6x40' },
            { series: 'vhosttrace_agent_reports_total{node="n2",result="ok"}', values: '0+6x40' },
            { series: 'vhosttrace_agent_reports_total{node="n3",result="ok"}', values: '0+6x40' },
            // n1's loader restarts every minute, n2's once; n2's maps are full.
            { series: 'vhosttrace_agent_loader_restarts_total{node="n1"}', values: '0+1x40' },
            { series: 'vhosttrace_agent_loader_restarts_total{node="n2"}', values: '0 1x40' },
            { series: 'vhosttrace_agent_dropped_keys_total{node="n1"}', values: '0x40' },
            { series: 'vhosttrace_agent_dropped_keys_total{node="n2"}', values: '0+3x40' },
          ],
          alert_rule_test: [
            // Before `for` (15m) has passed: nothing yet of the alerts that wait.
            { eval_time: '10m', alertname: 'VhostNetRxRunsEmpty', exp_alerts: [] },
            { eval_time: '30m', alertname: 'VhostNetRxRunsEmpty', exp_alerts: [{ exp_labels: { severity: 'warning', node: 'n1', namespace: 'ns', vm: 'vm-a' } }] },
            { eval_time: '30m', alertname: 'VhostNetRunsAtWeightLimit', exp_alerts: [{ exp_labels: { severity: 'warning', direction: 'tx', node: 'n1', namespace: 'ns', vm: 'vm-a' } }] },
            { eval_time: '10m', alertname: 'VhostTraceNodeCannotTrace', exp_alerts: [] },
            { eval_time: '30m', alertname: 'VhostTraceNodeCannotTrace', exp_alerts: [{ exp_labels: { severity: 'warning', node: 'n1' } }] },
            { eval_time: '30m', alertname: 'VhostTraceReportsStale', exp_alerts: [{ exp_labels: { severity: 'warning', node: 'n1' } }] },
            { eval_time: '30m', alertname: 'VhostTraceLoaderRestarting', exp_alerts: [{ exp_labels: { severity: 'info', node: 'n1' } }] },
            { eval_time: '30m', alertname: 'VhostTraceMapsFull', exp_alerts: [{ exp_labels: { severity: 'info', node: 'n2' } }] },
          ],
        },
      ],
    };
    const testFile = join(work, 'rules.test.yaml');
    writeFileSync(testFile, stringify(tests));
    const r = promtool(['test', 'rules', testFile]);
    expect(r.out).toContain('SUCCESS');
    expect(r.code, r.out).toBe(0);
  });
});
