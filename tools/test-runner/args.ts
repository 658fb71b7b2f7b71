/** The test runner's command line (tools/test-runner/main.ts). */
export const USAGE = 'usage: test-runner [--workers N] [name ...] [--test-<node flag> ...]';

/** Each file's bound when no `--test-timeout=MS` is given: a file that hangs fails, not the run. */
export const DEFAULT_FILE_TIMEOUT_MS = 300_000;

export interface RunnerArgs {
  readonly workers: number;
  /** `--test-timeout=MS`, applied to each file (as node --test applies it without the runner). */
  readonly fileTimeoutMs: number;
  /** Names: run only the files whose path contains one of them. */
  readonly filters: string[];
  /** `--test-…` flags, for node --test unchanged. */
  readonly flags: string[];
}

/** The parsed command line, or what is wrong with it (one line). */
export function parseArgs(args: readonly string[], cores: number): RunnerArgs | string {
  // Two workers per core: many files wait on sockets, timers and child processes, not the CPU.
  let workers = cores * 2;
  let fileTimeoutMs = DEFAULT_FILE_TIMEOUT_MS;
  const filters: string[] = [];
  const flags: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] ?? '';
    if (arg === '--workers') {
      const value = Number(args[++i]);
      if (!Number.isInteger(value) || value < 1 || value > 64)
        return '--workers wants a whole number from 1 to 64';
      workers = value;
    } else if (arg.startsWith('--test-timeout=')) {
      const value = Number(arg.slice('--test-timeout='.length));
      if (!Number.isInteger(value) || value < 1) return '--test-timeout wants a whole number of ms';
      fileTimeoutMs = value;
    } else if (arg.startsWith('--test-')) flags.push(arg);
    else if (arg.startsWith('-')) return `unknown option ${arg}`;
    else filters.push(arg);
  }
  return { workers, fileTimeoutMs, filters, flags };
}
