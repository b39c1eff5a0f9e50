// The plugin's exit codes and the error that carries one to main: the one place they are defined (docs/cli.md lists them).

export const EXIT = {
  ok: 0,
  /** Anything else: a server error, a file that cannot be read. */
  error: 1,
  /** Bad flags or arguments. */
  usage: 2,
  /** The trace (or the node or VM asked for) does not exist. */
  notFound: 3,
  /** The trace exists but no node has reported yet, so there is nothing to show. */
  pending: 4,
  /** The trace failed: no selected node can trace. The conditions go to stderr. */
  failed: 5,
  /** The API server refused the credentials (401) or the request (403). */
  forbidden: 6,
  /** No API server to talk to: none configured, or it cannot be reached. */
  noCluster: 7,
} as const;

export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/** An error the user should see as one message on stderr, with the exit code it means. */
export class CliError extends Error {
  constructor(
    readonly code: ExitCode,
    message: string,
  ) {
    super(message);
    this.name = 'CliError';
  }
}
