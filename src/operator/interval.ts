// Go durations ("1h30m") and the report interval the operator chooses. Pure.

import { formatDuration, parseDuration } from '../api/duration.js';

export { parseDuration };

/** Whole seconds as a Go duration: 10s, 1m40s, 2h. */
export const formatSeconds = (seconds: number): string => formatDuration(seconds * 1000);

/** The API server budget the default interval is designed for (docs/operator.md). */
export const BUDGET = {
  /** Shortest default interval. */
  minSeconds: 10,
  /** Report writes per second, all nodes together. */
  writesPerSecond: 50,
  /** Report bytes per second, all nodes together. */
  bytesPerSecond: 1_000_000,
} as const;

/**
 * The report interval when the trace sets none: long enough that `nodes` agents together stay
 * within BUDGET.writesPerSecond writes and BUDGET.bytesPerSecond bytes (reports of
 * `reportBytes` each, as measured from the reports seen so far), and never under 10 s.
 * 500 nodes: 10 s; 5,000 nodes with 20 KB reports: 100 s (50 writes/s, 1 MB/s).
 */
export function defaultIntervalSeconds(nodes: number, reportBytes = 0): number {
  const byWrites = nodes / BUDGET.writesPerSecond;
  const byBytes = (nodes * reportBytes) / BUDGET.bytesPerSecond;
  return Math.max(BUDGET.minSeconds, Math.ceil(Math.max(byWrites, byBytes)));
}
