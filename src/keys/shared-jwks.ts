import { randomUUID } from 'node:crypto';
import type { RedisClient } from '../redis/connection.js';
import type { RedisLayout } from '../redis/layout.js';
import type { IssuerRecord } from '../registry/records.js';

export interface SharedKeySet {
  /** JWK Set entries as the IdP published them; every reader vets them before use. */
  readonly keys: readonly unknown[];
  readonly fetchedAt: number;
}

/**
 * What replicas share about an issuer's keys: the last good key set, and a short lock so that
 * only one replica at a time asks the IdP. Every method degrades instead of failing: with Redis
 * down, a replica simply fetches on its own.
 */
export interface SharedJwksCache {
  read(issuer: IssuerRecord): Promise<SharedKeySet | undefined>;
  write(issuer: IssuerRecord, set: SharedKeySet, ttlMs: number): Promise<void>;
  /** True when this replica should fetch (it holds the lock, or the lock cannot be had at all). */
  lock(
    issuer: IssuerRecord,
    ttlMs: number,
  ): Promise<{ acquired: boolean; release: () => Promise<void> }>;
}

const RELEASE_IF_OWNER = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end`;

export class RedisJwksCache implements SharedJwksCache {
  constructor(
    private readonly redis: RedisClient,
    private readonly layout: RedisLayout,
  ) {}

  async read(issuer: IssuerRecord): Promise<SharedKeySet | undefined> {
    try {
      const doc = await this.redis.get(this.layout.jwks(issuer.tenant, issuer.issuer));
      if (doc === null) return undefined;
      const parsed = JSON.parse(doc) as { keys?: unknown; fetched_at?: unknown };
      if (!Array.isArray(parsed.keys) || typeof parsed.fetched_at !== 'number') return undefined;
      return { keys: parsed.keys as unknown[], fetchedAt: parsed.fetched_at };
    } catch {
      return undefined;
    }
  }

  async write(issuer: IssuerRecord, set: SharedKeySet, ttlMs: number): Promise<void> {
    try {
      const doc = JSON.stringify({ keys: set.keys, fetched_at: set.fetchedAt });
      await this.redis.set(
        this.layout.jwks(issuer.tenant, issuer.issuer),
        doc,
        'PX',
        Math.max(1000, Math.round(ttlMs)),
      );
    } catch {
      // Shared cache is an optimisation; the keys are already in this process.
    }
  }

  async lock(
    issuer: IssuerRecord,
    ttlMs: number,
  ): Promise<{ acquired: boolean; release: () => Promise<void> }> {
    const key = this.layout.jwksLock(issuer.tenant, issuer.issuer);
    const token = randomUUID();
    try {
      const acquired = (await this.redis.set(key, token, 'PX', ttlMs, 'NX')) === 'OK';
      const release = async (): Promise<void> => {
        if (!acquired) return;
        await this.redis.eval(RELEASE_IF_OWNER, 1, key, token).catch(() => undefined);
      };
      return { acquired, release };
    } catch {
      return { acquired: true, release: async () => undefined };
    }
  }
}
