import { pino } from 'pino';
import { inspectChain } from '../chain/inspect.js';
import { checkDeps } from '../check-deps.js';
import { environmentWithConfigFile } from '../config/config-file.js';
import { type Config, loadConfig } from '../config/config.js';
import { DEFAULT_FETCH_LIMITS } from '../keys/fetch-json.js';
import { KeyPublisher } from '../keys/key-publisher.js';
import { OwnKeys } from '../keys/own-keys.js';
import { RemoteJwks } from '../keys/remote-jwks.js';
import type { CheckInput } from '../pipeline/check-input.js';
import { check } from '../pipeline/check.js';
import type { DecisionRecord } from '../pipeline/decision.js';
import { httpStatusOf } from '../reasons.js';
import { MemoryRegistry } from '../registry/memory-registry.js';
import { loadRegistryFile } from '../registry/registry-file.js';
import type { RegistryReader } from '../registry/registry.js';
import { untrustedText } from '../untrusted-text.js';
import { terminalJson } from './terminal-json.js';
import type { Out, Parsed } from './command.js';
import { withStore } from './registry-commands.js';
import type { Env } from '../env.js';
import { shortKid, time } from './render-tree.js';
import { UsageError } from './usage-error.js';

interface ExplainedLevel {
  readonly depth: number | undefined;
  readonly sid: string | undefined;
  readonly iss: string | undefined;
  readonly alg: string;
  readonly kid: string | undefined;
  readonly iat: unknown;
  readonly exp: unknown;
  readonly verified: boolean;
}

interface Explanation {
  readonly levels: readonly ExplainedLevel[];
  /** Why the chain was not accepted as genuine, when it was not. */
  readonly refused: { readonly reason: string; readonly detail: string | undefined } | undefined;
  readonly destination: string | undefined;
  readonly tenant: string | undefined;
  readonly rule: {
    readonly service: string | undefined;
    readonly serviceRegistered: boolean;
    readonly operation: string | undefined;
    readonly tenantRegistered: boolean;
  };
  readonly decision: 'allow' | 'deny' | 'shadow_allow';
  readonly reason: string | undefined;
  readonly status: number;
  readonly detail: string | undefined;
  readonly shadowScope: string | undefined;
  /** What to change when the refusal is about our setup rather than the token (a missing key file). */
  readonly hint: string | undefined;
}

/**
 * Why a level of this service's own issuer finds no key: explain verifies our levels with the key
 * file the service runs with, or with the fleet's keys in Redis; without either it has only keys
 * it generated a moment ago, which signed nothing.
 */
function ownKeyHint(config: Config): string {
  if (config.redisUrl !== undefined)
    return `signed by this service's issuer (${config.issuer}) with a key the fleet in Redis does not publish (any more): was it minted by another fleet, or with a key file not set here (MATRYOSHKA_SIGNING_KEYS)?`;
  if (config.signingKeysFile === undefined)
    return `signed by this service's issuer (${config.issuer}), but MATRYOSHKA_SIGNING_KEYS is not set: explain then has only keys it generated itself. Set it to the key file the service runs with (or set REDIS_URL to use the fleet's published keys).`;
  return `signed by this service's issuer (${config.issuer}) with a key that MATRYOSHKA_SIGNING_KEYS (${config.signingKeysFile}) does not hold: was it minted with another key file?`;
}

/** The registry and our verifying keys as the configuration names them: Redis, or the file. */
async function withTrust<T>(
  config: Config,
  env: Env,
  task: (registry: RegistryReader, ownKeys: OwnKeys) => Promise<T>,
): Promise<T> {
  const ownKeys =
    config.signingKeysFile !== undefined
      ? await OwnKeys.fromFile(config.signingKeysFile)
      : await OwnKeys.generate();
  if (config.redisUrl === undefined) {
    const registry = new MemoryRegistry(
      config.registryFile === undefined
        ? undefined
        : loadRegistryFile(config.registryFile, config.allowInsecureIssuers),
    );
    return task(registry, ownKeys);
  }
  return withStore(env, async (store) => {
    // The fleet's published signing keys verify the levels any replica minted.
    const publisher = new KeyPublisher(
      store.redis,
      store.layout,
      ownKeys,
      {
        republishEveryMs: 60_000,
        tokenLifetimeMs: config.tokenTtlSeconds * 1000,
        rotateEveryMs: undefined,
      },
      pino({ level: 'silent' }),
    );
    await publisher.loadPeers();
    const snapshot = await store.snapshot();
    return task(new MemoryRegistry(snapshot.contents), ownKeys);
  });
}

function explanation(
  record: DecisionRecord,
  token: string,
  rule: Explanation['rule'],
  config: Config,
): Explanation {
  const verified = record.chain;
  const levels: ExplainedLevel[] =
    verified !== undefined
      ? verified.levels.map((l) => ({
          depth: l.depth,
          sid: l.stack?.sid,
          iss: l.iss,
          alg: l.alg,
          kid: l.kid,
          iat: l.iat,
          exp: l.exp,
          verified: true,
        }))
      : inspectChain(token).levels.map((l) => ({ ...l, verified: false }));
  const authentic = verified !== undefined;
  return {
    levels,
    refused: authentic
      ? undefined
      : { reason: record.reason ?? 'unavailable', detail: record.detail },
    destination: record.destination,
    tenant: record.tenant,
    rule,
    decision: record.allowed ? (record.reason === undefined ? 'allow' : 'shadow_allow') : 'deny',
    reason: record.reason,
    status: record.allowed ? 200 : httpStatusOf(record.reason ?? 'unavailable'),
    detail: record.detail,
    shadowScope: record.shadowScope,
    hint:
      !authentic &&
      record.reason === 'bad_signature' &&
      levels.some((l) => l.iss === config.issuer && !l.verified)
        ? ownKeyHint(config)
        : undefined,
  };
}

const show = (text: string | undefined): string => (text === undefined ? '-' : untrustedText(text));

function render(e: Explanation): string {
  const lines = [`chain (${e.levels.length} level${e.levels.length === 1 ? '' : 's'} read)`];
  for (const level of e.levels) {
    const name = level.sid === undefined ? 'origin ' : `depth ${level.depth ?? '?'}`;
    const sid = level.sid === undefined ? '' : `  sid=${show(level.sid)}`;
    lines.push(
      `  ${name}${sid}  iss=${show(level.iss)}  alg=${show(level.alg)}  kid=${shortKid(level.kid)}  iat=${time(level.iat)}  exp=${time(level.exp)}  ${level.verified ? 'verified' : 'not verified'}`,
    );
  }
  if (e.refused !== undefined)
    lines.push(`  refused: ${e.refused.reason}: ${show(e.refused.detail)}`);
  if (e.hint !== undefined) lines.push(`  hint: ${e.hint}`);
  const rule = e.rule;
  lines.push(`destination  ${show(e.destination)}   tenant ${show(e.tenant)}`);
  if (e.destination !== undefined) {
    const service = `service ${show(rule.service)}${rule.serviceRegistered ? '' : ' (not registered: tenant policy only)'}`;
    const operation =
      rule.operation === undefined ? 'its own rule' : `operation ${show(rule.operation)}`;
    lines.push(
      `rule         ${service}, ${operation}; tenant ${rule.tenantRegistered ? 'registered' : 'defaults'}`,
    );
  }
  const why = e.reason === undefined ? '' : `  ${e.reason}`;
  const scope = e.shadowScope === undefined ? '' : `  (dry-run: ${e.shadowScope})`;
  lines.push(`decision     ${e.decision}${why}  ${e.status}${scope}`);
  if (e.detail !== undefined && e.refused === undefined)
    lines.push(`             ${show(e.detail)}`);
  return lines.join('\n');
}

/** `explain`: the Check pipeline offline, against the configured registry and keys; mints nothing. */
export async function explain(
  { values, positionals, env, input: stdin }: Parsed,
  out: Out,
): Promise<number> {
  const config = loadConfig(environmentWithConfigFile(env));
  const source = positionals[0] ?? '-';
  const token = (source === '-' ? stdin() : source).trim().replace(/^Bearer\s+/i, '');
  if (token.length === 0) throw new UsageError('explain: no token given');
  const text = (name: string): string | undefined => {
    const value = values[name];
    return typeof value === 'string' && value.length > 0 ? value : undefined;
  };
  const input: CheckInput = {
    headers: new Map([['authorization', `Bearer ${token}`]]),
    contextExtensions: {
      ...(text('sid') === undefined ? {} : { sid: text('sid') as string }),
      ...(text('tenant') === undefined ? {} : { tenant: text('tenant') as string }),
    },
    sourcePrincipal: text('source'),
    destinationPrincipal: undefined,
    path: text('path'),
    method: text('method'),
  };
  const explained = await withTrust(config, env, async (registry, ownKeys) => {
    const remote = new RemoteJwks({
      maxAgeMs: config.jwksMaxAgeSeconds * 1000,
      maxStaleMs: config.jwksMaxStaleSeconds * 1000,
      cooldownMs: 0,
      fetch: {
        ...DEFAULT_FETCH_LIMITS,
        timeoutMs: config.jwksTimeoutMs,
        allowInsecure: config.allowInsecureIssuers,
      },
    });
    let failure: unknown;
    const deps = checkDeps(config, {
      registry,
      ownKeys,
      remote,
      memo: undefined,
      decideOnly: true,
      // HMAC issuers' secrets are named variables of the command's environment.
      env,
      onUnexpected: (error) => {
        failure = error;
      },
    });
    const record = await check(input, deps);
    if (failure !== undefined) throw failure;
    const service =
      record.destination === undefined ? undefined : await registry.service(record.destination);
    const tenantRecord =
      record.tenant === undefined ? undefined : await registry.tenant(record.tenant);
    return explanation(
      record,
      token,
      {
        service: record.destination,
        serviceRegistered: service !== undefined,
        operation: record.operation,
        tenantRegistered: tenantRecord !== undefined,
      },
      config,
    );
  });
  out(values['json'] === true ? terminalJson(explained) : render(explained));
  return explained.decision === 'deny' ? 1 : 0;
}
