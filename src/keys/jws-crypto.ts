import { invariant } from '../errors.js';
import { type KeyObject, constants, createHmac, sign, timingSafeEqual, verify } from 'node:crypto';
import { algorithmSpec, keyFitsAlgorithm } from './algorithms.js';

/**
 * Compact JWS signatures with node:crypto KeyObjects: on this machine ES256 verify costs about a
 * third and sign about a sixth of the same operation through WebCrypto (see perf-facts). The
 * algorithm ↔ key binding is checked on every call (src/keys/algorithms.ts); anything outside the
 * table is refused, never guessed.
 */
function options(alg: string, key: KeyObject): Parameters<typeof verify>[2] {
  const family = algorithmSpec(alg)?.family;
  if (family === 'ec') return { key, dsaEncoding: 'ieee-p1363' };
  if (family === 'rsa-pss')
    return {
      key,
      padding: constants.RSA_PKCS1_PSS_PADDING,
      saltLength: constants.RSA_PSS_SALTLEN_DIGEST,
    };
  return key;
}

export function verifyJwsSignature(
  alg: string,
  key: KeyObject,
  signingInput: string,
  signature: Buffer,
): boolean {
  const spec = algorithmSpec(alg);
  if (spec === undefined || !keyFitsAlgorithm(key, alg)) return false;
  if (spec.family === 'hmac') {
    const expected = createHmac(spec.hash as string, key)
      .update(signingInput)
      .digest();
    return expected.length === signature.length && timingSafeEqual(expected, signature);
  }
  try {
    return verify(spec.hash, Buffer.from(signingInput, 'latin1'), options(alg, key), signature);
  } catch {
    // A signature of the wrong length for the curve, say: not a valid signature.
    return false;
  }
}

export function signJws(alg: string, key: KeyObject, signingInput: string): Buffer {
  const spec = algorithmSpec(alg);
  if (spec === undefined || !keyFitsAlgorithm(key, alg) || key.type === 'public')
    invariant(`cannot sign ${alg} with this key`);
  if (spec.family === 'hmac')
    return createHmac(spec.hash as string, key)
      .update(signingInput)
      .digest();
  return sign(
    spec.hash,
    Buffer.from(signingInput, 'latin1'),
    options(alg, key) as Parameters<typeof sign>[2],
  );
}

/** header.payload.signature, each base64url. */
export function compactSign(alg: string, kid: string, key: KeyObject, payload: object): string {
  return compactSignJson(alg, kid, key, JSON.stringify(payload));
}

/** The same, for a payload the caller has serialised itself. */
export function compactSignJson(
  alg: string,
  kid: string,
  key: KeyObject,
  payloadJson: string,
): string {
  const header = Buffer.from(JSON.stringify({ alg, kid, typ: 'JWT' })).toString('base64url');
  const body = Buffer.from(payloadJson).toString('base64url');
  const input = `${header}.${body}`;
  return `${input}.${signJws(alg, key, input).toString('base64url')}`;
}
