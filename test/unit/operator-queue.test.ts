import { describe, expect, it } from 'vitest';
import { WorkQueue } from '../../src/operator/queue.js';
import { Counter, HistogramMetric, OperatorMetrics } from '../../src/operator/metrics.js';

describe('work queue', () => {
  it('holds a key once, and never hands one key to two workers', async () => {
    const q = new WorkQueue();
    q.add('a');
    q.add('a');
    q.add('b');
    expect(q.length).toBe(2);
    const k1 = await q.get();
    expect(k1).toBe('a');
    q.add('a'); // changed while being processed: again after done, not now
    expect(await q.get()).toBe('b');
    let third: string | undefined;
    void q.get().then((k) => (third = k));
    await new Promise((r) => setTimeout(r, 10));
    expect(third).toBeUndefined();
    q.done('a');
    await new Promise((r) => setTimeout(r, 0));
    expect(third).toBe('a');
    q.shutDown();
    expect(await q.get()).toBeUndefined();
  });

  it('delays, keeps the earliest delayed add, and backs off per key', async () => {
    const q = new WorkQueue(20, 80);
    q.addAfter('x', 200);
    q.addAfter('x', 30); // earlier wins
    expect(q.length).toBe(0);
    await new Promise((r) => setTimeout(r, 60));
    expect(q.length).toBe(1);
    expect([q.retry('y'), q.retry('y'), q.retry('y'), q.retry('y')]).toEqual([20, 40, 80, 80]);
    q.forget('y');
    expect(q.retry('y')).toBe(20);
    q.shutDown();
  });
});

describe('metrics text format', () => {
  it('renders counters with escaped labels and cumulative histogram buckets', () => {
    const c = new Counter('c_total', 'help');
    c.inc({ kind: 'a"b' });
    c.inc({ kind: 'a"b' }, 2);
    expect(c.render()).toEqual(['# HELP c_total help', '# TYPE c_total counter', 'c_total{kind="a\\"b"} 3']);
    const h = new HistogramMetric('h_seconds', 'help', [1, 2]);
    h.observe(0.5);
    h.observe(1.5);
    h.observe(3);
    expect(h.render().slice(2)).toEqual(['h_seconds_bucket{le="1"} 1', 'h_seconds_bucket{le="2"} 2', 'h_seconds_bucket{le="+Inf"} 3', 'h_seconds_sum 5', 'h_seconds_count 3']);
    expect(new OperatorMetrics().render()).toContain('# TYPE vhosttrace_operator_queue_depth gauge');
  });
});
