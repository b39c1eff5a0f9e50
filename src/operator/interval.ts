// Go durations ("1h30m") and the report interval the operator chooses. Pure.

import { formatDuration, parseDuration } from '../api/duration.js';

export { parseDuration };

/** Whole seconds as a Go duration: 10s, 1m40s, 2h. */
export const formatSeconds = (seconds: number): string => formatDuration(seconds * 1000);

/** The API server budget the default interval is designed for (docs/operator.md). */
export const BUDGET = {
  /** Shortest default interval. */
  minSeconds: 10,
  /** Report writes per second, all nodes together (the operator's `reportWritesPerSecond`). */
  writesPerSecond: 50,
  /** Report bytes per second, all nodes together (the operator's `reportBytesPerSecond`). */
  bytesPerSecond: 1_000_000,
} as const;

/** What the reports of all nodes together may cost the API server. */
export interface ReportBudget {
  writesPerSecond: number;
  bytesPerSecond: number;
}

/**
 * The report interval when the trace sets none: long enough that `nodes` agents together stay
 * within the budget's writes and bytes per second (by default BUDGET's; reports of
 * `reportBytes` each, as measured from the reports seen so far), and never under 10 s.
 * 500 nodes: 10 s; 5,000 nodes with 20 KB reports: 100 s (50 writes/s, 1 MB/s).
 */
export function defaultIntervalSeconds(nodes: number, reportBytes = 0, budget: ReportBudget = BUDGET): number {
  const byWrites = nodes / budget.writesPerSecond;
  const byBytes = (nodes * reportBytes) / budget.bytesPerSecond;
  return Math.max(BUDGET.minSeconds, Math.ceil(Math.max(byWrites, byBytes)));
}
