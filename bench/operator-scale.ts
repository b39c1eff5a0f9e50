// Operator scale benchmark: N simulated nodes each write their report (server-side apply of
// the status, as an agent does) once per interval, staggered; the operator (a real process,
// `node dist/operator/main.js`) rolls them up. Measures API writes/s and bytes/s, report-to-
// status latency (the operator's histogram, from each report's observedTime to the status
// write that includes it), the parent's size, status writes/s, and the operator's CPU and RSS.
// Knobs: BENCH_NODES (500), BENCH_VMS per node (10), BENCH_INTERVAL s (10), BENCH_SECONDS (90),
// BENCH_CONNECTIONS (128: keep-alive connections the simulated agents share),
// BENCH_OPERATOR (dist/operator/main.js: another build's, to compare), BENCH_WRITES_PER_SECOND
// (the operator's reportWritesPerSecond: the default interval's budget), BENCH_NODE_FLAGS (node's
// flags for the operator; default the chart's, --optimize-for-size; '' for none).
// BENCH_INTERVAL=default: the trace sets no interval, the simulated agents follow the one the
// operator publishes in status.interval (as agents do), and the run lasts until every node has
// reported once and then three intervals more. BENCH_RESTART=1 (or main.js paths, comma-
// separated): at the end another operator starts while every report exists (its memory through
// the first full list). Results also go to bench/results/.
import { spawn, type ChildProcess } from 'node:child_process';
import https from 'node:https';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseDuration } from '../src/api/duration.js';
import { fromValues } from '../src/api/histogram.js';
import { reportSkeleton, traceRef, type Trace } from '../src/api/reports.js';
import type { RawDirections, ReportStatus } from '../src/api/v1alpha1.js';
import { eventually, startCluster } from '../test/harness/cluster.js';

const REPO = join(import.meta.dirname, '..');
const INSTALL = 'vhosttrace-system';
const NS = 'bench';

function procStats(pid: number): { cpuSeconds: number; rssMiB: number; hwmMiB: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(f[11]) + Number(f[12]); // utime + stime, in clock ticks (100/s)
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? 0);
  return { cpuSeconds: ticks / 100, rssMiB: kb('VmRSS') / 1024, hwmMiB: kb('VmHWM') / 1024 };
}

/** Quantile from Prometheus cumulative buckets, linear within the bucket. */
function promQuantile(text: string, name: string, q: number): number {
  const rows = [...text.matchAll(new RegExp(`^${name}_bucket\\{le="([^"]+)"\\} (\\d+)$`, 'gm'))].map((m) => [m[1] === '+Inf' ? Infinity : Number(m[1]), Number(m[2])] as const);
  const total = rows.at(-1)?.[1] ?? 0;
  if (!total) return NaN;
  const rank = q * total;
  let prevLe = 0;
  let prevCount = 0;
  for (const [le, count] of rows) {
    if (count >= rank) return le === Infinity ? prevLe : prevLe + ((le - prevLe) * (rank - prevCount)) / Math.max(1, count - prevCount);
    prevLe = le;
    prevCount = count;
  }
  return prevLe;
}
const pct = (xs: number[], q: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(q * xs.length))] ?? NaN;
/** The API server's URL and the admin's TLS credentials from a kubeconfig. */
async function credentials(kubeconfig: string) {
  const { KubeConfig } = await import('@kubernetes/client-node');
  const kc = new KubeConfig();
  kc.loadFromFile(kubeconfig);
  const o: https.RequestOptions = {};
  await kc.applyToHTTPSOptions(o);
  return { server: kc.getCurrentCluster()!.server, tls: { ca: o.ca, cert: o.cert, key: o.key } };
}

/**
 * Server-side apply over one keep-alive connection pool, as a real agent (one process, one
 * connection) would: client-node's applyToHTTPSOptions makes a new Agent, so a new TLS
 * connection, for every request, which would load the API server with handshakes.
 */
async function applier(kubeconfig: string, maxSockets: number) {
  const { server, tls } = await credentials(kubeconfig);
  const agent = new https.Agent({ keepAlive: true, maxSockets, ...tls });
  return (path: string, body: string, manager: string) =>
    new Promise<{ status: number; body: any }>((resolve, reject) => {
      const req = https.request(new URL(`${path}?fieldManager=${manager}&force=true`, server), {
        method: 'PATCH',
        agent,
        headers: { 'content-type': 'application/apply-patch+yaml', accept: 'application/json', 'content-length': Buffer.byteLength(body) },
      }, (res) => {
        let text = '';
        res.on('data', (d: Buffer) => (text += d.toString()));
        res.on('end', () => {
          let parsed: unknown = text;
          try {
            parsed = JSON.parse(text);
          } catch {
            /* keep text */
          }
          resolve({ status: res.statusCode ?? 0, body: parsed });
        });
      });
      req.on('error', reject);
      req.end(body);
    });
}

/** The kube-apiserver of the control plane in dir, from /proc. */
function apiServerPid(dir: string): number | undefined {
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      if (argv.includes('kube-apiserver') && argv.includes(dir)) return Number(pid);
    } catch {
      /* gone */
    }
  }
  return undefined;
}

/** Watches path and records, per event, now - status.observedTime (ms). Returns a stop function. */
async function watchLag(kubeconfig: string, path: string, lags: number[]): Promise<() => void> {
  const { server, tls } = await credentials(kubeconfig);
  const req = https.request(new URL(`${path}?watch=true&resourceVersion=0`, server), { ...tls, headers: { accept: 'application/json' } }, (res) => {
    let buf = '';
    res.on('data', (d: Buffer) => {
      buf += d.toString();
      const lines = buf.split('\n');
      buf = lines.pop()!;
      for (const line of lines) {
        if (!line) continue;
        const t = (JSON.parse(line) as { object?: { status?: { observedTime?: string } } }).object?.status?.observedTime;
        if (t) lags.push(Date.now() - Date.parse(t));
      }
    });
  });
  req.on('error', () => {});
  req.end();
  return () => req.destroy();
}

const exited = (p: ChildProcess) => new Promise((r) => (p.exitCode !== null || p.signalCode !== null ? r(null) : p.once('exit', r)));
const metric = (text: string, re: RegExp) => Number(re.exec(text)?.[1] ?? 0);

export async function benchOperator() {
  const nodes = Number(process.env.BENCH_NODES ?? 500);
  const vmsPerNode = Number(process.env.BENCH_VMS ?? 10);
  const byOperator = process.env.BENCH_INTERVAL === 'default';
  let interval = byOperator ? 0 : Number(process.env.BENCH_INTERVAL ?? 10);
  const seconds = Number(process.env.BENCH_SECONDS ?? 90);
  const log = (line: string) => process.stderr.write(`[operator-scale ${new Date().toISOString().slice(11, 19)}] ${line}\n`);
  const cluster = await startCluster();
  const c = cluster.client;
  try {
    for (const ns of [INSTALL, NS]) await c.request('POST', '/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } });
    // the agent ServiceAccount owns the DaemonSet; the operator makes none without it
    await c.request('POST', `/api/v1/namespaces/${INSTALL}/serviceaccounts`, { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'vhosttrace-agent' } });
    const names = Array.from({ length: nodes }, (_, i) => `node-${String(i).padStart(5, '0')}`);
    for (let i = 0; i < names.length; i += 50) {
      await Promise.all(names.slice(i, i + 50).map((n) => c.request('POST', '/api/v1/nodes', { apiVersion: 'v1', kind: 'Node', metadata: { name: n, labels: { 'kubevirt.io/schedulable': 'true' } } })));
    }
    const created = await c.request('POST', `/apis/vhosttrace.io/v1alpha1/namespaces/${NS}/vhosttraces`, {
      apiVersion: 'vhosttrace.io/v1alpha1',
      kind: 'VhostTrace',
      metadata: { name: 'scale' },
      spec: byOperator ? {} : { interval: `${interval}s` },
    });
    log(`${nodes} nodes and the trace created`);
    const trace = created.body as Trace;
    const ref = traceRef(trace);

    // Reports exist before the operator starts (the skeleton apply, once per node).
    const skeletons = names.map((n) => reportSkeleton(ref, n, INSTALL));
    for (let i = 0; i < skeletons.length; i += 50) {
      await Promise.all(skeletons.slice(i, i + 50).map((s) => c.apply(`/apis/vhosttrace.io/v1alpha1/namespaces/${NS}/vhosttracereports/${s.metadata.name}`, s, 'bench-agent')));
    }

    const cfgFile = join(cluster.cp.dir, 'operator.yaml');
    const budget = process.env.BENCH_WRITES_PER_SECOND ? `reportWritesPerSecond: ${Number(process.env.BENCH_WRITES_PER_SECOND)}\n` : '';
    writeFileSync(cfgFile, `metricsPort: 18080\nstatusMinIntervalMs: 2000\n${budget}`);
    const logFile = join(cluster.cp.dir, 'operator.log');
    const { openSync } = await import('node:fs');
    const fd = openSync(logFile, 'a');
    // As charts/vhosttrace/templates/operator.yaml runs it.
    const nodeFlags = (process.env.BENCH_NODE_FLAGS ?? '--optimize-for-size').split(' ').filter(Boolean);
    const startOperator = (main = process.env.BENCH_OPERATOR ?? join(REPO, 'dist/operator/main.js')) =>
      spawn('node', [...nodeFlags, main], {
        env: { ...process.env, KUBECONFIG: cluster.kubeconfig, POD_NAMESPACE: INSTALL, POD_NAME: 'bench-operator', VHOSTTRACE_OPERATOR_CONFIG: cfgFile, LOG_LEVEL: 'warn' },
        stdio: ['ignore', fd, fd],
      });
    const proc = startOperator();
    const metrics = async () => (await fetch('http://127.0.0.1:18080/metrics')).text();
    const ready = async () => (await fetch('http://127.0.0.1:18080/readyz').catch(() => undefined))?.ok ?? false;
    await eventually(ready, 60_000, 'operator ready');
    // BENCH_RESTART: an operator that starts while every report exists (a full first list of
    // them, the cache empty), as after a crash or an upgrade: its RSS each second until its
    // first roll-up after that list, then 30 s more. One restart per build it lists (comma-
    // separated main.js paths; 1: this one), one after another, to compare them on one state.
    const restartOperator = async (main: string | undefined, last: ChildProcess) => {
      await exited(last);
      const t = Date.now();
      const again = startOperator(main);
      const series: number[] = [];
      const sample = setInterval(() => series.push(Math.round(procStats(again.pid!).rssMiB)), 1000);
      try {
        await eventually(ready, 120_000, 'the restarted operator ready');
        const readyAfter = (Date.now() - t) / 1000;
        const rolledUp = (m: string) => metric(m, /^vhosttrace_operator_rollup_duration_seconds_count (\d+)$/m) > 0 && /informer_events_total\{event="list",resource="vhosttracereports"\} [1-9]/.test(m);
        await eventually(async () => rolledUp(await metrics()), 300_000, 'the restarted operator listing the reports and rolling up');
        const rolledUpAfter = (Date.now() - t) / 1000;
        await new Promise((r) => setTimeout(r, 30_000));
        const st = procStats(again.pid!);
        return { operator: main ?? 'dist/operator/main.js', readyAfterSeconds: readyAfter, firstRollupAfterSeconds: rolledUpAfter, peakRssMiB: Math.round(st.hwmMiB), rssMiB: Math.round(st.rssMiB), rssEachSecond: series.join(' ') };
      } finally {
        clearInterval(sample);
        again.kill('SIGTERM');
        await exited(again);
      }
    };
    const tracePath = `/apis/vhosttrace.io/v1alpha1/namespaces/${NS}/vhosttraces/scale`;
    const published = async () => {
      const text = (await c.request('GET', tracePath)).body?.status?.interval as string | undefined;
      return text ? parseDuration(text) / 1000 : undefined;
    };
    if (byOperator) {
      await eventually(async () => (await published()) !== undefined, 300_000, 'the operator publishing status.interval');
      interval = (await published())!;
    }
    log(`operator ready; interval ${interval} s`);
    const intervals: number[] = [interval];
    const poll = byOperator
      ? setInterval(() => {
          void published().then((s) => {
            if (s && s !== interval) {
              log(`the operator changed the interval to ${s} s`);
              interval = s;
              intervals.push(s);
            }
          }, () => {});
        }, 5000)
      : undefined;

    // Per node: cumulative counts that grow each interval (the same growth for every node).
    const hist = (k: number, v: number): RawDirections => {
      const p = fromValues(Array.from({ length: 8 }, (_, i) => (k * 7 + i * v) % 257));
      const b = fromValues(Array.from({ length: 8 }, (_, i) => ((k * 7 + i * v) % 257) * 1400));
      const scale = (h: typeof p) => ({ count: h.count * k, sum: h.sum * k, buckets: h.buckets.map((x) => x * k) });
      return { rx: { packets: scale(p), bytes: scale(b) }, tx: { packets: scale(p), bytes: scale(b) } };
    };
    const status = (node: number, k: number): ReportStatus => ({
      state: 'Reporting',
      observedTime: new Date().toISOString(),
      kernel: '6.1.0-47-amd64',
      mode: 'tracepoint',
      total: hist(k, node + 1),
      vms: Array.from({ length: vmsPerNode }, (_, v) => ({ namespace: NS, name: `vm-${node}-${v}`, uid: `00000000-0000-0000-0000-${String(node * 100 + v).padStart(12, '0')}`, ...hist(k, v + 1) })),
    });

    const apply = await applier(cluster.kubeconfig, Number(process.env.BENCH_CONNECTIONS ?? 128));
    let writes = 0;
    let bytes = 0;
    let failures = 0;
    const writeMs: number[] = [];
    const codes: Record<string, number> = {};
    const start = Date.now();
    const t0 = procStats(proc.pid!);
    // Fixed: BENCH_SECONDS. By the operator: once every node has reported, three intervals more.
    let end = byOperator ? Infinity : start + seconds * 1000;
    let reported = 0;
    let allReportedAt: number | undefined;
    // The operator's RSS every 30 s (with the progress line): when the peak comes, not only how high.
    const rssSeries: Array<[number, number]> = [];
    const progress = setInterval(() => {
      const rss = Math.round(procStats(proc.pid!).rssMiB);
      rssSeries.push([Math.round((Date.now() - start) / 1000), rss]);
      log(`${writes} report writes, ${reported}/${nodes} nodes reported, operator RSS ${rss} MiB${allReportedAt ? `; ends in ${Math.round((end - Date.now()) / 1000)} s` : ''}`);
    }, 30_000);
    const firstInterval = interval;
    const loops = names.map(async (n, i) => {
      await new Promise((r) => setTimeout(r, (i / nodes) * firstInterval * 1000)); // staggered
      for (let k = 1; Date.now() < end; k++) {
        const s = skeletons[i]!;
        const body = { apiVersion: s.apiVersion, kind: s.kind, metadata: { name: s.metadata.name, namespace: s.metadata.namespace }, status: status(i, k) };
        const text = JSON.stringify(body);
        const w0 = Date.now();
        // A network error (a keep-alive connection the server closed as the request went out)
        // is a failed write, as it is to an agent, which tries again at its next interval.
        const r = await apply(`/apis/vhosttrace.io/v1alpha1/namespaces/${NS}/vhosttracereports/${s.metadata.name}/status`, text, 'bench-agent').catch((e: Error) => ({ status: 599, body: { reason: `network: ${e.message}` } }));
        writeMs.push(Date.now() - w0);
        writes++;
        bytes += Buffer.byteLength(text);
        if (r.status >= 300) {
          failures++;
          codes[`${r.status} ${(r.body as { reason?: string })?.reason ?? ''}`] = (codes[`${r.status} ${(r.body as { reason?: string })?.reason ?? ''}`] ?? 0) + 1;
        }
        if (k === 1 && ++reported === nodes && byOperator) {
          allReportedAt = Date.now();
          end = allReportedAt + 3 * interval * 1000;
          log(`every node has reported once; three intervals more (${3 * interval} s)`);
        }
        // As an agent schedules: the next report one interval (the current one) after this one.
        const next = byOperator ? w0 + interval * 1000 : start + (i / nodes) * interval * 1000 + k * interval * 1000;
        await new Promise((res) => setTimeout(res, Math.max(0, Math.min(next, end) - Date.now())));
      }
    });
    const m0 = await metrics();
    const kas = apiServerPid(cluster.cp.dir);
    const k0 = kas ? procStats(kas) : undefined;
    // A second watcher on the reports, in this process: how late watch events arrive at all.
    const lags: number[] = [];
    const stopWatch = await watchLag(cluster.kubeconfig, `/apis/vhosttrace.io/v1alpha1/namespaces/${NS}/vhosttracereports`, lags);
    await Promise.all(loops);
    clearInterval(progress);
    if (poll) clearInterval(poll);
    const elapsed = (Date.now() - start) / 1000;
    await new Promise((r) => setTimeout(r, 3000));
    const t1 = procStats(proc.pid!);
    const k1 = kas ? procStats(kas) : undefined;
    stopWatch();
    const m1 = await metrics();
    const parent = await c.request('GET', `/apis/vhosttrace.io/v1alpha1/namespaces/${NS}/vhosttraces/scale`);
    const written = (m: string) => metric(m, /^vhosttrace_operator_status_writes_total\{result="written"\} (\d+)$/m);
    proc.kill('SIGTERM');
    const restart = [];
    for (const main of process.env.BENCH_RESTART?.split(',') ?? []) restart.push(await restartOperator(main === '1' ? undefined : main, proc));
    const result = {
      nodes,
      vmsPerNode,
      intervalSeconds: interval,
      ...(byOperator ? { intervalBy: 'operator (status.interval)', intervalsPublished: intervals, allReportedAfterSeconds: Math.round((allReportedAt! - start) / 1000) } : {}),
      operator: process.env.BENCH_OPERATOR ?? 'dist/operator/main.js',
      nodeFlags: nodeFlags.join(' '),
      reportWritesPerSecondBudget: Number(process.env.BENCH_WRITES_PER_SECOND ?? 50),
      seconds: Math.round(elapsed),
      reportWritesPerSecond: +(writes / elapsed).toFixed(1),
      reportBytesPerSecond: Math.round(bytes / elapsed),
      meanReportBytes: Math.round(bytes / writes),
      failedWrites: failures,
      failureCodes: codes,
      loadAverage: (await import('node:os')).loadavg().map((x) => +x.toFixed(1)),
      statusWritesPerSecond: +((written(m1) - written(m0)) / elapsed).toFixed(2),
      reportWriteP50Seconds: pct(writeMs, 0.5) / 1000,
      reportWriteP99Seconds: pct(writeMs, 0.99) / 1000,
      eventToStatusP50: +promQuantile(m1, 'vhosttrace_operator_event_to_status_seconds', 0.5).toFixed(2),
      eventToStatusP99: +promQuantile(m1, 'vhosttrace_operator_event_to_status_seconds', 0.99).toFixed(2),
      reportToStatusP50: +promQuantile(m1, 'vhosttrace_operator_report_to_status_seconds', 0.5).toFixed(2),
      reportToStatusP99: +promQuantile(m1, 'vhosttrace_operator_report_to_status_seconds', 0.99).toFixed(2),
      parentBytes: Buffer.byteLength(JSON.stringify(parent.body)),
      parentStatusBytes: Buffer.byteLength(JSON.stringify(parent.body.status)),
      parentPhase: parent.body.status?.phase,
      parentRxRuns: parent.body.status?.summary?.rx?.packets.count,
      watchLagP50Seconds: pct(lags, 0.5) / 1000,
      watchLagP99Seconds: pct(lags, 0.99) / 1000,
      apiServerCpuCores: k0 && k1 ? +((k1.cpuSeconds - k0.cpuSeconds) / (elapsed + 3)).toFixed(2) : null,
      apiServerRssMiB: k1 ? Math.round(k1.rssMiB) : null,
      operatorCpuCores: +((t1.cpuSeconds - t0.cpuSeconds) / (elapsed + 3)).toFixed(3),
      operatorCpuMsPerReportEvent: +(((t1.cpuSeconds - t0.cpuSeconds) * 1000) / writes).toFixed(2),
      operatorRssMiB: Math.round(t1.rssMiB),
      operatorPeakRssMiB: Math.round(t1.hwmMiB),
      operatorRssSeries: rssSeries.map(([s, m]) => `${s}s ${m}MiB`).join(', '),
      operatorHeapUsedMiB: Math.round(metric(m1, /^nodejs_heap_used_bytes (\d+)$/m) / 2 ** 20),
      informerEvents: [...m1.matchAll(/^vhosttrace_operator_informer_events_total\{(.*)\} (\d+)$/gm)].map((m) => `${m[1]} ${m[2]}`),
      rollupP50Seconds: +promQuantile(m1, 'vhosttrace_operator_rollup_duration_seconds', 0.5).toFixed(4),
      rollupP99Seconds: +promQuantile(m1, 'vhosttrace_operator_rollup_duration_seconds', 0.99).toFixed(4),
      ...(restart.length ? { restart } : {}),
      date: new Date().toISOString(),
    };
    mkdirSync(join(REPO, 'bench/results'), { recursive: true });
    writeFileSync(join(REPO, `bench/results/operator-scale-${nodes}x${vmsPerNode}${process.env.BENCH_TAG ? `-${process.env.BENCH_TAG}` : ''}.json`), `${JSON.stringify(result, null, 2)}\n`);
    return result;
  } finally {
    await cluster.stop();
  }
}
