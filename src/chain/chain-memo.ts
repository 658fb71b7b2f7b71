import { LRUCache } from 'lru-cache';
import { type MemoHash, fastestMemoHash, memoDigest } from './memo-hash.js';
import type { VerifiedLevel } from './types.js';

/** A verified (sub)chain, innermost level first, as it was when verified. */
export interface MemoizedChain {
  readonly levels: readonly VerifiedLevel[];
  readonly sealed: boolean;
  readonly trustVersion: number;
}

/** Entries whose levels carry no `exp` still go after this long. */
const DEFAULT_TTL_MS = 10 * 60_000;

/**
 * Chains verified before, under one of two keys:
 * - a digest (SHA-256 or BLAKE2b, see memo-hash.ts) of the exact text that carried them: a whole
 *   token (the outermost level of a later Check — fan-out — or a token we minted), which is also
 *   the key of a container holding it;
 * - the `jti` of a level we minted around them (`mintedKey`): the next hop has verified that
 *   level's signature with our key before it looks, and we never sign two levels with one jti, so
 *   the jti stands for the exact container we wrote — without hashing 20 KB of it twice per hop.
 * A hop then verifies only its own level, and the chain below is not re-inflated, re-parsed or
 * re-verified.
 *
 * Only fully verified chains go in (after verification, or at mint: what we wrap we have just
 * verified). An entry expires with its outermost level, and is ignored once the registry changes
 * or an issuer key is withdrawn (an issuer removed, or a key its IdP no longer publishes, must not
 * keep working through the memo). Bounded in entries; levels hold no
 * token text, so an entry is a few hundred bytes per level.
 */
export class ChainMemo {
  private readonly cache: LRUCache<string, MemoizedChain>;

  /** `hash` by default: the faster digest on this CPU, timed once per process. */
  constructor(
    maxEntries: number,
    readonly hash: MemoHash = ChainMemo.defaultHash(),
  ) {
    this.cache = new LRUCache({ max: maxEntries, ttl: DEFAULT_TTL_MS });
  }

  private static chosen: MemoHash | undefined;

  static defaultHash(): MemoHash {
    ChainMemo.chosen ??= fastestMemoHash();
    return ChainMemo.chosen;
  }

  /** The key of a whole token's text (a token we minted or verified, or one found in a container). */
  key(text: string): string {
    return memoDigest(this.hash, text);
  }

  /** Cannot collide with `key`: base64url has no colon. */
  static mintedKey(jti: string): string {
    return `jti:${jti}`;
  }

  get(key: string, trustVersion: number): MemoizedChain | undefined {
    const entry = this.cache.get(key);
    return entry?.trustVersion === trustVersion ? entry : undefined;
  }

  /** `expiresAt` (epoch seconds): after it, the outermost level can be neither used nor wrapped. */
  set(
    key: string,
    levels: readonly VerifiedLevel[],
    sealed: boolean,
    trustVersion: number,
    expiresAt: number | undefined,
  ): void {
    const ttl =
      expiresAt === undefined
        ? DEFAULT_TTL_MS
        : Math.min(DEFAULT_TTL_MS, expiresAt * 1000 - Date.now());
    if (ttl <= 0) return;
    this.cache.set(key, { levels, sealed, trustVersion }, { ttl });
  }

  /**
   * At mint: the chain we just verified is what the next hop will find in the token we minted
   * around it. The whole new token goes in under its text (`levels`: as `openChain` will record
   * it, its own level or hops on top), so a hop this replica answers verifies nothing we signed
   * ourselves (the text is what we signed); the chain inside its container (`inside`) goes in
   * under the new level's jti, for a replica that finds the level some other way (wrapped by
   * another level) once that level's signature has verified.
   */
  rememberMinted(
    token: string,
    jti: string,
    levels: readonly VerifiedLevel[],
    inside: readonly VerifiedLevel[],
    sealed: boolean,
    trustVersion: number,
  ): void {
    this.set(this.key(token), levels, sealed, trustVersion, levels[levels.length - 1]?.exp);
    this.set(
      ChainMemo.mintedKey(jti),
      inside,
      sealed,
      trustVersion,
      inside[inside.length - 1]?.exp,
    );
  }

  get size(): number {
    return this.cache.size;
  }

  clear(): void {
    this.cache.clear();
  }
}
