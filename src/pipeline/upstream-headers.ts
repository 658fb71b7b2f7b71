import { IDENTITY_HEADERS, type IdentityHeader } from './owned-headers.js';

/** What an allowed Check vouches for upstream, beside the request id. */
export interface Vouched {
  readonly tenant: string | undefined;
  readonly user: string | undefined;
  readonly roles: readonly string[];
  readonly depth: number;
  readonly sids: readonly string[];
  /** The origin's RFC 8693 actors, oldest first (`x-auth-actors`). */
  readonly actors?: readonly string[] | undefined;
  /** The Txn-Token answered beside the chain: verified and passed on, or signed by us. */
  readonly txnToken?: string | undefined;
}

/**
 * The value of every identity header, in one place: the response sets exactly these, and the
 * header budget counts exactly these. A Record over every identity header: declaring a new one
 * does not compile until it has a value here.
 */
export function identityValues(vouched: Vouched): Record<IdentityHeader, string | undefined> {
  return {
    'x-tenant-id': vouched.tenant,
    'x-user-id': vouched.user,
    'x-user-roles': vouched.roles.length > 0 ? vouched.roles.join(',') : undefined,
    'x-auth-depth': String(vouched.depth),
    'x-auth-chain': vouched.sids.join(','),
    'x-auth-actors':
      vouched.actors !== undefined && vouched.actors.length > 0
        ? vouched.actors.join(',')
        : undefined,
    'txn-token': vouched.txnToken,
  };
}

/** The forward header's value: `authorization` gets the Bearer scheme. */
export function forwardValue(forwardHeader: string, token: string): string {
  return forwardHeader === 'authorization' ? `Bearer ${token}` : token;
}

/**
 * Bytes the service adds to the upstream request when it mints `token`: names and values of the
 * forward header and the identity headers (all ASCII, so characters are bytes). The request id is
 * not counted: Envoy sets one on every request anyway.
 */
export function addedHeaderBytes(forwardHeader: string, token: string, vouched: Vouched): number {
  let bytes = forwardHeader.length + forwardValue(forwardHeader, token).length;
  const identity = identityValues(vouched);
  for (const name of IDENTITY_HEADERS) {
    const value = identity[name];
    if (value !== undefined) bytes += name.length + value.length;
  }
  return bytes;
}
