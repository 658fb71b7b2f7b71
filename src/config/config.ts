import type { Compression } from '../chain/compression.js';
import { MatryoshkaError } from '../errors.js';
import { IDENTIFIER_DESCRIPTION, isIdentifier } from '../header-grammar.js';
import { RESERVED_FORWARD_HEADERS } from '../pipeline/owned-headers.js';
import { type ChainFormat, HEADER_BUDGET_MAX, HEADER_BUDGET_MIN } from '../registry/records.js';
import type { Env } from '../env.js';

/** A configuration problem: one line naming the variable, and the service does not start. */
export class ConfigError extends MatryoshkaError {
  constructor(name: string, problem: string) {
    super('ERR_CONFIG', `${name}: ${problem}`);
  }
}

/**
 * How one variable's text becomes a value. `allowed` says the same thing as `parse` in words, for
 * the generated reference, so the documented range is the checked one.
 */
export interface Parser<T> {
  readonly allowed: string;
  /** `text` is the trimmed value, or the default when the variable is unset or blank. */
  parse(text: string | undefined, name: string): T;
}

function integer(min: number, max: number): Parser<number> {
  return {
    allowed: `whole number, ${min} to ${max}`,
    parse(text, name) {
      const value = text ?? '';
      if (!/^\d+$/.test(value) || Number(value) < min || Number(value) > max)
        throw new ConfigError(name, `must be a whole number from ${min} to ${max}`);
      return Number(value);
    },
  };
}

const bool: Parser<boolean> = {
  allowed: 'true or false (also 1/0, yes/no)',
  parse(text, name) {
    const value = (text ?? 'false').toLowerCase();
    if (['true', '1', 'yes'].includes(value)) return true;
    if (['false', '0', 'no'].includes(value)) return false;
    throw new ConfigError(name, 'must be true or false');
  },
};

/** Case-insensitive; each accepted word maps to the value the code uses. */
function choice<T>(options: Readonly<Record<string, T>>): Parser<T> {
  const words = Object.keys(options).join(', ');
  return {
    allowed: `one of ${words}`,
    parse(text, name) {
      const value = (text ?? '').toLowerCase();
      if (!Object.hasOwn(options, value)) throw new ConfigError(name, `must be one of ${words}`);
      return options[value] as T;
    },
  };
}

/** An integer in range when set; unset stays undefined (a feature that is off). */
function optionalInteger(min: number, max: number): Parser<number | undefined> {
  const inner = integer(min, max);
  return {
    allowed: `unset, or ${inner.allowed}`,
    parse: (text, name) => (text === undefined ? undefined : inner.parse(text, name)),
  };
}

/** Free text (a path, an address); unset stays undefined. */
const optionalText: Parser<string | undefined> = {
  allowed: 'any text',
  parse: (text) => text,
};

/** A value checked by `valid`; unset (with no default) stays undefined, set and invalid stops. */
function optional(
  allowed: string,
  valid: (text: string) => boolean,
  problem = `must be ${allowed}`,
): Parser<string | undefined> {
  return {
    allowed,
    parse(text, name) {
      if (text !== undefined && !valid(text)) throw new ConfigError(name, problem);
      return text;
    },
  };
}

/** Like `optional`, for variables that always have a value (their default). */
function required(
  allowed: string,
  valid: (text: string) => boolean,
  problem = `must be ${allowed}`,
): Parser<string> {
  return {
    allowed,
    parse(text, name) {
      if (text === undefined || !valid(text)) throw new ConfigError(name, problem);
      return text;
    },
  };
}

/** The token and an identity header under one name: one of them would be lost, or both sent. */
const forwardHeader: Parser<string> = {
  allowed: `a lower-case header name (a-z 0-9 -, at most 64), not x-envoy-*, not ${RESERVED_FORWARD_HEADERS.join(', ')}`,
  parse(text, name) {
    const header = (text ?? '').toLowerCase();
    if (!/^[a-z0-9-]{1,64}$/.test(header) || header.startsWith('x-envoy-'))
      throw new ConfigError(name, 'must be a plain header name');
    if (RESERVED_FORWARD_HEADERS.includes(header))
      throw new ConfigError(name, `must not be ${header}, a header the service sets itself`);
    return header;
  },
};

export interface ConfigVariable {
  readonly name: string;
  readonly default: string | undefined;
  readonly description: string;
  /** The accepted values, in words (rendered into docs/configuration.md). */
  readonly allowed: string;
}

interface Setting<T> extends ConfigVariable {
  readonly parser: Parser<T>;
}

function setting<T>(
  name: string,
  defaultValue: string | undefined,
  parser: Parser<T>,
  description: string,
): Setting<T> {
  return { name, default: defaultValue, description, allowed: parser.allowed, parser };
}

/**
 * Every setting the service reads, keyed by its Config field: name, default, parser (with its
 * range) and description in one entry, which both loads the value and documents it.
 */
const SETTINGS = {
  grpcPort: setting(
    'MATRYOSHKA_GRPC_PORT',
    '9191',
    integer(0, 65535),
    'ext_authz + health port (0 = pick a free port and log it)',
  ),
  httpPort: setting(
    'MATRYOSHKA_HTTP_PORT',
    '9192',
    integer(0, 65535),
    'JWKS, health and metrics port (0 = pick a free port and log it)',
  ),
  host: setting(
    'MATRYOSHKA_HOST',
    '0.0.0.0',
    required('any address', () => true),
    'bind address',
  ),
  redisUrl: setting(
    'REDIS_URL',
    undefined,
    optional('a redis://, rediss://, redis+sentinel:// or redis+cluster:// URL', (url) =>
      /^(redis|rediss|redis\+sentinel|redis\+cluster)s?:\/\//.test(url),
    ),
    'unset = embedded in-memory registry',
  ),
  registryFile: setting(
    'MATRYOSHKA_REGISTRY_FILE',
    undefined,
    optionalText,
    'YAML registry (embedded mode), followed: reloaded on change and on SIGHUP',
  ),
  issuer: setting(
    'MATRYOSHKA_ISSUER',
    'urn:matryoshka:authz',
    required(
      'a string of 1 to 256 characters',
      (issuer) => issuer.length > 0 && issuer.length <= 256,
      'must be a non-empty string',
    ),
    'iss of minted tokens',
  ),
  trustDomain: setting(
    'MATRYOSHKA_TRUST_DOMAIN',
    undefined,
    optional('a string of 1 to 256 visible ASCII characters', (domain) =>
      /^[\x21-\x7e]{1,256}$/.test(domain),
    ),
    'aud of the Txn-Tokens the service emits and accepts (docs/transaction-tokens.md); unset = no Txn-Token is emitted or accepted',
  ),
  signingKeysFile: setting(
    'MATRYOSHKA_SIGNING_KEYS',
    undefined,
    optionalText,
    'JWK Set file with private keys; unset = generated keys',
  ),
  serviceId: setting(
    'MATRYOSHKA_SERVICE_ID',
    undefined,
    optional(IDENTIFIER_DESCRIPTION, isIdentifier),
    'destination service id when the request names none',
  ),
  maxDepth: setting(
    'MATRYOSHKA_MAX_DEPTH',
    '8',
    integer(1, 64),
    'default max chain depth (tenant, service and route may lower it)',
  ),
  tokenTtlSeconds: setting(
    'MATRYOSHKA_TOKEN_TTL',
    '120',
    integer(5, 86_400),
    'lifetime in seconds of minted tokens (never beyond the origin exp)',
  ),
  forwardHeader: setting(
    'MATRYOSHKA_FORWARD_HEADER',
    'authorization',
    forwardHeader,
    'header that carries the minted token upstream',
  ),
  shadow: setting(
    'MATRYOSHKA_MODE',
    'enforce',
    choice({ enforce: false, shadow: true }),
    'enforce | shadow (decide, record, but allow)',
  ),
  debugReasons: setting(
    'MATRYOSHKA_DEBUG_REASONS',
    'false',
    bool,
    'add x-authz-reason to denials (off in production)',
  ),
  tlsCert: setting(
    'MATRYOSHKA_TLS_CERT',
    undefined,
    optionalText,
    'server certificate (PEM) for gRPC TLS',
  ),
  tlsKey: setting(
    'MATRYOSHKA_TLS_KEY',
    undefined,
    optionalText,
    'server private key (PEM) for gRPC TLS',
  ),
  tlsCa: setting(
    'MATRYOSHKA_TLS_CA',
    undefined,
    optionalText,
    'CA bundle; when set, client certificates are required (mTLS)',
  ),
  tlsReloadMs: setting(
    'MATRYOSHKA_TLS_RELOAD_MS',
    '10000',
    integer(100, 3_600_000),
    'how often the TLS files are re-read (rotation without restart)',
  ),
  shutdownGraceMs: setting(
    'MATRYOSHKA_SHUTDOWN_GRACE_MS',
    '10000',
    integer(0, 600_000),
    'on SIGTERM, how long in-flight checks may take before the process exits',
  ),
  allowInsecureIssuers: setting(
    'MATRYOSHKA_ALLOW_INSECURE_ISSUERS',
    'false',
    bool,
    'allow http:// issuer and JWKS URLs (tests, local dev)',
  ),
  clockSkewSeconds: setting(
    'MATRYOSHKA_CLOCK_SKEW',
    '30',
    integer(0, 600),
    'seconds of tolerance on exp/nbf/iat',
  ),
  compression: setting(
    'MATRYOSHKA_COMPRESSION',
    'gzip',
    choice<Compression>({ gzip: 'g', brotli: 'b' }),
    'container compression when minting at depth >= 3: gzip | brotli',
  ),
  chainFormat: setting(
    'MATRYOSHKA_CHAIN_FORMAT',
    'auto',
    choice<ChainFormat>({ nested: 'nested', compact: 'compact', auto: 'auto' }),
    'form of minted chains: nested | compact | auto (nested while it fits the header budget); per tenant: chain_format',
  ),
  headerBudget: setting(
    'MATRYOSHKA_HEADER_BUDGET',
    '6656',
    integer(HEADER_BUDGET_MIN, HEADER_BUDGET_MAX),
    'most bytes (names + values) of token and identity headers added upstream; per tenant: header_budget',
  ),
  maxTokenLength: setting(
    'MATRYOSHKA_MAX_TOKEN_LENGTH',
    '65536',
    integer(1024, 1024 * 1024),
    'longest accepted incoming token, in characters',
  ),
  maxLevels: setting(
    'MATRYOSHKA_MAX_LEVELS',
    '32',
    integer(2, 256),
    'hard cap on levels opened in one chain',
  ),
  maxContainerBytes: setting(
    'MATRYOSHKA_MAX_CONTAINER_BYTES',
    '262144',
    integer(1024, 8 * 1024 * 1024),
    'cap on one decompressed container',
  ),
  jwksTimeoutMs: setting(
    'MATRYOSHKA_JWKS_TIMEOUT_MS',
    '3000',
    integer(100, 60_000),
    'deadline for one discovery or JWKS request',
  ),
  jwksCooldownMs: setting(
    'MATRYOSHKA_JWKS_COOLDOWN_MS',
    '5000',
    integer(0, 3_600_000),
    'minimum time between two key fetches for one issuer (on an unknown kid, or refreshing old keys in the background)',
  ),
  jwksMaxAgeSeconds: setting(
    'MATRYOSHKA_JWKS_MAX_AGE',
    '600',
    integer(1, 86_400),
    'seconds before cached issuer keys are refreshed, in the background: the held keys answer meanwhile',
  ),
  jwksMaxStaleSeconds: setting(
    'MATRYOSHKA_JWKS_MAX_STALE',
    '86400',
    integer(0, 30 * 86_400),
    'seconds the last good keys are served while an IdP is down or hangs; past it nothing stale is served',
  ),
  redisPrefix: setting(
    'MATRYOSHKA_REDIS_PREFIX',
    'matryoshka',
    required('letters, digits, _ . - (at most 64)', (prefix) =>
      /^[A-Za-z0-9_.-]{1,64}$/.test(prefix),
    ),
    'key prefix (and Cluster hash tag) in Redis',
  ),
  registryPollMs: setting(
    'MATRYOSHKA_REGISTRY_POLL_MS',
    '5000',
    integer(100, 600_000),
    'registry version check, the safety net behind pub/sub',
  ),
  keyRotationSeconds: setting(
    'MATRYOSHKA_KEY_ROTATION',
    '21600',
    integer(60, 30 * 86_400),
    'seconds between rotations of generated signing keys (Redis mode)',
  ),
  memoEntries: setting(
    'MATRYOSHKA_MEMO_ENTRIES',
    '20000',
    integer(0, 10_000_000),
    'verified chains remembered so a hop verifies only its own level (0 = off)',
  ),
  idleTimeoutMs: setting(
    'MATRYOSHKA_IDLE_TIMEOUT_MS',
    '300000',
    integer(100, 86_400_000),
    'a connection (gRPC or HTTP) without a request in progress is closed after this; stalled handshakes and requests after at most 10 s',
  ),
  authzHttpPort: setting(
    'MATRYOSHKA_AUTHZ_HTTP_PORT',
    undefined,
    optionalInteger(0, 65535),
    'HTTP authorization port (Envoy http_service, nginx auth_request, Traefik/Caddy forward-auth); unset = off, 0 = pick a free port and log it',
  ),
  logLevel: setting(
    'LOG_LEVEL',
    'info',
    choice({
      fatal: 'fatal',
      error: 'error',
      warn: 'warn',
      info: 'info',
      debug: 'debug',
      trace: 'trace',
      silent: 'silent',
    }),
    'pino level',
  ),
} as const;

type Settings = typeof SETTINGS;

/** The service's configuration: one field per entry of SETTINGS, typed by its parser. */
export type Config = {
  readonly [K in keyof Settings]: Settings[K] extends Setting<infer T> ? T : never;
};

/** Read by src/config/config-file.ts before anything else, so it feeds no Config field. */
const CONFIG_FILE: ConfigVariable = {
  name: 'MATRYOSHKA_CONFIG_FILE',
  default: undefined,
  description: 'optional YAML file of these same variables; the environment wins',
  allowed: 'a path to a YAML mapping',
};

/** Every environment variable the service reads. docs/configuration.md and the deploy tests come from here. */
export const CONFIG_VARIABLES: readonly ConfigVariable[] = [
  ...Object.values(SETTINGS),
  CONFIG_FILE,
];

const FIELDS = Object.keys(SETTINGS) as Array<keyof Config>;

/**
 * Rules between variables, each stated once. A rule applies only when every field it reads was
 * loaded, so a partial load (the registry commands) is never refused over a setting it ignores.
 */
const CROSS_RULES: ReadonlyArray<{
  readonly reads: ReadonlyArray<keyof Config>;
  check(config: Config): void;
}> = [
  {
    reads: ['tlsCert', 'tlsKey'],
    check(config) {
      if ((config.tlsCert === undefined) !== (config.tlsKey === undefined))
        throw new ConfigError('MATRYOSHKA_TLS_CERT', 'and MATRYOSHKA_TLS_KEY go together');
    },
  },
  {
    reads: ['tlsCa', 'tlsCert'],
    check(config) {
      if (config.tlsCa !== undefined && config.tlsCert === undefined)
        throw new ConfigError(
          'MATRYOSHKA_TLS_CA',
          'needs MATRYOSHKA_TLS_CERT and MATRYOSHKA_TLS_KEY',
        );
    },
  },
  {
    reads: ['redisUrl', 'registryFile'],
    check(config) {
      if (config.redisUrl !== undefined && config.registryFile !== undefined)
        throw new ConfigError(
          'MATRYOSHKA_REGISTRY_FILE',
          'is for the embedded registry; with REDIS_URL load it with `matryoshka-authz registry import FILE`',
        );
    },
  },
];

function text(env: Env, variable: ConfigVariable): string | undefined {
  const value = env[variable.name];
  if (value !== undefined && value.trim() !== '') return value.trim();
  return variable.default;
}

/**
 * Only the settings named in `only`: a command that needs three variables must not be stopped by
 * a bad value in a fourth it never uses.
 */
export function loadSettings<K extends keyof Config>(
  env: Env,
  only: readonly K[],
): Pick<Config, K> {
  const loaded: Partial<Record<keyof Config, unknown>> = {};
  for (const field of only) {
    const variable: Setting<unknown> = SETTINGS[field];
    loaded[field] = variable.parser.parse(text(env, variable), variable.name);
  }
  const config = loaded as Config;
  for (const rule of CROSS_RULES)
    if (rule.reads.every((field) => field in loaded)) rule.check(config);
  return config;
}

export function loadConfig(env: Env = process.env): Config {
  return loadSettings(env, FIELDS);
}
