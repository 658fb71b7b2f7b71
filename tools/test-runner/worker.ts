/**
 * A test runner worker: the one file `node --test` runs in each of its processes. It claims test
 * files from the shared queue one at a time and runs each as a suite named after the file, so a
 * process loads the service's modules once for many files instead of once per file.
 *
 * Top-level tests of one process run one after another, so files never overlap inside a worker;
 * the workers run side by side.
 */
import { performance } from 'node:perf_hooks';
import { after, describe } from 'node:test';
import { pathToFileURL } from 'node:url';
import { DEFAULT_FILE_TIMEOUT_MS } from './args.js';
import { claimer, readQueue, recordDuration } from './queue.js';

export const QUEUE_VARIABLE = 'MATRYOSHKA_TEST_QUEUE';
/** How long a worker may stay alive after its last file (ms) before it fails the run. */
export const EXIT_GRACE_VARIABLE = 'MATRYOSHKA_TEST_EXIT_GRACE_MS';
/**
 * Each file's bound (ms), `--test-timeout` given to the runner: node --test would apply it to a
 * worker, which runs many files, where without the runner it bounds one file.
 */
export const FILE_TIMEOUT_VARIABLE = 'MATRYOSHKA_TEST_FILE_TIMEOUT_MS';

/** Runs files until none is left; the name of the last one it ran. */
export async function runWorker(dir: string): Promise<string | undefined> {
  const claimNext = claimer(dir, readQueue(dir));
  const timeout = Number(process.env[FILE_TIMEOUT_VARIABLE]) || DEFAULT_FILE_TIMEOUT_MS;
  let last: string | undefined;
  for (;;) {
    const file = claimNext();
    if (file === undefined) return last;
    last = file.name;
    const started = performance.now();
    // The suite's `after` runs once its last test has, whether the file passed, failed or threw
    // while loading: only then is the next file claimed. It is registered after the file's own
    // top-level `after` hooks (they run in the order registered), so a file counts as run only
    // once its own clean-up is done: a worker that dies in that clean-up names this file, and
    // the clean-up's time is this file's, not the next one's.
    await new Promise<void>((done) => {
      describe(file.name, { timeout }, async () => {
        try {
          await import(pathToFileURL(file.path).href);
        } finally {
          after(() => done());
        }
      });
    });
    recordDuration(dir, file.name, performance.now() - started);
  }
}
