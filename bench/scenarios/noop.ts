/** `noop`: the transport ceiling — a server on the same gRPC stack that decides nothing. */
import { join } from 'node:path';
import type { ServeContext } from '../lib/context.js';
import { meanLength } from '../lib/format.js';
import { generatorConfig, runLoadBesideFloor } from '../lib/load-runner.js';
import { log } from '../lib/log.js';
import { writeCheckPool } from '../lib/pools.js';
import { processMemory } from '../lib/proc.js';
import { mintOrigins } from '../lib/requests.js';
import type { ScenarioResult } from '../lib/results.js';
import { startNoop, stopServer } from '../lib/servers.js';

export async function runNoop(ctx: ServeContext): Promise<ScenarioResult | undefined> {
  const { knobs, fixture, sink } = ctx;
  let noop: ScenarioResult | undefined;
  await sink.withRetry('noop', knobs.retries, async () => {
    const origins = await mintOrigins(fixture.issuer, 2000, fixture.pad);
    const file = join(ctx.workDir, 'pool-noop.bin');
    writeCheckPool(file, origins, knobs.dest);
    const server = await startNoop(ctx, 'noop', 2048, 1);
    log(
      'noop: transport ceiling (fixed allow, 2 KB forwarded token), 2,000 depth-0 requests cycled (it has no cache)',
    );
    const { load, floorNear } = await runLoadBesideFloor(
      ctx,
      generatorConfig(ctx, 'noop', server, { kind: 'pool', file }),
    );
    const peak = processMemory(server.pid);
    await stopServer(server, []);
    // It cycles its pool on purpose: reuse is no problem here.
    sink.recordProblems({ ...load, pool: { ...load.pool, reused: 0 } }, 'noop');
    noop = {
      name: 'noop',
      kind: 'noop',
      depth: undefined,
      logLevel: undefined,
      load,
      requestTokenLength: meanLength(origins),
      forwardedTokenLength: load.samples.forwardedTokenLength?.mean,
      poolNote: '2000 cycled (no cache)',
      serverPeak: peak,
      serverIdle: server.idleMemory,
      serverLogProblems: { count: 0, first: [] },
      floorNear,
    };
    sink.add(noop);
    log(
      `noop: ${load.requestsPerSecond.toFixed(0)} req/s, ${load.serverCpuMicrosPerCheck.toFixed(1)} µs CPU/check`,
    );
  });
  return noop;
}
