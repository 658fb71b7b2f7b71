import { randomFillSync } from 'node:crypto';

/**
 * Random bytes for per-Check identifiers (a minted level's jti), drawn from the OS CSPRNG 4 KiB at
 * a time instead of one call per Check: the same source, one system call per 256 jtis. Every
 * byte is handed out once, then the pool is refilled.
 */
const pool = Buffer.alloc(4096);
let offset = pool.length;

/** `bytes` fresh random bytes (at most 4096), base64url. */
export function randomBase64url(bytes: number): string {
  if (offset + bytes > pool.length) {
    randomFillSync(pool);
    offset = 0;
  }
  const text = pool.toString('base64url', offset, offset + bytes);
  offset += bytes;
  return text;
}
