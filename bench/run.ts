/**
 * `npm run bench`: one run that measures, side by side on this machine,
 *   (a) the transport ceiling — a no-op ext_authz server on the same gRPC stack,
 *   (b) our server (`serve`, spawned) at chain depths 0, 1, 2, 4 and 8, every request's outermost
 *       level distinct, at 1 and 8 also over its HTTP authorization port (same server, same pool), plus a rate-limited run at half the depth-8 maximum, a LOG_LEVEL=info side
 *       note and a memory run of distinct tokens,
 *   (c) the crypto floor — one ES256 verify + one ES256 sign with node:crypto, in-process,
 * with load from a separate process (bench/load.ts). Prints a table, writes bench/results/latest.json.
 *
 * This file only reads the knobs, runs the selected scenarios (bench/scenarios/) in order, and
 * hands what they measured to bench/report.ts. See bench/README.md for the knobs.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ChildTracker } from './lib/children.js';
import type { BenchContext, ServeContext } from './lib/context.js';
import { prepareFixture } from './lib/fixture.js';
import { readKnobs, wants } from './lib/knobs.js';
import { log } from './lib/log.js';
import { ROOT } from './lib/paths.js';
import { machineInfo } from './lib/proc.js';
import { ResultsSink } from './lib/results.js';
import { writeReport } from './report.js';
import { runColdHop } from './scenarios/cold-hop.js';
import { runCompact } from './scenarios/compact.js';
import { type CompressionFigures, runCompression } from './scenarios/compression.js';
import { type CryptoFloors, runCryptoFloor } from './scenarios/crypto-floor.js';
import { runDepths } from './scenarios/depth.js';
import { runHalfLoad } from './scenarios/half-load.js';
import { runHttp } from './scenarios/http.js';
import { runInfo } from './scenarios/info.js';
import { type MemoryFigures, runMemory } from './scenarios/memory.js';
import { runNoopLarge } from './scenarios/noop-large.js';
import { runNoop } from './scenarios/noop.js';
import { runPeer } from './scenarios/peer.js';
import { runRegistryScale } from './scenarios/registry-scale.js';
import { runTxnTokens } from './scenarios/txn-tokens.js';

// Read (and reject bad knobs) before anything is started.
const knobs = readKnobs(process.env);
const children = new ChildTracker();
children.killAllOnExit();
const machine = machineInfo();

async function runBench(): Promise<void> {
  const startedAt = new Date();
  log(
    `machine: ${machine.nproc} CPUs, ${machine.cpuModel}, node ${machine.node}, load ${machine.loadAverage}`,
  );
  log(
    `knobs: warm-up ${knobs.warmupMs / 1000} s, window ${knobs.durationMs / 1000} s, concurrency ${knobs.concurrency}, ${knobs.sessions} HTTP/2 sessions, depths ${knobs.depths.join(',')}, scenarios ${[...knobs.scenarios].join(',')}`,
  );
  const workDir = mkdtempSync(join(tmpdir(), 'matryoshka-bench-'));
  children.removeOnExit(workDir);
  mkdirSync(join(ROOT, 'bench/results'), { recursive: true });
  const base: BenchContext = { knobs, machine, children, sink: new ResultsSink(), workDir };

  const floors: CryptoFloors | undefined = wants(knobs, 'crypto')
    ? runCryptoFloor(base)
    : undefined;

  const fixture = await prepareFixture(knobs, workDir);
  const ctx: ServeContext = { ...base, fixture };
  try {
    // First, while the machine is still cool: its Checks run on a registry in Redis.
    const registry = wants(knobs, 'registry') ? await runRegistryScale(ctx) : undefined;
    // Issue 25, only when named: the hop a replica that has not seen the token answers.
    if (wants(knobs, 'cold')) await runColdHop(ctx);
    const noop = wants(knobs, 'noop') ? await runNoop(ctx) : undefined;
    const baseline = { noop, floor: floors?.floor };

    const deepest = wants(knobs, 'depths') ? await runDepths(ctx, baseline) : undefined;
    if (wants(knobs, 'http')) await runHttp(ctx, wants(knobs, 'depths') ? knobs.depths : []);
    const halfRate =
      deepest !== undefined && wants(knobs, 'half')
        ? deepest.result.load.allowedPerSecond / 2
        : undefined;
    if (halfRate !== undefined) await runHalfLoad(ctx, halfRate);
    if (wants(knobs, 'peer')) await runPeer(ctx);
    if (wants(knobs, 'compact')) await runCompact(ctx);
    if (wants(knobs, 'noop-large') && deepest !== undefined)
      await runNoopLarge(ctx, deepest, halfRate);
    if (deepest !== undefined) rmSync(deepest.pool.file, { force: true });

    const compression: CompressionFigures | undefined =
      deepest?.pool.sample !== undefined ? runCompression(ctx, deepest.pool.sample) : undefined;
    if (wants(knobs, 'info')) await runInfo(ctx);
    if (wants(knobs, 'txn')) await runTxnTokens(ctx);
    const memory: MemoryFigures | undefined =
      wants(knobs, 'memory') && knobs.memoryChecks > 0 ? await runMemory(ctx) : undefined;

    const { sink } = ctx;
    writeReport({
      startedAt,
      machine,
      knobs,
      floors,
      compression,
      originTokenLength: fixture.originTokenLength,
      noop,
      results: sink.results,
      memory,
      registryChecks: registry?.checks,
      problems: sink.problems,
      retried: sink.retried,
    });
  } finally {
    await fixture.issuer.stop();
  }
}

runBench().then(
  () => {
    children.killAll();
    process.exit(0);
  },
  (error: unknown) => {
    process.stderr.write(`bench failed: ${(error as Error).stack ?? String(error)}\n`);
    children.killAll();
    process.exit(1);
  },
);
