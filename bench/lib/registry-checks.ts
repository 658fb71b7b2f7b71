/**
 * Real Checks against a Redis-backed `serve` that follows the registry-scale scenario's registry:
 * one open-loop load (half of what the server sustains, distinct depth-1 tokens) in PAIRS pairs of
 * short windows per variant — one without changes, one while 10 changes a second land on other
 * tenants' records (`others`) or on the measured tenant's own (`own`) — the order alternating pair
 * by pair. What a stream of changes adds to Check latency is then seen where Envoy sees it, and
 * judged per pair (bench/lib/registry-pairs.ts), so one stall of the VM decides one pair, not the
 * verdict.
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
import { generatorConfig, runLoad } from './load-runner.js';
import { log } from './log.js';
import { bucketDelta, durationBuckets, percentilesOf } from './metrics.js';
import { innerChain, wrapMany, writeCheckPool } from './pools.js';
import { processMemory } from './proc.js';
import {
  type ChangeTarget,
  type MeasuredWindow,
  type VariantFigures,
  variantFigures,
} from './registry-pairs.js';
import type { ScenarioResult } from './results.js';
import { type RunningServer, startServe, stopServer } from './servers.js';

/** The measured tenant, its destination and the sid its depth-1 tokens were minted for. */
const TENANT = 'bench';
const DEST = 'dest';
const HOP = 'hop-1';
/**
 * Pairs per variant: the median of five ratios ignores two pairs a stall hit, and an effect of the
 * changes shows in all five.
 */
export const PAIRS = 5;
/**
 * Short enough that twenty windows (with their pools) fit in about two minutes; long enough for
 * ≈ 3,000 Checks a window at ≈ 1,000/s, so a window's p99 is the 30th slowest, not one outlier.
 */
export const PAIR_WINDOW_MS = 3500;
/** The server is warm from the sizing run and the windows before: this only opens the generator's sessions. */
const PAIR_WARMUP_MS = 500;
/** The stream of changes the target is stated for. */
const CHANGES_PER_SECOND = 10;
/** Tokens wrapped to learn the rate the server sustains (they warm it up as well). */
const SIZING_TOKENS = 2000;

export type { ChangeTarget } from './registry-pairs.js';

/** The table row of one window: `registry others 3 +10/s`, `registry own 1 quiet`. */
export const checkRow = (target: ChangeTarget, pair: number, changes: boolean): string =>
  `registry ${target} ${pair + 1} ${changes ? '+10/s' : 'quiet'}`;

export interface ChecksUnderChanges {
  /** Open-loop arrivals per second: half of the rate the server wrapped tokens at. */
  readonly rate: number;
  readonly sustainedRate: number;
  readonly windowSeconds: number;
  readonly warmupSeconds: number;
  readonly pairs: number;
  /** Per variant: each pair's windows and ratios, the median ratios (the targets), pooled figures. */
  readonly variants: Record<ChangeTarget, VariantFigures>;
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
  // every pool makes every major GC — which sets the max of a window, changes or not — longer.
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
    try {
      const origin = await innerChain(client, fixture.issuer, fixture.pad, 1);
      // Wrapping the origin for hop-1 is the work a depth-1 Check does: a memo hit and one mint.
      const sustainedRate = (
        await wrapMany(client, origin, HOP, knobs.concurrency, () => SIZING_TOKENS)
      ).rate;
      const rate = sustainedRate / 2;
      // An open loop sends exactly rate × time: a small margin covers the timer's rounding.
      const perRun = Math.min(
        knobs.poolMax,
        Math.ceil((rate * (PAIR_WARMUP_MS + PAIR_WINDOW_MS) * 1.05) / 1000) + 100,
      );
      log(
        `registry checks: serve on the ${tenants}-tenant registry wraps ${sustainedRate.toFixed(0)} tokens/s; open loop at ${rate.toFixed(0)} req/s, ${perRun} fresh depth-1 tokens per window, ${PAIRS} pairs of ${PAIR_WINDOW_MS / 1000} s windows per variant`,
      );
      const window = async (
        target: ChangeTarget,
        pair: number,
        changes: boolean,
      ): Promise<{ measured: MeasuredWindow; written: number }> => {
        // Each window's pool is minted right before it, so each starts with the same memo.
        const { tokens } = await wrapMany(client, origin, HOP, knobs.concurrency, () => perRun);
        const writer = changes ? startWriter(store, target, tenants) : undefined;
        let measured: MeasuredWindow;
        try {
          measured = await measureWindow(
            ctx,
            server,
            checkRow(target, pair, changes),
            tokens,
            rate,
          );
        } catch (error) {
          await writer?.stop();
          throw error;
        }
        return { measured, written: (await writer?.stop()) ?? 0 };
      };
      const pairs: Record<ChangeTarget, Parameters<typeof variantFigures>[0][number][]> = {
        others: [],
        own: [],
      };
      const written: Record<ChangeTarget, number> = { others: 0, own: 0 };
      // Variants interleaved pair by pair, and within a pair the order alternates (Q C, C Q, …):
      // drift of the machine or of the server's heap over the run falls on both sides of the ratios.
      for (let pair = 0; pair < PAIRS; pair++) {
        for (const target of ['others', 'own'] as const) {
          const first = pair % 2 === 0 ? 'quiet' : 'changes';
          const a = await window(target, pair, first === 'changes');
          const b = await window(target, pair, first !== 'changes');
          written[target] += a.written + b.written;
          pairs[target].push(
            first === 'quiet'
              ? { first, quiet: a.measured, changes: b.measured }
              : { first, quiet: b.measured, changes: a.measured },
          );
        }
      }
      return {
        rate,
        sustainedRate,
        windowSeconds: PAIR_WINDOW_MS / 1000,
        warmupSeconds: PAIR_WARMUP_MS / 1000,
        pairs: PAIRS,
        variants: {
          others: variantFigures(pairs.others, written.others),
          own: variantFigures(pairs.own, written.own),
        },
      };
    } finally {
      client.close();
    }
  } finally {
    await stopServer(server, []);
  }
}

/** One window: its row in the table, and its every latency and histogram delta for the pairs. */
async function measureWindow(
  ctx: ServeContext,
  server: RunningServer,
  name: string,
  tokens: readonly string[],
  rate: number,
): Promise<MeasuredWindow> {
  const file = join(ctx.workDir, `pool-${name.replace(/[^A-Za-z0-9-]+/g, '_')}.bin`);
  writeCheckPool(file, tokens, DEST);
  const before = await durationBuckets(server.httpPort);
  // No crypto floor beside these windows (nothing here is divided by it): twenty of them would
  // add ten seconds to the scenario.
  const { latenciesMs, ...load } = await runLoad(
    ctx,
    generatorConfig(
      ctx,
      name,
      server,
      { kind: 'pool', file },
      {
        expectDepth: 2,
        rate,
        maxInFlight: 1024,
        warmupMs: PAIR_WARMUP_MS,
        durationMs: PAIR_WINDOW_MS,
        keepLatencies: true,
      },
    ),
  );
  const handlerBuckets = bucketDelta(before, await durationBuckets(server.httpPort));
  const handler = percentilesOf(handlerBuckets);
  rmSync(file, { force: true });
  ctx.sink.recordProblems(load, name);
  log(
    `${name}: ${load.requestsPerSecond.toFixed(0)} req/s, p50 ${load.latencyMs.p50.toFixed(2)} ms, p99 ${load.latencyMs.p99.toFixed(2)} ms, max ${load.latencyMs.max.toFixed(2)} ms, handler p99 ≤ ${handler?.p99Ms ?? '?'} ms`,
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
    handler,
    serverPeak: processMemory(server.pid),
    serverIdle: server.idleMemory,
    serverLogProblems: { count: server.problemCount, first: server.problems },
  };
  ctx.sink.add(result);
  return {
    latenciesMs: latenciesMs ?? [],
    p50: load.latencyMs.p50,
    p99: load.latencyMs.p99,
    max: load.latencyMs.max,
    allowedShare: load.completed > 0 ? load.allowed / load.completed : 0,
    handlerBuckets,
    handler,
  };
}
