import { messageOf } from '../errors.js';
import { type ParseArgsConfig, parseArgs } from 'node:util';
import type { Env } from '../env.js';
import { UsageError } from './usage-error.js';

export type Out = (text: string) => void;
export type Options = NonNullable<ParseArgsConfig['options']>;

/** What a command is given besides its arguments: the process's, or what a caller hands in. */
export interface Given {
  /** The environment the command runs in. */
  readonly env: Env;
  /** Standard input, read whole (for a token given as `-`). */
  readonly input: () => string;
}

export interface Parsed extends Given {
  readonly values: Readonly<Record<string, unknown>>;
  readonly positionals: readonly string[];
}

/** A command that does something: its flags, its usage, and what it runs. */
export interface Leaf {
  /** The synopsis after the command's path, e.g. `--issuer ISS [--json]`. */
  readonly synopsis: string;
  /** One line per flag (or a paragraph), printed by --help under the synopsis. */
  readonly details?: readonly string[];
  readonly options: Options;
  readonly positionals?: { readonly min: number; readonly max: number };
  /** Resolves to the exit code; -1 leaves the process running (serve). */
  run(parsed: Parsed, out: Out): Promise<number>;
}

/** A command made of subcommands (`issuer add|list|remove`). */
export interface Group {
  readonly verbs: Readonly<Record<string, Leaf>>;
}

export type Command = Leaf | Group;

const isGroup = (command: Command): command is Group => 'verbs' in command;
const HELP = ['--help', '-h', 'help'];
const WIDTH = 100;

/** Break a synopsis before a flag so no line passes WIDTH, continuation lines indented. */
function wrap(first: string, indent: number): string {
  const lines: string[] = [];
  let line = '';
  for (const word of first.split(/ (?=\[|--)/)) {
    if (line.length > 0 && line.length + 1 + word.length > WIDTH) {
      lines.push(line);
      line = `${' '.repeat(indent)}${word}`;
    } else line = line.length === 0 ? word : `${line} ${word}`;
  }
  lines.push(line);
  return lines.join('\n');
}

/** Every synopsis under `path`: one for a leaf, one per verb for a group. */
export function synopses(path: string, command: Command, lead = ''): string[] {
  if (!isGroup(command))
    return [
      wrap(
        `${lead}${path}${command.synopsis ? ` ${command.synopsis}` : ''}`,
        lead.length + path.length + 1,
      ),
    ];
  return Object.entries(command.verbs).flatMap(([verb, leaf]) =>
    synopses(`${path} ${verb}`, leaf, lead),
  );
}

/** What --help prints for a command: its synopses, then (for a leaf) what each flag does. */
export function usageOf(path: string, command: Command): string {
  const lines = synopses(`matryoshka-authz ${path}`, command, 'usage: ');
  if (!isGroup(command) && command.details !== undefined && command.details.length > 0)
    lines.push('', ...command.details.map((d) => `  ${d}`));
  return lines.join('\n');
}

/**
 * Run `command` (reached as `path`) on `args`. Help is asked for with --help or -h anywhere a
 * flag may stand; flags are parsed strictly, and a mistake in the command's shape is a UsageError
 * carrying the usage, so the operator sees what was expected.
 */
export async function runCommand(
  path: string,
  command: Command,
  args: readonly string[],
  out: Out,
  given: Given,
): Promise<number> {
  if (isGroup(command)) {
    const [verb, ...rest] = args;
    if (verb !== undefined && HELP.includes(verb)) {
      out(usageOf(path, command));
      return 0;
    }
    const leaf = verb === undefined ? undefined : command.verbs[verb];
    if (leaf === undefined || !Object.hasOwn(command.verbs, verb ?? ''))
      throw new UsageError(
        verb === undefined ? `${path}: which one?` : `${path}: unknown subcommand ${verb}`,
        usageOf(path, command),
      );
    return runCommand(`${path} ${verb}`, leaf, rest, out, given);
  }
  let parsed: Parsed;
  try {
    parsed = {
      ...parseArgs({
        args: [...args],
        options: { ...command.options, help: { type: 'boolean', short: 'h' } },
        allowPositionals: true,
        strict: true,
      }),
      ...given,
    };
  } catch (error) {
    throw new UsageError(
      // node's advice on positionals that start with '-' does not apply to these commands.
      `${path}: ${(messageOf(error) || 'bad arguments').replace(/\. To specify a positional.*$/, '')}`,
      usageOf(path, command),
    );
  }
  if (parsed.values['help'] === true) {
    out(usageOf(path, command));
    return 0;
  }
  const { min, max } = command.positionals ?? { min: 0, max: 0 };
  if (parsed.positionals.length < min || parsed.positionals.length > max) {
    throw new UsageError(
      parsed.positionals.length > max
        ? `${path}: unexpected argument ${parsed.positionals[max]}`
        : `${path}: missing argument`,
      usageOf(path, command),
    );
  }
  return command.run(parsed, out);
}
