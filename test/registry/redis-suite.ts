import type { Redis } from 'ioredis';
import { RedisServer } from '../helpers/redis-server.js';
import { SuiteResources } from '../helpers/suite-resources.js';

/**
 * A redis-server of the enclosing describe and a plain client on it for the test's own reads and
 * writes; the client is disconnected before the server goes.
 */
export function redisWithClient(): { redis: () => RedisServer; client: () => Redis } {
  const suite = new SuiteResources();
  const redis = suite.add(() => RedisServer.start());
  const client = suite.add(
    () => redis().client(),
    (made) => made.disconnect(),
  );
  return { redis, client };
}
