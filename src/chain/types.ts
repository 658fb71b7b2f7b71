import type { IssuerRecord } from '../registry/records.js';
import type { AuthStack } from './auth-stack.js';
import type { CompactJws } from './compact.js';

/** One level of a chain whose signature, issuer, audience and time have all been checked. */
export interface VerifiedLevel {
  readonly jws: CompactJws;
  readonly iss: string;
  /** Minted by this service (our issuer, our keys). */
  readonly own: boolean;
  /** The registry record of a foreign issuer; undefined for our own levels. */
  readonly issuer: IssuerRecord | undefined;
  /** Tenant this level belongs to: the registry's for foreign issuers, the signed claim for ours. */
  readonly tenant: string;
  readonly stack: AuthStack | undefined;
  /** Number of levels below this one. */
  readonly depth: number;
  /** The claims of an origin as the service reads them: user, roles. */
  readonly subject: string | undefined;
  readonly roles: readonly string[];
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
}
