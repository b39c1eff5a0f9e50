// Go-style durations as the API accepts them ("30s", "1h30m", "500ms"). Pure.
import { DURATION_RE } from './v1alpha1.js';

const UNIT_MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 } as const;

/** Milliseconds in a duration string; throws with the value and the expected form. */
export function parseDuration(text: string): number {
  if (!new RegExp(DURATION_RE).test(text)) {
    throw new Error(`invalid duration "${text}": expected a Go duration such as "30s", "10m" or "1h30m"`);
  }
  let ms = 0;
  for (const m of text.matchAll(/([0-9]+)(ms|s|m|h)/g)) ms += Number(m[1]) * UNIT_MS[m[2] as keyof typeof UNIT_MS];
  return ms;
}

/** The shortest Go-style string for a whole number of seconds: 90000 ms -> "1m30s". */
export function formatDuration(ms: number): string {
  let s = Math.round(ms / 1000);
  if (s === 0) return '0s';
  const h = Math.floor(s / 3600);
  s -= h * 3600;
  const m = Math.floor(s / 60);
  s -= m * 60;
  return `${h ? `${h}h` : ''}${m ? `${m}m` : ''}${s ? `${s}s` : ''}`;
}
