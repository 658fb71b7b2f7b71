/**
 * The HTTP row beside a gRPC depth row: the same server process, right after the gRPC window, fed
 * its own share of the same request pool over its HTTP authorization port. Same chain, same
 * kind of outer level, same original requests: what differs is the transport.
 */
import type { ServeContext } from './context.js';
import { generatorConfig, runLoadBesideFloor } from './load-runner.js';
import { log } from './log.js';
import { durationBuckets, handlerPercentiles } from './metrics.js';
import { processMemory } from './proc.js';
import type { ScenarioResult } from './results.js';
import type { MonotonicWindow, RunningServer } from './servers.js';

export const httpRowName = (depth: number): string => `depth ${depth} http`;

export async function measureHttpRow(
  ctx: ServeContext,
  server: RunningServer,
  pool: { readonly file: string; readonly note: string; readonly requestTokenLength: number },
  depth: number,
  windows: MonotonicWindow[],
): Promise<ScenarioResult> {
  const { knobs } = ctx;
  const name = httpRowName(depth);
  if (server.authzHttpAddress === undefined)
    throw new Error(`${name}: the server was started without its HTTP authorization listener`);
  const before = await durationBuckets(server.httpPort);
  const { load, floorNear } = await runLoadBesideFloor(ctx, {
    ...generatorConfig(
      ctx,
      name,
      server,
      { kind: 'http-pool', file: pool.file, sockets: knobs.httpSockets },
      { expectDepth: depth + 1 },
    ),
    target: server.authzHttpAddress,
    // HTTP/1.1: one request in flight per connection, so no more than the sockets can carry.
    concurrency: Math.min(knobs.concurrency, knobs.httpSockets),
  });
  const handler = handlerPercentiles(before, await durationBuckets(server.httpPort));
  windows.push(load.windowMonotonicUs);
  ctx.sink.recordProblems(load, name);
  log(
    `${name}: ${load.requestsPerSecond.toFixed(0)} req/s, p99 ${load.latencyMs.p99.toFixed(2)} ms, ${load.serverCpuMicrosPerCheck.toFixed(1)} µs CPU/check, ${load.allowed}/${load.completed} allowed`,
  );
  const result: ScenarioResult = {
    name,
    kind: 'serve',
    depth,
    logLevel: 'warn',
    load,
    requestTokenLength: pool.requestTokenLength,
    forwardedTokenLength: load.samples.forwardedTokenLength?.mean,
    poolNote: `${pool.note}; HTTP/1.1 keep-alive, ${knobs.httpSockets} connections, ${knobs.httpDialect} dialect, after the gRPC row on the same server`,
    handler,
    serverPeak: processMemory(server.pid),
    serverIdle: server.idleMemory,
    serverLogProblems: { count: server.problemCount, first: server.problems },
    floorNear,
  };
  ctx.sink.add(result);
  return result;
}
