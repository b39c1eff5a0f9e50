// Runs the node's one loader (`vhost-hist --json --pin`, or a recorded-snapshot replay in
// tests), parses its stdout with the loader's own parser, and restarts it with backoff when it
// exits. Pinned maps and links keep counting while it is down, so a restart loses nothing.
import { spawn, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { PERMANENT_EXITS } from '../loader/exit-codes.js';
import { parseSnapshotLine, type LoaderMode, type LoaderSnapshot } from '../loader/snapshot.js';

interface Line {
  bytes: Buffer;
  /** In this loader process's output, blank lines not counted (for error messages). */
  number: number;
  /** Across all loader processes. */
  seq: number;
}

export interface LoaderExit {
  code: number | null;
  signal: string | null;
  /** The last lines the loader wrote to stderr: its own explanation. */
  stderr: string;
  at: Date;
}

export interface SupervisorOptions {
  /** argv of the loader. */
  command: string[];
  /** First restart delay; doubles per exit without a snapshot in between. Default 500 ms. */
  backoffMinMs?: number;
  /** Longest restart delay. Default 30 s. */
  backoffMaxMs?: number;
}

interface Events {
  /** The first snapshot of each loader process: its `takeover` says if pinned maps were kept. */
  firstSnapshot: [LoaderSnapshot];
  start: [pid: number];
  exit: [LoaderExit, restartInMs: number];
  /** A line the parser refused; the loader is restarted (its output cannot be trusted). */
  parseError: [Error];
  /** A new line arrived (not parsed yet). */
  line: [];
}

/** Only ASCII whitespace (a line the loader did not mean as a snapshot). */
function isBlank(line: Buffer): boolean {
  for (const b of line) if (b !== 0x20 && b !== 0x09 && b !== 0x0d && b !== 0x0b && b !== 0x0c) return false;
  return true;
}

export class LoaderSupervisor extends EventEmitter<Events> {
  private child?: ChildProcess;
  private stopping = false;
  private delay: number;
  private timer?: NodeJS.Timeout;
  restarts = 0;
  lastExit?: LoaderExit;
  lastSnapshotAt?: Date;
  /**
   * The newest line, kept as bytes and decoded and parsed only when someone asks: the loader
   * writes one a second, 100 KB with 256 VMs, and reports may be due less often.
   */
  private latestLine?: Line;
  /** The newest line that parsed, and its parse until release(). */
  private goodLine?: Line;
  private parsed?: LoaderSnapshot;
  /** Mode of the newest good snapshot (health asks for it every report). */
  lastMode?: LoaderMode;
  /** Lines read so far, from every loader process: numbers the snapshots (see snapshotSeq). */
  private lines = 0;

  constructor(private readonly opts: SupervisorOptions) {
    super();
    this.delay = opts.backoffMinMs ?? 500;
  }

  /** The newest snapshot, parsed on first use; a malformed line restarts the loader. */
  get lastSnapshot(): LoaderSnapshot | undefined {
    const line = this.latestLine;
    if (line) {
      this.latestLine = undefined;
      try {
        this.parsed = parseSnapshotLine(line.bytes.toString('utf8'), line.number);
        this.goodLine = line;
        this.lastMode = this.parsed.mode;
      } catch (err) {
        this.emit('parseError', err as Error);
        this.child?.kill('SIGTERM');
      }
    }
    // Released, or the newest line was refused: the last good one, parsed again.
    if (!this.parsed && this.goodLine) this.parsed = parseSnapshotLine(this.goodLine.bytes.toString('utf8'), this.goodLine.number);
    return this.parsed;
  }

  /**
   * Which line lastSnapshot would return (counted across loader restarts), without parsing
   * it: a caller that has taken this one already need not ask again.
   */
  get snapshotSeq(): number | undefined {
    return (this.latestLine ?? this.goodLine)?.seq;
  }

  /**
   * Drops the parsed snapshot (its line is kept, and parsed again if asked for). The agent
   * releases it once its reports are written: kept for a second, a snapshot's hundreds of KB
   * of objects would be promoted to the GC's old generation every report.
   */
  release(): void {
    this.parsed = undefined;
  }

  get running(): boolean {
    return !!this.child && this.child.exitCode === null && this.child.signalCode === null;
  }

  start(): void {
    this.stopping = false;
    const [cmd, ...args] = this.opts.command;
    if (!cmd) throw new Error('loader command is empty');
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    // The bytes of the line not yet ended by a newline.
    let pending: Buffer[] = [];
    let lineNumber = 0;
    let stderr = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      let from = 0;
      let nl: number;
      while ((nl = chunk.indexOf(0x0a, from)) >= 0) {
        const part = chunk.subarray(from, nl);
        const bytes = pending.length ? Buffer.concat([...pending, part]) : part;
        pending = [];
        from = nl + 1;
        if (isBlank(bytes)) continue;
        lineNumber++;
        this.delay = this.opts.backoffMinMs ?? 500; // it works: the next failure starts afresh
        this.lastSnapshotAt = new Date();
        this.latestLine = { bytes, number: lineNumber, seq: ++this.lines };
        if (lineNumber === 1) {
          // The first line is read at once: whether it took pinned maps over matters now.
          const s = this.lastSnapshot;
          if (s) this.emit('firstSnapshot', s);
        }
        this.emit('line');
      }
      if (from < chunk.length) pending.push(chunk.subarray(from));
    });
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (chunk: string) => {
      stderr = (stderr + chunk).slice(-4000);
    });
    child.on('error', (err) => {
      stderr += `\n${err.message}`;
    });
    child.on('spawn', () => this.emit('start', child.pid!));
    child.on('close', (code, signal) => {
      this.child = undefined;
      const exit: LoaderExit = { code, signal, stderr: stderr.trim().split('\n').slice(-5).join('\n'), at: new Date() };
      this.lastExit = exit;
      if (this.stopping) return;
      this.restarts++;
      const permanent = code !== null && PERMANENT_EXITS.has(code);
      const wait = permanent ? Math.max(this.delay, this.opts.backoffMaxMs ?? 30_000) : this.delay;
      this.delay = Math.min(this.delay * 2, this.opts.backoffMaxMs ?? 30_000);
      this.emit('exit', exit, wait);
      this.timer = setTimeout(() => this.start(), wait);
    });
  }

  /** Stops the loader (SIGTERM: it exits, the pinned maps and links stay) and does not restart it. */
  async stop(graceMs = 5000): Promise<void> {
    this.stopping = true;
    clearTimeout(this.timer);
    const child = this.child;
    if (!child) return;
    const closed = new Promise<void>((r) => child.once('close', () => r()));
    child.kill('SIGTERM');
    const t = setTimeout(() => child.kill('SIGKILL'), graceMs);
    await closed;
    clearTimeout(t);
  }
}
