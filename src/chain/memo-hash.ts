import { createHash, getHashes } from 'node:crypto';

/** Digests the memo may key by: both collision-resistant, so either binds a key to one exact text. */
export type MemoHash = 'sha256' | 'blake2b512';

/** Memo keys: the first 256 bits of the digest, base64url (43 characters, no colon). */
export function memoDigest(hash: MemoHash, text: string): string {
  return createHash(hash).update(text).digest().toString('base64url', 0, 32);
}

/**
 * The faster of the two on this CPU. Without SHA extensions (x86 before Ice Lake / Zen) SHA-256
 * runs at ≈ 370 MB/s and BLAKE2b-512 at ≈ 650 MB/s (≈ 35 µs less per 29 KB depth-8 token, hashed
 * twice per hop); with them SHA-256 is usually the faster — so it is measured, not assumed: a few
 * ms at startup, interleaved so both see the same machine. The choice changes the cost of a key,
 * never which texts share one.
 */
export function fastestMemoHash(rounds = 7): MemoHash {
  if (!getHashes().includes('blake2b512')) return 'sha256';
  try {
    return timedChoice(rounds);
  } catch {
    // Listed but not usable (an OpenSSL restricted to FIPS providers, say): SHA-256 always is.
    return 'sha256';
  }
}

function timedChoice(rounds: number): MemoHash {
  const block = 'a'.repeat(16_384);
  const best: Record<MemoHash, number> = { sha256: Infinity, blake2b512: Infinity };
  for (let round = 0; round < rounds; round++) {
    for (const hash of ['sha256', 'blake2b512'] as const) {
      const start = process.hrtime.bigint();
      for (let i = 0; i < 4; i++) memoDigest(hash, block);
      best[hash] = Math.min(best[hash], Number(process.hrtime.bigint() - start));
    }
  }
  return best.blake2b512 < best.sha256 ? 'blake2b512' : 'sha256';
}
