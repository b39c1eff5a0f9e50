// kubectl vhosttrace with -f: saved objects read (YAML, JSON, Lists), the verdicts on what they hold,
// and show -f through main with no cluster at all, down to the seed article's four histograms.
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { fromValues, summarize } from '../../src/api/histogram.js';
import type { Trace } from '../../src/api/reports.js';
import type { VhostTraceReport } from '../../src/api/v1alpha1.js';
import { CliError, EXIT } from '../../src/cli/exit-codes.js';
import { main } from '../../src/cli/main.js';
import { pickTrace, reportsOf, parseSaved } from '../../src/cli/saved.js';
import { traceVerdict, traceView } from '../../src/cli/view.js';
import { renderLog2Hist, renderSeedText } from '../../src/loader/bcc-text.js';
import { ARTICLE, seedCounts, seedTrace } from '../harness/seed.js';

const trace = (name: string, uid: string, status?: Trace['status']): Trace => ({
  apiVersion: 'vhosttrace.io/v1alpha1',
  kind: 'VhostTrace',
  metadata: { name, namespace: 'prod', uid },
  spec: {},
  ...(status ? { status } : {}),
});
const report = (trace: string, uid: string, node: string, vms: Array<[string, number[]]>): VhostTraceReport => {
  const rx = (runs: number[]) => ({ packets: fromValues(runs), bytes: fromValues(runs.map((r) => r * 1500)) });
  return {
    apiVersion: 'vhosttrace.io/v1alpha1',
    kind: 'VhostTraceReport',
    metadata: { name: `${trace}.${node}`, namespace: 'prod' },
    spec: { trace: { kind: 'VhostTrace', name: trace, namespace: 'prod', uid }, nodeName: node },
    status: { total: { rx: rx(vms.flatMap(([, r]) => r)) }, vms: vms.map(([name, runs]) => ({ namespace: 'prod', name, rx: rx(runs) })) },
  };
};

/** main() with -f reading from `files`, no kubeconfig, no cluster. */
async function cli(files: Record<string, string>, ...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await main(argv, (s) => (out += s), {
    err: (s) => (err += s),
    readFile: (p) => {
      if (!(p in files)) throw new Error(`ENOENT: no such file or directory, open '${p}'`);
      return files[p]!;
    },
    env: { KUBECONFIG: '/nonexistent/kubeconfig' },
  });
  return { code, out, err };
}

const running = { phase: 'Running' as const, nodesReporting: '2/2', nodeCounts: { selected: 2, reporting: 2, pending: 0, failed: 0 } };

describe('parseSaved', () => {
  const web = trace('web', 'u1', running);
  const r1 = report('web', 'u1', 'n1', [['a', [1, 2]]]);

  it('reads one object, several YAML documents, JSON, a List and a typed list whose items lack kind', () => {
    expect(parseSaved(stringify(web), 'f')).toEqual({ traces: [web], reports: [] });
    expect(parseSaved(`${stringify(web)}---\n${stringify(r1)}`, 'f')).toEqual({ traces: [web], reports: [r1] });
    expect(parseSaved(JSON.stringify({ apiVersion: 'v1', kind: 'List', items: [web, r1], metadata: { resourceVersion: '' } }, null, 4), 'f')).toEqual({ traces: [web], reports: [r1] });
    const { kind: _k, apiVersion: _a, ...bare } = r1;
    const typed = parseSaved(stringify({ apiVersion: 'vhosttrace.io/v1alpha1', kind: 'VhostTraceReportList', items: [bare] }), 'f');
    expect(typed.reports).toEqual([r1]);
  });

  it('skips other kinds, and says what it found when nothing fits', () => {
    const pod = { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p' } };
    expect(parseSaved(stringify({ apiVersion: 'v1', kind: 'List', items: [pod, web] }), 'f').traces).toEqual([web]);
    expect(() => parseSaved(stringify(pod), 'pod.yaml')).toThrow('pod.yaml holds no VhostTrace, ClusterVhostTrace or VhostTraceReport of vhosttrace.io; it holds Pod (v1)');
    expect(() => parseSaved('a: [1,', 'bad.yaml')).toThrow(/^bad.yaml: not YAML or JSON/);
  });

  it('picks the trace named, or the only one, and its reports', () => {
    const other = trace('db', 'u2');
    const saved = { traces: [web, other], reports: [r1, report('db', 'u2', 'n1', [])] };
    expect(pickTrace(saved, { name: 'db' }, 'f')).toBe(other);
    expect(pickTrace(saved, { name: 'nope' }, 'f')).toBeUndefined();
    expect(() => pickTrace(saved, {}, 'f')).toThrow(/f holds 2 traces \(vht\/web in prod, vht\/db in prod\)/);
    expect(pickTrace(saved, { name: 'web', kind: 'ClusterVhostTrace' }, 'f')).toBeUndefined();
    expect(reportsOf(saved, web)).toEqual([r1]);
  });
});

describe('verdicts', () => {
  it('pending: no status, or Pending with no node reporting', () => {
    expect(traceVerdict(trace('t', 'u')).code).toBe(EXIT.pending);
    expect(traceVerdict(trace('t', 'u', { phase: 'Pending', nodesReporting: '0/3' }))).toEqual({
      code: EXIT.pending,
      message: 'VhostTrace prod/t has no report yet (Pending, nodes 0/3 reporting)',
    });
    expect(traceVerdict(trace('t', 'u', { phase: 'Pending', nodesReporting: '1/3' })).code).toBe(EXIT.ok);
    expect(traceVerdict(trace('t', 'u', running)).code).toBe(EXIT.ok);
  });

  it('failed: with the conditions and the failed nodes', () => {
    const t = trace('t', 'u', {
      phase: 'Failed',
      conditions: [{ type: 'NodesReady', status: 'False', reason: 'TracepointMissing', message: '1 of 1 nodes cannot trace: n1 (TracepointMissing)', lastTransitionTime: '2026-12-06T00:00:00Z' }],
      nodes: [{ name: 'n1', state: 'Failed', reason: 'TracepointMissing', message: 'vhost_net has no vhost_net_rx_end tracepoint' }],
    });
    expect(traceVerdict(t)).toEqual({
      code: EXIT.failed,
      message:
        'VhostTrace prod/t failed: no selected node can trace\n' +
        '  NodesReady=False TracepointMissing: 1 of 1 nodes cannot trace: n1 (TracepointMissing)\n' +
        '  node n1: Failed TracepointMissing: vhost_net has no vhost_net_rx_end tracepoint',
    });
  });

  it('a node or VM the reports do not hold: pending if selected and silent, else not found', () => {
    const t = trace('t', 'u', { ...running, nodes: [{ name: 'n1', state: 'Reporting' }, { name: 'n2', state: 'Pending' }] });
    const reports = [report('t', 'u', 'n1', [['a', [4]]])];
    expect(traceView(t, reports, { node: 'n2' }).verdict).toEqual({ code: EXIT.pending, message: 'node n2 has not reported for VhostTrace prod/t yet' });
    expect(traceView(t, reports, { node: 'n9' }).verdict).toEqual({ code: EXIT.notFound, message: 'node n9 has no report for VhostTrace prod/t (reports from: n1)' });
    expect(traceView(t, reports, { vm: 'prod/zz' }).verdict.code).toBe(EXIT.notFound);
    expect(traceView(t, [], { vm: 'prod/a' }).verdict.code).toBe(EXIT.pending);
    const ok = traceView(t, reports, { vm: 'prod/a' });
    expect(ok.verdict.code).toBe(EXIT.ok);
    expect(ok.view.histograms.rx!.packets).toEqual(fromValues([4]));
  });
});

describe('show -f, no cluster', () => {
  const web = trace('web', 'u1', { ...running, summary: { rx: { packets: summarize(fromValues([1, 1, 2, 64])), bytes: summarize(fromValues([60, 60, 3000, 90000])) } } });
  const list = stringify({ apiVersion: 'v1', kind: 'List', items: [web, report('web', 'u1', 'n1', [['a', [1, 1]]]), report('web', 'u1', 'n2', [['b', [2, 64]]])] });

  it('prints the summary, a node, a VM, and the data with -o json', async () => {
    const all = await cli({ 'saved.yaml': list }, 'show', '-f', 'saved.yaml');
    expect(all).toMatchObject({ code: 0, err: '' });
    expect(all.out).toContain('VhostTrace prod/web: Running, nodes 2/2\n\nVhost-net RX log2 received packets histogram\n');
    expect(all.out).toContain(renderLog2Hist(fromValues([1, 1, 2, 64]).buckets, 'recv pkts'));
    const node = await cli({ 'saved.yaml': list }, 'hist', 'web', '-f', 'saved.yaml', '--node', 'n2');
    expect(node.out).toContain('VhostTrace prod/web, node n2: Running');
    expect(node.out).toContain('runs 2, packets 66, mean 33.0');
    const json = JSON.parse((await cli({ 'saved.yaml': list }, 'show', '-f', 'saved.yaml', '--vm', 'prod/a', '-o', 'json')).out);
    expect(json).toEqual({
      trace: { kind: 'VhostTrace', name: 'web', namespace: 'prod' },
      phase: 'Running',
      nodesReporting: '2/2',
      vm: 'prod/a',
      histograms: { rx: { packets: summarize(fromValues([1, 1])), bytes: summarize(fromValues([1500, 1500])) } },
    });
  });

  it('reads reports saved without their trace', async () => {
    const reports = stringify({ apiVersion: 'v1', kind: 'List', items: [report('web', 'u1', 'n1', [['a', [1, 1]]]), report('web', 'u1', 'n2', [['b', [2, 64]]])] });
    const r = await cli({ 'r.yaml': reports }, 'show', '-f', 'r.yaml');
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^2 reports from 2 nodes in r.yaml\n\n/);
    expect(r.out).toContain('runs 4, packets 68');
  });

  it('exits with the code the saved state means', async () => {
    expect(await cli({ 'p.yaml': stringify(trace('p', 'u')) }, 'show', '-f', 'p.yaml')).toEqual({
      code: EXIT.pending,
      out: '',
      err: 'VhostTrace prod/p has no report yet (no status: is the operator running?, nodes 0/0 reporting)\n',
    });
    expect((await cli({ 'saved.yaml': list }, 'show', 'other', '-f', 'saved.yaml')).code).toBe(EXIT.notFound);
    expect(await cli({}, 'show', '-f', 'missing.yaml')).toEqual({ code: EXIT.error, out: '', err: "error: reading missing.yaml: ENOENT: no such file or directory, open 'missing.yaml'\n" });
    expect((await cli({}, 'show', 'x')).code).toBe(EXIT.noCluster);
  });

  it('get -f lists the saved traces as kubectl get does', async () => {
    const r = await cli({ 'saved.yaml': list }, 'get', '-f', 'saved.yaml', '-o', 'name');
    expect(r).toEqual({ code: 0, out: 'vhosttrace.vhosttrace.io/web\n', err: '' });
  });
});

describe("show -f: the seed article's four histograms", () => {
  it('reads all four from the article (the counts the saved trace is built from)', () => {
    expect(Object.values(seedCounts(ARTICLE)).map((b) => b.length)).toEqual([5, 18, 4, 10]);
  });

  it('-o bcc prints what the seed script printed; the article collapsed its blank lines', async () => {
    const r = await cli({ 'seed.yaml': stringify(seedTrace()) }, 'show', '-f', 'seed.yaml', '-o', 'bcc');
    expect(r.code).toBe(0);
    const c = seedCounts(ARTICLE);
    expect(r.out).toBe(renderSeedText({ rxPackets: c['Vhost-net RX log2 received packets histogram']!, rxBytes: c['Vhost-net RX log2 total length histogram']!, txPackets: c['Vhost-net TX log2 sent packets histogram']!, txBytes: c['Vhost-net TX log2 total length histogram']! }));
    expect(r.out.replace(/\n{2,}/g, '\n\n').trim() + '\n').toBe(ARTICLE.replace(/\n{2,}/g, '\n\n'));
  });

  it('the default text holds each of the article\'s headed histograms byte for byte', async () => {
    const { out } = await cli({ 'seed.yaml': stringify(seedTrace()) }, 'show', '-f', 'seed.yaml');
    const blocks = ARTICLE.split(/\n\n+/).filter((b) => b.startsWith('Vhost-net'));
    expect(blocks).toHaveLength(4);
    for (const b of blocks) expect(out).toContain(`${b.trimEnd()}\nruns `);
    // Nothing but a headline and one "runs" line per histogram is added.
    const stripped = out.split('\n').slice(2).filter((l) => !l.startsWith('runs ')).join('\n');
    expect(stripped.replace(/\n{2,}/g, '\n\n').trim() + '\n').toBe(ARTICLE.replace(/\n{2,}/g, '\n\n'));
  });
});

it('CliError carries its exit code', () => {
  expect(new CliError(EXIT.forbidden, 'x').code).toBe(6);
});
