import type { IssuerRecord } from '../registry/records.js';
import type { AuthStack, ContainerFormat } from './auth-stack.js';
import type { Compression } from './compression.js';

/** What a level says about its container, without the container itself. */
export interface LevelStack {
  readonly fmt: ContainerFormat;
  readonly cmp: Compression | undefined;
  readonly sid: string | undefined;
  readonly depth: number | undefined;
}

/**
 * One level of a chain whose signature, issuer, audience and time have all been checked. Only
 * what later steps read is kept — no token text — so verified chains are cheap to memoise.
 */
export interface VerifiedLevel {
  readonly iss: string;
  readonly alg: string;
  readonly kid: string | undefined;
  readonly exp: number | undefined;
  readonly nbf: number | undefined;
  readonly iat: number | undefined;
  /** Minted by this service (our issuer, our keys). */
  readonly own: boolean;
  /** The registry record of a foreign issuer; undefined for our own levels. */
  readonly issuer: IssuerRecord | undefined;
  /** Tenant this level belongs to: the registry's for foreign issuers, the signed claim for ours. */
  readonly tenant: string;
  readonly stack: LevelStack | undefined;
  /** Number of levels below this one. */
  readonly depth: number;
  /** The claims of an origin as the service reads them: user, roles. */
  readonly subject: string | undefined;
  readonly roles: readonly string[];
  /** `jti` of a level of ours (nested, or a hop record of a compact level); what a hop record keeps. */
  readonly jti?: string | undefined;
  /** A hop read from a compact level's record rather than from a JWS of its own. */
  readonly form?: 'compact';
  /**
   * The chain's transaction id (Txn-Token `txn`): carried by our levels once the chain has one,
   * and by a Transaction Token Service's origin (docs/transaction-tokens.md).
   */
  readonly txn?: string | undefined;
  /**
   * An origin's RFC 8693 actors (nested `act`), oldest first: who acted, before the chain began,
   * for the subject. Counted by policy as levels; shown upstream as `x-auth-actors`.
   */
  readonly actors?: readonly string[] | undefined;
}

/** A chain as opened from the outside in, reported origin first. */
export interface Chain {
  /** Innermost opened level first, outermost last. The first is the origin unless sealed. */
  readonly levels: readonly VerifiedLevel[];
  readonly outer: VerifiedLevel;
  /** Depth of the outermost level (levels below it, counting sealed ones by their declared depth). */
  readonly depth: number;
  /** A JWE container we could not open ended the walk. */
  readonly sealed: boolean;
  /** Service ids of the call path, oldest first (only those we could see when sealed). */
  readonly sids: readonly string[];
  /**
   * How many of the outermost levels had their signature verified in this Check; the levels below
   * them came from the memo of chains verified earlier (and are shared with it, never copied).
   */
  readonly verifiedHere: number;
  /** Verifying it needed issuer keys that were not in memory. */
  readonly keyCacheMiss: boolean;
  /**
   * The trust version (registry and issuer keys) read before any level was verified. Whatever is
   * remembered about this chain (the memo, the token minted around it) is filed under it, never
   * under a later one: a change during verification (an issuer removed while its keys were being
   * fetched, a key withdrawn) must make that memory stale at once.
   */
  readonly trustVersion: number;
  /**
   * The auth_stack of each level this Check parsed, outermost first (absent for levels the memo
   * supplied): mint reuses an anchor's container from here instead of parsing the token again.
   */
  readonly parsedStacks?: readonly (AuthStack | undefined)[] | undefined;
}
