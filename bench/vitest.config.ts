import { defineConfig } from 'vitest/config';

// Benchmarks: run by hand (`npm run bench:agent`), never by `npm test`. Each writes its
// results to bench/results/ and docs/benchmarks.md summarises them.
export default defineConfig({
  test: { include: ['bench/**/*.bench.ts'], testTimeout: 1_800_000, hookTimeout: 300_000, fileParallelism: false },
});
