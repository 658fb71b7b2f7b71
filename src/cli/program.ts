/**
 * The command line as a function: argv in, exit code out, text through `io` (main.ts gives it the
 * process's streams; tests call it directly for what needs no process of its own).
 */
import type { Env } from '../env.js';
import { messageOf } from '../errors.js';
import { readFileSync } from 'node:fs';
import { type Given, runCommand } from './command.js';
import { COMMANDS, USAGE } from './commands.js';
import { exitCodeOf } from './exit-codes.js';
import { UsageError } from './usage-error.js';

export interface ProgramIo {
  /** One line or block of output, without its final newline. */
  readonly out: (text: string) => void;
  readonly err: (text: string) => void;
  /** Standard input, read whole; the process's unless given. */
  readonly input?: () => string;
}

async function main(argv: string[], print: (text: string) => void, given: Given): Promise<number> {
  const [name, ...rest] = argv;
  if (name === '-h' || name === '--help' || name === 'help') {
    print(USAGE);
    return 0;
  }
  if (name === undefined) throw new UsageError('which command?', USAGE);
  const command = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
  if (command === undefined) throw new UsageError(`unknown command ${name}`, USAGE);
  return runCommand(name, command, rest, print, given);
}

/** Run the command line in `env`; -1: the command keeps running (serve). */
export async function runProgram(
  argv: string[],
  io: ProgramIo,
  env: Env = process.env,
): Promise<number> {
  try {
    return await main(argv, io.out, { env, input: io.input ?? (() => readFileSync(0, 'utf8')) });
  } catch (error) {
    // Whose fault, in one line: the person's (2, naming what to fix), the environment's (3), or
    // ours (1, the only case called an internal error).
    const code = exitCodeOf(error);
    const message = messageOf(error);
    io.err(`matryoshka-authz: ${code === 1 ? `internal error: ${message}` : message}`);
    // A mistake in the shape of the command line: what was expected, on stderr too.
    if (error instanceof UsageError && error.usage !== undefined) io.err(error.usage);
    return code;
  }
}
