// The operator's first list of the reports, alone: peak RSS of a process whose informer (the
// real Informer and compactReport) lists N reports of V VMs in pages of each size, with node's
// defaults and with --optimize-for-size. The reports come from a server in another process, so
// only the listing side is measured. `node --import tsx bench/operator-first-list.ts`; knobs
// BENCH_NODES (5000), BENCH_VMS (50), BENCH_PAGES (500,50); results in
// bench/results/operator-first-list.json.
import { spawn, execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import http from 'node:http';
import { fileURLToPath } from 'node:url';
import { KubeClient } from '../src/kube/client.js';
import { Informer } from '../src/kube/informer.js';
import { compactReport } from '../src/operator/compact.js';
import { reportJson } from './operator-reports.js';

const NODES = Number(process.env.BENCH_NODES ?? 5000);
const VMS = Number(process.env.BENCH_VMS ?? 50);
const self = fileURLToPath(import.meta.url);
const kib = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(readFileSync('/proc/self/status', 'utf8'))?.[1]);

/** The server: a paged list of the reports (continue = the next index), as the API server pages. */
function serve(): void {
  const items = Array.from({ length: NODES }, (_, n) => reportJson(n, VMS));
  const srv = http.createServer((req, res) => {
    const u = new URL(req.url!, 'http://x');
    const from = Number(u.searchParams.get('continue') || 0);
    const to = Math.min(NODES, from + Number(u.searchParams.get('limit') ?? NODES));
    const cont = to < NODES ? `"continue":"${to}",` : '';
    res.setHeader('content-type', 'application/json');
    res.end(`{"kind":"VhostTraceReportList","apiVersion":"vhosttrace.io/v1alpha1","metadata":{${cont}"resourceVersion":"1"},"items":[${items.slice(from, to).join(',')}]}`);
  });
  srv.listen(0, '127.0.0.1', () => console.log((srv.address() as { port: number }).port));
}

/** One listing process: the first list, as the operator's reports informer reads it. */
async function list(port: number, pageSize: number): Promise<void> {
  const before = kib('VmRSS');
  const inf = new Informer<never, ReturnType<typeof compactReport>>(new KubeClient({ server: `http://127.0.0.1:${port}`, source: 'bench' }), '/reports', { transform: compactReport as never, pageSize });
  const t0 = performance.now();
  void inf.run();
  await inf.synced;
  const seconds = (performance.now() - t0) / 1000;
  inf.stop();
  console.log(JSON.stringify({ reports: inf.list().length, seconds: +seconds.toFixed(2), rssBeforeMiB: Math.round(before / 1024), rssAfterMiB: Math.round(kib('VmRSS') / 1024), peakRssMiB: Math.round(kib('VmHWM') / 1024) }));
  process.exit(0);
}

async function main(): Promise<void> {
  const server = spawn(process.execPath, ['--import', 'tsx', self, 'serve'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = Number(await new Promise<string>((r) => server.stdout.once('data', (d: Buffer) => r(d.toString()))));
  const rows = [];
  try {
    for (const pageSize of (process.env.BENCH_PAGES ?? '500,50').split(',').map(Number)) {
      for (const flags of [[], ['--optimize-for-size']]) {
        const out = execFileSync(process.execPath, [...flags, '--import', 'tsx', self, 'list', String(port), String(pageSize)], { encoding: 'utf8' });
        const row = { pageSize, nodeFlags: flags.join(' ') || '(defaults)', ...JSON.parse(out) };
        console.error(JSON.stringify(row));
        rows.push(row);
      }
    }
  } finally {
    server.kill();
  }
  const results = fileURLToPath(new URL('results/', import.meta.url));
  mkdirSync(results, { recursive: true });
  writeFileSync(`${results}operator-first-list.json`, `${JSON.stringify({ nodes: NODES, vmsPerNode: VMS, date: new Date().toISOString(), rows }, null, 2)}\n`);
}

const [mode, a, b] = process.argv.slice(2);
if (mode === 'serve') serve();
else if (mode === 'list') void list(Number(a), Number(b));
else void main();
