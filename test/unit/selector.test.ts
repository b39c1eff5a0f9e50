import { describe, expect, it } from 'vitest';
import { matches } from '../../src/api/selector.js';

describe('label selector matching', () => {
  const labels = { app: 'db', tier: 'gold', 'kubevirt.io/schedulable': 'true' };
  it.each([
    ['absent selector', undefined, true],
    ['empty selector', {}, true],
    ['matchLabels hit', { matchLabels: { app: 'db' } }, true],
    ['matchLabels miss', { matchLabels: { app: 'web' } }, false],
    ['matchLabels missing key', { matchLabels: { zone: 'a' } }, false],
    ['In hit', { matchExpressions: [{ key: 'tier', operator: 'In' as const, values: ['gold', 'silver'] }] }, true],
    ['In miss', { matchExpressions: [{ key: 'tier', operator: 'In' as const, values: ['bronze'] }] }, false],
    ['NotIn on absent key', { matchExpressions: [{ key: 'zone', operator: 'NotIn' as const, values: ['a'] }] }, true],
    ['NotIn hit', { matchExpressions: [{ key: 'tier', operator: 'NotIn' as const, values: ['gold'] }] }, false],
    ['Exists', { matchExpressions: [{ key: 'app', operator: 'Exists' as const }] }, true],
    ['DoesNotExist', { matchExpressions: [{ key: 'app', operator: 'DoesNotExist' as const }] }, false],
    ['all must hold', { matchLabels: { app: 'db' }, matchExpressions: [{ key: 'zone', operator: 'Exists' as const }] }, false],
  ])('%s', (_what, selector, want) => {
    expect(matches(selector, labels)).toBe(want);
  });
});
