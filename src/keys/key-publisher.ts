import { messageOf } from '../errors.js';
import type { JWK } from 'jose';
import type { Logger } from 'pino';
import type { RedisClient } from '../redis/connection.js';
import type { RedisLayout } from '../redis/layout.js';
import type { OwnKeys } from './own-keys.js';

export interface KeyPublisherOptions {
  /** Longest lifetime of a token we mint, plus clock skew: how long a key must stay verifiable after it last signed. */
  tokenLifetimeMs: number;
  /** Rotate our signing key this often; undefined when keys come from a file (the operator rotates). */
  rotateEveryMs: number | undefined;
  /** Re-publish (renew the expiry of) the current key this often. */
  republishEveryMs: number;
}

/**
 * Replicas without a key file each sign with their own ES256 key. Each publishes its public keys
 * to Redis with an expiry past the last token they can have signed, rotates on a schedule, and
 * trusts what its peers published — so a token minted by one replica verifies on every other, and
 * `/.well-known/jwks.json` on any replica serves the whole fleet's keys.
 */
export class KeyPublisher {
  private timers: NodeJS.Timeout[] = [];

  constructor(
    private readonly redis: RedisClient,
    private readonly layout: RedisLayout,
    private readonly own: OwnKeys,
    private readonly options: KeyPublisherOptions,
    private readonly logger: Logger,
  ) {
    own.setPeerRefresh(() => this.loadPeers());
  }

  /**
   * Publish and load in the background, and again on every (re)connection: a Redis that was down,
   * or restarted empty, has our keys again within a round trip of coming back.
   */
  start(): void {
    this.redis.on('ready', () => void this.tick());
    if (this.redis.status === 'ready') void this.tick();
    this.every(this.options.republishEveryMs, () => this.tick());
    if (this.options.rotateEveryMs !== undefined)
      this.every(this.options.rotateEveryMs, () => this.rotate());
  }

  stop(): void {
    for (const timer of this.timers) clearInterval(timer);
    this.timers = [];
  }

  async rotate(): Promise<void> {
    // Publish the new key before it signs anything, so peers can verify its first token.
    const next = await this.own.rotate();
    await this.publish().catch((error: Error) =>
      this.logger.warn({ err: error.message }, 'publishing a rotated key failed'),
    );
    this.logger.info({ kid: next.kid }, 'signing key rotated');
  }

  async publish(): Promise<void> {
    const now = Date.now();
    const hold = this.options.tokenLifetimeMs + 60_000;
    const tx = this.redis.multi();
    for (const { jwk, retiredAt } of this.own.ownPublicKeys()) {
      // The current key is renewed every tick; a retired one only has to outlive what it signed.
      const expiresAt = (retiredAt ?? now + 3 * this.options.republishEveryMs) + hold;
      tx.zadd(this.layout.signingKeys, expiresAt, JSON.stringify(jwk));
    }
    tx.zremrangebyscore(this.layout.signingKeys, '-inf', now);
    await tx.exec();
    this.own.dropRetiredBefore(now - hold);
  }

  async loadPeers(): Promise<void> {
    const members = await this.redis.zrangebyscore(this.layout.signingKeys, Date.now(), '+inf');
    const jwks: JWK[] = [];
    for (const member of members) {
      try {
        jwks.push(JSON.parse(member) as JWK);
      } catch {
        // Not ours to fix; skip it.
      }
    }
    await this.own.setPeerKeys(jwks);
  }

  private async tick(): Promise<void> {
    try {
      await this.publish();
      await this.loadPeers();
    } catch (error) {
      this.logger.warn({ err: messageOf(error) }, 'key publication failed; will retry');
    }
  }

  private every(ms: number, task: () => Promise<void>): void {
    const timer = setInterval(() => void task().catch(() => undefined), ms);
    timer.unref();
    this.timers.push(timer);
  }
}
