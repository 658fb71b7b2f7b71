import { invariant } from '../errors.js';
import type { HopRecord } from '../chain/auth-stack.js';
import { encodeStandardBase64 } from '../chain/base64.js';
import {
  type HopTuple,
  collapsible,
  expandHops,
  hopTuple,
  peelRun,
} from '../chain/compact-form.js';
import { DEFAULT_LIMITS } from '../chain/limits.js';
import { type Compression, type CompressionEffort, compress } from '../chain/compression.js';
import { sealContainer } from '../chain/seal.js';
import { numericDate, rolesAt, subjectOf } from '../chain/claims.js';
import type { Chain, VerifiedLevel } from '../chain/types.js';
import { compactSignJson } from '../keys/jws-crypto.js';
import type { OwnKeys } from '../keys/own-keys.js';
import type { ChainFormat } from '../registry/records.js';
import { randomBase64url } from './random-pool.js';

export interface MintSettings {
  readonly issuer: string;
  readonly ttlSeconds: number;
  readonly compression: Compression;
  /** Containers are compressed from this depth of the new token on (the format says 3). */
  readonly compressFromDepth: number;
  /** The service's chain form and header budget (a tenant may override both); see header-budget.ts. */
  readonly format: ChainFormat;
  readonly headerBudget: number;
  /** The header that carries the token upstream: its name and scheme count against the budget. */
  readonly forwardHeader: string;
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
  /** The cap the chain was opened under; peeling our own levels for the anchor stays within it. */
  readonly maxContainerBytes?: number | undefined;
  /** The chain's transaction id, carried in the new level once the chain has one (Txn-Tokens). */
  readonly txn?: string | undefined;
  /** The origin's own RFC 8693 actors, oldest first: they continue the new level's `act` inwards. */
  readonly originActors?: readonly string[] | undefined;
  /** The Txn-Token answered beside the new level: its header counts against the budget. */
  readonly txnToken?: string | undefined;
}

/** An RFC 8693 actor claim: the current actor, with the prior ones nested inside. */
export interface ActClaim {
  readonly sub: string;
  readonly act?: ActClaim;
}

/**
 * The `act` of a new level, minus what a seal hides: a sealed level (and every level above one)
 * names no actor from inside the seal — the hops below a JWE container, and the origin's own
 * actors, are exactly what sealing keeps out of clear text.
 */
export function actOf(request: MintRequest): ActClaim | undefined {
  if (request.seal) return nestedAct([request.destination]);
  const levels = request.chain.levels;
  let sealedAt = -1;
  for (let i = levels.length - 1; i >= 0 && sealedAt < 0; i--)
    if (levels[i]?.stack?.fmt === 'JWE' || (request.chain.sealed && i === 0)) sealedAt = i;
  if (sealedAt < 0)
    return nestedAct([...request.chain.sids, request.destination], request.originActors);
  const visible = levels
    .slice(sealedAt)
    .flatMap((l) => (l.stack?.sid === undefined ? [] : [l.stack.sid]));
  return nestedAct([...visible, request.destination]);
}

/**
 * RFC 8693 §4.1 nested `act` for a level minted for `sids` (oldest first, the new destination
 * last): the most recent actor outermost, so it reads as `x-auth-chain` reversed, then the
 * origin's own actors, as the origin listed them. Built from the innermost out, without recursion.
 */
export function nestedAct(
  sids: readonly string[],
  originActors: readonly string[] = [],
): ActClaim | undefined {
  let act: ActClaim | undefined;
  for (const sub of [...originActors, ...sids]) act = act === undefined ? { sub } : { sub, act };
  return act;
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
  /** The whole chain of the new token as `openChain` will record it, innermost first, `level` last. */
  readonly levels: readonly VerifiedLevel[];
  /** The chain inside the new level's container (what the next hop finds under `jti`). */
  readonly inside: readonly VerifiedLevel[];
  readonly form: 'nested' | 'compact';
}

/** Short and unique: 128 random bits, base64url (22 characters), a hop record's largest field. */
function newJti(): string {
  return randomBase64url(16);
}

/** The container as written: compressed from `compressFromDepth` on, when that pays. */
function packed(
  container: string,
  depth: number,
  entropyOnly: boolean,
  settings: MintSettings,
): { container: string; cmp: Compression | undefined } {
  if (depth < settings.compressFromDepth) return { container, cmp: undefined };
  const p = packContainer(container, settings.compression, entropyOnly ? 'entropy' : 'repeats');
  return p === undefined
    ? { container, cmp: undefined }
    : { container: p, cmp: settings.compression };
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
    invariant('the container placeholder is not the last member');
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
  // Once a level below holds compressed (or sealed) bytes, nothing is left to find but entropy.
  const { container, cmp } = packed(
    request.seal ? await sealContainer(request.incoming, keys) : request.incoming,
    depth,
    request.chain.levels.some((l) => l.stack?.cmp !== undefined || l.stack?.fmt === 'JWE') ||
      request.seal,
    settings,
  );
  const jti = newJti();
  const payload = {
    iss: settings.issuer,
    sub: request.subject,
    aud: settings.issuer,
    iat: request.now,
    exp: mintedExpiry(request.chain, request.now, settings.ttlSeconds),
    jti,
    tenant_id: request.tenant,
    roles: request.roles,
    ...(request.txn === undefined ? {} : { txn: request.txn }),
    act: actOf(request),
    auth_stack: {
      fmt,
      ...(cmp === undefined ? {} : { cmp }),
      sid: request.destination,
      depth,
      container: '',
    },
  };
  // A plain container is the incoming token itself, which parsed as a compact JWS: base64url
  // segments and dots, nothing to escape (withContainer checks, and escapes the ordinary way if not).
  const json = withContainer(payload, container);
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
    jti,
    ...(request.txn === undefined ? {} : { txn: request.txn }),
  };
  return {
    token,
    sids: [...request.chain.sids, request.destination],
    jti,
    level,
    levels: [...request.chain.levels, level],
    inside: request.chain.levels,
    form: 'nested',
  };
}

/**
 * How many levels at the top of `chain` a compact level for `tenant` stands for: the run of our
 * own collapsible levels (compact-form.ts), which must all be this tenant's (a hop record carries
 * no tenant of its own). Undefined when the run would stop inside a level of ours that is
 * collapsible but another tenant's: collapsing above it would leave a collapsible anchor, which
 * readers refuse, so that chain is minted nested.
 */
function collapsibleRun(chain: Chain, tenant: string): number | undefined {
  const levels = chain.levels;
  let run = 0;
  for (let i = levels.length - 1; i >= 0; i--) {
    const level = levels[i] as VerifiedLevel;
    if (!collapsible(level)) return run;
    if (level.tenant !== tenant) return undefined;
    run++;
  }
  // The whole chain ours and collapsible: there is no anchor (cannot happen: an origin has no stack).
  return undefined;
}

/**
 * Mint the compact form (docs/token-format.md, "Compact form"): one level of ours with a record
 * per hop — those of the levels of ours it replaces, then the new one — around the anchor, the
 * first level below them that is not ours to collapse, carried as the lowest level of ours wrote
 * it (or, when it is the incoming token itself, packed as a nested container would be: compressed
 * from `compressFromDepth` on when that pays). Undefined when this chain cannot take the
 * compact form: sealing (the sealed level must hide the hops below it, so it nests them), or a
 * run that crosses tenants.
 */
export function mintCompact(
  request: MintRequest,
  keys: OwnKeys,
  settings: MintSettings,
): Minted | undefined {
  if (request.seal) return undefined;
  const { chain } = request;
  const run = collapsibleRun(chain, request.tenant);
  if (run === undefined) return undefined;
  const anchorLevels = chain.levels.slice(0, chain.levels.length - run);
  const depth = chain.depth + 1;
  const jti = newJti();
  const iat = Math.floor(request.now);
  const exp = mintedExpiry(chain, iat, settings.ttlSeconds);
  const kid = keys.signing.kid;
  const hops: HopTuple[] = [
    ...chain.levels.slice(anchorLevels.length).map((l) => hopTuple(l, kid)),
    [request.destination, iat, exp, jti],
  ];
  // Below levels of ours: their anchor as they wrote it. Otherwise the incoming token is the
  // anchor, packed once here as a nested container would be.
  const { container, cmp } =
    run > 0
      ? peelRun(
          request.incoming,
          run,
          request.maxContainerBytes ?? DEFAULT_LIMITS.maxContainerBytes,
          chain.parsedStacks,
        )
      : packed(
          request.incoming,
          depth,
          anchorLevels.some((l) => l.stack?.cmp !== undefined || l.stack?.fmt === 'JWE'),
          settings,
        );
  const payload = {
    iss: settings.issuer,
    sub: request.subject,
    aud: settings.issuer,
    iat,
    exp,
    jti,
    tenant_id: request.tenant,
    roles: request.roles,
    ...(request.txn === undefined ? {} : { txn: request.txn }),
    act: actOf(request),
    auth_stack: {
      fmt: 'JWT',
      ...(cmp === undefined ? {} : { cmp }),
      sid: request.destination,
      depth,
      form: 'compact',
      hops,
      container: '',
    },
  };
  const json =
    cmp !== undefined ? withContainer(payload, container) : stringifyWith(payload, container);
  const token = compactSignJson(keys.signing.alg, kid, keys.signing.privateKey, json);
  // The hops as `openChain` expands them, through the same function, so the memo cannot drift.
  const record: VerifiedLevel = {
    iss: settings.issuer,
    alg: keys.signing.alg,
    kid,
    exp,
    nbf: undefined,
    iat,
    own: true,
    issuer: undefined,
    tenant: request.tenant,
    stack: undefined,
    depth,
    subject: subjectOf(payload),
    roles: rolesAt(payload, 'roles'),
    jti,
    ...(request.txn === undefined ? {} : { txn: request.txn }),
  };
  const records: HopRecord[] = hops.map(([sid, hopIat, hopExp, hopJti, hopKid]) => ({
    sid,
    iat: hopIat,
    exp: hopExp,
    jti: hopJti,
    kid: hopKid,
  }));
  const first = anchorLevels.length === 0 ? 0 : (anchorLevels.at(-1) as VerifiedLevel).depth + 1;
  const expanded = expandHops(records, record, first);
  return {
    token,
    sids: [...chain.sids, request.destination],
    jti,
    level: expanded.at(-1) as VerifiedLevel,
    levels: [...anchorLevels, ...expanded],
    inside: anchorLevels,
    form: 'compact',
  };
}
