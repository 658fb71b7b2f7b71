/**
 * What `npm test` runs: the test files, spread over a few `node --test` worker processes that
 * each take the next unclaimed file when free (tools/test-runner/queue.ts), reported by
 * `node --test` itself (its reporters, summary and exit code).
 */
import { spawn } from 'node:child_process';
import {
  type Dirent,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { type Durations, type QueuedFile, orderFiles, readDurations, writeQueue } from './queue.js';
import { EXIT_GRACE_VARIABLE, FILE_TIMEOUT_VARIABLE, QUEUE_VARIABLE } from './worker.js';

export interface RunOptions {
  /** Folders searched for `*.test.js`. */
  dirs: string[];
  /** Names (paths relative to the working directory) kept when they contain one of these. */
  filters: string[];
  workers: number;
  /** Each file's bound (ms): past it the file's tests are cancelled and the next file runs. */
  fileTimeoutMs: number;
  /** Where each file's last duration is kept between runs, to start the longest first. */
  timesFile: string;
  /** Passed to `node --test` as they are (`--test-reporter=spec`, `--test-name-pattern=…`). */
  nodeTestFlags: string[];
  out: (line: string) => void;
  /** How long a worker may outlive its last file (default 10 s) before it fails the run. */
  exitGraceMs?: number;
  /** What becomes of node --test's report: shown (npm test) or dropped (the runner's own tests). */
  report?: 'inherit' | 'ignore';
}

/** Exit code of the run: node --test's, or 2 when there is nothing to run (a usage mistake). */
export async function runTests(options: RunOptions): Promise<number> {
  const files = findTestFiles(options.dirs).filter(
    (file) => options.filters.length === 0 || options.filters.some((f) => file.name.includes(f)),
  );
  if (files.length === 0) {
    options.out(
      options.filters.length === 0
        ? `no *.test.js below ${options.dirs.join(', ')}: build first (npm run build)`
        : `no test file name contains ${options.filters.join(' or ')}`,
    );
    return 2;
  }
  const queue = mkdtempSync(join(tmpdir(), 'matryoshka-tests-'));
  try {
    writeQueue(queue, orderFiles(files, readTimes(options.timesFile)));
    const workers = Math.max(1, Math.min(options.workers, files.length));
    const entry = pathToFileURL(join(dirname(fileURLToPath(import.meta.url)), 'worker-entry.js'));
    const entries = Array.from({ length: workers }, (_, i) => {
      const path = join(queue, `worker-${i + 1}.mjs`);
      writeFileSync(path, `import ${JSON.stringify(entry.href)};\n`);
      return path;
    });
    const code = await nodeTest(
      ['--test', `--test-concurrency=${workers}`, ...options.nodeTestFlags, ...entries],
      // Not NODE_TEST_CONTEXT: started from inside a test (the runner's own), this is a new run.
      {
        ...process.env,
        NODE_TEST_CONTEXT: undefined,
        [QUEUE_VARIABLE]: queue,
        [FILE_TIMEOUT_VARIABLE]: String(options.fileTimeoutMs),
        ...(options.exitGraceMs === undefined
          ? {}
          : { [EXIT_GRACE_VARIABLE]: String(options.exitGraceMs) }),
      },
      options.report ?? 'inherit',
    );
    const finished = readDurations(queue);
    const missing = files.filter((file) => finished[file.name] === undefined);
    for (const file of missing) options.out(`${file.name} did not run to its end`);
    saveTimes(options.timesFile, finished);
    return code === 0 && missing.length > 0 ? 1 : code;
  } finally {
    rmSync(queue, { recursive: true, force: true });
  }
}

function findTestFiles(dirs: readonly string[]): QueuedFile[] {
  const found: QueuedFile[] = [];
  const walk = (dir: string): void => {
    let entries: Dirent[];
    try {
      entries = readdirSync(dir, { withFileTypes: true });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw error;
    }
    for (const entry of entries) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (entry.isFile() && entry.name.endsWith('.test.js')) {
        found.push({ path, name: relative(process.cwd(), path) });
      }
    }
  };
  for (const dir of dirs) walk(dir);
  return found;
}

/** Durations only steer the order: a missing or unreadable file means "no history". */
function readTimes(file: string): Durations {
  try {
    const parsed: unknown = JSON.parse(readFileSync(file, 'utf8'));
    return typeof parsed === 'object' && parsed !== null ? (parsed as Durations) : {};
  } catch {
    return {};
  }
}

function saveTimes(file: string, finished: Durations): void {
  if (Object.keys(finished).length === 0) return;
  try {
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, `${JSON.stringify({ ...readTimes(file), ...finished }, null, 1)}\n`);
  } catch {
    // A read-only checkout runs its tests all the same, only not longest first next time.
  }
}

function nodeTest(
  args: string[],
  env: NodeJS.ProcessEnv,
  report: 'inherit' | 'ignore',
): Promise<number> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, args, { stdio: ['ignore', report, report], env });
    const forward = (signal: NodeJS.Signals) => () => child.kill(signal);
    const onInt = forward('SIGINT');
    const onTerm = forward('SIGTERM');
    process.on('SIGINT', onInt);
    process.on('SIGTERM', onTerm);
    child.on('close', (code) => {
      process.off('SIGINT', onInt);
      process.off('SIGTERM', onTerm);
      resolve(code ?? 1);
    });
  });
}
