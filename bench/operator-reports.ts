// The synthetic reports of the operator benches: node n's report with `vms` VMs, as the JSON an
// agent writes (64 events per histogram, counts scaled by 1,000; about 26 KB at 50 VMs). `round`
// varies the counts: node n's report of a later round, as its next report event.
import { fromValues } from '../src/api/histogram.js';
import type { RawDirections, VhostTraceReport } from '../src/api/v1alpha1.js';

function dirs(seed: number): RawDirections {
  const p = Array.from({ length: 64 }, (_, i) => (seed * 31 + i * 17) % 257);
  const b = p.map((x, i) => x * (1000 + ((seed + i) % 500)));
  const scale = (h: ReturnType<typeof fromValues>) => ({ count: h.count * 1000, sum: h.sum * 1000, buckets: h.buckets.map((x) => x * 1000) });
  return { rx: { packets: scale(fromValues(p)), bytes: scale(fromValues(b)) }, tx: { packets: scale(fromValues(p)), bytes: scale(fromValues(b)) } };
}

export function reportJson(n: number, vms: number, round = 0): string {
  const name = `node-${String(n).padStart(5, '0')}`;
  const r: VhostTraceReport = {
    apiVersion: 'vhosttrace.io/v1alpha1',
    kind: 'VhostTraceReport',
    metadata: { name: `t.${name}`, namespace: 'ns', uid: '3f1c1c1e-0000-4000-8000-000000000000', resourceVersion: '123456', labels: { 'vhosttrace.io/trace-uid': 'u' } },
    spec: { trace: { kind: 'VhostTrace', name: 't', namespace: 'ns', uid: 'u' }, nodeName: name },
    status: {
      state: 'Reporting',
      observedTime: '2026-11-24T12:00:00Z',
      kernel: '6.1.0-47-amd64',
      mode: 'tracepoint',
      total: dirs(n + round),
      vms: Array.from({ length: vms }, (_, v) => ({ namespace: `tenant-${v % 7}`, name: `vm-${n}-${v}`, uid: `00000000-0000-4000-8000-${String(n * 100 + v).padStart(12, '0')}`, ...dirs(n + v + round) })),
    },
  };
  return JSON.stringify(r);
}
