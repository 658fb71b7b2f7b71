/** The BENCH_* environment, read once and checked before anything starts (bench/README.md lists them). */
import { join } from 'node:path';
import { ROOT } from './paths.js';

export const HTTP_DIALECTS = ['envoy', 'forward'] as const;
export type HttpDialect = (typeof HTTP_DIALECTS)[number];

export const ALL_SCENARIOS = [
  'crypto',
  'noop',
  'depths',
  'half',
  'peer',
  'noop-large',
  'info',
  'memory',
  'http',
  'compact',
  'txn',
] as const;
/** Selected by name only (BENCH_SCENARIOS=registry): too long for the default run. */
export const OPTIONAL_SCENARIOS = ['registry', 'cold'] as const;
export type ScenarioName = (typeof ALL_SCENARIOS)[number] | (typeof OPTIONAL_SCENARIOS)[number];

/** Written into the JSON as they are: keep the fields (and their order) stable. */
export interface Knobs {
  readonly warmupMs: number;
  readonly durationMs: number;
  readonly concurrency: number;
  readonly sessions: number;
  readonly depths: readonly number[];
  /** Depths measured again with each request's outer level minted by another replica (the targets' depths by default). */
  readonly peerDepths: readonly number[] | undefined;
  readonly scenarios: ReadonlySet<string>;
  readonly memoryChecks: number;
  readonly timeoutMs: number;
  readonly poolFactor: number;
  readonly poolMax: number;
  readonly originBytes: number;
  readonly profile: ReadonlySet<string>;
  readonly out: string;
  readonly quietWaitMs: number;
  readonly retries: number;
  /** Extra node flags for the served process (e.g. --trace-gc); its non-JSON output goes to bench/results/serve-<scenario>.log. */
  readonly serveNodeArgs: readonly string[];
  /** Destination sid of the measured Checks. A sid already in the chain (`hop-1`) makes every check a recursion denial: a self-test that denials are caught. */
  readonly dest: string;
  readonly streamWindow: number;
  readonly sessionWindow: number;
  /** `http` rows: keep-alive connections to the HTTP authorization port (one request in flight each). */
  readonly httpSockets: number;
  /** `http` rows: Envoy's http_service requests or forward-auth ones. */
  readonly httpDialect: HttpDialect;
  /** Depths of the `compact` scenario (nested rows only up to 8: past it nested passes Envoy's 60 KiB). */
  readonly compactDepths: readonly number[];
}

type KnobEnv = Readonly<Record<string, string | undefined>>;

function numberKnob(env: KnobEnv, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw.trim() === '') return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value < 0)
    throw new Error(`${name} must be a non-negative number`);
  return value;
}

const numberList = (raw: string): number[] =>
  raw
    .split(',')
    .filter((s) => s.trim() !== '')
    .map(Number);

export function readKnobs(env: KnobEnv): Knobs {
  const knobs: Knobs = {
    warmupMs: numberKnob(env, 'BENCH_WARMUP_S', 1) * 1000,
    durationMs: numberKnob(env, 'BENCH_DURATION_S', 5) * 1000,
    concurrency: numberKnob(env, 'BENCH_CONCURRENCY', 64),
    sessions: numberKnob(env, 'BENCH_SESSIONS', 4),
    depths: numberList(env['BENCH_DEPTHS'] ?? '0,1,2,4,8'),
    peerDepths:
      env['BENCH_PEER_DEPTHS'] === undefined ? undefined : numberList(env['BENCH_PEER_DEPTHS']),
    scenarios: new Set(
      (env['BENCH_SCENARIOS'] ?? ALL_SCENARIOS.join(',')).split(',').map((s) => s.trim()),
    ),
    memoryChecks: numberKnob(env, 'BENCH_MEMORY_CHECKS', 200_000),
    timeoutMs: numberKnob(env, 'BENCH_GRPC_TIMEOUT_MS', 250),
    poolFactor: numberKnob(env, 'BENCH_POOL_FACTOR', 1.4),
    poolMax: numberKnob(env, 'BENCH_POOL_MAX', 80_000),
    originBytes: numberKnob(env, 'BENCH_ORIGIN_BYTES', 1024),
    profile: new Set(
      (env['BENCH_PROFILE'] ?? '')
        .split(',')
        .map((s) => s.trim())
        .filter((s) => s !== ''),
    ),
    out: env['BENCH_OUT'] ?? join(ROOT, 'bench/results/latest.json'),
    quietWaitMs: numberKnob(env, 'BENCH_QUIET_WAIT_S', 30) * 1000,
    retries: numberKnob(env, 'BENCH_RETRIES', 1),
    serveNodeArgs: (env['BENCH_SERVE_NODE_ARGS'] ?? '').split(' ').filter((s) => s !== ''),
    dest: env['BENCH_DEST'] ?? 'dest',
    streamWindow: 1 << 20,
    sessionWindow: 16 << 20,
    // As many connections as requests in flight over gRPC: the same concurrency, HTTP/1.1 style.
    httpSockets: numberKnob(env, 'BENCH_HTTP_SOCKETS', numberKnob(env, 'BENCH_CONCURRENCY', 64)),
    httpDialect: (env['BENCH_HTTP_DIALECT'] ?? 'envoy') as HttpDialect,
    compactDepths: numberList(env['BENCH_COMPACT_DEPTHS'] ?? '1,4,8,16,32'),
  };
  if (!(HTTP_DIALECTS as readonly string[]).includes(knobs.httpDialect))
    throw new Error(`BENCH_HTTP_DIALECT must be one of ${HTTP_DIALECTS.join(', ')}`);
  if (!Number.isInteger(knobs.httpSockets) || knobs.httpSockets < 1)
    throw new Error('BENCH_HTTP_SOCKETS must be a whole number of at least 1');
  for (const s of knobs.scenarios)
    if (![...ALL_SCENARIOS, ...OPTIONAL_SCENARIOS].includes(s as ScenarioName))
      throw new Error(`BENCH_SCENARIOS: unknown scenario ${s}`);
  for (const d of knobs.depths)
    if (!Number.isInteger(d) || d < 0 || d > 30)
      throw new Error(`BENCH_DEPTHS: ${d} is not a depth`);
  for (const d of knobs.compactDepths)
    if (!Number.isInteger(d) || d < 1 || d > 60)
      throw new Error(`BENCH_COMPACT_DEPTHS: ${d} is not a depth from 1 to 60`);
  for (const d of peerDepths(knobs))
    if (!Number.isInteger(d) || d > 30) throw new Error(`BENCH_PEER_DEPTHS: ${d} is not a depth`);
  return knobs;
}

export const wants = (knobs: Knobs, s: ScenarioName): boolean => knobs.scenarios.has(s);

export const isProfiled = (knobs: Knobs, label: string): boolean =>
  knobs.profile.has('1') || knobs.profile.has('all') || knobs.profile.has(label);

/** The deepest depth measured: it gets the half-load run, the size-matched no-op and the compression figures. */
export const deepestDepth = (knobs: Knobs): number => Math.max(...knobs.depths, 0);

export const peerDepths = (knobs: Knobs): number[] =>
  (knobs.peerDepths ?? [1, deepestDepth(knobs)]).filter(
    (d, i, all) => d >= 1 && all.indexOf(d) === i,
  );

/** Depths of the `http` rows: 1 and the deepest (each beside the gRPC row of the same depth). */
export const httpDepths = (knobs: Knobs): number[] =>
  [1, deepestDepth(knobs)].filter((d, i, all) => d >= 1 && all.indexOf(d) === i);

/** Warm-up plus window, seconds: what a request pool has to cover. */
export const loadSeconds = (knobs: Knobs): number => (knobs.warmupMs + knobs.durationMs) / 1000;
