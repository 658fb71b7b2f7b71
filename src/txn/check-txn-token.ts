import { numericDate, subjectOf, txnOf } from '../chain/claims.js';
import { parseCompactJws } from '../chain/compact.js';
import type { Chain, VerifiedLevel } from '../chain/types.js';
import {
  type LevelTrust,
  checkTrustDomain,
  isTxnTokenService,
  isTxnTokenTyp,
  verifyLevel,
} from '../chain/verify-level.js';
import { verifyJwsSignature } from '../keys/jws-crypto.js';
import { deny, denying } from '../reasons.js';
import { untrustedText } from '../untrusted-text.js';

/** A Txn-Token that came with a chain, verified on its own and against the chain. */
export interface CarriedTxnToken {
  /** Exactly as received: passed on unchanged, never signed again. */
  readonly text: string;
  readonly txn: string;
  readonly sub: string;
}

/**
 * The chain's transaction id: carried by our levels and a Transaction Token Service's origin, one
 * value for the whole chain. Two values mean levels that were never minted around one another by
 * an honest hop: refused.
 */
export function chainTxn(chain: Chain): string | undefined {
  let txn: string | undefined;
  for (const level of chain.levels as readonly VerifiedLevel[]) {
    if (level.txn === undefined) continue;
    if (txn !== undefined && level.txn !== txn)
      deny('stack_malformed', 'levels of one chain name two transactions');
    txn = level.txn;
  }
  return txn;
}

/**
 * A Txn-Token that arrived beside a bearer chain. It is the chain's only if it verifies (ours, or
 * the Transaction Token Service whose token is the chain's origin; typed; `aud` our trust domain;
 * unexpired) and names the chain's `txn` and `sub`: anything else is refused, so a client can
 * neither add a Txn-Token of its own choosing to a genuine chain nor carry one from another
 * transaction. Verification failures keep their own reasons (bad_signature, expired, …);
 * a genuine Txn-Token of another transaction or subject is `txn_token_mismatch`.
 */
export async function checkCarriedTxnToken(
  text: string,
  chain: Chain,
  trust: LevelTrust,
  now: number,
  skew: number,
): Promise<CarriedTxnToken> {
  const jws = denying('malformed_token', () => parseCompactJws(text));
  const iss = jws.payload['iss'];
  if (typeof iss !== 'string' || iss.length === 0)
    deny(
      'malformed_token',
      'the Txn-Token has no iss (we accept only ours and our registered services)',
    );
  const origin = chain.levels[0];
  if (iss === trust.ownIssuer) {
    if (!isTxnTokenTyp(jws.header['typ']))
      deny('malformed_token', 'the Txn-Token is not typed txntoken+jwt');
    const { keys } = await trust.keys.ownKey(jws.kid, jws.alg);
    if (!keys.some((key) => verifyJwsSignature(jws.alg, key, jws.signingInput, jws.signature)))
      deny('bad_signature', 'the Txn-Token does not verify with our keys');
    checkTrustDomain(jws, trust.trustDomain);
  } else {
    // Verified like any issuer's token: registered, algorithm, keys, typ, aud.
    const signer = await verifyLevel(jws, trust, 'malformed_token');
    if (!isTxnTokenService(signer.issuer))
      deny('untrusted_issuer', `${untrustedText(iss)} is not a Transaction Token Service`);
    if (origin === undefined || origin.iss !== iss)
      deny(
        'txn_token_mismatch',
        "the Txn-Token is from a service that did not issue this chain's origin",
      );
  }
  const exp = denying('malformed_token', () => numericDate(jws.payload, 'exp'));
  const iat = denying('malformed_token', () => numericDate(jws.payload, 'iat'));
  if (exp === undefined) deny('malformed_token', 'the Txn-Token has no exp');
  if (exp < now - skew) deny('expired', 'the Txn-Token expired');
  if (iat !== undefined && iat > now + skew)
    deny('not_yet_valid', 'the Txn-Token is issued in the future');
  const txn = denying('malformed_token', () => txnOf(jws.payload));
  const sub = denying('malformed_token', () => subjectOf(jws.payload));
  if (txn === undefined || sub === undefined || !Object.hasOwn(jws.payload, 'sub'))
    deny('malformed_token', 'the Txn-Token lacks txn or sub');
  const expected = chainTxn(chain);
  if (expected === undefined || txn !== expected)
    deny('txn_token_mismatch', 'the Txn-Token names another transaction than the chain');
  if (sub !== origin?.subject)
    deny('txn_token_mismatch', 'the Txn-Token names another subject than the chain');
  return { text, txn, sub };
}
