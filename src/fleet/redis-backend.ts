import type { Logger } from 'pino';
import type { Config } from '../config/config.js';
import { KeyPublisher } from '../keys/key-publisher.js';
import type { OwnKeys } from '../keys/own-keys.js';
import { RedisJwksCache } from '../keys/shared-jwks.js';
import { type RedisClient, connectRedis, duplicateForSubscribe } from '../redis/connection.js';
import { RedisLayout } from '../redis/layout.js';
import { RedisRegistry } from '../registry/redis-registry.js';
import { RegistryStore } from '../registry/registry-store.js';
import type { InvalidRecord } from '../registry/replica-state.js';

export interface RedisBackend {
  readonly registry: RedisRegistry;
  readonly jwksCache: RedisJwksCache;
  readonly publisher: KeyPublisher;
  close(): Promise<void>;
}

export interface RedisBackendHooks {
  /** Issuers whose record changed or disappeared: their cached keys must go. */
  onIssuersChanged: (issuers: string[]) => void;
  /** Every Redis failure, for the error counter. */
  onError: (kind: 'connection' | 'reload') => void;
  /** Stored records that cannot be read, as they are found (tenant, service: refused; others skipped). */
  onInvalidRecords?: (records: readonly InvalidRecord[]) => void;
}

/** Log connection trouble once per state change, not once per reconnect attempt; count every one. */
function watchConnection(
  client: RedisClient,
  name: string,
  logger: Logger,
  hooks: RedisBackendHooks,
): void {
  let down = false;
  client.on('error', (error: Error) => {
    hooks.onError('connection');
    if (down) return;
    down = true;
    logger.warn({ connection: name, err: error.message }, 'redis unreachable; serving from memory');
  });
  client.on('ready', () => {
    if (down) logger.info({ connection: name }, 'redis reachable again');
    down = false;
  });
}

/**
 * Everything a replica shares with its fleet through Redis: the registry (read through an
 * in-process snapshot), the JWKS cache and fetch lock, and our published signing keys.
 * Nothing here blocks startup; each part catches up when Redis answers.
 */
export function startRedisBackend(
  config: Config,
  url: string,
  ownKeys: OwnKeys,
  logger: Logger,
  hooks: RedisBackendHooks,
): RedisBackend {
  const redis = connectRedis(url);
  const subscriber = duplicateForSubscribe(redis);
  watchConnection(redis, 'commands', logger, hooks);
  watchConnection(subscriber, 'subscriber', logger, hooks);
  const layout = new RedisLayout(config.redisPrefix);
  const registry = new RedisRegistry(
    new RegistryStore(redis, layout, config.allowInsecureIssuers),
    subscriber,
    logger,
    {
      pollIntervalMs: config.registryPollMs,
      onIssuersChanged: hooks.onIssuersChanged,
      onReloadFailed: () => hooks.onError('reload'),
      ...(hooks.onInvalidRecords ? { onInvalidRecords: hooks.onInvalidRecords } : {}),
    },
  );
  registry.start();
  const publisher = new KeyPublisher(
    redis,
    layout,
    ownKeys,
    {
      tokenLifetimeMs: (config.tokenTtlSeconds + config.clockSkewSeconds) * 1000,
      rotateEveryMs:
        config.signingKeysFile === undefined ? config.keyRotationSeconds * 1000 : undefined,
      republishEveryMs: 60_000,
    },
    logger,
  );
  publisher.start();
  return {
    registry,
    jwksCache: new RedisJwksCache(redis, layout),
    publisher,
    close: async () => {
      publisher.stop();
      await registry.close();
      await Promise.allSettled([redis.quit(), subscriber.quit()]);
      redis.disconnect();
      subscriber.disconnect();
    },
  };
}
