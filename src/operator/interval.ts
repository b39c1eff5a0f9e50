// Go durations ("1h30m") and the report interval the operator chooses. Pure.

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** Milliseconds of a Go duration as the CRD admits it (^([0-9]+(ms|s|m|h))+$). */
export function parseDuration(d: string): number {
  const re = /([0-9]+)(ms|s|m|h)/gy;
  let ms = 0;
  let m: RegExpExecArray | null;
  let end = 0;
  while ((m = re.exec(d)) !== null) {
    ms += Number(m[1]) * UNIT_MS[m[2]!]!;
    end = re.lastIndex;
  }
  if (end === 0 || end !== d.length) throw new RangeError(`not a duration: "${d}"`);
  return ms;
}

/** Whole seconds as a Go duration: 10s, 1m40s, 2h. */
export function formatDuration(seconds: number): string {
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const r = s % 60;
  const out = `${h ? `${h}h` : ''}${m ? `${m}m` : ''}${r ? `${r}s` : ''}`;
  return out || '0s';
}

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
