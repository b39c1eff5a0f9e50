import { describe, expect, it } from 'vitest';
import { formatDuration, parseDuration } from '../../src/api/duration.js';

describe('durations', () => {
  it.each([
    ['500ms', 500], ['1s', 1000], ['10s', 10_000], ['1m30s', 90_000], ['1h', 3_600_000], ['2h5m', 7_500_000], ['720h', 2_592_000_000],
  ])('%s is %i ms', (text, ms) => expect(parseDuration(text)).toBe(ms));

  it.each(['', '10', '-1s', '1d', '1.5h', 's'])('refuses %j, saying what is expected', (text) => {
    expect(() => parseDuration(text)).toThrow(/expected a Go duration/);
  });

  it.each([[0, '0s'], [1000, '1s'], [90_000, '1m30s'], [3_600_000, '1h'], [3_661_000, '1h1m1s']])('formats %i as %s', (ms, text) => {
    expect(formatDuration(ms)).toBe(text);
    if (ms) expect(parseDuration(text)).toBe(ms);
  });
});
