import { describe, expect, it } from 'vitest';
import { fromValues } from '../../src/api/histogram.js';
import { header, histogramSeries, sample } from '../../src/agent/metrics.js';

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
