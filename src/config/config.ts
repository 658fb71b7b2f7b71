import { MatryoshkaError } from '../errors.js';
import type { Compression } from '../chain/compression.js';
import { RESERVED_FORWARD_HEADERS } from '../pipeline/owned-headers.js';
import { IDENTIFIER_DESCRIPTION, isIdentifier } from '../header-grammar.js';
import { type ChainFormat, HEADER_BUDGET_MAX, HEADER_BUDGET_MIN } from '../registry/records.js';

export interface Config {
  readonly grpcPort: number;
  readonly httpPort: number;
  readonly host: string;
  readonly redisUrl: string | undefined;
  readonly registryFile: string | undefined;
  readonly issuer: string;
  readonly signingKeysFile: string | undefined;
  readonly serviceId: string | undefined;
  readonly maxDepth: number;
  readonly tokenTtlSeconds: number;
  readonly forwardHeader: string;
  readonly shadow: boolean;
  readonly debugReasons: boolean;
  readonly tlsCert: string | undefined;
  readonly tlsKey: string | undefined;
  readonly tlsCa: string | undefined;
  readonly allowInsecureIssuers: boolean;
  readonly logLevel: string;
  readonly clockSkewSeconds: number;
  readonly compression: Compression;
  readonly chainFormat: ChainFormat;
  readonly headerBudget: number;
  readonly maxTokenLength: number;
  readonly maxLevels: number;
  readonly maxContainerBytes: number;
  readonly jwksTimeoutMs: number;
  readonly jwksCooldownMs: number;
  readonly jwksMaxAgeSeconds: number;
  readonly jwksMaxStaleSeconds: number;
  readonly redisPrefix: string;
  readonly registryPollMs: number;
  readonly keyRotationSeconds: number;
  readonly tlsReloadMs: number;
  readonly shutdownGraceMs: number;
  readonly memoEntries: number;
  readonly idleTimeoutMs: number;
}

export interface ConfigVariable {
  readonly name: string;
  readonly default: string | undefined;
  readonly description: string;
}

/** Every environment variable the service reads. The README table and the deploy tests come from here. */
export const CONFIG_VARIABLES: readonly ConfigVariable[] = [
  {
    name: 'MATRYOSHKA_GRPC_PORT',
    default: '9191',
    description: 'ext_authz + health port (0 = pick a free port and log it)',
  },
  {
    name: 'MATRYOSHKA_HTTP_PORT',
    default: '9192',
    description: 'JWKS, health and metrics port (0 = pick a free port and log it)',
  },
  { name: 'MATRYOSHKA_HOST', default: '0.0.0.0', description: 'bind address' },
  { name: 'REDIS_URL', default: undefined, description: 'unset = embedded in-memory registry' },
  {
    name: 'MATRYOSHKA_REGISTRY_FILE',
    default: undefined,
    description: 'YAML registry loaded at start (embedded mode)',
  },
  {
    name: 'MATRYOSHKA_ISSUER',
    default: 'urn:matryoshka:authz',
    description: 'iss of minted tokens',
  },
  {
    name: 'MATRYOSHKA_SIGNING_KEYS',
    default: undefined,
    description: 'JWK Set file with private keys; unset = generated keys',
  },
  {
    name: 'MATRYOSHKA_SERVICE_ID',
    default: undefined,
    description: 'destination service id when the request names none',
  },
  {
    name: 'MATRYOSHKA_MAX_DEPTH',
    default: '8',
    description: 'default max chain depth (tenant, service and route may lower it)',
  },
  {
    name: 'MATRYOSHKA_TOKEN_TTL',
    default: '120',
    description: 'lifetime in seconds of minted tokens (never beyond the origin exp)',
  },
  {
    name: 'MATRYOSHKA_FORWARD_HEADER',
    default: 'authorization',
    description: 'header that carries the minted token upstream',
  },
  {
    name: 'MATRYOSHKA_MODE',
    default: 'enforce',
    description: 'enforce | shadow (decide, record, but allow)',
  },
  {
    name: 'MATRYOSHKA_DEBUG_REASONS',
    default: 'false',
    description: 'add x-authz-reason to denials (off in production)',
  },
  {
    name: 'MATRYOSHKA_TLS_CERT',
    default: undefined,
    description: 'server certificate (PEM) for gRPC TLS',
  },
  {
    name: 'MATRYOSHKA_TLS_KEY',
    default: undefined,
    description: 'server private key (PEM) for gRPC TLS',
  },
  {
    name: 'MATRYOSHKA_TLS_CA',
    default: undefined,
    description: 'CA bundle; when set, client certificates are required (mTLS)',
  },
  {
    name: 'MATRYOSHKA_TLS_RELOAD_MS',
    default: '10000',
    description: 'how often the TLS files are re-read (rotation without restart)',
  },
  {
    name: 'MATRYOSHKA_SHUTDOWN_GRACE_MS',
    default: '10000',
    description: 'on SIGTERM, how long in-flight checks may take before the process exits',
  },
  {
    name: 'MATRYOSHKA_ALLOW_INSECURE_ISSUERS',
    default: 'false',
    description: 'allow http:// issuer and JWKS URLs (tests, local dev)',
  },
  {
    name: 'MATRYOSHKA_CLOCK_SKEW',
    default: '30',
    description: 'seconds of tolerance on exp/nbf/iat',
  },
  {
    name: 'MATRYOSHKA_COMPRESSION',
    default: 'gzip',
    description: 'container compression when minting at depth >= 3: gzip | brotli',
  },
  {
    name: 'MATRYOSHKA_CHAIN_FORMAT',
    default: 'auto',
    description:
      'form of minted chains: nested | compact | auto (nested while it fits the header budget); per tenant: chain_format',
  },
  {
    name: 'MATRYOSHKA_HEADER_BUDGET',
    default: '6656',
    description:
      'most bytes (names + values) of token and identity headers added upstream; per tenant: header_budget',
  },
  {
    name: 'MATRYOSHKA_MAX_TOKEN_LENGTH',
    default: '65536',
    description: 'longest accepted incoming token, in characters',
  },
  {
    name: 'MATRYOSHKA_MAX_LEVELS',
    default: '32',
    description: 'hard cap on levels opened in one chain',
  },
  {
    name: 'MATRYOSHKA_MAX_CONTAINER_BYTES',
    default: '262144',
    description: 'cap on one decompressed container',
  },
  {
    name: 'MATRYOSHKA_JWKS_TIMEOUT_MS',
    default: '3000',
    description: 'deadline for one discovery or JWKS request',
  },
  {
    name: 'MATRYOSHKA_JWKS_COOLDOWN_MS',
    default: '5000',
    description:
      'minimum time between two key fetches for one issuer (on an unknown kid, or refreshing old keys in the background)',
  },
  {
    name: 'MATRYOSHKA_JWKS_MAX_AGE',
    default: '600',
    description:
      'seconds before cached issuer keys are refreshed, in the background: the held keys answer meanwhile',
  },
  {
    name: 'MATRYOSHKA_JWKS_MAX_STALE',
    default: '86400',
    description:
      'seconds the last good keys are served while an IdP is down or hangs; past it nothing stale is served',
  },
  {
    name: 'MATRYOSHKA_REDIS_PREFIX',
    default: 'matryoshka',
    description: 'key prefix (and Cluster hash tag) in Redis',
  },
  {
    name: 'MATRYOSHKA_REGISTRY_POLL_MS',
    default: '5000',
    description: 'registry version check, the safety net behind pub/sub',
  },
  {
    name: 'MATRYOSHKA_KEY_ROTATION',
    default: '21600',
    description: 'seconds between rotations of generated signing keys (Redis mode)',
  },
  {
    name: 'MATRYOSHKA_CONFIG_FILE',
    default: undefined,
    description: 'optional YAML file of these same variables; the environment wins',
  },
  {
    name: 'MATRYOSHKA_MEMO_ENTRIES',
    default: '20000',
    description: 'verified chains remembered so a hop verifies only its own level (0 = off)',
  },
  {
    name: 'MATRYOSHKA_IDLE_TIMEOUT_MS',
    default: '300000',
    description:
      'a connection (gRPC or HTTP) without a request in progress is closed after this; stalled handshakes and requests after at most 10 s',
  },
  { name: 'LOG_LEVEL', default: 'info', description: 'pino level' },
];

/** A configuration problem: one line naming the variable, and the service does not start. */
export class ConfigError extends MatryoshkaError {
  constructor(name: string, problem: string) {
    super('ERR_CONFIG', `${name}: ${problem}`);
  }
}

type Env = Readonly<Record<string, string | undefined>>;

function raw(env: Env, name: string): string | undefined {
  const value = env[name];
  if (value !== undefined && value.trim() !== '') return value.trim();
  return CONFIG_VARIABLES.find((v) => v.name === name)?.default;
}

function integer(env: Env, name: string, min: number, max: number): number {
  const value = raw(env, name) ?? '';
  if (!/^\d+$/.test(value) || Number(value) < min || Number(value) > max)
    throw new ConfigError(name, `must be a whole number from ${min} to ${max}`);
  return Number(value);
}

function bool(env: Env, name: string): boolean {
  const value = (raw(env, name) ?? 'false').toLowerCase();
  if (['true', '1', 'yes'].includes(value)) return true;
  if (['false', '0', 'no'].includes(value)) return false;
  throw new ConfigError(name, 'must be true or false');
}

function choice<T extends string>(env: Env, name: string, allowed: Record<string, T>): T {
  const value = (raw(env, name) ?? '').toLowerCase();
  const picked = allowed[value];
  if (picked === undefined)
    throw new ConfigError(name, `must be one of ${Object.keys(allowed).join(', ')}`);
  return picked;
}

function redisPrefix(env: Env): string {
  const prefix = raw(env, 'MATRYOSHKA_REDIS_PREFIX') ?? 'matryoshka';
  if (!/^[A-Za-z0-9_.-]{1,64}$/.test(prefix))
    throw new ConfigError('MATRYOSHKA_REDIS_PREFIX', 'must be letters, digits, _ . - (at most 64)');
  return prefix;
}

export function loadConfig(env: Env = process.env): Config {
  const forwardHeader = (raw(env, 'MATRYOSHKA_FORWARD_HEADER') ?? 'authorization').toLowerCase();
  if (!/^[a-z0-9-]{1,64}$/.test(forwardHeader) || forwardHeader.startsWith('x-envoy-')) {
    throw new ConfigError('MATRYOSHKA_FORWARD_HEADER', 'must be a plain header name');
  }
  // The token and an identity header under one name: one of them would be lost, or both sent.
  if (RESERVED_FORWARD_HEADERS.includes(forwardHeader)) {
    throw new ConfigError(
      'MATRYOSHKA_FORWARD_HEADER',
      `must not be ${forwardHeader}, a header the service sets itself`,
    );
  }
  const issuer = raw(env, 'MATRYOSHKA_ISSUER') ?? '';
  if (issuer.length === 0 || issuer.length > 256)
    throw new ConfigError('MATRYOSHKA_ISSUER', 'must be a non-empty string');
  const tlsCert = raw(env, 'MATRYOSHKA_TLS_CERT');
  const tlsKey = raw(env, 'MATRYOSHKA_TLS_KEY');
  if ((tlsCert === undefined) !== (tlsKey === undefined))
    throw new ConfigError('MATRYOSHKA_TLS_CERT', 'and MATRYOSHKA_TLS_KEY go together');
  const tlsCa = raw(env, 'MATRYOSHKA_TLS_CA');
  if (tlsCa !== undefined && tlsCert === undefined)
    throw new ConfigError('MATRYOSHKA_TLS_CA', 'needs MATRYOSHKA_TLS_CERT and MATRYOSHKA_TLS_KEY');
  const serviceId = raw(env, 'MATRYOSHKA_SERVICE_ID');
  if (serviceId !== undefined && !isIdentifier(serviceId))
    throw new ConfigError('MATRYOSHKA_SERVICE_ID', `must be ${IDENTIFIER_DESCRIPTION}`);
  const redisUrl = raw(env, 'REDIS_URL');
  if (
    redisUrl !== undefined &&
    !/^(redis|rediss|redis\+sentinel|redis\+cluster)s?:\/\//.test(redisUrl)
  ) {
    throw new ConfigError(
      'REDIS_URL',
      'must be a redis://, rediss://, redis+sentinel:// or redis+cluster:// URL',
    );
  }
  if (redisUrl !== undefined && raw(env, 'MATRYOSHKA_REGISTRY_FILE') !== undefined) {
    throw new ConfigError(
      'MATRYOSHKA_REGISTRY_FILE',
      'is for the embedded registry; with REDIS_URL load it with `matryoshka-authz registry import FILE`',
    );
  }
  return {
    grpcPort: integer(env, 'MATRYOSHKA_GRPC_PORT', 0, 65535),
    httpPort: integer(env, 'MATRYOSHKA_HTTP_PORT', 0, 65535),
    host: raw(env, 'MATRYOSHKA_HOST') ?? '0.0.0.0',
    redisUrl,
    registryFile: raw(env, 'MATRYOSHKA_REGISTRY_FILE'),
    issuer,
    signingKeysFile: raw(env, 'MATRYOSHKA_SIGNING_KEYS'),
    serviceId,
    maxDepth: integer(env, 'MATRYOSHKA_MAX_DEPTH', 1, 64),
    tokenTtlSeconds: integer(env, 'MATRYOSHKA_TOKEN_TTL', 5, 86_400),
    forwardHeader,
    shadow: choice(env, 'MATRYOSHKA_MODE', { enforce: 'enforce', shadow: 'shadow' }) === 'shadow',
    debugReasons: bool(env, 'MATRYOSHKA_DEBUG_REASONS'),
    tlsCert,
    tlsKey,
    tlsCa,
    allowInsecureIssuers: bool(env, 'MATRYOSHKA_ALLOW_INSECURE_ISSUERS'),
    logLevel: choice(env, 'LOG_LEVEL', {
      fatal: 'fatal',
      error: 'error',
      warn: 'warn',
      info: 'info',
      debug: 'debug',
      trace: 'trace',
      silent: 'silent',
    }),
    clockSkewSeconds: integer(env, 'MATRYOSHKA_CLOCK_SKEW', 0, 600),
    compression: choice<Compression>(env, 'MATRYOSHKA_COMPRESSION', { gzip: 'g', brotli: 'b' }),
    chainFormat: choice<ChainFormat>(env, 'MATRYOSHKA_CHAIN_FORMAT', {
      nested: 'nested',
      compact: 'compact',
      auto: 'auto',
    }),
    headerBudget: integer(env, 'MATRYOSHKA_HEADER_BUDGET', HEADER_BUDGET_MIN, HEADER_BUDGET_MAX),
    maxTokenLength: integer(env, 'MATRYOSHKA_MAX_TOKEN_LENGTH', 1024, 1024 * 1024),
    maxLevels: integer(env, 'MATRYOSHKA_MAX_LEVELS', 2, 256),
    maxContainerBytes: integer(env, 'MATRYOSHKA_MAX_CONTAINER_BYTES', 1024, 8 * 1024 * 1024),
    jwksTimeoutMs: integer(env, 'MATRYOSHKA_JWKS_TIMEOUT_MS', 100, 60_000),
    jwksCooldownMs: integer(env, 'MATRYOSHKA_JWKS_COOLDOWN_MS', 0, 3_600_000),
    jwksMaxAgeSeconds: integer(env, 'MATRYOSHKA_JWKS_MAX_AGE', 1, 86_400),
    jwksMaxStaleSeconds: integer(env, 'MATRYOSHKA_JWKS_MAX_STALE', 0, 30 * 86_400),
    redisPrefix: redisPrefix(env),
    registryPollMs: integer(env, 'MATRYOSHKA_REGISTRY_POLL_MS', 100, 600_000),
    keyRotationSeconds: integer(env, 'MATRYOSHKA_KEY_ROTATION', 60, 30 * 86_400),
    tlsReloadMs: integer(env, 'MATRYOSHKA_TLS_RELOAD_MS', 100, 3_600_000),
    shutdownGraceMs: integer(env, 'MATRYOSHKA_SHUTDOWN_GRACE_MS', 0, 600_000),
    memoEntries: integer(env, 'MATRYOSHKA_MEMO_ENTRIES', 0, 10_000_000),
    idleTimeoutMs: integer(env, 'MATRYOSHKA_IDLE_TIMEOUT_MS', 100, 86_400_000),
  };
}
