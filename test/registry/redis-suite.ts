import type { Redis } from 'ioredis';
import { RedisServer } from '../helpers/redis-server.js';
import { suiteParts } from '../helpers/suite-parts.js';

/**
 * A redis-server of the enclosing describe and a plain client on it for the test's own reads and
 * writes; the client is disconnected before the server goes.
 */
export function redisWithClient(): { redis: () => RedisServer; client: () => Redis } {
  const s = suiteParts(async (own) => {
    const redis = own(await RedisServer.start());
    return { redis, client: own(redis.client(), (client) => client.disconnect()) };
  });
  return { redis: () => s.redis, client: () => s.client };
}
