// The supervisor with stand-in loaders (small node scripts): it restarts them, with backoff,
// and takes a malformed line as a reason to restart rather than a number to trust.
import { describe, expect, it } from 'vitest';
import { LoaderSupervisor, type LoaderExit } from '../../src/agent/loader-supervisor.js';
import type { LoaderSnapshot } from '../../src/loader/snapshot.js';

const line = (seq: number, takeover: boolean) =>
  JSON.stringify({
    type: 'snapshot', version: 2, seq, time: '2026-11-24T00:00:00.000Z', mode: 'raw_tp', kernel: 'k', takeover, intervalSeconds: 1,
    maxCgroups: 128, dropped: { keysRefused: 0, overflowEvents: 0 }, histograms: [], counters: { slowPath: 0, noStorage: 0, stockUnpaired: 0 },
  });
const node = (script: string) => [process.execPath, '-e', script];

/** Waits for cond() rather than a fixed time: the child node process may start slowly on a busy machine. */
async function until(cond: () => boolean, what: string, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

function exits(s: LoaderSupervisor, n: number): Promise<Array<[LoaderExit, number]>> {
  const seen: Array<[LoaderExit, number]> = [];
  return new Promise((resolve) => s.on('exit', (e, wait) => (seen.push([e, wait]), seen.length === n && resolve(seen))));
}

describe('loader supervisor', () => {
  it('reads the first line at once and the newest line when asked', async () => {
    const s = new LoaderSupervisor({ command: node(`console.log(${JSON.stringify(line(0, true))}); setTimeout(() => console.log(${JSON.stringify(line(1, true))}), 50); setTimeout(() => {}, 5000)`) });
    const first = new Promise((r) => s.on('firstSnapshot', r));
    s.start();
    expect(await first).toMatchObject({ seq: 0, takeover: true });
    await until(() => s.snapshotSeq === 2, 'the second line');
    expect(s.lastSnapshot?.seq).toBe(1);
    await s.stop();
  });

  it('numbers every line it reads, and parses a released line again only when asked', async () => {
    const s = new LoaderSupervisor({ command: node(`console.log(${JSON.stringify(line(0, true))}); setTimeout(() => { console.log(${JSON.stringify(line(1, true))}); console.log('{"type":"snapshot"}') }, 100); setTimeout(() => {}, 5000)`), backoffMinMs: 5000 });
    const first = new Promise((r) => s.on('firstSnapshot', r));
    s.start();
    await first;
    expect(s.snapshotSeq).toBe(1);
    const a = s.lastSnapshot;
    expect(s.lastSnapshot).toBe(a); // cached until released
    s.release();
    const b = s.lastSnapshot;
    expect(b).not.toBe(a);
    expect(b).toEqual(a);
    expect(s.lastMode).toBe('raw_tp');
    await until(() => s.snapshotSeq === 3, 'two more lines'); // read, not yet parsed
    s.release();
    // The newest line is malformed (and the one before it was never asked for): the last good
    // one, parsed again, is the answer.
    expect(s.lastSnapshot?.seq).toBe(0);
    expect(s.snapshotSeq).toBe(1);
    await s.stop();
  });

  it('joins a line written in pieces (split inside a UTF-8 character) and skips blank lines', async () => {
    const text = line(5, true).replace('"kernel":"k"', '"kernel":"6.1-é"');
    const bytes = Buffer.from(`\n  \r\n${text}\n`);
    const cut = bytes.indexOf(Buffer.from('é')) + 1;
    const script = `const b = Buffer.from(${JSON.stringify(bytes.toString('base64'))}, 'base64');
      process.stdout.write(b.subarray(0, 20)); setTimeout(() => process.stdout.write(b.subarray(20, ${cut})), 50);
      setTimeout(() => process.stdout.write(b.subarray(${cut})), 100); setTimeout(() => console.log('{"type":"snapshot"}'), 300); setTimeout(() => {}, 5000)`;
    const s = new LoaderSupervisor({ command: node(script), backoffMinMs: 5000 });
    const errors: Error[] = [];
    s.on('parseError', (e) => errors.push(e));
    const first = new Promise<LoaderSnapshot>((r) => s.on('firstSnapshot', r));
    s.start();
    expect(await first).toMatchObject({ seq: 5, kernel: '6.1-é' });
    await until(() => s.snapshotSeq === 2, 'the malformed line'); // read; parsed when asked
    expect(s.lastSnapshot?.seq).toBe(5); // the bad second line is not taken
    expect(errors[0]?.message).toMatch(/^line 2: /); // blank lines are not counted
    await s.stop();
  });

  it('restarts a loader that exits, doubling the delay, and keeps its last words', async () => {
    const s = new LoaderSupervisor({ command: node('console.error("boom"); process.exit(1)'), backoffMinMs: 20, backoffMaxMs: 1000 });
    const seen = exits(s, 3);
    s.start();
    const got = await seen;
    await s.stop();
    expect(got.map(([, wait]) => wait)).toEqual([20, 40, 80]);
    expect(got[0]![0]).toMatchObject({ code: 1, stderr: 'boom' });
    expect(s.restarts).toBeGreaterThanOrEqual(3);
  });

  it('waits the longest delay after an exit code that a restart cannot fix (3: no tracepoint)', async () => {
    const s = new LoaderSupervisor({ command: node('process.exit(3)'), backoffMinMs: 20, backoffMaxMs: 500 });
    const seen = exits(s, 1);
    s.start();
    const [e, wait] = (await seen)[0]!;
    await s.stop();
    expect(e.code).toBe(3);
    expect(wait).toBe(500);
  });

  it('restarts a loader that writes a malformed line', async () => {
    const s = new LoaderSupervisor({ command: node(`console.log(${JSON.stringify(line(0, false))}); console.log('{"type":"snapshot"}'); setTimeout(() => {}, 5000)`), backoffMinMs: 20 });
    const errors: Error[] = [];
    s.on('parseError', (e) => errors.push(e));
    const seen = exits(s, 1);
    s.start();
    await until(() => s.snapshotSeq === 2, 'the malformed line'); // read; parsed when asked
    expect(s.lastSnapshot?.seq).toBe(0); // the bad line is not taken
    const [e] = (await seen)[0]!;
    await s.stop();
    expect(errors[0]?.message).toMatch(/line 2/);
    expect(e.signal).toBe('SIGTERM');
  });
});
