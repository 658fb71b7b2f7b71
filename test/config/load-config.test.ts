/**
 * Environment configuration (src/config/config.ts): defaults from CONFIG_VARIABLES, parsing and
 * ranges. Every refusal is one line that names the variable at fault.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CONFIG_VARIABLES, type Config, ConfigError, loadConfig } from '../../src/config/config.js';
import { assertNamesField } from '../helpers/names-field.js';

/** Setting `variable` to `value` alone is a one-line ConfigError naming the variable. */
const assertRefused = (variable: string, value: string): void =>
  assertNamesField(() => loadConfig({ [variable]: value }), ConfigError, variable);

describe('loadConfig', () => {
  /** The Config field each variable feeds, and how its default string reads once parsed. */
  const FIELD_OF: Record<string, [keyof Config, (text: string) => unknown]> = {
    MATRYOSHKA_GRPC_PORT: ['grpcPort', Number],
    MATRYOSHKA_HTTP_PORT: ['httpPort', Number],
    MATRYOSHKA_HOST: ['host', String],
    REDIS_URL: ['redisUrl', String],
    MATRYOSHKA_REGISTRY_FILE: ['registryFile', String],
    MATRYOSHKA_ISSUER: ['issuer', String],
    MATRYOSHKA_SIGNING_KEYS: ['signingKeysFile', String],
    MATRYOSHKA_TRUST_DOMAIN: ['trustDomain', String],
    MATRYOSHKA_SERVICE_ID: ['serviceId', String],
    MATRYOSHKA_MAX_DEPTH: ['maxDepth', Number],
    MATRYOSHKA_TOKEN_TTL: ['tokenTtlSeconds', Number],
    MATRYOSHKA_FORWARD_HEADER: ['forwardHeader', String],
    MATRYOSHKA_MODE: ['shadow', (t) => t === 'shadow'],
    MATRYOSHKA_DEBUG_REASONS: ['debugReasons', (t) => t === 'true'],
    MATRYOSHKA_TLS_CERT: ['tlsCert', String],
    MATRYOSHKA_TLS_KEY: ['tlsKey', String],
    MATRYOSHKA_TLS_CA: ['tlsCa', String],
    MATRYOSHKA_ALLOW_INSECURE_ISSUERS: ['allowInsecureIssuers', (t) => t === 'true'],
    MATRYOSHKA_CLOCK_SKEW: ['clockSkewSeconds', Number],
    MATRYOSHKA_COMPRESSION: ['compression', (t) => (t === 'gzip' ? 'g' : 'b')],
    MATRYOSHKA_CHAIN_FORMAT: ['chainFormat', (t) => t],
    MATRYOSHKA_HEADER_BUDGET: ['headerBudget', Number],
    MATRYOSHKA_MAX_TOKEN_LENGTH: ['maxTokenLength', Number],
    MATRYOSHKA_MAX_LEVELS: ['maxLevels', Number],
    MATRYOSHKA_MAX_CONTAINER_BYTES: ['maxContainerBytes', Number],
    MATRYOSHKA_JWKS_TIMEOUT_MS: ['jwksTimeoutMs', Number],
    MATRYOSHKA_JWKS_COOLDOWN_MS: ['jwksCooldownMs', Number],
    MATRYOSHKA_JWKS_MAX_AGE: ['jwksMaxAgeSeconds', Number],
    MATRYOSHKA_JWKS_MAX_STALE: ['jwksMaxStaleSeconds', Number],
    MATRYOSHKA_REDIS_PREFIX: ['redisPrefix', String],
    MATRYOSHKA_REGISTRY_POLL_MS: ['registryPollMs', Number],
    MATRYOSHKA_KEY_ROTATION: ['keyRotationSeconds', Number],
    MATRYOSHKA_TLS_RELOAD_MS: ['tlsReloadMs', Number],
    MATRYOSHKA_SHUTDOWN_GRACE_MS: ['shutdownGraceMs', Number],
    MATRYOSHKA_MEMO_ENTRIES: ['memoEntries', Number],
    MATRYOSHKA_IDLE_TIMEOUT_MS: ['idleTimeoutMs', Number],
    MATRYOSHKA_AUTHZ_HTTP_PORT: ['authzHttpPort', Number],
    LOG_LEVEL: ['logLevel', String],
  };
  /** Read before loadConfig (src/config/config-file.ts), so they feed no Config field. */
  const PRE_CONFIG = new Set(['MATRYOSHKA_CONFIG_FILE']);

  it('an empty environment gives exactly the defaults of CONFIG_VARIABLES', () => {
    const config = loadConfig({});
    for (const variable of CONFIG_VARIABLES) {
      if (PRE_CONFIG.has(variable.name)) continue;
      const mapping = FIELD_OF[variable.name];
      assert.ok(mapping, `test knows ${variable.name}`);
      const [field, read] = mapping;
      const expected = variable.default === undefined ? undefined : read(variable.default);
      assert.equal(config[field], expected, `${variable.name} → ${field}`);
    }
  });

  it('the defaults are the ones the product contract names', () => {
    const defaults = Object.fromEntries(CONFIG_VARIABLES.map((v) => [v.name, v.default]));
    assert.deepEqual(
      {
        MATRYOSHKA_GRPC_PORT: defaults['MATRYOSHKA_GRPC_PORT'],
        MATRYOSHKA_HTTP_PORT: defaults['MATRYOSHKA_HTTP_PORT'],
        MATRYOSHKA_HOST: defaults['MATRYOSHKA_HOST'],
        REDIS_URL: defaults['REDIS_URL'],
        MATRYOSHKA_ISSUER: defaults['MATRYOSHKA_ISSUER'],
        MATRYOSHKA_MAX_DEPTH: defaults['MATRYOSHKA_MAX_DEPTH'],
        MATRYOSHKA_TOKEN_TTL: defaults['MATRYOSHKA_TOKEN_TTL'],
        MATRYOSHKA_FORWARD_HEADER: defaults['MATRYOSHKA_FORWARD_HEADER'],
        MATRYOSHKA_MODE: defaults['MATRYOSHKA_MODE'],
        MATRYOSHKA_DEBUG_REASONS: defaults['MATRYOSHKA_DEBUG_REASONS'],
        MATRYOSHKA_ALLOW_INSECURE_ISSUERS: defaults['MATRYOSHKA_ALLOW_INSECURE_ISSUERS'],
        LOG_LEVEL: defaults['LOG_LEVEL'],
      },
      {
        MATRYOSHKA_GRPC_PORT: '9191',
        MATRYOSHKA_HTTP_PORT: '9192',
        MATRYOSHKA_HOST: '0.0.0.0',
        REDIS_URL: undefined,
        MATRYOSHKA_ISSUER: 'urn:matryoshka:authz',
        MATRYOSHKA_MAX_DEPTH: '8',
        MATRYOSHKA_TOKEN_TTL: '120',
        MATRYOSHKA_FORWARD_HEADER: 'authorization',
        MATRYOSHKA_MODE: 'enforce',
        MATRYOSHKA_DEBUG_REASONS: 'false',
        MATRYOSHKA_ALLOW_INSECURE_ISSUERS: 'false',
        LOG_LEVEL: 'info',
      },
    );
  });

  it('an empty or blank value falls back to the default', () => {
    const config = loadConfig({ MATRYOSHKA_GRPC_PORT: '', MATRYOSHKA_MAX_DEPTH: '   ' });
    assert.equal(config.grpcPort, 9191);
    assert.equal(config.maxDepth, 8);
  });

  it('reads values from the environment, trimming them', () => {
    const config = loadConfig({
      MATRYOSHKA_GRPC_PORT: ' 7000 ',
      MATRYOSHKA_HTTP_PORT: '7001',
      MATRYOSHKA_MAX_DEPTH: '4',
      MATRYOSHKA_SERVICE_ID: 'orders',
      REDIS_URL: 'rediss://cache.example:6380',
      MATRYOSHKA_FORWARD_HEADER: 'X-Matryoshka-Token',
    });
    assert.equal(config.grpcPort, 7000);
    assert.equal(config.httpPort, 7001);
    assert.equal(config.maxDepth, 4);
    assert.equal(config.serviceId, 'orders');
    assert.equal(config.redisUrl, 'rediss://cache.example:6380');
    assert.equal(config.forwardHeader, 'x-matryoshka-token', 'header names are lower-cased');
  });

  it('port 0 (pick a free port) is accepted', () => {
    const config = loadConfig({ MATRYOSHKA_GRPC_PORT: '0', MATRYOSHKA_HTTP_PORT: '0' });
    assert.equal(config.grpcPort, 0);
    assert.equal(config.httpPort, 0);
  });

  it('an invalid port is a ConfigError naming the variable', () => {
    for (const value of ['65536', '-1', '80a', '1.5', 'http', '0x50']) {
      assertRefused('MATRYOSHKA_GRPC_PORT', value);
      assertRefused('MATRYOSHKA_HTTP_PORT', value);
    }
  });

  it('numbers out of range are refused naming the variable', () => {
    assertRefused('MATRYOSHKA_MAX_DEPTH', '0');
    assertRefused('MATRYOSHKA_MAX_DEPTH', '65');
    assertRefused('MATRYOSHKA_TOKEN_TTL', 'two minutes');
  });

  it('booleans accept true/false/1/0/yes/no in any case', () => {
    for (const yes of ['true', 'TRUE', '1', 'yes', 'Yes'])
      assert.equal(loadConfig({ MATRYOSHKA_DEBUG_REASONS: yes }).debugReasons, true, yes);
    for (const no of ['false', 'False', '0', 'no'])
      assert.equal(loadConfig({ MATRYOSHKA_DEBUG_REASONS: no }).debugReasons, false, no);
    assert.equal(
      loadConfig({ MATRYOSHKA_ALLOW_INSECURE_ISSUERS: 'true' }).allowInsecureIssuers,
      true,
    );
  });

  it('an invalid boolean is a ConfigError naming the variable', () => {
    for (const value of ['maybe', 'on', 'enabled', '2']) {
      assertRefused('MATRYOSHKA_DEBUG_REASONS', value);
      assertRefused('MATRYOSHKA_ALLOW_INSECURE_ISSUERS', value);
    }
  });

  it('MATRYOSHKA_MODE=shadow turns shadow mode on; enforce keeps it off', () => {
    assert.equal(loadConfig({ MATRYOSHKA_MODE: 'shadow' }).shadow, true);
    assert.equal(loadConfig({ MATRYOSHKA_MODE: 'Shadow' }).shadow, true);
    assert.equal(loadConfig({ MATRYOSHKA_MODE: 'enforce' }).shadow, false);
  });

  it('an unknown mode is a ConfigError naming the variable', () => {
    for (const value of ['audit', 'off', 'shadowed']) assertRefused('MATRYOSHKA_MODE', value);
  });

  it('a TLS certificate without its key is refused, and the reverse', () => {
    assertRefused('MATRYOSHKA_TLS_CERT', '/tls/server.pem');
    assert.throws(
      () => loadConfig({ MATRYOSHKA_TLS_KEY: '/tls/server.key' }),
      (e: unknown) => e instanceof ConfigError && /MATRYOSHKA_TLS_KEY/.test(e.message),
    );
  });

  it('a client CA without a server certificate is refused; with one it is mTLS', () => {
    assertRefused('MATRYOSHKA_TLS_CA', '/tls/ca.pem');
    const config = loadConfig({
      MATRYOSHKA_TLS_CERT: '/tls/server.pem',
      MATRYOSHKA_TLS_KEY: '/tls/server.key',
      MATRYOSHKA_TLS_CA: '/tls/ca.pem',
    });
    assert.equal(config.tlsCert, '/tls/server.pem');
    assert.equal(config.tlsKey, '/tls/server.key');
    assert.equal(config.tlsCa, '/tls/ca.pem');
  });

  it('refuses a REDIS_URL that is not a redis URL, and a forward header Envoy owns', () => {
    assertRefused('REDIS_URL', 'http://cache:6379');
    assertRefused('MATRYOSHKA_FORWARD_HEADER', 'x-envoy-original-path');
    assertRefused('MATRYOSHKA_FORWARD_HEADER', 'bad header');
  });

  it('an unknown log level is refused naming LOG_LEVEL', () => {
    assertRefused('LOG_LEVEL', 'verbose');
    assert.equal(loadConfig({ LOG_LEVEL: 'DEBUG' }).logLevel, 'debug');
  });
});
