import type { ChainableCommander, Redis } from 'ioredis';
import type { RedisLayout } from '../../src/redis/layout.js';
import { versionOfId } from '../../src/registry/registry-log.js';

/**
 * A change written to the registry in Redis as another writer would (a newer version during a
 * rolling upgrade, a hand-made entry), bypassing our RegistryStore: `stage` (the keys the change
 * touches, if any), the next version and the log entry carrying `ops` in one transaction, then the
 * change notice. The next version is past both the counter and the log, as a writer of ours picks it.
 */
export async function writeAsAnotherWriter(
  redis: Redis,
  layout: RedisLayout,
  ops: string,
  stage: (multi: ChainableCommander) => ChainableCommander = (multi) => multi,
): Promise<void> {
  const [counter, last] = await Promise.all([
    redis.get(layout.version),
    redis.xrevrange(layout.log, '+', '-', 'COUNT', 1),
  ]);
  const logged = versionOfId(last[0]?.[0] ?? '0-0');
  const version = Math.max(Number(counter ?? '0'), Number.isNaN(logged) ? 0 : logged) + 1;
  await stage(redis.multi())
    .set(layout.version, String(version))
    .xadd(layout.log, `${version}-0`, 'ops', ops)
    .exec();
  await redis.publish(layout.changes, String(version));
}
