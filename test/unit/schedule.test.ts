import { describe, expect, it } from 'vitest';
import type { Trace } from '../../src/api/reports.js';
import { afterReport, dueAt, FIRST_LINE_WAIT_MS, intervalOf, LINE_WAIT_MS, newSchedule, reportNow, RETRY_MS, wakeFor, type LineState } from '../../src/agent/schedule.js';

const T0 = Date.parse('2026-12-06T10:00:00Z');
const trace = (spec: Partial<Trace['spec']> = {}, status?: Trace['status']): Trace =>
  ({ apiVersion: 'vhosttrace.io/v1alpha1', kind: 'VhostTrace', metadata: { name: 't', namespace: 'ns', uid: 'u', creationTimestamp: new Date(T0).toISOString() }, spec, ...(status ? { status } : {}) }) as Trace;

const fresh: LineState = { loaderRunning: true, newestLine: 5, ledgerLine: 4 };
const taken: LineState = { loaderRunning: true, newestLine: 5, ledgerLine: 5 };

describe('report schedule', () => {
  it('takes the interval from status, then spec, then the default; a bad one falls back', () => {
    expect(intervalOf(trace({ interval: '30s' }, { interval: '1m' }), 10_000)).toBe(60_000);
    expect(intervalOf(trace({ interval: '30s' }), 10_000)).toBe(30_000);
    expect(intervalOf(trace(), 10_000)).toBe(10_000);
    expect(intervalOf(trace({ interval: 'soon' }), 10_000)).toBe(10_000);
  });

  it('is due at nextAt, a little later when the ledger has the newest line, and later still before the first', () => {
    const s = newSchedule(T0);
    expect(dueAt(s, fresh, 10_000)).toBe(T0);
    expect(dueAt(s, taken, 10_000)).toBe(T0 + LINE_WAIT_MS);
    expect(dueAt(s, taken, 400)).toBe(T0 + 100); // a quarter of a short interval
    expect(dueAt(s, { loaderRunning: true, newestLine: undefined, ledgerLine: undefined }, 10_000)).toBe(T0 + FIRST_LINE_WAIT_MS);
    // A stopped loader has no next line to wait for.
    expect(dueAt(s, { ...taken, loaderRunning: false }, 10_000)).toBe(T0);
  });

  it('reports once at the end of a timed trace, then is done; a failed report is retried sooner', () => {
    const t = trace({ duration: '1m', interval: '10s' });
    const s = newSchedule(T0);
    expect(reportNow(t, s, fresh, 10_000, T0)).toEqual({ now: true, final: false });
    afterReport(s, false, false, 10_000, T0);
    expect(s.nextAt).toBe(T0 + RETRY_MS);
    afterReport(s, true, false, 10_000, T0 + RETRY_MS);
    expect(s.nextAt).toBe(T0 + RETRY_MS + 10_000);
    // Not due yet, but the end wakes it: the final report comes at the end, not an interval later.
    expect(reportNow(t, s, fresh, 10_000, T0 + 5000)).toEqual({ now: false, final: false });
    const end = T0 + 60_000;
    s.nextAt = end + 9000;
    expect(wakeFor(t, s, fresh, 10_000, end - 1)).toEqual({ at: end, waitsForLine: false });
    expect(reportNow(t, s, taken, 10_000, end)).toEqual({ now: true, final: true });
    afterReport(s, true, true, 10_000, end);
    expect(s.done).toBe(true);
    expect(reportNow(t, s, fresh, 10_000, end + 1e6).now).toBe(false);
    expect(wakeFor(t, s, fresh, 10_000, end)).toBeUndefined();
  });

  it('says when a report waits for the loader\'s next line', () => {
    const s = newSchedule(T0);
    expect(wakeFor(trace(), s, taken, 10_000, T0)).toEqual({ at: T0 + LINE_WAIT_MS, waitsForLine: true });
    expect(wakeFor(trace(), s, fresh, 10_000, T0)).toEqual({ at: T0, waitsForLine: false });
  });
});
