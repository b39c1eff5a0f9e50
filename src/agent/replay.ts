// A stand-in for `vhost-hist --json --pin` that replays a recording: the agent runs it as its
// loader in tests, so everything after the loader's stdout (parser, supervisor, ledger, reports)
// is the real code, without a kernel. It imitates pinning too: the first run writes a state
// file (its "pinned maps"), and later runs take it over and continue on the same clock, so
// frames keep advancing while no replay runs, as pinned programs keep counting.
//
//   node dist/agent/replay.js --recording FILE --state DIR [-i SECONDS] [--frame-seconds S] [--stop]
//
// FILE holds cumulative snapshots, one JSON line each (the loader's format); frame k is shown
// from k * frame-seconds after the first start; the last frame stays.
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { formatSnapshotLine, parseSnapshotLines, type LoaderSnapshot } from '../loader/snapshot.js';

interface ReplayState {
  startedAtMs: number;
}

export function frameAt(frames: readonly LoaderSnapshot[], startedAtMs: number, nowMs: number, frameMs: number): LoaderSnapshot {
  const k = Math.min(frames.length - 1, Math.max(0, Math.floor((nowMs - startedAtMs) / frameMs)));
  return frames[k]!;
}

function main(): void {
  const { values } = parseArgs({
    options: {
      recording: { type: 'string' },
      state: { type: 'string' },
      interval: { type: 'string', short: 'i', default: '1' },
      'frame-seconds': { type: 'string', default: '1' },
      stop: { type: 'boolean', default: false },
    },
  });
  if (!values.state) throw new Error('replay: --state DIR is required');
  const stateFile = join(values.state, 'replay-state.json');
  if (values.stop) {
    rmSync(stateFile, { force: true });
    return;
  }
  if (!values.recording) throw new Error('replay: --recording FILE is required');
  const frames = parseSnapshotLines(readFileSync(values.recording, 'utf8'));
  if (frames.length === 0) throw new Error(`replay: ${values.recording} holds no snapshot`);

  const takeover = existsSync(stateFile);
  const state: ReplayState = takeover ? JSON.parse(readFileSync(stateFile, 'utf8')) : { startedAtMs: Date.now() };
  if (!takeover) {
    mkdirSync(values.state, { recursive: true });
    writeFileSync(stateFile, JSON.stringify(state));
  }
  const frameMs = Number(values['frame-seconds']) * 1000;
  const intervalSeconds = Number(values.interval);
  let seq = 0;
  const emit = () => {
    const f = frameAt(frames, state.startedAtMs, Date.now(), frameMs);
    const line: LoaderSnapshot = { ...f, seq: seq++, time: new Date().toISOString(), takeover, intervalSeconds };
    process.stdout.write(formatSnapshotLine(line) + '\n');
  };
  emit();
  const timer = setInterval(emit, intervalSeconds * 1000);
  const exit = () => {
    clearInterval(timer);
    emit(); // the loader prints a last line at exit too
    process.exit(0);
  };
  process.on('SIGTERM', exit);
  process.on('SIGINT', exit);
}

if (process.argv[1]?.endsWith('replay.js')) {
  try {
    main();
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n`);
    process.exit(1);
  }
}
