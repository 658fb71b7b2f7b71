/**
 * A test world: issuers, registry records, our keys, settings and the clock stated once, then run
 * at the cheapest level that can see what a test asks about. Every level is assembled by the
 * service's own `assembleService` from `loadConfig` (the defaults `serve` uses, none copied here):
 *
 * - `check`: the pipeline's `check()` in process, its record turned into the Envoy answer;
 * - `handler`: the Check handler every transport runs (deadline, span, metrics, audit line);
 * - `grpc`: the real gRPC listener behind a real gRPC client (`startService`);
 * - `http`: the HTTP authorizer listener (Envoy's `http_service` dialect);
 * - `process`: `serve` spawned as `npm start` runs it, records in a registry file, keys in a key file.
 *
 * Every level answers `check(call)` with the same `Outcome`, so one test body runs at any of them.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { type Config, loadConfig } from '../../src/config/config.js';
import { type CheckCall, type CheckResult, EnvoyLikeClient } from '../../src/demo/envoy-client.js';
import { OwnKeys, generateKeyFile } from '../../src/keys/own-keys.js';
import type { CheckInput } from '../../src/pipeline/check-input.js';
import { check } from '../../src/pipeline/check.js';
import type { DecisionRecord } from '../../src/pipeline/decision.js';
import { buildCheckResponse } from '../../src/pipeline/respond.js';
import {
  MemoryRegistry,
  type RegistryContents,
  emptyContents,
} from '../../src/registry/memory-registry.js';
import { issuerToRaw, serviceToRaw, tenantToRaw } from '../../src/registry/records.js';
import { type AssembledService, assembleService, startService } from '../../src/service.js';
import { toCheckInput } from '../../src/server/check-request.js';
import type { AuthzMetrics } from '../../src/telemetry/metrics.js';
import { createLogger } from '../../src/telemetry/logger.js';
import { spawnServe } from '../helpers/processes.js';

export const LEVELS = ['check', 'handler', 'grpc', 'http', 'process'] as const;
export type Level = (typeof LEVELS)[number];

export interface WorldOptions {
  /** Registry records, built with the parsers of test/helpers/records.ts. */
  contents?: Partial<RegistryContents>;
  /** Settings exactly as the environment spells them (`MATRYOSHKA_*`). */
  env?: Record<string, string>;
  /** Our keys; replicas of one fleet share them. Default: a key file written for this world. */
  ownKeys?: OwnKeys;
  /** The clock, epoch seconds (not for `process`, which reads its own). */
  now?: () => number;
  /** Environment the pipeline reads HMAC secrets from (default: this process's). */
  processEnv?: NodeJS.ProcessEnv;
}

/** The Envoy answer, and the reason from the decision or the audit line, at every level. */
export type Outcome = CheckResult & {
  readonly reason: string | undefined;
  /** The decision itself, at the in-process levels. */
  readonly record?: DecisionRecord;
};

export interface World {
  readonly level: Level;
  readonly config: Config;
  /** The embedded registry the in-process levels read; changes show at once (not at `process`, nor with REDIS_URL). */
  readonly registry: MemoryRegistry;
  readonly ownKeys: OwnKeys;
  /** Every log line the service wrote, parsed. */
  readonly logs: Array<Record<string, unknown>>;
  /** Undefined at `check` (no handler) and `process` (its own metrics, on its /metrics). */
  readonly metrics: AuthzMetrics | undefined;
  /** `MATRYOSHKA_HTTP_PORT` (jwks, health, metrics), for levels with listeners. */
  readonly httpPort: number | undefined;
  /** The pieces `serve` is made of, at the in-process levels. */
  readonly assembled: AssembledService | undefined;
  check(call: CheckCall): Promise<Outcome>;
  /** The reason of the last decision logged (the audit line; `check` keeps its own). */
  lastReason(): unknown;
  stop(): Promise<void>;
}

/** The settings every level shares: loopback, free ports, local (http) issuers allowed. */
const BASE_ENV: Record<string, string> = {
  MATRYOSHKA_GRPC_PORT: '0',
  MATRYOSHKA_HTTP_PORT: '0',
  MATRYOSHKA_HOST: '127.0.0.1',
  MATRYOSHKA_ALLOW_INSECURE_ISSUERS: 'true',
  LOG_LEVEL: 'info',
};

function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'matryoshka-world-'));
}

/** The records as a registry file says them, through the schemas' own inverse. */
export function registryDocument(contents: RegistryContents): string {
  return JSON.stringify({
    issuers: contents.issuers.map(issuerToRaw),
    tenants: Object.fromEntries(contents.tenants.map((t) => [t.tenant, tenantToRaw(t)])),
    services: Object.fromEntries(contents.services.map((s) => [s.sid, serviceToRaw(s)])),
    principals: contents.principals,
  });
}

function logSink(logs: Array<Record<string, unknown>>): Writable {
  return new Writable({
    write(chunk: Buffer, _encoding, callback) {
      for (const line of chunk.toString('utf8').split('\n'))
        if (line.trim()) logs.push(JSON.parse(line) as Record<string, unknown>);
      callback();
    },
  });
}

/** What Envoy's filter would send for `call`, as the transports hand it to the pipeline. */
export function inputOf(call: CheckCall): CheckInput {
  return toCheckInput(EnvoyLikeClient.request(call));
}

const lastLoggedReason = (logs: Array<Record<string, unknown>>): unknown =>
  logs.findLast((l) => l['msg'] === 'check')?.['reason'];

/** The reason of the audit line for one request id (lines may arrive a moment after the answer). */
async function loggedReason(
  logs: Array<Record<string, unknown>>,
  requestId: string,
): Promise<string | undefined> {
  for (let tries = 0; tries < 200; tries++) {
    const line = logs.findLast((l) => l['msg'] === 'check' && l['request_id'] === requestId);
    if (line !== undefined) return line['reason'] as string | undefined;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`no audit line for request ${requestId}`);
}

let requests = 0;
const withRequestId = (call: CheckCall): { call: CheckCall; id: string } => {
  const given = Object.entries(call.headers ?? {}).find(
    ([k]) => k.toLowerCase() === 'x-request-id',
  );
  const id = given?.[1] ?? `world-${process.pid}-${++requests}`;
  return { call: given ? call : { ...call, headers: { ...call.headers, 'x-request-id': id } }, id };
};

/** Ask the HTTP authorizer as Envoy's `http_service` does (path prefix /envoy, sid header). */
function askHttp(
  port: number,
  call: CheckCall,
): Promise<{ status: number; headers: Record<string, string>; body: string }> {
  if (Object.keys(call.contextExtensions ?? {}).length > 0)
    throw new Error('the http level carries no context extensions but the sid');
  const headers: Record<string, string> = { ...call.headers };
  if (call.token !== undefined) headers['authorization'] = `Bearer ${call.token}`;
  if (call.sid !== undefined) headers['x-authz-sid'] = call.sid;
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        method: call.method ?? 'GET',
        path: `/envoy${call.path ?? '/'}`,
        headers,
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          body += chunk;
        });
        res.on('end', () => {
          const flat: Record<string, string> = {};
          for (const [k, v] of Object.entries(res.headers))
            if (v !== undefined) flat[k] = Array.isArray(v) ? v.join(',') : v;
          resolve({ status: res.statusCode ?? 0, headers: flat, body });
        });
      },
    );
    req.once('error', reject);
    req.end();
  });
}

/** Start a world at `level`. */
export async function startWorld(level: Level, options: WorldOptions = {}): Promise<World> {
  const env = { ...BASE_ENV, ...options.env };
  if (level === 'http') env['MATRYOSHKA_AUTHZ_HTTP_PORT'] = '0';
  const contents = { ...emptyContents(), ...options.contents };
  const registry = new MemoryRegistry(contents);
  const logs: Array<Record<string, unknown>> = [];
  const config = loadConfig(env);

  if (level === 'process') return processWorld(env, contents, options, config, registry);

  const ownKeys = options.ownKeys ?? (await OwnKeys.generate());
  const logger = createLogger(config.logLevel, logSink(logs));
  const overrides = {
    // With REDIS_URL the service reads Redis, as `serve` does; `registry` is then unused.
    ...(config.redisUrl === undefined ? { registry } : {}),
    ownKeys,
    ...(options.now ? { now: options.now } : {}),
    ...(options.processEnv ? { env: options.processEnv } : {}),
  };
  const common = { level, config, registry, ownKeys, logs };

  if (level === 'check' || level === 'handler') {
    const assembled = await assembleService(config, logger, overrides);
    let last: string | undefined;
    return {
      ...common,
      metrics: level === 'handler' ? assembled.metrics : undefined,
      httpPort: undefined,
      assembled,
      async check(call) {
        const input = inputOf(call);
        const deadline = call.deadlineMs === undefined ? undefined : Date.now() + call.deadlineMs;
        const record =
          level === 'check'
            ? await check(input, assembled.pipeline)
            : await assembled.checks.decide(input, deadline);
        last = record.reason;
        const answer = EnvoyLikeClient.read(buildCheckResponse(record, assembled.settings));
        return { ...answer, reason: record.reason, record };
      },
      lastReason: () => (level === 'check' ? last : lastLoggedReason(logs)),
      stop: () => assembled.close(),
    };
  }

  const service = await startService(config, logger, overrides);
  const client = new EnvoyLikeClient(`127.0.0.1:${service.grpcPort}`);
  return {
    ...common,
    metrics: service.metrics,
    httpPort: service.httpPort,
    assembled: undefined,
    async check(given) {
      const { call, id } = withRequestId(given);
      if (level === 'grpc') {
        const answer = await client.check(call);
        return { ...answer, reason: await loggedReason(logs, id) };
      }
      const answer = await askHttp(service.authzHttpPort as number, call);
      return { ...httpOutcome(answer, config.forwardHeader), reason: await loggedReason(logs, id) };
    },
    lastReason: () => lastLoggedReason(logs),
    stop: async () => {
      client.close();
      await service.close(1000);
    },
  };
}

/** The HTTP answer in the shape of the gRPC one: the headers a proxy copies upstream or back. */
function httpOutcome(
  answer: { status: number; headers: Record<string, string>; body: string },
  forwardHeader: string,
): CheckResult {
  const allowed = answer.status === 200;
  const forwarded = answer.headers[forwardHeader];
  return {
    allowed,
    grpcCode: allowed ? 0 : 7,
    httpStatus: answer.status,
    headers: answer.headers,
    headersToRemove: [],
    body: allowed ? '' : answer.body,
    metadata: {},
    forwardedToken: forwarded?.startsWith('Bearer ') ? forwarded.slice(7) : forwarded,
    raw: {} as CheckResult['raw'],
  };
}

async function processWorld(
  env: Record<string, string>,
  contents: RegistryContents,
  options: WorldOptions,
  config: Config,
  registry: MemoryRegistry,
): Promise<World> {
  if (options.now !== undefined) throw new Error('a spawned service reads its own clock');
  if (options.ownKeys !== undefined)
    throw new Error('a spawned service reads its keys from a file');
  const dir = tempDir();
  writeFileSync(join(dir, 'registry.json'), registryDocument(contents));
  writeFileSync(join(dir, 'keys.json'), JSON.stringify(await generateKeyFile()), { mode: 0o600 });
  const served = await spawnServe({
    ...env,
    ...(options.processEnv as Record<string, string> | undefined),
    MATRYOSHKA_REGISTRY_FILE: join(dir, 'registry.json'),
    MATRYOSHKA_SIGNING_KEYS: join(dir, 'keys.json'),
  });
  const ownKeys = await OwnKeys.fromFile(join(dir, 'keys.json'));
  const client = new EnvoyLikeClient(`127.0.0.1:${served.grpcPort}`);
  return {
    level: 'process',
    config,
    registry,
    ownKeys,
    logs: served.lines,
    metrics: undefined,
    httpPort: served.httpPort,
    assembled: undefined,
    async check(given) {
      const { call, id } = withRequestId(given);
      const answer = await client.check(call);
      return { ...answer, reason: await loggedReason(served.lines, id) };
    },
    lastReason: () => lastLoggedReason(served.lines),
    stop: async () => {
      client.close();
      await served.stop();
    },
  };
}
