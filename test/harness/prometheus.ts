// Prometheus for tests: a strict reader of the text exposition format, Debian's prometheus and
// promtool run as children on loopback, and prometheus-operator's CRDs from the Go module cache.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { freePort } from './controlplane.js';

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const TYPES = new Set(['counter', 'gauge', 'histogram', 'summary', 'untyped']);

/**
 * Parses the text format (0.0.4) and refuses what Prometheus would refuse or silently misread:
 * a sample of a family with no TYPE line before it, a family declared twice or split, a bad
 * name or label, a duplicate series, a histogram whose buckets are not cumulative, lack +Inf,
 * or disagree with _count.
 */
export function parseExposition(text: string): Sample[] {
  if (!text.endsWith('\n')) throw new Error('exposition does not end with a newline');
  const types = new Map<string, string>();
  const closed = new Set<string>();
  let current: string | undefined;
  const seen = new Set<string>();
  const out: Sample[] = [];
  const familyOf = (name: string) => {
    for (const suffix of ['_bucket', '_sum', '_count']) {
      const base = name.slice(0, -suffix.length);
      if (name.endsWith(suffix) && types.get(base) === 'histogram') return base;
    }
    return name;
  };
  text.slice(0, -1).split('\n').forEach((line, i) => {
    const where = `line ${i + 1}: ${line}`;
    if (line.startsWith('#')) {
      const m = /^# (HELP|TYPE) (\S+) ?(.*)$/.exec(line);
      if (!m) throw new Error(`bad comment, ${where}`);
      if (!NAME.test(m[2]!)) throw new Error(`bad metric name, ${where}`);
      if (m[1] === 'TYPE') {
        if (types.has(m[2]!)) throw new Error(`TYPE given twice, ${where}`);
        if (!TYPES.has(m[3]!)) throw new Error(`unknown type, ${where}`);
        types.set(m[2]!, m[3]!);
      }
      if (current !== m[2]) {
        if (current) closed.add(current);
        if (closed.has(m[2]!)) throw new Error(`family split, ${where}`);
        current = m[2];
      }
      return;
    }
    const m = /^([^{\s]+)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m || !NAME.test(m[1]!)) throw new Error(`not a sample, ${where}`);
    const family = familyOf(m[1]!);
    if (!types.has(family)) throw new Error(`sample before its TYPE, ${where}`);
    if (family !== current) throw new Error(`sample outside its family's block, ${where}`);
    const labels: Record<string, string> = {};
    const body = m[2] ?? '';
    const pair = /([^=,\s]+)="((?:[^"\\\n]|\\[\\"n])*)"(,|$)/y;
    for (let at = 0; at < body.length; ) {
      pair.lastIndex = at;
      const p = pair.exec(body);
      if (!p || !LABEL.test(p[1]!)) throw new Error(`bad label at ${at}, ${where}`);
      if (p[1]! in labels) throw new Error(`label ${p[1]} twice, ${where}`);
      labels[p[1]!] = p[2]!.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
      at = pair.lastIndex;
    }
    const value = m[3] === '+Inf' ? Infinity : m[3] === '-Inf' ? -Infinity : Number(m[3]);
    if (Number.isNaN(value) && m[3] !== 'NaN') throw new Error(`bad value, ${where}`);
    const key = `${m[1]}${JSON.stringify(Object.entries(labels).sort())}`;
    if (seen.has(key)) throw new Error(`duplicate series, ${where}`);
    seen.add(key);
    out.push({ name: m[1]!, labels, value });
  });
  checkHistograms(out, types);
  return out;
}

function checkHistograms(samples: Sample[], types: Map<string, string>): void {
  for (const [family, type] of types) {
    if (type !== 'histogram') continue;
    const series = new Map<string, { le: number; v: number }[]>();
    const idOf = (l: Record<string, string>) => JSON.stringify(Object.entries(l).filter(([k]) => k !== 'le').sort());
    for (const s of samples.filter((x) => x.name === `${family}_bucket`)) {
      if (s.labels.le === undefined) throw new Error(`${family}_bucket without le`);
      const le = s.labels.le === '+Inf' ? Infinity : Number(s.labels.le);
      series.set(idOf(s.labels), [...(series.get(idOf(s.labels)) ?? []), { le, v: s.value }]);
    }
    for (const [id, buckets] of series) {
      for (let i = 1; i < buckets.length; i++) {
        if (!(buckets[i]!.le > buckets[i - 1]!.le)) throw new Error(`${family}${id}: le not increasing`);
        if (buckets[i]!.v < buckets[i - 1]!.v) throw new Error(`${family}${id}: buckets not cumulative`);
      }
      const inf = buckets.at(-1);
      if (inf?.le !== Infinity) throw new Error(`${family}${id}: no +Inf bucket`);
      const count = samples.find((x) => x.name === `${family}_count` && idOf(x.labels) === id);
      if (count?.value !== inf.v) throw new Error(`${family}${id}: _count ${count?.value} != +Inf bucket ${inf.v}`);
      if (!samples.some((x) => x.name === `${family}_sum` && idOf(x.labels) === id)) throw new Error(`${family}${id}: no _sum`);
    }
  }
}

/** The value of the one sample with exactly these labels, or undefined. */
export function valueOf(samples: Sample[], name: string, labels: Record<string, string>): number | undefined {
  const want = JSON.stringify(Object.entries(labels).sort());
  return samples.find((s) => s.name === name && JSON.stringify(Object.entries(s.labels).sort()) === want)?.value;
}

/** Debian's prometheus and promtool (test/setup installs the package). */
export const PROMETHEUS = '/usr/bin/prometheus';
export const PROMTOOL = '/usr/bin/promtool';
export const prometheusInstalled = () => existsSync(PROMETHEUS) && existsSync(PROMTOOL);

/** Runs promtool; its exit code and output. */
export function promtool(args: string[], cwd?: string): { code: number; out: string } {
  const r = spawnSync(PROMTOOL, args, { cwd, encoding: 'utf8', timeout: 60_000 });
  return { code: r.status ?? -1, out: `${r.stdout}${r.stderr}` };
}

export interface PrometheusProcess {
  url: string;
  dir: string;
  proc: ChildProcess;
  log(): string;
  /** An instant query at `time` (seconds; now by default): the vector's samples. */
  query(expr: string, time?: number): Promise<{ metric: Record<string, string>; value: number }[]>;
  stop(): Promise<void>;
}

/**
 * A Prometheus on a free loopback port with its own config and TSDB in a temp dir, never the
 * system's :9090. `scrapeConfigs` go into prometheus.yml as they are.
 */
export async function startPrometheus(scrapeConfigs: object[], scrapeInterval = '1s'): Promise<PrometheusProcess> {
  const dir = mkdtempSync(join(tmpdir(), 'vhosttrace-prometheus-'));
  const port = await freePort();
  const config = { global: { scrape_interval: scrapeInterval, evaluation_interval: scrapeInterval }, scrape_configs: scrapeConfigs };
  writeFileSync(join(dir, 'prometheus.yml'), JSON.stringify(config, null, 2));
  const logFile = join(dir, 'prometheus.log');
  const fd = openSync(logFile, 'a');
  const proc = spawn(
    PROMETHEUS,
    [
      `--config.file=${join(dir, 'prometheus.yml')}`,
      `--storage.tsdb.path=${join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--web.enable-lifecycle',
      '--log.level=info',
    ],
    { stdio: ['ignore', fd, fd] },
  );
  closeSync(fd);
  const exited = new Promise<void>((r) => proc.on('exit', () => r()));
  const url = `http://127.0.0.1:${port}`;
  const log = () => readFileSync(logFile, 'utf8');
  const p: PrometheusProcess = {
    url,
    dir,
    proc,
    log,
    async query(expr, time) {
      const q = new URLSearchParams({ query: expr, ...(time !== undefined ? { time: String(time) } : {}) });
      const r = await fetch(`${url}/api/v1/query?${q}`);
      const body = (await r.json()) as { status: string; error?: string; data?: { resultType: string; result: { metric: Record<string, string>; value: [number, string] }[] } };
      if (body.status !== 'success') throw new Error(`query ${expr}: ${body.error}`);
      if (body.data!.resultType !== 'vector') throw new Error(`query ${expr}: a ${body.data!.resultType}, not a vector`);
      return body.data!.result.map((x) => ({ metric: x.metric, value: Number(x.value[1]) }));
    },
    async stop() {
      if (proc.exitCode === null) proc.kill('SIGTERM');
      await exited;
      if (!process.env.VHOSTTRACE_KEEP_CONTROL_PLANE) rmSync(dir, { recursive: true, force: true });
    },
  };
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`prometheus exited ${proc.exitCode}:\n${log().slice(-2000)}`);
    const ready = await fetch(`${url}/-/ready`).then((r) => r.ok, () => false);
    if (ready) return p;
    if (Date.now() > deadline) {
      await p.stop();
      throw new Error(`prometheus not ready in 30 s:\n${log().slice(-2000)}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** prometheus-operator's module, whose zip holds its CRDs (test/setup downloads it). */
export const PROMETHEUS_OPERATOR_MODULE = 'github.com/prometheus-operator/prometheus-operator@v0.85.0';

/** The module's directory in the Go module cache, or undefined when it is not there (offline). */
export function prometheusOperatorDir(): string | undefined {
  const r = spawnSync('go', ['mod', 'download', '-json', PROMETHEUS_OPERATOR_MODULE], { encoding: 'utf8', timeout: 120_000, cwd: tmpdir() });
  if (r.status !== 0) return undefined;
  const dir = (JSON.parse(r.stdout) as { Dir?: string }).Dir;
  return dir && existsSync(join(dir, 'example/prometheus-operator-crd')) ? dir : undefined;
}

/** One of prometheus-operator's CRDs, e.g. 'podmonitors'. */
export function prometheusOperatorCRD(dir: string, plural: string): any {
  const text = readFileSync(join(dir, 'example/prometheus-operator-crd', `monitoring.coreos.com_${plural}.yaml`), 'utf8');
  return parseAllDocuments(text).map((d) => d.toJS()).find((d) => d?.kind === 'CustomResourceDefinition');
}

interface Panel {
  title: string;
  type: string;
  targets?: { expr: string; refId: string }[];
  panels?: Panel[];
}

/** The dashboard's queries, panel by panel, with its variables replaced as `vars` says. */
export function dashboardQueries(dashboard: { panels: Panel[] }, vars: Record<string, string>): { panel: string; type: string; refId: string; expr: string }[] {
  const flat = (ps: Panel[]): Panel[] => ps.flatMap((p) => [p, ...flat(p.panels ?? [])]);
  return flat(dashboard.panels).flatMap((p) =>
    (p.targets ?? []).map((t) => {
      const expr = t.expr.replace(/\$(\w+)|\$\{(\w+)\}/g, (all, a?: string, b?: string) => {
        const v = vars[(a ?? b)!];
        if (v === undefined) throw new Error(`panel "${p.title}": no value for ${all}`);
        return v;
      });
      return { panel: p.title, type: p.type, refId: t.refId, expr };
    }),
  );
}
