// When each trace's next report is due and when the agent must wake next. Pure: the clock and the loader's state come in as arguments.
import { parseDuration } from '../api/duration.js';
import { endTime } from '../api/lifetime.js';
import type { Trace } from '../api/reports.js';

/** The longest the agent sleeps between ticks even when nothing is due (a safety net). */
export const MAX_SLEEP_MS = 5000;
/** How long a due report waits for the loader's next line, or for its first (see dueAt). */
export const LINE_WAIT_MS = 300;
export const FIRST_LINE_WAIT_MS = 3000;
/** A failed report is retried after this, or after the interval if that is shorter. */
export const RETRY_MS = 2000;

export interface Schedule {
  nextAt: number;
  skeletonApplied: boolean;
  /** The final report after the trace's duration has been written. */
  done: boolean;
}

/** What the schedule needs to know of the loader (LoaderSupervisor) and of the trace's ledger. */
export interface LineState {
  loaderRunning: boolean;
  /** The loader's newest line (snapshotSeq); undefined before its first. */
  newestLine: number | undefined;
  /** The line the trace's ledger last took. */
  ledgerLine: number | undefined;
}

export const newSchedule = (now: number): Schedule => ({ nextAt: now, skeletonApplied: false, done: false });

/** The report interval: the operator's choice in status, else the spec's, else the default. */
export function intervalOf(t: Trace, defaultMs: number): number {
  const text = t.status?.interval ?? t.spec.interval;
  try {
    return text ? parseDuration(text) : defaultMs;
  } catch {
    return defaultMs;
  }
}

/**
 * When the trace's next report is due: at nextAt, or a little later if its ledger already has
 * the loader's newest line while the loader runs. A newer line is then under a second away,
 * and waiting for it (its arrival wakes the agent) gives the report the newest counts and
 * parses the line in the wake-up that read it, while its bytes are still in the caches.
 */
export function dueAt(sched: Schedule, lines: LineState, intervalMs: number): number {
  if (!lines.loaderRunning) return sched.nextAt;
  // Just started, its first line on the way: a report now could only say Pending.
  if (lines.newestLine === undefined) return sched.nextAt + FIRST_LINE_WAIT_MS;
  return lines.ledgerLine === lines.newestLine ? sched.nextAt + Math.min(LINE_WAIT_MS, intervalMs / 4) : sched.nextAt;
}

/** Whether to report now; `final` when the trace's duration is over (its last report). */
export function reportNow(t: Trace, sched: Schedule, lines: LineState, intervalMs: number, now: number): { now: boolean; final: boolean } {
  const end = endTime(t);
  const final = end !== undefined && now >= end;
  return { now: !sched.done && (final || now >= dueAt(sched, lines, intervalMs)), final };
}

/** After a report was tried: the next one an interval on, sooner after a failure; done after the final one. */
export function afterReport(sched: Schedule, ok: boolean, final: boolean, intervalMs: number, now: number): void {
  sched.nextAt = now + (ok ? intervalMs : Math.min(intervalMs, RETRY_MS));
  if (ok && final) sched.done = true;
}

/**
 * When the agent must look at this trace again: its next report, or its end (the final report,
 * retried at nextAt after that). Undefined when it is done. `waitsForLine`: the report is held
 * back for the loader's next line, whose arrival should wake the agent.
 */
export function wakeFor(t: Trace, sched: Schedule, lines: LineState, intervalMs: number, now: number): { at: number; waitsForLine: boolean } | undefined {
  if (sched.done) return undefined;
  const due = dueAt(sched, lines, intervalMs);
  const end = endTime(t);
  return { at: Math.min(due, end !== undefined && end > now ? end : Infinity), waitsForLine: due > sched.nextAt };
}
