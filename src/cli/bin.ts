#!/usr/bin/env node
// The executable: `kubectl vhosttrace ...` runs this (as dist/cli/bin.js after `npm link`, or bundled
// into the one file dist/plugin/kubectl-vhosttrace), and exits with main's code once stdout is flushed.
import { main } from './main.js';

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: Error) => {
    process.stderr.write(`error: ${err.message}\n`);
    process.exit(1);
  },
);
