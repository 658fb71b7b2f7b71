/** The test runner's command line (tools/test-runner/main.ts). */
export const USAGE = 'usage: test-runner [--workers N] [name ...] [--test-<node flag> ...]';

export interface RunnerArgs {
  readonly workers: number;
  /** Names: run only the files whose path contains one of them. */
  readonly filters: string[];
  /** `--test-…` flags, for node --test unchanged. */
  readonly flags: string[];
}

/** The parsed command line, or what is wrong with it (one line). */
export function parseArgs(args: readonly string[], cores: number): RunnerArgs | string {
  // Two workers per core: many files wait on sockets, timers and child processes, not the CPU.
  let workers = cores * 2;
  const filters: string[] = [];
  const flags: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] ?? '';
    if (arg === '--workers') {
      const value = Number(args[++i]);
      if (!Number.isInteger(value) || value < 1 || value > 64)
        return '--workers wants a whole number from 1 to 64';
      workers = value;
    } else if (arg.startsWith('--test-')) flags.push(arg);
    else if (arg.startsWith('-')) return `unknown option ${arg}`;
    else filters.push(arg);
  }
  return { workers, filters, flags };
}
