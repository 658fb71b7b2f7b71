import type { JWK } from 'jose';

/**
 * The algorithm ↔ key-type binding, in one place: a key is only ever used with an algorithm of
 * its own family. This is what makes algorithm confusion (HS256 "signed" with an RSA public key)
 * impossible: HMAC keys never come from a JWKS, and a JWKS key never fits an HMAC algorithm.
 */
const EC_CURVES: Record<string, string> = { ES256: 'P-256', ES384: 'P-384', ES512: 'P-521' };

export function isHmac(alg: string): boolean {
  return alg === 'HS256' || alg === 'HS384' || alg === 'HS512';
}

export function jwkFitsAlgorithm(jwk: JWK, alg: string): boolean {
  if (jwk.use !== undefined && jwk.use !== 'sig') return false;
  if (jwk.alg !== undefined && jwk.alg !== alg) return false;
  if (jwk.key_ops !== undefined && !jwk.key_ops.includes('verify')) return false;
  if (alg in EC_CURVES) return jwk.kty === 'EC' && jwk.crv === EC_CURVES[alg];
  if (/^(RS|PS)(256|384|512)$/.test(alg)) return jwk.kty === 'RSA';
  if (alg === 'EdDSA' || alg === 'Ed25519') return jwk.kty === 'OKP' && jwk.crv === 'Ed25519';
  return false;
}
