import { randomUUID } from 'node:crypto';
import { encodeStandardBase64 } from '../chain/base64.js';
import { type Compression, type CompressionEffort, compress } from '../chain/compression.js';
import { sealContainer } from '../chain/seal.js';
import { numericDate, rolesAt, subjectOf } from '../chain/claims.js';
import type { Chain, VerifiedLevel } from '../chain/types.js';
import { compactSignJson } from '../keys/jws-crypto.js';
import type { OwnKeys } from '../keys/own-keys.js';

export interface MintSettings {
  readonly issuer: string;
  readonly ttlSeconds: number;
  readonly compression: Compression;
  /** Containers are compressed from this depth of the new token on (the format says 3). */
  readonly compressFromDepth: number;
}

export interface MintRequest {
  /** The incoming token exactly as received: it becomes the container. */
  readonly incoming: string;
  readonly chain: Chain;
  readonly destination: string;
  readonly tenant: string;
  readonly subject: string;
  readonly roles: readonly string[];
  readonly seal: boolean;
  readonly now: number;
}

export interface Minted {
  readonly token: string;
  readonly sids: readonly string[];
  /** Unique per minted level: the memo key of the chain it carries. */
  readonly jti: string;
  /**
   * The new level exactly as `openChain` will record it when the token comes back: we signed it,
   * so a hop that finds this very token in the memo (keyed by its text) need not verify it again.
   * Its `depth` is the depth of the new token.
   */
  readonly level: VerifiedLevel;
}

/** Compress only when it pays: the base64 of the compressed bytes must be shorter. */
export function packContainer(
  container: string,
  kind: Compression,
  effort: CompressionEffort = 'entropy',
): string | undefined {
  const packed = encodeStandardBase64(compress(Buffer.from(container, 'latin1'), kind, effort));
  return packed.length < container.length ? packed : undefined;
}

/** The lifetime of a new level: our TTL, never past any level it wraps (the origin included). */
export function mintedExpiry(chain: Chain, now: number, ttlSeconds: number): number {
  let exp = now + ttlSeconds;
  for (const level of chain.levels) {
    if (level.exp !== undefined && level.exp < exp) exp = Math.floor(level.exp);
  }
  return exp;
}

/**
 * The payload's JSON with a container we encoded ourselves (base64 of compressed bytes, or our
 * compact JWE) written into its empty placeholder, the last member serialised. JSON.stringify scans
 * every character of a string for escapes — ≈ 30 µs for the 20 KB container of a depth-8 level —
 * and our encodings never need one. The two characters that could end the JSON string early are
 * checked for anyway, with `includes` (a few µs); if either is there, the container is serialised
 * the ordinary way.
 */
export function withContainer(payload: { auth_stack: object }, container: string): string {
  if (container.includes('"') || container.includes('\\')) return stringifyWith(payload, container);
  const json = JSON.stringify(payload);
  const tail = '""}}';
  if (!json.endsWith(`"container":${tail}`))
    throw new Error('unreachable: the container placeholder is not the last member');
  const at = json.length - tail.length + 1;
  return json.slice(0, at) + container + json.slice(at);
}

/** The payload with `container` in its place, serialised the ordinary way. */
function stringifyWith(payload: { auth_stack: object }, container: string): string {
  return JSON.stringify({ ...payload, auth_stack: { ...payload.auth_stack, container } });
}

/** Wrap the incoming token in a new level for `destination` (format spec, rules 5 and 6). */
export async function mintExtended(
  request: MintRequest,
  keys: OwnKeys,
  settings: MintSettings,
): Promise<Minted> {
  const depth = request.chain.depth + 1;
  const fmt = request.seal ? 'JWE' : 'JWT';
  let container = request.seal ? await sealContainer(request.incoming, keys) : request.incoming;
  let cmp: Compression | undefined;
  if (depth >= settings.compressFromDepth) {
    // Once a level below holds compressed (or sealed) bytes, nothing is left to find but entropy.
    const effort =
      request.chain.levels.some((l) => l.stack?.cmp !== undefined || l.stack?.fmt === 'JWE') ||
      request.seal
        ? 'entropy'
        : 'repeats';
    const packed = packContainer(container, settings.compression, effort);
    if (packed !== undefined) {
      container = packed;
      cmp = settings.compression;
    }
  }
  const jti = randomUUID();
  const payload = {
    iss: settings.issuer,
    sub: request.subject,
    aud: settings.issuer,
    iat: request.now,
    exp: mintedExpiry(request.chain, request.now, settings.ttlSeconds),
    jti,
    tenant_id: request.tenant,
    roles: request.roles,
    auth_stack: {
      fmt,
      ...(cmp === undefined ? {} : { cmp }),
      sid: request.destination,
      depth,
      container: '',
    },
  };
  // A plain container is the incoming token itself: serialised the ordinary way.
  const json =
    cmp !== undefined || request.seal
      ? withContainer(payload, container)
      : stringifyWith(payload, container);
  const token = compactSignJson(keys.signing.alg, keys.signing.kid, keys.signing.privateKey, json);
  // Read back with the verifier's own claim readers, so the record cannot drift from theirs.
  const level: VerifiedLevel = {
    iss: settings.issuer,
    alg: keys.signing.alg,
    kid: keys.signing.kid,
    exp: numericDate(payload, 'exp'),
    nbf: undefined,
    iat: numericDate(payload, 'iat'),
    own: true,
    issuer: undefined,
    tenant: request.tenant,
    stack: { fmt, cmp, sid: request.destination, depth },
    depth,
    subject: subjectOf(payload),
    roles: rolesAt(payload, 'roles'),
  };
  return { token, sids: [...request.chain.sids, request.destination], jti, level };
}
