import { MatryoshkaError } from '../errors.js';
import { Cluster, Redis, type RedisOptions } from 'ioredis';

export type RedisClient = Redis | Cluster;

/**
 * Fail fast instead of queueing: a Check must never wait for a Redis that is reconnecting. With
 * the offline queue off, a command issued while disconnected rejects at once and the caller
 * serves from memory (or answers 503).
 */
const COMMON: RedisOptions = {
  enableOfflineQueue: false,
  maxRetriesPerRequest: 1,
  connectTimeout: 2000,
  commandTimeout: 1500,
  lazyConnect: false,
  retryStrategy: (attempt: number) => Math.min(100 * 2 ** Math.min(attempt, 5), 2000),
};

function hosts(list: string, defaultPort: number): Array<{ host: string; port: number }> {
  return list.split(',').map((hp) => {
    const match = /^\[?([^\]]+?)\]?(?::(\d+))?$/.exec(hp.trim());
    if (!match) throw new MatryoshkaError('ERR_CONFIG', `REDIS_URL: bad host ${hp}`);
    return { host: match[1] as string, port: Number(match[2] ?? defaultPort) };
  });
}

/**
 * One client from `REDIS_URL`:
 * - `redis://[:password@]host:port[/db]`, `rediss://…` (TLS) — standalone;
 * - `redis+sentinel://[:password@]host:port,host:port/<master-name>[/db]` — Sentinel;
 * - `redis+cluster://[:password@]host:port,host:port` — Cluster.
 * Options for standalone come from ioredis's own URL parsing.
 */
export function connectRedis(url: string, extra: RedisOptions = {}): RedisClient {
  const options = { ...COMMON, ...extra };
  const composite =
    /^redis\+(sentinel|cluster)(s?):\/\/(?:([^@/]*)@)?([^/]+)(?:\/([^/]+))?(?:\/(\d+))?$/.exec(url);
  if (composite === null) return new Redis(url, options);
  const [, kind, secure, auth, hostList, name, db] = composite as unknown as [
    string,
    string,
    string,
    string | undefined,
    string,
    string | undefined,
    string | undefined,
  ];
  const password = auth?.includes(':')
    ? decodeURIComponent(auth.slice(auth.indexOf(':') + 1))
    : undefined;
  const username = auth?.includes(':')
    ? decodeURIComponent(auth.slice(0, auth.indexOf(':'))) || undefined
    : undefined;
  const tls = secure === 's' ? {} : undefined;
  if (kind === 'sentinel') {
    if (name === undefined)
      throw new MatryoshkaError(
        'ERR_CONFIG',
        'REDIS_URL: a Sentinel URL names the master: redis+sentinel://host:port/<master>',
      );
    return new Redis({
      ...options,
      sentinels: hosts(hostList, 26379),
      name,
      ...(password !== undefined ? { password, sentinelPassword: password } : {}),
      ...(username !== undefined ? { username } : {}),
      ...(db !== undefined ? { db: Number(db) } : {}),
      ...(tls ? { tls, enableTLSForSentinelMode: true } : {}),
    });
  }
  return new Cluster(hosts(hostList, 6379), {
    // ioredis reads these for the cluster as a whole, not from redisOptions.
    enableOfflineQueue: options.enableOfflineQueue ?? false,
    lazyConnect: options.lazyConnect ?? false,
    clusterRetryStrategy: (times: number) => options.retryStrategy?.(times) ?? null,
    redisOptions: {
      ...options,
      ...(password !== undefined ? { password } : {}),
      ...(username !== undefined ? { username } : {}),
      ...(tls ? { tls } : {}),
    },
  });
}

/** A second connection for SUBSCRIBE (a subscribed connection can run no other command). */
export function duplicateForSubscribe(client: RedisClient): RedisClient {
  return client.duplicate();
}
