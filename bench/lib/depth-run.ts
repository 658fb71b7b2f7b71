/**
 * One measured run of our server at one depth, with its own fresh server and its own pool: the
 * `depth d`, `depth d peer` and `depth 1 info` scenarios are all this, with different settings.
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import type { ServeContext } from './context.js';
import { fixtureServeOptions } from './fixture.js';
import type { CryptoFloor } from './floor.js';
import { meanLength } from './format.js';
import { GrpcH2Pool } from './h2grpc.js';
import { type Knobs, loadSeconds } from './knobs.js';
import { generatorConfig, runLoadBesideFloor } from './load-runner.js';
import { log } from './log.js';
import { durationBuckets, handlerPercentiles } from './metrics.js';
import { measureHttpRow } from './http-run.js';
import { innerChain, wrapMany, writeCheckPool, writeHttpPool } from './pools.js';
import { processMemory } from './proc.js';
import { mintOrigins } from './requests.js';
import type { ScenarioResult } from './results.js';
import { type MonotonicWindow, startServe, stopServer } from './servers.js';

/**
 * A depth run mints its whole pool before the run, each level remembered (by its text and its jti)
 * until its own Check arrives; a real next hop arrives milliseconds after the mint. The memo must
 * hold the pool (2 entries per token) plus what the run adds (2 per Check), or the run would
 * measure evictions instead.
 */
export const poolMemoEntries = (knobs: Knobs): number => 4 * knobs.poolMax + 20_000;

/** Requests a run at `rate` needs for warm-up plus window, with the margin of BENCH_POOL_FACTOR, capped. */
export const poolSize = (knobs: Knobs, rate: number): number =>
  Math.min(knobs.poolMax, Math.ceil(rate * loadSeconds(knobs) * knobs.poolFactor) + 200);

/**
 * The HTTP row's share of a paired pool is sized for this many times the rate the server wraps at
 * over gRPC: on 2 cores HTTP/1.1 answered depth-1 Checks at about 2.2× the gRPC rate (grpc-js costs
 * more per call than node:http). A pool that still runs out says so (`reused`).
 */
export const HTTP_POOL_RATE_FACTOR = 2.5;

/** What bounds the depth-0 pool: the no-op's rate and the crypto floor, when they were measured. */
export interface DepthBaseline {
  readonly noop: ScenarioResult | undefined;
  readonly floor: CryptoFloor | undefined;
}

export interface DepthRunOptions {
  readonly depth: number;
  readonly logLevel: string;
  readonly name: string;
  /**
   * The outer level of every request is minted by another replica (same key file) around a chain
   * the measured server minted one hop earlier — replicas taking turns, as behind a Kubernetes
   * Service. Otherwise the measured server minted the outer level itself.
   */
  readonly peer: boolean;
  /** Keep the pool file for a later run (the size-matched no-op) instead of removing it. */
  readonly keepPool: boolean;
  /**
   * Also measure the HTTP row (`depth d http`): the server opens its HTTP authorization port, the
   * pool is built twice as large, and every other token goes to the HTTP row, measured on the same
   * server right after the gRPC window.
   */
  readonly http?: boolean;
  /** MATRYOSHKA_CHAIN_FORMAT of the measured server and the minter; the service's default when absent. */
  readonly format?: 'nested' | 'compact' | undefined;
  /** Further settings of the measured server and the minter (a registry file of the run's own, say). */
  readonly env?: Readonly<Record<string, string>> | undefined;
}

/**
 * A forced chain form, with room for the deepest chains: the budget, depth and level caps raised
 * so a size or depth is measured, never refused.
 */
function formatEnv(format: DepthRunOptions['format']): Record<string, string> | undefined {
  if (format === undefined) return undefined;
  return {
    MATRYOSHKA_CHAIN_FORMAT: format,
    MATRYOSHKA_HEADER_BUDGET: String(1024 * 1024),
    MATRYOSHKA_MAX_DEPTH: '64',
    MATRYOSHKA_MAX_LEVELS: '66',
    MATRYOSHKA_MAX_TOKEN_LENGTH: String(1024 * 1024),
  };
}

export interface DepthRun {
  readonly result: ScenarioResult;
  /** When `http`: the HTTP row beside it. */
  readonly httpResult: ScenarioResult | undefined;
  /** When `keepPool`: the pool file and one of its tokens (the compression figures use it). */
  readonly pool: { readonly file: string; readonly sample: string | undefined } | undefined;
}

/** `baseline` only matters at depth 0 (without it, the pool is sized for 20,000/s). */
export async function measureDepth(
  ctx: ServeContext,
  options: DepthRunOptions,
  baseline: DepthBaseline = { noop: undefined, floor: undefined },
): Promise<DepthRun> {
  const { knobs, fixture } = ctx;
  const { depth, logLevel, name, peer } = options;
  const http = options.http === true && depth >= 1;
  // Paired with the HTTP row: one pool, the gRPC run's share plus HTTP_POOL_RATE_FACTOR times it.
  const shares = http ? 1 + HTTP_POOL_RATE_FACTOR : 1;
  const forced = formatEnv(options.format);
  const env =
    forced === undefined && options.env === undefined ? undefined : { ...forced, ...options.env };
  const server = await startServe(ctx, name, {
    ...fixtureServeOptions(
      fixture,
      logLevel,
      Math.ceil(poolMemoEntries(knobs) * shares),
      peer ? fixture.sharedKeysFile : undefined,
    ),
    authzHttp: http,
    ...(env === undefined ? {} : { env }),
  });
  const windows: MonotonicWindow[] = [];
  let result: ScenarioResult | undefined;
  let httpResult: ScenarioResult | undefined;
  try {
    const connect = (address: string): Promise<GrpcH2Pool> =>
      GrpcH2Pool.connect(address, {
        sessions: knobs.sessions,
        streamWindow: knobs.streamWindow,
        sessionWindow: knobs.sessionWindow,
        timeoutMs: 0,
      });
    const client = await connect(server.address);
    const minter = peer
      ? await startServe(ctx, `${name} minter`, {
          ...fixtureServeOptions(fixture, logLevel, poolMemoEntries(knobs), fixture.sharedKeysFile),
          ...(env === undefined ? {} : { env }),
        })
      : undefined;
    const minterClient = minter === undefined ? client : await connect(minter.address);
    let tokens: string[];
    let poolNote: string;
    try {
      if (depth === 0) {
        // Our rate is at most what 1.2 cores give at (no-op CPU + crypto floor) per check, and at most the no-op's.
        const { noop, floor } = baseline;
        const bound =
          noop !== undefined && floor !== undefined
            ? 1.2e6 / (noop.load.serverCpuMicrosPerCheck + floor.pairMicros)
            : Infinity;
        const count = poolSize(knobs, Math.min(noop?.load.requestsPerSecond ?? 20_000, bound));
        log(`${name}: minting ${count} distinct origin tokens`);
        tokens = await mintOrigins(fixture.issuer, count, fixture.pad);
        poolNote = `${count} distinct origins`;
      } else {
        const t = await innerChain(client, fixture.issuer, fixture.pad, depth);
        // As many as the run will use at the rate the server now wraps (re-estimated as it warms up).
        let target = Math.ceil(2000 * shares);
        const marks: Array<{ done: number; ms: number }> = [{ done: 0, ms: 0 }];
        const built = await wrapMany(
          minterClient,
          t,
          `hop-${depth}`,
          knobs.concurrency,
          (done, elapsedMs) => {
            const last = marks[marks.length - 1] as { done: number; ms: number };
            if (elapsedMs - last.ms >= 250) {
              marks.push({ done, ms: elapsedMs });
              const from = marks.find((m) => elapsedMs - m.ms <= 1500) ?? last;
              if (done - from.done >= 200)
                target = Math.max(
                  target,
                  Math.ceil(
                    shares * poolSize(knobs, ((done - from.done) / (elapsedMs - from.ms)) * 1000),
                  ),
                );
            }
            return target;
          },
        );
        tokens = built.tokens;
        poolNote = `${tokens.length} distinct depth-${depth} levels ${peer ? 'minted by another replica ' : ''}around one depth-${depth - 1} chain (built at ${built.rate.toFixed(0)}/s)`;
        log(
          `${name}: built ${tokens.length} distinct depth-${depth} tokens (${tokens[0]?.length ?? 0} characters) at ${built.rate.toFixed(0)}/s`,
        );
      }
    } finally {
      client.close();
      if (minter !== undefined) {
        minterClient.close();
        await stopServer(minter, []);
      }
    }
    const file = join(ctx.workDir, `pool-${name}.bin`);
    const httpFile = join(ctx.workDir, `pool-${name} http.bin`);
    // The gRPC run's share first; every token is alike (one chain, each outer level distinct).
    const grpcCount = Math.ceil(tokens.length / shares);
    const httpTokens = tokens.slice(grpcCount);
    tokens = tokens.slice(0, grpcCount);
    writeCheckPool(file, tokens, knobs.dest);
    if (http) {
      writeHttpPool(httpFile, httpTokens, knobs.dest, knobs.httpDialect, knobs.timeoutMs);
      poolNote = `${poolNote}, of which ${httpTokens.length} for the HTTP row`;
    }
    const requestTokenLength = meanLength(tokens);
    const httpTokenLength = meanLength(httpTokens);
    const sample = tokens[0];
    tokens = [];
    httpTokens.length = 0;
    const before = await durationBuckets(server.httpPort);
    const { load, floorNear } = await runLoadBesideFloor(
      ctx,
      generatorConfig(ctx, name, server, { kind: 'pool', file }, { expectDepth: depth + 1 }),
    );
    const handler = handlerPercentiles(before, await durationBuckets(server.httpPort));
    windows.push(load.windowMonotonicUs);
    ctx.sink.recordProblems(load, name);
    log(
      `${name}: ${load.requestsPerSecond.toFixed(0)} req/s, p99 ${load.latencyMs.p99.toFixed(2)} ms, ${load.serverCpuMicrosPerCheck.toFixed(1)} µs CPU/check, ${load.allowed}/${load.completed} allowed`,
    );
    result = {
      name,
      kind: 'serve',
      depth,
      logLevel,
      load,
      requestTokenLength,
      forwardedTokenLength: load.samples.forwardedTokenLength?.mean,
      poolNote,
      handler,
      serverPeak: processMemory(server.pid),
      serverIdle: server.idleMemory,
      serverLogProblems: { count: server.problemCount, first: server.problems },
      floorNear,
    };
    ctx.sink.add(result);
    if (!options.keepPool) rmSync(file, { force: true });
    if (http) {
      httpResult = await measureHttpRow(
        ctx,
        server,
        { file: httpFile, note: poolNote, requestTokenLength: httpTokenLength },
        depth,
        windows,
      );
      rmSync(httpFile, { force: true });
    }
    return { result, httpResult, pool: options.keepPool ? { file, sample } : undefined };
  } finally {
    const profiles = await stopServer(server, windows);
    if (profiles?.[0] !== undefined && result !== undefined) result.profile = profiles[0];
    if (profiles?.[1] !== undefined && httpResult !== undefined) httpResult.profile = profiles[1];
  }
}
