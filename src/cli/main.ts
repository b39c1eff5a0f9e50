// kubectl-vhosttrace: parses the command line, runs the subcommand, and turns what went wrong into one
// line on stderr and the exit code it means (exit-codes.ts). `kubectl vhosttrace --help` lists it all.
import { parseInvocation, USAGE } from './args.js';
import { remove } from './delete.js';
import { CliError, EXIT, type ExitCode } from './exit-codes.js';
import { get } from './get.js';
import { run } from './run.js';
import { processIo, Session, type Io } from './session.js';
import { show, watch } from './show.js';

/**
 * Runs the plugin with argv (without the program name) and returns the exit code. `out` replaces
 * stdout (tests, the demo); `io` replaces any other part of the terminal.
 */
export async function main(argv: string[], out?: (s: string) => void, io: Partial<Io> = {}): Promise<ExitCode> {
  const term: Io = { ...processIo(out), ...io };
  let session: Session | undefined;
  try {
    const inv = parseInvocation(argv);
    if (inv.verb === 'help') {
      term.out(USAGE);
      return EXIT.ok;
    }
    session = new Session(inv, term);
    switch (inv.verb) {
      case 'show':
        return await show(session);
      case 'get':
        return await get(session);
      case 'watch':
        return await watch(session);
      case 'run':
        return await run(session);
      case 'delete':
        return await remove(session);
    }
    throw new CliError(EXIT.usage, `unknown subcommand ${String(inv.verb)}`);
  } catch (e) {
    const err = e instanceof CliError ? e : new CliError(EXIT.error, (e as Error).message);
    term.err(`error: ${err.message}\n`);
    return err.code;
  } finally {
    session?.close();
  }
}
