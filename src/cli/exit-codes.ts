import { errnoOf, isEnvironmentFailure, isUserMistake } from '../errors.js';

/**
 * Every exit code of `matryoshka-authz`, with what it means: docs/cli.md's table is compared with
 * this one by test/docs/contract.test.ts, row by row.
 */
export const EXIT_CODES = {
  0: 'done',
  1: 'the verdict was no (`explain`: deny; `inspect`: the chain could not be read to the end), or a bug: "internal error"',
  2: 'usage or configuration: the line names the flag, argument or variable to fix',
  3: 'unavailable environment: Redis unreachable, a port in use, a file system refusing a write',
} as const;

export type ExitCode = keyof typeof EXIT_CODES;

/** Whose fault a thrown value is, as an exit code: the person's (2), the environment's (3), ours (1). */
export function exitCodeOf(error: unknown): ExitCode {
  if (isUserMistake(error)) return 2;
  if (errnoOf(error)?.startsWith('ERR_PARSE_ARGS_') === true) return 2;
  if (isEnvironmentFailure(error)) return 3;
  return 1;
}
