import { describe, expect, it } from 'vitest';
import { fromValues } from '../../src/api/histogram.js';
import { histogramSeries } from '../../src/agent/metrics.js';
import { closeServer, portOf, serveEndpoints } from '../../src/metrics/server.js';
import { header, sample } from '../../src/metrics/text.js';

describe('Prometheus text', () => {
  it('log2 slots become cumulative buckets with le = 1, 3, 7, 15, ...', () => {
    const h = fromValues([0, 1, 2, 5, 5, 9, 100]);
    expect(histogramSeries('x', { vm: 'a' }, h, 4)).toBe(
      [
        'x_bucket{vm="a",le="1"} 2',
        'x_bucket{vm="a",le="3"} 3',
        'x_bucket{vm="a",le="7"} 5',
        'x_bucket{vm="a",le="15"} 6',
        'x_bucket{vm="a",le="+Inf"} 7',
        'x_sum{vm="a"} 122',
        'x_count{vm="a"} 7',
        '',
      ].join('\n'),
    );
  });

  it('escapes label values and writes HELP/TYPE', () => {
    expect(header('y', 'gauge', 'a gauge')).toBe('# HELP y a gauge\n# TYPE y gauge\n');
    expect(sample('y', { vm: 'a"b\\c\nd' }, 1)).toBe('y{vm="a\\"b\\\\c\\nd"} 1\n');
    expect(sample('y', {}, 2)).toBe('y 2\n');
  });
});

describe('the /metrics, /healthz, /readyz server', () => {
  it('serves each path with or without a query string, says why it is not ready, and closes with a connection kept alive', async () => {
    let ok = false;
    const server = await serveEndpoints(0, { metrics: () => 'm 1\n', ready: () => ({ ok, text: ok ? 'ok' : 'informers not synced' }) });
    const base = `http://127.0.0.1:${portOf(server)}`;
    try {
      const get = async (path: string) => {
        const r = await fetch(`${base}${path}`);
        return [r.status, await r.text(), r.headers.get('content-type')] as const;
      };
      expect(await get('/metrics')).toEqual([200, 'm 1\n', 'text/plain; version=0.0.4']);
      expect((await get('/metrics?name[]=m'))[0]).toBe(200);
      expect((await get('/healthz?verbose'))[0]).toBe(200);
      expect((await get('/readyz')).slice(0, 2)).toEqual([503, 'informers not synced\n']);
      ok = true;
      expect((await get('/readyz')).slice(0, 2)).toEqual([200, 'ok\n']);
      expect((await get('/nothing'))[0]).toBe(404);
    } finally {
      // fetch keeps its connection alive: the close must not wait for it.
      await closeServer(server);
    }
    expect(server.listening).toBe(false);
  });
});
