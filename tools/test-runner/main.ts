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
import { runTests } from './run-tests.js';

const USAGE = 'usage: test-runner [--workers N] [name ...] [--test-<node flag> ...]';

function parse(args: string[]): { workers: number; filters: string[]; flags: string[] } | string {
  // Two workers per core: many files wait on sockets, timers and child processes, not the CPU.
  let workers = availableParallelism() * 2;
  const filters: string[] = [];
  const flags: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] ?? '';
    if (arg === '--workers') {
      const value = Number(args[++i]);
      if (!Number.isInteger(value) || value < 1 || value > 64) {
        return '--workers wants a whole number from 1 to 64';
      }
      workers = value;
    } else if (arg.startsWith('--test-')) flags.push(arg);
    else if (arg.startsWith('-')) return `unknown option ${arg}`;
    else filters.push(arg);
  }
  return { workers, filters, flags };
}

const parsed = parse(process.argv.slice(2));
if (typeof parsed === 'string') {
  process.stderr.write(`${parsed}\n${USAGE}\n`);
  process.exitCode = 2;
} else {
  process.exitCode = await runTests({
    dirs: [join('dist', 'test'), join('dist', 'tools')],
    filters: parsed.filters,
    workers: parsed.workers,
    timesFile: join('node_modules', '.cache', 'matryoshka-authz', 'test-times.json'),
    nodeTestFlags: parsed.flags,
    out: (line) => process.stderr.write(`${line}\n`),
  });
}
