import { invariant } from '../errors.js';
import { deny } from '../reasons.js';
import {
  type AuthStack,
  type HopRecord,
  MAX_HOP_JTI,
  readAuthStack,
  unpackContainer,
} from './auth-stack.js';
import { parseCompactJws } from './compact.js';
import type { Compression } from './compression.js';
import type { VerifiedLevel } from './types.js';

/**
 * The compact chain form (docs/token-format.md, "Compact form"). Consecutive levels of ours carry
 * nothing a hop record cannot: our key signed each, so their text adds bytes, not proof. A compact
 * level — signed by our key too — lists them as records and nests only the first level that is not
 * one of them (the anchor), verbatim: every foreign signature is still there to verify, while the
 * token no longer grows by a third per hop.
 */

/** What one hop record is on the wire: [sid, iat, exp, jti, kid?]. */
export type HopTuple = [string, number, number, string] | [string, number, number, string, string];

/**
 * A level of ours that a compact level may stand for: unsealed (a sealed one must keep what it
 * seals out of sight), with exactly what a record keeps (whole times, a jti, no nbf). Writer and
 * reader share this one predicate: the reader refuses a compact level whose anchor is collapsible,
 * so one chain never has two compact encodings and no hop can be hidden below another compact level.
 */
export function collapsible(level: VerifiedLevel): boolean {
  return (
    level.own &&
    level.stack !== undefined &&
    level.stack.fmt === 'JWT' &&
    level.stack.sid !== undefined &&
    level.nbf === undefined &&
    level.jti !== undefined &&
    level.jti.length <= MAX_HOP_JTI &&
    level.iat !== undefined &&
    Number.isSafeInteger(level.iat) &&
    level.exp !== undefined &&
    Number.isSafeInteger(level.exp)
  );
}

/** The wire record of a collapsed level; its kid only when it differs from the new level's. */
export function hopTuple(level: VerifiedLevel, signingKid: string): HopTuple {
  const base: [string, number, number, string] = [
    level.stack?.sid as string,
    level.iat as number,
    level.exp as number,
    level.jti as string,
  ];
  return level.kid === undefined || level.kid === signingKid ? base : [...base, level.kid];
}

interface LevelClaims {
  readonly iat: number | undefined;
  readonly exp: number | undefined;
  readonly jti: unknown;
  readonly kid: string | undefined;
}

/**
 * The records of a verified compact level against its own claims and against each other, with the
 * time rules of nested levels: the newest record is the level itself; no two share a jti; each older hop was issued no
 * later than the next (within `skew`), was still valid when the next was minted, and no hop
 * outlives the one it wraps. Called once the signature has verified.
 */
export function checkHops(hops: readonly HopRecord[], level: LevelClaims, skew: number): void {
  const newest = hops[hops.length - 1] as HopRecord;
  if (newest.iat !== level.iat || newest.exp !== level.exp || newest.jti !== level.jti)
    deny('stack_malformed', 'the newest hop record is not the compact level itself');
  if (newest.kid !== undefined && newest.kid !== level.kid)
    deny('stack_malformed', 'the newest hop record names another key');
  // Every level we mint has a jti of its own, so one jti twice is not a chain we minted: refused
  // rather than read as two hops (the memo also finds a minted level's chain under its jti).
  if (new Set(hops.map((hop) => hop.jti)).size !== hops.length)
    deny('stack_malformed', 'two hop records share one jti');
  for (let i = hops.length - 2; i >= 0; i--) {
    const inner = hops[i] as HopRecord;
    const outer = hops[i + 1] as HopRecord;
    if (inner.iat > outer.iat + skew)
      deny('stack_malformed', 'a hop record was issued after the hop that wraps it');
    if (inner.exp < outer.iat - skew)
      deny('expired', 'a hop had expired before the next hop was minted');
    if (outer.exp > inner.exp) deny('stack_malformed', 'a hop record outlives the hop it wraps');
  }
}

/**
 * The hops of a compact level as the levels they stand for, oldest first: what policy, x-auth-chain,
 * audit and mint read, so they need not know the form. `level` is the compact level's own record.
 */
export function expandHops(
  hops: readonly HopRecord[],
  level: VerifiedLevel,
  firstDepth: number,
): VerifiedLevel[] {
  // Every field written out: a literal of one fixed shape, not a spread per hop.
  return hops.map((hop, i) => ({
    iss: level.iss,
    alg: level.alg,
    own: level.own,
    issuer: level.issuer,
    tenant: level.tenant,
    subject: level.subject,
    roles: level.roles,
    kid: hop.kid ?? level.kid,
    exp: hop.exp,
    nbf: undefined,
    iat: hop.iat,
    stack: { fmt: 'JWT', cmp: undefined, sid: hop.sid, depth: firstDepth + i },
    depth: firstDepth + i,
    jti: hop.jti,
    // The transaction is the level's, signed once for every hop it records.
    txn: level.txn,
    form: 'compact',
  }));
}

/**
 * The reader's rules between a compact level's hops and the chain below them: the anchor is never
 * a level a compact level would have collapsed, and no hop outlives any level below.
 */
export function checkAnchor(
  anchor: VerifiedLevel | undefined,
  below: readonly VerifiedLevel[],
  firstHop: HopRecord,
): void {
  if (anchor !== undefined && collapsible(anchor))
    deny('stack_malformed', 'a compact level nests a level of ours it should have collapsed');
  for (const level of below) {
    if (level.exp !== undefined && firstHop.exp > Math.floor(level.exp))
      deny('stack_malformed', 'a hop record outlives a level below it');
  }
}

/** The anchor as a container is written: its text, or its compressed bytes' base64 with `cmp`. */
export interface PackedAnchor {
  readonly container: string;
  readonly cmp: Compression | undefined;
}

/**
 * The anchor below the top `run` levels of ours in `token` (a chain verified in this Check, or
 * found in the memo under this very text), as the lowest of them wrote it: a compact level reuses
 * its anchor's container byte for byte — never inflated and compressed again at every hop, which
 * would make each hop cost more than the one before it once compression starts. Peeled without
 * verifying again, one level of ours at a time (a compact level peels all its hops at once); only
 * the top levels are parsed, and only the containers between them are unpacked.
 */
export function peelRun(
  token: string,
  run: number,
  maxContainerBytes: number,
  parsed: readonly (AuthStack | undefined)[] = [],
): PackedAnchor {
  let current = token;
  let left = run;
  // `parsed`: the stacks of the top levels as the Check that verified them read them, outermost
  // first; a level among them is not parsed again.
  for (let level = 0; ; level++) {
    const stack: AuthStack | undefined =
      level < parsed.length ? parsed[level] : readAuthStack(parseCompactJws(current).payload);
    if (stack === undefined || stack.fmt !== 'JWT')
      invariant('a collapsible level has a plain container');
    left -= stack.hops?.length ?? 1;
    if (left < 0) invariant('a compact level straddles the run');
    if (left === 0) return { container: stack.container, cmp: stack.cmp };
    if (level + 1 >= parsed.length) current = unpackContainer(stack, maxContainerBytes);
  }
}
