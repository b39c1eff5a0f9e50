import { expect, it } from 'vitest';
import { benchAgent } from './agent-resources.js';

it('agent RSS and CPU with 256 VM cgroups at a 1 s interval', async () => {
  const r = (await benchAgent()) as { reportVms: number };
  console.log(JSON.stringify(r, null, 2));
  expect(r.reportVms).toBe(Number(process.env.BENCH_VMS ?? 256)); // the agent really did the work
});
