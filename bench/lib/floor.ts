/** The crypto floor: CPU of one ES256 sign + one ES256 verify, the unit the targets are stated in. */
import { generateKeyPairSync, randomBytes, sign, verify } from 'node:crypto';
import { signJws, verifyJwsSignature } from '../../src/keys/jws-crypto.js';
import { median } from './stats.js';

export interface CryptoFloor {
  readonly inputBytes: number;
  /** Median CPU µs of one sign + one verify, node:crypto with KeyObjects. */
  readonly pairMicros: number;
  readonly signMicros: number;
  readonly verifyMicros: number;
  /** The same through src/keys/jws-crypto.ts (what the service calls). */
  readonly pairMicrosViaJwsCrypto: number;
}

/** This process's CPU µs per call of `f`, over `iterations` calls. */
export function cpuMicros(f: () => void, iterations: number): number {
  const start = process.cpuUsage();
  for (let i = 0; i < iterations; i++) f();
  const used = process.cpuUsage(start);
  return (used.user + used.system) / iterations;
}

export function cryptoFloor(inputBytes: number): CryptoFloor {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const header = Buffer.from(
    JSON.stringify({ alg: 'ES256', kid: 'k'.repeat(43), typ: 'JWT' }),
  ).toString('base64url');
  const body = randomBytes(
    Math.max(16, Math.floor(((inputBytes - header.length - 1) * 3) / 4)),
  ).toString('base64url');
  const input = `${header}.${body}`;
  const bytes = Buffer.from(input, 'latin1');
  const options = { key: privateKey, dsaEncoding: 'ieee-p1363' as const };
  const verifyOptions = { key: publicKey, dsaEncoding: 'ieee-p1363' as const };
  const signature = sign('sha256', bytes, options);
  if (!verify('sha256', bytes, verifyOptions, signature))
    throw new Error('crypto floor: verify failed');
  if (!verifyJwsSignature('ES256', publicKey, input, signJws('ES256', privateKey, input)))
    throw new Error('crypto floor: jws-crypto verify failed');
  const rounds = 7;
  const n = 600;
  const pair: number[] = [];
  const signs: number[] = [];
  const verifies: number[] = [];
  const viaProject: number[] = [];
  cpuMicros(
    () =>
      verify(
        'sha256',
        Buffer.from(input, 'latin1'),
        verifyOptions,
        sign('sha256', Buffer.from(input, 'latin1'), options),
      ),
    n,
  ); // warm-up
  for (let r = 0; r < rounds; r++) {
    pair.push(
      cpuMicros(
        () =>
          verify(
            'sha256',
            Buffer.from(input, 'latin1'),
            verifyOptions,
            sign('sha256', Buffer.from(input, 'latin1'), options),
          ),
        n,
      ),
    );
    signs.push(cpuMicros(() => sign('sha256', Buffer.from(input, 'latin1'), options), n));
    verifies.push(
      cpuMicros(() => verify('sha256', Buffer.from(input, 'latin1'), verifyOptions, signature), n),
    );
    viaProject.push(
      cpuMicros(
        () => verifyJwsSignature('ES256', publicKey, input, signJws('ES256', privateKey, input)),
        n,
      ),
    );
  }
  return {
    inputBytes: input.length,
    pairMicros: median(pair),
    signMicros: median(signs),
    verifyMicros: median(verifies),
    pairMicrosViaJwsCrypto: median(viaProject),
  };
}

/**
 * A quick crypto floor (median of 5 × 300 ES256 sign + verify pairs at 1 KB, ≈ 0.2 s), taken next
 * to each run: this shared machine drifts by ±20% within minutes, so each server's CPU is also
 * expressed in floors measured beside it, and the drift cancels out of the corrected ratio.
 */
export const quickFloor = (() => {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const input = Buffer.from(randomBytes(760).toString('base64url'), 'latin1');
  const options = { key: privateKey, dsaEncoding: 'ieee-p1363' as const };
  const verifyOptions = { key: publicKey, dsaEncoding: 'ieee-p1363' as const };
  return (): number => {
    const rounds: number[] = [];
    for (let r = 0; r < 5; r++)
      rounds.push(
        cpuMicros(
          () => verify('sha256', input, verifyOptions, sign('sha256', input, options)),
          300,
        ),
      );
    return median(rounds);
  };
})();
