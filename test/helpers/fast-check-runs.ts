/**
 * Seeds and run counts of the property tests (fast-check), shared by every *.property.test.ts.
 *
 * CI runs a fixed seed (FC_SEED, default DEFAULT_SEED below) with run counts (MUTATION_RUNS etc.)
 * sized for about 25 s on two cores. FC_RUNS overrides every run count; a larger local run, 5,000
 * runs of every property (about a minute):
 *
 *     npx tsc -p . && FC_RUNS=5000 node --test $(find dist/test -name "*.property.test.js")
 *
 * FC_SEED=<n> picks another seed; FC_SEED=random draws one and prints it. A failure prints the
 * seed and path; replay exactly that case with
 *
 *     FC_SEED=<seed> FC_PATH=<path> node --test --test-name-pattern='<test name>' dist/test/<file>.js
 *
 * Some cases are run first whatever the seed (fast-check `examples`): they are regressions for
 * bugs these properties found (a second spelling of a signature; a header that backtracks).
 */
import type fc from 'fast-check';

export const DEFAULT_SEED = 0x6d617472; // "matr"
export function seedFromEnv(): number {
  const raw = process.env['FC_SEED'];
  if (raw === undefined || raw === '') return DEFAULT_SEED;
  if (raw === 'random') {
    const seed = (Math.random() * 0x7fffffff) | 0;
    console.log(`# FC_SEED=${seed}`);
    return seed;
  }
  const seed = Number(raw);
  if (!Number.isInteger(seed))
    throw new Error(`FC_SEED must be an integer or "random", got ${raw}`);
  return seed;
}
export const SEED = seedFromEnv();
export const RUNS_OVERRIDE =
  process.env['FC_RUNS'] === undefined || process.env['FC_RUNS'] === ''
    ? undefined
    : Number(process.env['FC_RUNS']);
if (RUNS_OVERRIDE !== undefined && !(Number.isInteger(RUNS_OVERRIDE) && RUNS_OVERRIDE > 0))
  throw new Error('FC_RUNS must be a positive integer');

/** fast-check parameters: the shared seed, `runs` (or FC_RUNS), and FC_PATH to replay one case. */
export function params<T>(runs: number, extra: fc.Parameters<T> = {}): fc.Parameters<T> {
  const path = process.env['FC_PATH'];
  return {
    seed: SEED,
    numRuns: RUNS_OVERRIDE ?? runs,
    includeErrorInReport: true,
    ...(path ? { path } : {}),
    ...extra,
  };
}

// CI sizes: network properties cost a few ms a run, pure ones microseconds.
export const MUTATION_RUNS = 4000;
export const RESIGN_RUNS = 1500;
export const REQUEST_RUNS = 1200;
export const PURE_RUNS = 4000;
/** Below this many runs the "the generator reached X" checks are skipped (FC_RUNS=10 for a smoke run). */
export const COVERAGE_MIN_RUNS = 200;
export const coverageChecked = (runs: number): boolean =>
  (RUNS_OVERRIDE ?? runs) >= COVERAGE_MIN_RUNS;
/**
 * A ceiling, not a speed figure: the largest honest requests here take ~300 ms on an idle machine,
 * so this only catches a request that holds the event loop for seconds (work superlinear in the
 * input), with room for a loaded 2-core machine.
 */
export const SLOW_REQUEST_MS = 5000;
/** The gRPC receive limit at the default MATRYOSHKA_MAX_TOKEN_LENGTH (64 KiB) plus 64 KiB for the rest of a CheckRequest. */
export const MAX_MESSAGE_BYTES = 128 * 1024;
