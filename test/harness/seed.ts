// The seed article's printed histograms as data: the counts read back from its text, and a saved
// VhostTrace whose status.summary holds them (for `kubectl vhosttrace show -f`).
import { readFileSync } from 'node:fs';
import { summarize } from '../../src/api/histogram.js';
import type { Trace } from '../../src/api/reports.js';

/** The seed article's output as its BCC script printed it (bpf/test/golden: the article's text, NBSP back to spaces). */
export const ARTICLE = readFileSync(new URL('../../bpf/test/golden/seed-article-output.txt', import.meta.url), 'utf8');

/** The counts the article shows, per heading, in vhosttrace slot order (the "0 -> 1" row is slot 0). */
export function seedCounts(text: string): Record<string, number[]> {
  const out: Record<string, number[]> = {};
  let heading = '';
  for (const line of text.split('\n')) {
    if (line.startsWith('Vhost-net ')) heading = line;
    const m = line.match(/^\s*\d+ -> \d+\s*: (\d+)/);
    if (m) (out[heading] ??= []).push(Number(m[1]));
  }
  return out;
}

/** A saved VhostTrace whose status.summary holds the article's counts (sums: each run at its slot's low end). */
export function seedTrace(name = 'seed', namespace = 'default'): Trace {
  const c = seedCounts(ARTICLE);
  const h = (buckets: number[]) => {
    const count = buckets.reduce((a, b) => a + b, 0);
    const sum = buckets.reduce((a, n, k) => a + n * (k === 0 ? 1 : 2 ** k), 0);
    return summarize({ count, sum, buckets });
  };
  return {
    apiVersion: 'vhosttrace.io/v1alpha1',
    kind: 'VhostTrace',
    metadata: { name, namespace, uid: 'seed' },
    spec: {},
    status: {
      phase: 'Completed',
      nodesReporting: '1/1',
      summary: {
        rx: { packets: h(c['Vhost-net RX log2 received packets histogram']!), bytes: h(c['Vhost-net RX log2 total length histogram']!) },
        tx: { packets: h(c['Vhost-net TX log2 sent packets histogram']!), bytes: h(c['Vhost-net TX log2 total length histogram']!) },
      },
    },
  };
}
