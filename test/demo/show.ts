// What both demos print with, and how they check what they show: a step heading, and an exact
// comparison that fails the demo naming what differs.

export const say = (s: string) => console.log(`\n\x1b[1m▸ ${s}\x1b[0m`);

/** JSON with object keys sorted, so that equal values print alike whatever the key order. */
export const canon = (v: unknown): string =>
  JSON.stringify(v, (_k, x: unknown) =>
    x && typeof x === 'object' && !Array.isArray(x) ? Object.fromEntries(Object.entries(x).sort(([a], [b]) => (a < b ? -1 : 1))) : x,
  );

/** Fails the demo, naming what differs, unless `got` is exactly `want`. */
export function check(what: string, got: unknown, want: unknown): void {
  if (canon(got) !== canon(want)) {
    throw new Error(`${what} is not the ground truth:\n  got  ${canon(got)}\n  want ${canon(want)}`);
  }
  console.log(`  ✓ ${what}`);
}
