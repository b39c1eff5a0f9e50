// When a trace starts and ends, and whether it still needs agents: one answer for the operator and the agent. Pure.
import { parseDuration } from './duration.js';
import type { Trace } from './reports.js';

/** When a trace started: its status.startTime once written, else its creation. */
export function startTime(t: Trace): number | undefined {
  const ms = Date.parse(t.status?.startTime ?? t.metadata.creationTimestamp ?? '');
  return Number.isNaN(ms) ? undefined : ms;
}

/** When a trace with a duration ends; undefined for a trace that runs until deleted. */
export function endTime(t: Trace): number | undefined {
  const start = startTime(t);
  return t.spec.duration && start !== undefined ? start + parseDuration(t.spec.duration) : undefined;
}

/**
 * Over for good: deleted, or Completed. Failed is not: it clears when a node can trace again,
 * and only that node's reports can say so.
 */
export function isFinished(t: Trace): boolean {
  return Boolean(t.metadata.deletionTimestamp) || t.status?.phase === 'Completed';
}

/**
 * Needs agents: not finished and its duration, if any, not over. (A trace past its end is not
 * active but not finished either: its agents still write their final reports.)
 */
export function isActive(t: Trace, now: number): boolean {
  if (isFinished(t)) return false;
  const end = endTime(t);
  return end === undefined || now < end;
}
