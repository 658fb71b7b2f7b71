import type { Env } from '../../src/env.js';
import { runProgram } from '../../src/cli/program.js';

/**
 * The command line in this process, for what needs no process of its own (usage, --help, a
 * refused command line): the same function `matryoshka-authz` runs, its output collected.
 */
export async function runProgramHere(
  args: string[],
  given: { env?: Env; input?: string } = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const code = await runProgram(
    args,
    {
      out: (text) => {
        stdout += `${text}\n`;
      },
      err: (text) => {
        stderr += `${text}\n`;
      },
      // What a child given `input` on its standard input reads; none: an empty one, as runCli's.
      input: () => given.input ?? '',
    },
    given.env ?? process.env,
  );
  return { code, stdout, stderr };
}

/**
 * The command line in this process with `env` as its whole environment (what `runCli` gives a
 * child: PATH and `env`); the process's own environment is neither read nor changed.
 */
export function runProgramWithEnv(
  args: string[],
  env: Record<string, string>,
  input?: string,
): Promise<{ code: number; stdout: string; stderr: string }> {
  return runProgramHere(args, {
    env: { PATH: process.env['PATH'] ?? '', ...env },
    ...(input === undefined ? {} : { input }),
  });
}

/**
 * The CLI under `env` as a test uses it, the way an operator changes what a running service reads
 * (`issuer add`, `tenant set`): in this process, the same function. How the command behaves as a
 * process of its own (exit codes, streams, signals) is tested in test/cli/.
 */
export const cliWith =
  (env: Record<string, string>) =>
  (...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> =>
    runProgramWithEnv(args, env);
