#!/usr/bin/env node
/**
 * test-runner: every `*.test.js` below dist/test and dist/tools, run by `node --test` in a few
 * worker processes that each take the next file when free, longest first by the last run's times.
 *
 *     node dist/tools/test-runner/main.js [--workers N] [name ...] [--test-<node flag> ...]
 *
 * `name`: run only the files whose path contains it (e.g. `chain/` or `redis`). `--test-…` flags
 * go to `node --test` unchanged (`--test-reporter=spec`, `--test-name-pattern=…`).
 * Exit 0: every test passed; 1: a test failed or a file did not run to its end; 2: usage, or no
 * test file to run.
 */
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { USAGE, parseArgs } from './args.js';
import { runTests } from './run-tests.js';

const parsed = parseArgs(process.argv.slice(2), availableParallelism());
if (typeof parsed === 'string') {
  process.stderr.write(`${parsed}\n${USAGE}\n`);
  process.exitCode = 2;
} else {
  process.exitCode = await runTests({
    dirs: [join('dist', 'test'), join('dist', 'tools')],
    filters: parsed.filters,
    workers: parsed.workers,
    fileTimeoutMs: parsed.fileTimeoutMs,
    timesFile: join('node_modules', '.cache', 'matryoshka-authz', 'test-times.json'),
    nodeTestFlags: parsed.flags,
    out: (line) => process.stderr.write(`${line}\n`),
  });
}
