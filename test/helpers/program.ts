import { runProgram } from '../../src/cli/program.js';

/**
 * The command line in this process, for what needs no process of its own (usage, --help, a
 * refused command line): the same function `matryoshka-authz` runs, its output collected.
 */
export async function runProgramHere(
  args: string[],
): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const code = await runProgram(args, {
    out: (text) => {
      stdout += `${text}\n`;
    },
    err: (text) => {
      stderr += `${text}\n`;
    },
  });
  return { code, stdout, stderr };
}

/**
 * The command line in this process under `env` as the whole environment (what `runCli` gives a
 * child: PATH and `env`), restored afterwards. Only for tests that run one command at a time.
 */
export async function runProgramWithEnv(
  args: string[],
  env: Record<string, string>,
): Promise<{ code: number; stdout: string; stderr: string }> {
  const saved = process.env;
  process.env = { PATH: saved['PATH'] ?? '', ...env };
  try {
    return await runProgramHere(args);
  } finally {
    process.env = saved;
  }
}
