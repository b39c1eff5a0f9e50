import { describe, expect, it } from 'vitest';
import { endTime, isActive, isFinished, startTime } from '../../src/api/lifetime.js';
import type { Trace } from '../../src/api/reports.js';

const CREATED = '2026-12-06T10:00:00Z';

function trace(spec: Partial<Trace['spec']> = {}, status?: Trace['status'], meta: Partial<Trace['metadata']> = {}): Trace {
  return {
    apiVersion: 'vhosttrace.io/v1alpha1',
    kind: 'VhostTrace',
    metadata: { name: 't', namespace: 'ns', uid: 'u', creationTimestamp: CREATED, ...meta },
    spec,
    ...(status ? { status } : {}),
  } as Trace;
}

describe('a trace\'s lifetime', () => {
  it('starts at status.startTime once written, else at its creation, and ends a duration later', () => {
    expect(startTime(trace())).toBe(Date.parse(CREATED));
    const started = trace({ duration: '1m30s' }, { startTime: '2026-12-06T10:00:05Z' });
    expect(startTime(started)).toBe(Date.parse('2026-12-06T10:00:05Z'));
    expect(endTime(started)).toBe(Date.parse('2026-12-06T10:01:35Z'));
    expect(endTime(trace())).toBeUndefined();
    // No time at all (an object not yet created): no start, so no end either.
    expect(startTime(trace({ duration: '1m' }, undefined, { creationTimestamp: undefined }))).toBeUndefined();
    expect(endTime(trace({ duration: '1m' }, undefined, { creationTimestamp: undefined }))).toBeUndefined();
  });

  it('is finished when deleted or Completed, not when Failed; active until then and until its end', () => {
    const end = Date.parse('2026-12-06T10:01:00Z');
    expect(isFinished(trace({}, { phase: 'Completed' }))).toBe(true);
    expect(isFinished(trace({}, undefined, { deletionTimestamp: CREATED }))).toBe(true);
    expect(isFinished(trace({}, { phase: 'Failed' }))).toBe(false);
    expect(isActive(trace({}, { phase: 'Failed' }), end + 1e9)).toBe(true);
    const timed = trace({ duration: '1m' });
    expect(isActive(timed, end - 1)).toBe(true);
    // Past its end: not active (the operator drops its agents), not finished (their final reports).
    expect(isActive(timed, end)).toBe(false);
    expect(isFinished(timed)).toBe(false);
  });
});
