import type { KeyObject } from 'node:crypto';
import type { JWK } from 'jose';

/**
 * The algorithm ↔ key binding, in one place. Every JWS algorithm we accept names its key family
 * (and curve, and hash); a key is only ever used with an algorithm of its own family. This is
 * what makes algorithm confusion (HS256 "signed" with an RSA public key) impossible: HMAC keys
 * come only from the environment, and no public key fits an HMAC algorithm.
 */
interface AlgorithmSpec {
  readonly family: 'ec' | 'rsa' | 'rsa-pss' | 'ed25519' | 'hmac';
  /** node:crypto digest name; null for EdDSA (the hash is part of the scheme). */
  readonly hash: 'sha256' | 'sha384' | 'sha512' | null;
  /** JWK `crv` and node's `namedCurve` for EC. */
  readonly curve?: { readonly jwk: string; readonly node: string };
}

const SPECS: Readonly<Record<string, AlgorithmSpec>> = {
  ES256: { family: 'ec', hash: 'sha256', curve: { jwk: 'P-256', node: 'prime256v1' } },
  ES384: { family: 'ec', hash: 'sha384', curve: { jwk: 'P-384', node: 'secp384r1' } },
  ES512: { family: 'ec', hash: 'sha512', curve: { jwk: 'P-521', node: 'secp521r1' } },
  RS256: { family: 'rsa', hash: 'sha256' },
  RS384: { family: 'rsa', hash: 'sha384' },
  RS512: { family: 'rsa', hash: 'sha512' },
  PS256: { family: 'rsa-pss', hash: 'sha256' },
  PS384: { family: 'rsa-pss', hash: 'sha384' },
  PS512: { family: 'rsa-pss', hash: 'sha512' },
  EdDSA: { family: 'ed25519', hash: null },
  HS256: { family: 'hmac', hash: 'sha256' },
  HS384: { family: 'hmac', hash: 'sha384' },
  HS512: { family: 'hmac', hash: 'sha512' },
};

/**
 * What one signature check may cost is bounded by the key, not by the token: RSA verification is
 * a modular exponentiation by the public exponent, so a 3,070-bit exponent makes one junk check
 * cost tens of milliseconds. Keys outside these bounds are never imported or used. 2048 bits is
 * the NIST floor; no IdP publishes more than 8192 (verifying costs ~0.2 ms here, 16384 ~0.8 ms);
 * every real exponent is 65537 or 3, and ≤ 32 bits keeps a check within 2× of 65537's cost.
 */
export const RSA_MODULUS_BITS = Object.freeze({ min: 2048, max: 8192 });
export const RSA_MAX_EXPONENT_BITS = 32;

/** Why an RSA key is outside the bounds above, or undefined when it is within them. */
export function rsaBoundsProblem(
  details: { modulusLength?: number; publicExponent?: bigint } | undefined,
): string | undefined {
  const bits = details?.modulusLength ?? 0;
  if (bits < RSA_MODULUS_BITS.min || bits > RSA_MODULUS_BITS.max)
    return `modulus of ${bits} bits (allowed ${RSA_MODULUS_BITS.min}..${RSA_MODULUS_BITS.max})`;
  const e = details?.publicExponent ?? 0n;
  const eBits = e.toString(2).length;
  if (eBits > RSA_MAX_EXPONENT_BITS)
    return `a ${eBits}-bit public exponent (at most ${RSA_MAX_EXPONENT_BITS} bits)`;
  if (e < 3n || e % 2n === 0n) return `public exponent ${e} (must be odd and at least 3)`;
  return undefined;
}

/** JWK curves (EC `crv`) any of our algorithms can verify with; all others are refused at import. */
export const EC_CURVES: ReadonlySet<string> = new Set(
  Object.values(SPECS).flatMap((spec) => (spec.curve ? [spec.curve.jwk] : [])),
);
/** OKP curves likewise: EdDSA here means Ed25519 only. */
export const OKP_CURVES: ReadonlySet<string> = new Set(['Ed25519']);

export function algorithmSpec(alg: string): AlgorithmSpec | undefined {
  return Object.hasOwn(SPECS, alg) ? SPECS[alg] : undefined;
}

export function isHmac(alg: string): boolean {
  return algorithmSpec(alg)?.family === 'hmac';
}

/** Whether a published JWK may verify `alg` (selection among an issuer's keys). */
export function jwkFitsAlgorithm(jwk: JWK, alg: string): boolean {
  const spec = algorithmSpec(alg);
  if (spec === undefined || spec.family === 'hmac') return false;
  if (jwk.use !== undefined && jwk.use !== 'sig') return false;
  if (jwk.alg !== undefined && jwk.alg !== alg) return false;
  if (jwk.key_ops !== undefined && !jwk.key_ops.includes('verify')) return false;
  switch (spec.family) {
    case 'ec':
      return jwk.kty === 'EC' && jwk.crv === spec.curve?.jwk;
    case 'rsa':
    case 'rsa-pss':
      return jwk.kty === 'RSA';
    case 'ed25519':
      return jwk.kty === 'OKP' && jwk.crv === 'Ed25519';
  }
}

/** Whether an imported key object may be used with `alg` (checked again at every use). */
export function keyFitsAlgorithm(key: KeyObject, alg: string): boolean {
  const spec = algorithmSpec(alg);
  if (spec === undefined) return false;
  if (spec.family === 'hmac') return key.type === 'secret';
  if (key.type === 'secret') return false;
  const details = key.asymmetricKeyDetails;
  switch (spec.family) {
    case 'ec':
      return key.asymmetricKeyType === 'ec' && details?.namedCurve === spec.curve?.node;
    case 'rsa':
      return key.asymmetricKeyType === 'rsa' && rsaBoundsProblem(details) === undefined;
    case 'rsa-pss':
      return (
        (key.asymmetricKeyType === 'rsa' || key.asymmetricKeyType === 'rsa-pss') &&
        rsaBoundsProblem(details) === undefined
      );
    case 'ed25519':
      return key.asymmetricKeyType === 'ed25519';
  }
}
