/**
 * `depth d@50%`, the p99 target: open loop at half of the deepest run's allowed/s, on a fresh
 * server with the service's default memo (20,000 entries hold this run's pool and what it adds) —
 * the large memo the maximum run needs for its pre-minted pool would only make every major GC
 * slower than in production.
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import type { ServeContext } from '../lib/context.js';
import { fixtureServeOptions } from '../lib/fixture.js';
import { meanLength } from '../lib/format.js';
import { GrpcH2Pool } from '../lib/h2grpc.js';
import { deepestDepth, loadSeconds } from '../lib/knobs.js';
import { generatorConfig, runLoadBesideFloor } from '../lib/load-runner.js';
import { log } from '../lib/log.js';
import { durationBuckets, handlerPercentiles } from '../lib/metrics.js';
import { innerChain, wrapMany, writeCheckPool } from '../lib/pools.js';
import { processMemory } from '../lib/proc.js';
import type { ScenarioResult } from '../lib/results.js';
import { type MonotonicWindow, startServe, stopServer } from '../lib/servers.js';

export async function runHalfLoad(
  ctx: ServeContext,
  rate: number,
): Promise<ScenarioResult | undefined> {
  const depth = deepestDepth(ctx.knobs);
  const name = `depth ${depth}@50%`;
  let result: ScenarioResult | undefined;
  await ctx.sink.withRetry(name, ctx.knobs.retries, async () => {
    result = await measureHalfLoad(ctx, depth, rate, name);
  });
  return result;
}

async function measureHalfLoad(
  ctx: ServeContext,
  depth: number,
  rate: number,
  name: string,
): Promise<ScenarioResult> {
  const { knobs, fixture } = ctx;
  const server = await startServe(ctx, name, fixtureServeOptions(fixture, 'warn'));
  let window: MonotonicWindow | undefined;
  let result: ScenarioResult | undefined;
  try {
    const client = await GrpcH2Pool.connect(server.address, {
      sessions: knobs.sessions,
      streamWindow: knobs.streamWindow,
      sessionWindow: knobs.sessionWindow,
      timeoutMs: 0,
    });
    const count = Math.ceil(rate * loadSeconds(knobs) * 1.15) + 200;
    let built: { tokens: string[]; rate: number };
    try {
      const t = await innerChain(client, fixture.issuer, fixture.pad, depth);
      built = await wrapMany(client, t, `hop-${depth}`, knobs.concurrency, () => count);
    } finally {
      client.close();
    }
    const file = join(ctx.workDir, `pool-${name}.bin`);
    writeCheckPool(file, built.tokens, knobs.dest);
    log(
      `${name}: open loop at ${rate.toFixed(0)} req/s (half of the measured maximum), ${built.tokens.length} fresh tokens, a fresh server with the default memo`,
    );
    const before = await durationBuckets(server.httpPort);
    const { load: half, floorNear } = await runLoadBesideFloor(
      ctx,
      generatorConfig(
        ctx,
        name,
        server,
        { kind: 'pool', file },
        { expectDepth: depth + 1, rate, maxInFlight: 1024 },
      ),
    );
    const handler = handlerPercentiles(before, await durationBuckets(server.httpPort));
    window = half.windowMonotonicUs;
    rmSync(file, { force: true });
    ctx.sink.recordProblems(half, name);
    log(
      `${name}: ${half.requestsPerSecond.toFixed(0)} req/s, p50 ${half.latencyMs.p50.toFixed(2)} ms, p99 ${half.latencyMs.p99.toFixed(2)} ms (from intended send ${half.latencyFromIntendedMs?.p99.toFixed(2)} ms)`,
    );
    result = {
      name,
      kind: 'serve',
      depth,
      logLevel: 'warn',
      load: half,
      requestTokenLength: meanLength(built.tokens),
      forwardedTokenLength: half.samples.forwardedTokenLength?.mean,
      poolNote: `${built.tokens.length} distinct, on a fresh server (default memo)`,
      handler,
      serverPeak: processMemory(server.pid),
      serverIdle: server.idleMemory,
      serverLogProblems: { count: server.problemCount, first: server.problems },
      floorNear,
    };
    ctx.sink.add(result);
    return result;
  } finally {
    const profiles = await stopServer(server, window === undefined ? [] : [window]);
    if (profiles?.[0] !== undefined && result !== undefined) result.profile = profiles[0];
  }
}
