import { type JsonWebKey, type KeyObject, createHash, createPublicKey } from 'node:crypto';
import type { JWK } from 'jose';
import { EC_CURVES, OKP_CURVES, algorithmSpec, rsaBoundsProblem } from './algorithms.js';

/**
 * What an issuer's JWKS may contain, decided once per key set when it arrives (from the IdP or
 * from the shared cache), not per request: every key we keep is imported and within bounds, so
 * what one token can cost is fixed by `src/keys/algorithms.ts`, whatever the IdP publishes.
 */

/** Entries of one JWK Set that are looked at; the rest are ignored (and reported once). */
export const MAX_KEYS_PER_SET = 100;

export type KeyRefusalReason =
  | 'malformed'
  | 'unsupported_key_type'
  | 'unsupported_curve'
  | 'rsa_modulus'
  | 'rsa_exponent'
  | 'too_many_keys';

export interface KeyRefusal {
  /** Stable per key, short enough to log: its `kid` (cut at 64 characters), or a digest of the entry. */
  readonly id: string;
  /** The whole `kid`, for lookups. */
  readonly kid: string | undefined;
  readonly reason: KeyRefusalReason;
  readonly detail: string;
}

/** A published key we may verify with, imported once. */
export interface PublishedKey {
  readonly jwk: JWK;
  readonly key: KeyObject;
}

export interface VettedKeys {
  readonly keys: PublishedKey[];
  readonly refusals: KeyRefusal[];
}

const isObject = (value: unknown): value is Record<string, unknown> =>
  value !== null && typeof value === 'object' && !Array.isArray(value);

/** Longest `kid` quoted in logs: an IdP's string, not ours to print in full. */
const KID_SHOWN = 64;

function identify(entry: unknown): { id: string; kid: string | undefined } {
  const kid = isObject(entry) && typeof entry['kid'] === 'string' ? entry['kid'] : undefined;
  if (kid !== undefined) return { id: `kid:${kid.slice(0, KID_SHOWN)}`, kid };
  const digest = createHash('sha256')
    .update(JSON.stringify(entry) ?? 'undefined')
    .digest('base64url')
    .slice(0, 16);
  return { id: `sha256:${digest}`, kid: undefined };
}

/**
 * A key declared for something other than verifying our signatures (`use: enc`, `key_ops`
 * without `verify`, an `alg` that is not one of our public-key JWS algorithms) is none of our
 * business: it could never be selected, so it is left out without a word.
 */
function declaredForAnotherUse(jwk: Record<string, unknown>): boolean {
  if (jwk['use'] !== undefined && jwk['use'] !== 'sig') return true;
  const ops = jwk['key_ops'];
  if (ops !== undefined && !(Array.isArray(ops) && ops.includes('verify'))) return true;
  const alg = jwk['alg'];
  if (alg === undefined) return false;
  const spec = typeof alg === 'string' ? algorithmSpec(alg) : undefined;
  return spec === undefined || spec.family === 'hmac';
}

type Judgement = { key: KeyObject } | { reason: KeyRefusalReason; detail: string };

function judge(jwk: Record<string, unknown>): Judgement {
  const kty = jwk['kty'];
  // Curves are checked before import: node imports secp256k1 and the X/Ed448 curves happily.
  if (kty === 'EC' || kty === 'OKP') {
    const curves = kty === 'EC' ? EC_CURVES : OKP_CURVES;
    if (typeof jwk['crv'] !== 'string' || !curves.has(jwk['crv'])) {
      return {
        reason: 'unsupported_curve',
        detail: `${kty} curve ${typeof jwk['crv'] === 'string' ? jwk['crv'].slice(0, 32) : '(none)'} (allowed: ${[...curves].join(', ')})`,
      };
    }
  } else if (kty !== 'RSA') {
    return {
      reason: 'unsupported_key_type',
      detail: `kty ${typeof kty === 'string' ? kty.slice(0, 16) : typeof kty} (allowed: RSA, EC, OKP)`,
    };
  }
  let key: KeyObject;
  try {
    key = createPublicKey({ key: jwk as JsonWebKey, format: 'jwk' });
  } catch {
    return { reason: 'malformed', detail: `${kty} key does not import` };
  }
  // Bounds on the imported numbers, not on the JWK text: what node verifies with is what we check.
  if (key.asymmetricKeyType === 'rsa') {
    const problem = rsaBoundsProblem(key.asymmetricKeyDetails);
    if (problem !== undefined)
      return {
        reason: problem.startsWith('modulus') ? 'rsa_modulus' : 'rsa_exponent',
        detail: problem,
      };
  }
  return { key };
}

/** The usable keys of a JWK Set's `keys` array, and why each other entry was refused. */
export function vetKeySet(entries: readonly unknown[]): VettedKeys {
  const keys: PublishedKey[] = [];
  const refusals: KeyRefusal[] = [];
  for (const entry of entries.slice(0, MAX_KEYS_PER_SET)) {
    if (!isObject(entry) || typeof entry['kty'] !== 'string') {
      refusals.push({ ...identify(entry), reason: 'malformed', detail: 'not a JWK' });
      continue;
    }
    if (declaredForAnotherUse(entry)) continue;
    const judged = judge(entry);
    if ('key' in judged) keys.push({ jwk: entry as JWK, key: judged.key });
    else refusals.push({ ...identify(entry), reason: judged.reason, detail: judged.detail });
  }
  if (entries.length > MAX_KEYS_PER_SET) {
    refusals.push({
      id: 'beyond-cap',
      kid: undefined,
      reason: 'too_many_keys',
      detail: `${entries.length - MAX_KEYS_PER_SET} entries past the first ${MAX_KEYS_PER_SET} ignored`,
    });
  }
  return { keys, refusals };
}
