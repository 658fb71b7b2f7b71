import { randomFillSync } from 'node:crypto';
import { ulid } from 'ulid';

/**
 * The `ulid` package asks the OS for randomness once per character (16 calls per id); drawing
 * from a pooled buffer keeps the same CSPRNG source at a fraction of the cost. ULID's PRNG
 * contract is a float in [0, 1): one random byte over 256 gives exactly that.
 */
const pool = Buffer.alloc(4096);
let offset = pool.length;

function pooledRandom(): number {
  if (offset >= pool.length) {
    randomFillSync(pool);
    offset = 0;
  }
  return (pool[offset++] as number) / 256;
}

/** A new ULID, for requests Envoy sent without `x-request-id`. */
export function newRequestId(): string {
  return ulid(undefined, pooledRandom);
}
