#!/usr/bin/env node
import { messageOf } from '../errors.js';
import { runCommand } from './command.js';
import { COMMANDS, USAGE } from './commands.js';
import { exitCodeOf } from './exit-codes.js';
import { UsageError } from './usage-error.js';

const print = (text: string): void => {
  process.stdout.write(`${text}\n`);
};

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === '-h' || name === '--help' || name === 'help') {
    print(USAGE);
    return 0;
  }
  if (name === undefined) throw new UsageError('which command?', USAGE);
  const command = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
  if (command === undefined) throw new UsageError(`unknown command ${name}`, USAGE);
  return runCommand(name, command, rest, print);
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exitCode = code;
  },
  (error: unknown) => {
    // Whose fault, in one line: the person's (2, naming what to fix), the environment's (3), or
    // ours (1, the only case called an internal error).
    const code = exitCodeOf(error);
    const message = messageOf(error);
    process.stderr.write(
      `matryoshka-authz: ${code === 1 ? `internal error: ${message}` : message}\n`,
    );
    // A mistake in the shape of the command line: what was expected, on stderr too.
    if (error instanceof UsageError && error.usage !== undefined)
      process.stderr.write(`${error.usage}\n`);
    process.exitCode = code;
  },
);
