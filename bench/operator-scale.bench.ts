import { expect, it } from 'vitest';
import { benchOperator } from './operator-scale.js';

it('operator roll-up at N simulated nodes', async () => {
  const r = await benchOperator();
  console.log(JSON.stringify(r, null, 2));
  expect(r.failedWrites).toBe(0);
  expect(r.parentStatusBytes).toBeLessThanOrEqual(64 * 1024);
});
