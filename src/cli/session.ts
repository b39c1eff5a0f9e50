// What every subcommand is handed: the parsed command line, the terminal (stdout, stderr, clock, files)
// and, on first use, the connection to the cluster with the namespace the flags and kubeconfig choose.
import { readFileSync } from 'node:fs';
import type { TraceKind } from '../api/v1alpha1.js';
import type { Invocation } from './args.js';
import { TraceApi } from './cluster.js';
import { CliError, EXIT } from './exit-codes.js';
import { connect } from './kubeconfig.js';
import { parseSaved, type Saved } from './saved.js';

export interface Io {
  out: (s: string) => void;
  err: (s: string) => void;
  /** stdout is a terminal: `watch` redraws in place. */
  tty: boolean;
  /** stderr is a terminal: `run` rewrites its progress line. */
  errTty: boolean;
  now: () => number;
  /** A file's text; "-" is stdin. */
  readFile: (path: string) => string;
  env: NodeJS.ProcessEnv;
  /** Ctrl-C: `run` stops waiting, prints what it has and cleans up. Returns a function that unregisters. */
  onInterrupt: (fn: () => void) => () => void;
}

export function processIo(out?: (s: string) => void): Io {
  return {
    out: out ?? ((s) => void process.stdout.write(s)),
    err: (s) => void process.stderr.write(s),
    tty: !out && Boolean(process.stdout.isTTY),
    errTty: Boolean(process.stderr.isTTY),
    now: () => Date.now(),
    readFile: (path) => readFileSync(path === '-' ? 0 : path, 'utf8'),
    env: process.env,
    onInterrupt: (fn) => {
      process.once('SIGINT', fn);
      return () => process.off('SIGINT', fn);
    },
  };
}

export class Session {
  private api?: TraceApi;
  private ns?: string;

  constructor(
    readonly inv: Invocation,
    readonly io: Io,
  ) {}

  /** The kind the command's names refer to. */
  get kind(): TraceKind {
    return this.inv.cluster ? 'ClusterVhostTrace' : 'VhostTrace';
  }

  async cluster(): Promise<{ api: TraceApi; namespace: string }> {
    if (!this.api) {
      const conn = await connect({ kubeconfig: this.inv.kubeconfig, context: this.inv.context }, this.io.env);
      this.api = new TraceApi(conn.access);
      this.ns = this.inv.namespace ?? conn.namespace;
    }
    return { api: this.api, namespace: this.ns! };
  }

  /** The objects in -f FILE. */
  saved(): Saved {
    const file = this.inv.file!;
    let text: string;
    try {
      text = this.io.readFile(file);
    } catch (e) {
      throw new CliError(EXIT.error, `reading ${file}: ${(e as Error).message}`);
    }
    return parseSaved(text, file === '-' ? 'stdin' : file);
  }

  close(): void {
    this.api?.close();
  }
}
