/**
 * The chains the property tests start from: a seed-style HS256 issuer (tenant legacy) beside the
 * ES256 IdP, partners registered to mint for `partner-*` only, and the sids and workloads of the
 * pool of valid tokens that mutations are applied to.
 */
import { packContainer } from './chain-surgery.js';
import { SignJWT } from 'jose';

export const nowSeconds = (): number => Math.floor(Date.now() / 1000);
export const LIFETIME = 3600; // long enough for FC_RUNS=5000 runs against tokens built once

export const HS_SECRET = 'properties-shared-secret';
export const hsKey = new TextEncoder().encode(HS_SECRET);
export const HS_ISSUER = 'legacy-hs';
/** Registered minters that may wrap chains only for `partner-*` sids, one per tenant: what an insider holds. */
export const PARTNER_SECRET = 'properties-partner-secret';
export const partnerKey = new TextEncoder().encode(PARTNER_SECRET);
export const PARTNER = { acme: 'partner-acme', legacy: 'partner-legacy' } as const;
export const SEED_SVC = (s: string): string => `Organization.Services.Service${s}`;
export const principalOf = (sid: string): string => `spiffe://cluster.local/ns/props/sa/${sid}`;
/** Destinations the mutated tokens are sent to: not in any chain, bound to the calling workload. */
export const ACME_DEST = 'Z';
export const LEGACY_DEST = SEED_SVC('Z');
export const ALL_SIDS = [
  'A',
  'B',
  'C',
  'D',
  ACME_DEST,
  ...['A', 'B', 'C', 'D', 'E', 'Z'].map(SEED_SVC),
];

/** One valid token and the request that makes it allowed: its caller's workload, a fresh destination. */
export interface PoolEntry {
  readonly label: string;
  readonly token: string;
  /** sid of the token's outermost level: the workload that legitimately presents it. */
  readonly caller: string;
  readonly dest: string;
}

/** A level as another Matryoshka implementation writes it: HS256, issuer legacy-hs. */
export async function seedLevel(
  claims: Record<string, unknown>,
  iat: number,
  exp: number,
  key: Uint8Array = hsKey,
): Promise<string> {
  return new SignJWT(claims)
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setIssuer(HS_ISSUER)
    .setIssuedAt(iat)
    .setExpirationTime(exp)
    .sign(key);
}

/** The seed's `auth_stack`: lowercase fmt, `cmp` null when plain, a `hash` field. */
export function seedStack(
  inner: string,
  sid: string,
  depth: number,
  cmp?: 'g' | 'b',
): Record<string, unknown> {
  // gzip in the standard alphabet, padded; brotli URL-safe, unpadded: as the seed writes them.
  const container =
    cmp === undefined ? inner : packContainer(inner, cmp, cmp === 'g' ? 'std-pad' : 'url');
  return {
    fmt: 'jwt',
    ...(cmp ? { cmp } : { cmp: null }),
    sid,
    depth,
    container,
    hash: 'c2VlZC1oYXNo',
  };
}

/** A seed-style wrapping level's claims; `claims` besides the stack (the seed's own by default). */
export const seedWrap = (
  inner: string,
  sid: string,
  depth: number,
  cmp?: 'g' | 'b',
  claims: Record<string, unknown> = { roles: ['user'] },
): Record<string, unknown> => ({
  sub: '1234567890',
  ...claims,
  auth_stack: seedStack(inner, sid, depth, cmp),
});

/** The settings both property suites run the service with: quiet, and levels as long-lived as the pool. */
export const PROPERTY_ENV = { LOG_LEVEL: 'warn', MATRYOSHKA_TOKEN_TTL: String(LIFETIME) };
