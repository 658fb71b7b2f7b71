import { randomUUID } from 'node:crypto';
import { TXN_TOKEN_TYP } from '../chain/verify-level.js';
import { signJws } from '../keys/jws-crypto.js';
import type { SigningKey } from '../keys/own-keys.js';

/**
 * What a Txn-Token we emit says, each claim filled from what the chain proves
 * (docs/transaction-tokens.md has the mapping; draft-ietf-oauth-transaction-tokens, "JWT Body Claims").
 */
export interface TxnTokenClaims {
  /** Our issuer: the draft makes `iss` optional; the next hop reads it to know the token is ours. */
  readonly iss: string;
  readonly aud: string;
  readonly iat: number;
  readonly exp: number;
  readonly txn: string;
  readonly sub: string;
  readonly scope: string;
  readonly req_wl: string;
  readonly tctx: { readonly tenant_id: string; readonly roles: readonly string[] };
  readonly rctx: { readonly req_id: string; readonly origin_iss: string };
}

/** A transaction id for a chain that has none yet: unique in the trust domain, as the draft asks. */
export function newTxn(): string {
  return randomUUID();
}

/** A compact JWS typed `txntoken+jwt`, signed with the service's current key (published in its JWKS). */
export function signTxnToken(claims: TxnTokenClaims, key: SigningKey): string {
  const header = Buffer.from(
    JSON.stringify({ alg: key.alg, kid: key.kid, typ: TXN_TOKEN_TYP }),
  ).toString('base64url');
  const body = Buffer.from(JSON.stringify(claims)).toString('base64url');
  const input = `${header}.${body}`;
  return `${input}.${signJws(key.alg, key.privateKey, input).toString('base64url')}`;
}
