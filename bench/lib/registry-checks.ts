/**
 * Real Checks against a Redis-backed `serve` that follows the registry-scale scenario's registry:
 * one open-loop load (half of what the server sustains, distinct depth-1 tokens) three times over
 * the same duration — while 10 changes a second land on other tenants' records, without changes,
 * and while they land on the measured tenant's own records. What a stream of changes adds to Check
 * latency is then seen where Envoy sees it, not inferred from a replica's registry reads.
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import {
  parseIssuer,
  parseService,
  parseTenant,
  type ServicePolicy,
  type TenantPolicy,
} from '../../src/registry/records.js';
import type { RegistryStore } from '../../src/registry/registry-store.js';
import type { ServeContext } from './context.js';
import { meanLength } from './format.js';
import { GrpcH2Pool } from './h2grpc.js';
import { generatorConfig, runLoadBesideFloor } from './load-runner.js';
import { log } from './log.js';
import { durationBuckets, handlerPercentiles } from './metrics.js';
import { innerChain, wrapMany, writeCheckPool } from './pools.js';
import { processMemory } from './proc.js';
import type { ScenarioResult } from './results.js';
import { type RunningServer, startServe, stopServer } from './servers.js';

/** The measured tenant, its destination and the sid its depth-1 tokens were minted for. */
const TENANT = 'bench';
const DEST = 'dest';
const HOP = 'hop-1';
/** Long enough that one slow moment does not set the max alone, short enough for three windows. */
export const CHECK_WINDOW_MS = 10_000;
/** The stream of changes the target is stated for. */
const CHANGES_PER_SECOND = 10;
/** Tokens wrapped to learn the rate the server sustains (they warm it up as well). */
const SIZING_TOKENS = 2000;

export type ChangeTarget = 'others' | 'own';

export const CHECK_ROWS = {
  quiet: 'registry checks quiet',
  others: 'registry checks +10/s others',
  own: 'registry checks +10/s own',
} as const;

export interface ChecksUnderChanges {
  /** Open-loop arrivals per second: half of the rate the server wrapped tokens at. */
  readonly rate: number;
  readonly sustainedRate: number;
  readonly windowSeconds: number;
  /** Changes written while each changing run's load ran (warm-up, window and drain). */
  readonly changes: { readonly others: number; readonly own: number };
}

/**
 * Every record the writer sets is valid and leaves the measured Checks allowed: a change must cost
 * what applying it costs, not turn the run into denials.
 */
function change(target: ChangeTarget, i: number, tenants: number): TenantPolicy | ServicePolicy {
  const alt = Math.floor(i / 2) % 2 === 0;
  if (target === 'own')
    return i % 2 === 0
      ? parseTenant(TENANT, alt ? { max_depth: 6 } : {}, 'bench')
      : parseService(DEST, { tenant: TENANT, ...(alt ? { max_depth: 6 } : {}) }, 'bench');
  const k = (i * 7919) % tenants;
  return i % 2 === 0
    ? parseTenant(`t${k}`, { max_depth: 1 + (i % 8), recursion: 'deny' }, 'bench')
    : parseService(
        `svc-${k}`,
        { tenant: `t${k}`, allowed_callers: alt ? ['gw', 'gw-2'] : ['gw'] },
        'bench',
      );
}

/** A steady stream of `rate` changes a second until stopped; resolves with how many were written. */
function startWriter(
  store: RegistryStore,
  target: ChangeTarget,
  tenants: number,
): { stop: () => Promise<number> } {
  let stopped = false;
  const done = (async () => {
    let due = performance.now();
    let i = 0;
    while (!stopped) {
      const record = change(target, i, tenants);
      if ('sid' in record) await store.putService(record);
      else await store.putTenant(record);
      i++;
      // Due one interval after the last was due, so a slow write does not slow the stream; a
      // missed slot (the coordinator's floor runs hold its loop) is skipped, never made up in a burst.
      due = Math.max(due + 1000 / CHANGES_PER_SECOND, performance.now());
      await new Promise((r) => setTimeout(r, due - performance.now()));
    }
    return i;
  })();
  return {
    stop: async () => {
      stopped = true;
      return await done;
    },
  };
}

/** The fixture's LocalIssuer and its tenant's records, written to the registry in Redis. */
async function registerMeasuredTenant(ctx: ServeContext, store: RegistryStore): Promise<void> {
  const { issuer } = ctx.fixture;
  await store.putIssuer(
    parseIssuer(
      {
        issuer: issuer.issuer,
        tenant: TENANT,
        jwks_uri: issuer.jwksUri,
        algorithms: ['ES256'],
      },
      'bench',
      true,
    ),
  );
  await store.putTenant(parseTenant(TENANT, {}, 'bench'));
  await store.putService(parseService(DEST, { tenant: TENANT }, 'bench'));
}

export async function measureChecksUnderChanges(
  ctx: ServeContext,
  redisUrl: string,
  prefix: string,
  store: RegistryStore,
  tenants: number,
): Promise<ChecksUnderChanges> {
  const { knobs, fixture } = ctx;
  await registerMeasuredTenant(ctx, store);
  // The service's default memo, as in production and in the half-load run: a memo sized to hold
  // three pools makes every major GC — which sets the max of a window, changes or not — longer.
  const server = await startServe(ctx, 'registry checks', {
    logLevel: 'warn',
    hsSecret: fixture.hsSecret,
    env: { REDIS_URL: redisUrl, MATRYOSHKA_REDIS_PREFIX: prefix },
  });
  try {
    const client = await GrpcH2Pool.connect(server.address, {
      sessions: knobs.sessions,
      streamWindow: knobs.streamWindow,
      sessionWindow: knobs.sessionWindow,
      timeoutMs: 0,
    });
    const changes = { others: 0, own: 0 };
    let sustainedRate = 0;
    let rate = 0;
    try {
      const origin = await innerChain(client, fixture.issuer, fixture.pad, 1);
      // Wrapping the origin for hop-1 is the work a depth-1 Check does: a memo hit and one mint.
      sustainedRate = (await wrapMany(client, origin, HOP, knobs.concurrency, () => SIZING_TOKENS))
        .rate;
      rate = sustainedRate / 2;
      const perRun = Math.min(
        knobs.poolMax,
        Math.ceil((rate * (knobs.warmupMs + CHECK_WINDOW_MS) * 1.15) / 1000) + 200,
      );
      log(
        `registry checks: serve on the ${tenants}-tenant registry wraps ${sustainedRate.toFixed(0)} tokens/s; open loop at ${rate.toFixed(0)} req/s, ${perRun} fresh depth-1 tokens per run, ${CHECK_WINDOW_MS / 1000} s windows`,
      );
      // The quiet window between the two changing ones: drift of the server over the three (the
      // machine, the heap) falls on both sides of it instead of on the changes alone.
      const order: Array<{ name: string; target: ChangeTarget | undefined }> = [
        { name: CHECK_ROWS.others, target: 'others' },
        { name: CHECK_ROWS.quiet, target: undefined },
        { name: CHECK_ROWS.own, target: 'own' },
      ];
      for (const run of order) {
        // Each run's pool is minted right before it, so each starts with the same memo.
        const { tokens } = await wrapMany(client, origin, HOP, knobs.concurrency, () => perRun);
        const writer =
          run.target === undefined ? undefined : startWriter(store, run.target, tenants);
        try {
          await measureRun(ctx, server, run.name, tokens, rate);
        } finally {
          const written = (await writer?.stop()) ?? 0;
          if (run.target !== undefined) changes[run.target] = written;
        }
      }
    } finally {
      client.close();
    }
    return { rate, sustainedRate, windowSeconds: CHECK_WINDOW_MS / 1000, changes };
  } finally {
    await stopServer(server, []);
  }
}

async function measureRun(
  ctx: ServeContext,
  server: RunningServer,
  name: string,
  tokens: readonly string[],
  rate: number,
): Promise<void> {
  const file = join(ctx.workDir, `pool-${name.replace(/[^A-Za-z0-9-]+/g, '_')}.bin`);
  writeCheckPool(file, tokens, DEST);
  const before = await durationBuckets(server.httpPort);
  const { load, floorNear } = await runLoadBesideFloor(
    ctx,
    generatorConfig(
      ctx,
      name,
      server,
      { kind: 'pool', file },
      { expectDepth: 2, rate, maxInFlight: 1024, durationMs: CHECK_WINDOW_MS },
    ),
  );
  rmSync(file, { force: true });
  ctx.sink.recordProblems(load, name);
  log(
    `${name}: ${load.requestsPerSecond.toFixed(0)} req/s, p50 ${load.latencyMs.p50.toFixed(2)} ms, p99 ${load.latencyMs.p99.toFixed(2)} ms, max ${load.latencyMs.max.toFixed(2)} ms`,
  );
  const result: ScenarioResult = {
    name,
    kind: 'serve',
    depth: 1,
    logLevel: 'warn',
    load,
    requestTokenLength: meanLength(tokens),
    forwardedTokenLength: load.samples.forwardedTokenLength?.mean,
    poolNote: `${tokens.length} distinct depth-1 tokens, Redis registry of the registry scenario`,
    handler: handlerPercentiles(before, await durationBuckets(server.httpPort)),
    serverPeak: processMemory(server.pid),
    serverIdle: server.idleMemory,
    serverLogProblems: { count: server.problemCount, first: server.problems },
    floorNear,
  };
  ctx.sink.add(result);
}
