import { invariant } from '../errors.js';
import type { OwnKeys } from '../keys/own-keys.js';
import { globMatches } from '../policy/glob.js';
import { type DenyReason, deny, denying } from '../reasons.js';
import { untrustedText } from '../untrusted-text.js';
import {
  type AuthStack,
  type HopRecord,
  checkStackSid,
  readAuthStack,
  unpackContainer,
} from './auth-stack.js';
import { ChainMemo, type MemoizedChain } from './chain-memo.js';
import { actorsOf, numericDate, rolesAt, subjectOf, txnOf } from './claims.js';
import { checkAnchor, checkHops, expandHops } from './compact-form.js';
import { type CompactJws, compactKind, parseCompactJws } from './compact.js';
import type { ChainLimits } from './limits.js';
import { unsealContainer } from './seal.js';
import type { Chain, VerifiedLevel } from './types.js';
import {
  type LevelTrust,
  type TrustedSigner,
  isTxnTokenService,
  verifyLevel,
} from './verify-level.js';

/**
 * Where the outermost token came from: the bearer token (`authorization`), or — when a request
 * carries none — a Txn-Token of a registered Transaction Token Service standing as the origin.
 */
export type ChainSource = 'bearer' | 'txn-token';

export interface OpenChainDeps {
  readonly trust: LevelTrust;
  readonly ownKeys: OwnKeys;
  readonly limits: ChainLimits;
  /** Seconds since the epoch; injectable so time rules can be tested exactly. */
  readonly now: () => number;
  /** Chains verified before; absent: every level is verified every time. */
  readonly memo?: ChainMemo | undefined;
  /** Absent: `bearer`. */
  readonly source?: ChainSource | undefined;
}

interface Times {
  readonly exp: number | undefined;
  readonly nbf: number | undefined;
  readonly iat: number | undefined;
}

interface OpenedLevel {
  readonly jws: CompactJws;
  readonly signer: TrustedSigner;
  readonly times: Times;
  readonly stack: AuthStack | undefined;
}

/**
 * Open and verify a whole chain, from the outermost level inwards, iteratively and within the
 * limits. Every level is verified against its own issuer before its container is even unpacked,
 * so an unauthenticated token never makes us inflate or decrypt anything. Where the memo already
 * holds the chain below a level (verified by an earlier Check), the walk stops there and only the
 * relation between that level and the memoised one is checked.
 */
export async function openChain(token: string, deps: OpenChainDeps): Promise<Chain> {
  const { limits, memo } = deps;
  if (token.length > limits.maxTokenLength)
    deny('stack_too_large', `token of ${token.length} characters`);
  // Registry and issuer keys as they are now: a change to either (an issuer removed, a key
  // withdrawn by its IdP) makes everything remembered under an older value stale.
  const trustVersion = deps.trust.registry.version() + deps.trust.keys.version;
  const tokenKey = memo?.key(token);
  const seen = tokenKey === undefined ? undefined : memo?.get(tokenKey, trustVersion);
  if (seen !== undefined) {
    const outer = seen.levels[seen.levels.length - 1] as VerifiedLevel;
    checkSource(outer.issuer, outer.stack !== undefined, true, deps.source ?? 'bearer');
    checkTime(outer, true, deps.now(), undefined, limits.clockSkewSeconds, 'malformed_token');
    return toChain(seen.levels, seen.sealed, 0, false, trustVersion);
  }

  const opened: OpenedLevel[] = [];
  // Levels as policy counts them: a compact level counts once per hop it stands for.
  let levelCount = 0;
  let current = token;
  let referenceTime = deps.now();
  let enclosingIat: number | undefined;
  let below: MemoizedChain | undefined;
  let sealed = false;
  // textKeys[i]: the memo key of the text level i was read from, when it was looked up and missed;
  // once the walk has verified everything below, that sub-chain goes in under it (fan-in).
  const textKeys: Array<string | undefined> = [];

  for (;;) {
    if (levelCount >= limits.maxLevels)
      deny('stack_too_large', `more than ${limits.maxLevels} levels`);
    const outermost = opened.length === 0;
    const malformed: DenyReason = outermost ? 'malformed_token' : 'stack_malformed';
    const jws = denying(malformed, () => parseCompactJws(current));
    const signer = await verifyLevel(jws, deps.trust, malformed);
    checkSource(
      signer.issuer,
      jws.payload['auth_stack'] !== undefined,
      outermost,
      deps.source ?? 'bearer',
    );
    const times = denying(malformed, () => readTimes(jws));
    checkTime(times, outermost, referenceTime, enclosingIat, limits.clockSkewSeconds, malformed);
    const stack = denying(malformed, () => readStack(jws));
    if (stack !== undefined) checkMayWrap(signer, stack);
    const hops = stack?.hops;
    if (hops !== undefined) {
      // Only our key vouches for hops it does not carry the text of.
      if (!signer.own) deny('stack_malformed', 'a compact level not minted by us');
      if (levelCount + hops.length > limits.maxLevels)
        deny('stack_too_large', `more than ${limits.maxLevels} levels`);
      checkHops(hops, { ...times, jti: jws.payload['jti'], kid: jws.kid }, limits.clockSkewSeconds);
    }
    levelCount += hops?.length ?? 1;
    opened.push({ jws, signer, times, stack });
    if (stack === undefined) break;
    // The level inside must have been valid when this one (its oldest hop, if compact) wrapped it.
    const wrappedAt = hops === undefined ? times.iat : (hops[0]?.iat as number);
    referenceTime = wrappedAt ?? referenceTime;
    enclosingIat = wrappedAt;

    below = memo === undefined ? undefined : mintedBelow(memo, jws, signer, trustVersion);
    if (below !== undefined) break;
    let innerKey: string | undefined;
    if (memo !== undefined && stack.cmp === undefined && stack.fmt === 'JWT') {
      innerKey = memo.key(stack.container);
      below = memo.get(innerKey, trustVersion);
      if (below !== undefined) break;
    }
    let inner = denying(malformed, () => unpackContainer(stack, limits.maxContainerBytes));
    if (stack.fmt === 'JWE') {
      if (compactKind(inner) !== 'jwe')
        deny('stack_malformed', 'fmt JWE but the container is not a compact JWE');
      const sealedText = inner;
      const unsealed = await denying(malformed, () =>
        unsealContainer(sealedText, deps.ownKeys, limits.maxContainerBytes),
      );
      if (unsealed === undefined) {
        sealed = true;
        break;
      }
      inner = unsealed;
    }
    // A level we (or a replica sharing our keys) packed holds a token some replica minted or
    // verified: this one may know that token by its text, sparing its parse and verification.
    if (memo !== undefined && signer.own && (stack.cmp !== undefined || stack.fmt === 'JWE')) {
      innerKey = memo.key(inner);
      below = memo.get(innerKey, trustVersion);
      if (below !== undefined) break;
    }
    textKeys[opened.length] = innerKey;
    current = inner;
  }
  if (below !== undefined) {
    checkTime(
      below.levels[below.levels.length - 1] as VerifiedLevel,
      false,
      referenceTime,
      enclosingIat,
      limits.clockSkewSeconds,
      'stack_malformed',
    );
    sealed = below.sealed;
  }
  const { levels, tops } = assemble(opened, below?.levels ?? [], sealed, limits.maxLevels);
  // An origin's actors count as levels: the cap bounds what policy and x-auth-actors see.
  const actorCount = levels[0]?.actors?.length ?? 0;
  if (actorCount > 0 && levels.length + actorCount > limits.maxLevels)
    deny('stack_too_large', `more than ${limits.maxLevels} levels and actors`);
  const chain = toChain(
    levels,
    sealed,
    levels.length - (below?.levels.length ?? 0),
    opened.some((l) => l.signer.keysRefreshed),
    trustVersion,
    opened.map((l) => l.stack),
  );
  if (memo !== undefined && tokenKey !== undefined) {
    memo.set(tokenKey, levels, sealed, trustVersion, chain.outer.exp);
    for (let i = 1; i < opened.length; i++) {
      const key = textKeys[i];
      if (key === undefined) continue;
      const top = tops[i] as number;
      memo.set(
        key,
        levels.slice(0, top + 1),
        sealed,
        trustVersion,
        (levels[top] as VerifiedLevel).exp,
      );
    }
  }
  return chain;
}

/**
 * The chain inside a level we minted, under its jti (set at mint), once its signature has verified.
 * Otherwise the walk looks the inner token up by its text: at once for a plain container; for a
 * compressed or sealed one only once opened, and only when the level is our own (a foreign one
 * is never in the memo, so it is not hashed at all).
 */
function mintedBelow(
  memo: ChainMemo,
  level: CompactJws,
  signer: TrustedSigner,
  trustVersion: number,
): MemoizedChain | undefined {
  const jti = level.payload['jti'];
  if (!signer.own || typeof jti !== 'string' || jti.length === 0) return undefined;
  return memo.get(ChainMemo.mintedKey(jti), trustVersion);
}

/**
 * A Transaction Token Service's token is a Txn-Token, never a bearer token (the draft: Txn-Tokens
 * are not access tokens) and never a chain level that wraps one: it may be the origin of a chain
 * only, outermost when it stood in for the bearer token, or inside levels that wrapped it. And a
 * Txn-Token that stands as the origin must come from a registered Transaction Token Service.
 */
function checkSource(
  issuer: TrustedSigner['issuer'],
  wraps: boolean,
  outermost: boolean,
  source: ChainSource,
): void {
  const tts = isTxnTokenService(issuer);
  if (tts && wraps) deny('untrusted_issuer', 'a Transaction Token Service may not wrap a chain');
  if (!outermost) return;
  if (source === 'txn-token' && !tts)
    deny('untrusted_issuer', 'the Txn-Token is not from a registered Transaction Token Service');
  if (source === 'bearer' && tts) deny('untrusted_issuer', 'a Txn-Token is not a bearer token');
}

/** Only we, and foreign minters for the sids they are registered for, may wrap a chain. */
function checkMayWrap(signer: TrustedSigner, stack: AuthStack): void {
  if (signer.issuer === undefined) return;
  const sid = stack.sid;
  const allowed = signer.issuer.mintsFor.some(
    (glob) => glob === '*' || (sid !== undefined && globMatches(glob, sid)),
  );
  if (!allowed)
    deny(
      'untrusted_issuer',
      `${signer.issuer.issuer} may not mint chain levels for ${sid === undefined ? '(no sid)' : untrustedText(sid)}`,
    );
}

function readStack(jws: CompactJws): AuthStack | undefined {
  const stack = readAuthStack(jws.payload);
  if (stack !== undefined) checkStackSid(stack);
  return stack;
}

function readTimes(jws: CompactJws): Times {
  return {
    exp: numericDate(jws.payload, 'exp'),
    nbf: numericDate(jws.payload, 'nbf'),
    iat: numericDate(jws.payload, 'iat'),
  };
}

/**
 * The outermost level must be valid now and carry `exp`. An inner level must have been valid when
 * the level around it was issued (`reference`), and cannot have been issued after it.
 */
function checkTime(
  times: Times,
  outermost: boolean,
  reference: number,
  enclosingIat: number | undefined,
  skew: number,
  malformed: DenyReason,
): void {
  const { exp, nbf, iat } = times;
  if (outermost && exp === undefined) deny(malformed, 'token has no exp');
  if (exp !== undefined && exp < reference - skew) {
    deny(
      'expired',
      outermost ? 'token expired' : 'an inner level had expired before it was wrapped',
    );
  }
  if (nbf !== undefined && nbf > reference + skew) {
    deny(
      'not_yet_valid',
      outermost ? 'token not yet valid' : 'an inner level was wrapped before it was valid',
    );
  }
  if (outermost && iat !== undefined && iat > reference + skew)
    deny('not_yet_valid', 'token issued in the future');
  if (!outermost && iat !== undefined && enclosingIat !== undefined && iat > enclosingIat + skew) {
    deny('stack_malformed', 'an inner level was issued after the level that wraps it');
  }
}

/**
 * Depths, identity and the slim level records, innermost first; `below` is a memoised chain. A
 * compact level becomes one record per hop. `tops[i]`: the index in `levels` of opened level i's
 * newest record.
 */
function assemble(
  opened: readonly OpenedLevel[],
  below: readonly VerifiedLevel[],
  sealed: boolean,
  maxLevels: number,
): { levels: VerifiedLevel[]; tops: number[] } {
  const innermost = opened[opened.length - 1];
  if (innermost === undefined) invariant('a chain has at least one level');
  let base = 0;
  if (below.length > 0) {
    base = (below[below.length - 1] as VerifiedLevel).depth + 1;
  } else if (sealed) {
    const declared = innermost.stack?.depth;
    if (declared === undefined)
      deny('stack_malformed', 'a sealed container must declare its depth');
    base = declared;
  }
  const levels: VerifiedLevel[] = below.slice();
  const tops: number[] = [];
  for (let i = opened.length - 1; i >= 0; i--) {
    const level = opened[i] as OpenedLevel;
    const stack = level.stack;
    const firstDepth =
      levels.length === 0 ? base : (levels[levels.length - 1] as VerifiedLevel).depth + 1;
    const depth = firstDepth + (stack?.hops?.length ?? 1) - 1;
    if (stack?.depth !== undefined && stack.depth !== depth) {
      deny(
        'stack_malformed',
        `level declares depth ${stack.depth} but ${depth} levels lie below it`,
      );
    }
    const rolesClaim = level.signer.issuer?.rolesClaim ?? 'roles';
    const jti = level.jws.payload['jti'];
    const malformed: DenyReason = i === 0 ? 'malformed_token' : 'stack_malformed';
    // `txn` is read where it vouches for the transaction: our levels and a Txn-Token origin.
    const txn =
      level.signer.own || isTxnTokenService(level.signer.issuer)
        ? denying(malformed, () => txnOf(level.jws.payload))
        : undefined;
    const actors =
      stack === undefined && !level.signer.own
        ? denying(malformed, () => actorsOf(level.jws.payload, maxLevels))
        : [];
    const record: VerifiedLevel = {
      iss: level.jws.payload['iss'] as string,
      alg: level.jws.alg,
      kid: level.jws.kid,
      ...level.times,
      own: level.signer.own,
      issuer: level.signer.issuer,
      tenant: level.signer.tenant,
      stack:
        stack === undefined
          ? undefined
          : { fmt: stack.fmt, cmp: stack.cmp, sid: stack.sid, depth: stack.depth },
      depth,
      // An unusable subject makes the level malformed, at any depth: it is the user the chain speaks for.
      subject: denying('malformed_token', () => subjectOf(level.jws.payload)),
      roles: rolesAt(level.jws.payload, rolesClaim),
      ...(level.signer.own && typeof jti === 'string' && jti.length > 0 ? { jti } : {}),
      ...(txn === undefined ? {} : { txn }),
      ...(actors.length === 0 ? {} : { actors }),
    };
    if (stack?.hops === undefined) {
      levels.push(record);
    } else {
      checkAnchor(levels[levels.length - 1], levels, stack.hops[0] as HopRecord);
      levels.push(...expandHops(stack.hops, record, firstDepth));
    }
    tops[i] = levels.length - 1;
  }
  return { levels, tops };
}

function toChain(
  levels: readonly VerifiedLevel[],
  sealed: boolean,
  verifiedHere: number,
  keyCacheMiss: boolean,
  trustVersion: number,
  parsedStacks?: readonly (AuthStack | undefined)[],
): Chain {
  const outer = levels[levels.length - 1] as VerifiedLevel;
  const sids = levels.flatMap((l) => (l.stack?.sid === undefined ? [] : [l.stack.sid]));
  return {
    levels,
    outer,
    depth: outer.depth,
    sealed,
    sids,
    verifiedHere,
    keyCacheMiss,
    trustVersion,
    parsedStacks,
  };
}
