/**
 * The request headers this service owns upstream. Whatever a client sends under these names is
 * never trusted: every answer that lets a request through either sets each of them (`append:
 * false`) or lists it in `headers_to_remove`. Declared once so that a header added here is covered
 * on every pass-through path, and the type below makes the response builder give it a value.
 */
export const IDENTITY_HEADERS = [
  'x-tenant-id',
  'x-user-id',
  'x-user-roles',
  'x-auth-depth',
  'x-auth-chain',
  'x-auth-actors',
  'txn-token',
] as const;
export type IdentityHeader = (typeof IDENTITY_HEADERS)[number];

/**
 * The Txn-Token (draft-ietf-oauth-transaction-tokens, '"Txn-Token" HTTP Header'): read from the
 * request beside the chain, and answered only after it was verified against the chain or signed
 * by us; a client's copy never passes unchecked (see docs/transaction-tokens.md).
 */
export const TXN_TOKEN_HEADER = 'txn-token' satisfies IdentityHeader;

/** Always set: Envoy's own id when sane, else ours (see `requestIdOf`). */
export const REQUEST_ID_HEADER = 'x-request-id';

/**
 * Every header we own for a given forward header (the one carrying the minted token, configurable).
 * A pass-through that vouches for nothing removes all of them except the request id.
 */
export function ownedHeaders(forwardHeader: string): readonly string[] {
  return [forwardHeader, ...IDENTITY_HEADERS, REQUEST_ID_HEADER];
}

/** Names the forward header may not take: it would collide with another header we own. */
export const RESERVED_FORWARD_HEADERS: readonly string[] = [...IDENTITY_HEADERS, REQUEST_ID_HEADER];
