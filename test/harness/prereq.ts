// A test's prerequisite on this machine: missing in CI it fails the run; elsewhere the test skips and says why.
// test/setup installs every prerequisite named here, so in CI a skip would only hide a broken setup.

/** True when `what` is missing and the test should skip; throws instead when CI=true. */
export function missing(what: string, present: boolean, fix: string): boolean {
  if (present) return false;
  const message = `${what} is missing: ${fix}`;
  if (process.env.CI === 'true') throw new Error(`${message} (CI=true: test/setup installs it, so a skip would hide a broken setup)`);
  console.warn(`skipping: ${message}`);
  return true;
}
