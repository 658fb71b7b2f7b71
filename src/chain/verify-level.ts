import { isIdentifier } from '../header-grammar.js';
import type { IssuerKeys, KeyChoice } from '../keys/issuer-keys.js';
import { verifyJwsSignature } from '../keys/jws-crypto.js';
import { type DenyReason, deny, denying } from '../reasons.js';
import type { RegistryReader } from '../registry/registry.js';
import type { IssuerRecord } from '../registry/records.js';
import { untrustedText } from '../untrusted-text.js';
import { audiences } from './claims.js';
import type { CompactJws } from './compact.js';

export interface LevelTrust {
  /** `iss` of the tokens this service mints; trusted with our own keys, no registry entry needed. */
  readonly ownIssuer: string;
  readonly registry: RegistryReader;
  readonly keys: IssuerKeys;
  /** MATRYOSHKA_TRUST_DOMAIN: the `aud` of every Txn-Token; unset, none is accepted. */
  readonly trustDomain?: string | undefined;
}

/** The Txn-Token media type (`typ`), draft-ietf-oauth-transaction-tokens §"JWT Header". */
export const TXN_TOKEN_TYP = 'txntoken+jwt';

/** `typ` names the Txn-Token media type (RFC 7515 §4.1.9: `application/` may be left out; case-insensitive). */
export function isTxnTokenTyp(typ: unknown): boolean {
  if (typeof typ !== 'string') return false;
  const lower = typ.toLowerCase();
  return lower === TXN_TOKEN_TYP || lower === `application/${TXN_TOKEN_TYP}`;
}

/** A registered Transaction Token Service: its tokens are Txn-Tokens, read by their own rules. */
export function isTxnTokenService(issuer: IssuerRecord | undefined): boolean {
  return issuer?.role === 'txn_token_service';
}

export interface TrustedSigner {
  readonly own: boolean;
  readonly issuer: IssuerRecord | undefined;
  readonly tenant: string;
  /** The issuer's keys were not in memory and had to be fetched. */
  readonly keysRefreshed: boolean;
}

/**
 * Establish that one level was signed by a registered issuer (or by us) with an allowed algorithm
 * and one of that issuer's keys, and that it is meant for us. Time is the caller's concern: it
 * depends on where the level sits in the chain.
 *
 * `malformed` is the reason for a level that cannot be read at all: `malformed_token` for the
 * outermost, `stack_malformed` inside the stack.
 */
export async function verifyLevel(
  jws: CompactJws,
  trust: LevelTrust,
  malformed: DenyReason,
): Promise<TrustedSigner> {
  const iss = jws.payload['iss'];
  if (typeof iss !== 'string' || iss.length === 0) deny(malformed, 'level has no iss');
  const resolved = await resolveSigner(jws, iss, trust, malformed);
  const { keys, refreshed } = await keysFor(jws, resolved, trust);
  const signer = { ...resolved, keysRefreshed: refreshed };
  if (keys.length === 0)
    deny(
      'bad_signature',
      `no key of ${untrustedText(iss)} for kid ${jws.kid === undefined ? '(none)' : untrustedText(jws.kid)} and ${untrustedText(jws.alg)}`,
    );
  if (!keys.some((key) => verifyJwsSignature(jws.alg, key, jws.signingInput, jws.signature))) {
    deny('bad_signature', `signature of ${untrustedText(iss)} does not verify`);
  }
  if (isTxnTokenService(signer.issuer)) {
    // Typed, so that no other JWT of the same service can pass for one (a Txn-Token MUST carry it).
    if (!isTxnTokenTyp(jws.header['typ']))
      deny(
        malformed,
        `a token of Transaction Token Service ${untrustedText(iss)} without typ ${TXN_TOKEN_TYP}`,
      );
    checkTrustDomain(jws, trust.trustDomain);
    return signer;
  }
  checkAudience(jws, signer, trust.ownIssuer);
  return signer;
}

async function resolveSigner(
  jws: CompactJws,
  iss: string,
  trust: LevelTrust,
  malformed: DenyReason,
): Promise<Omit<TrustedSigner, 'keysRefreshed'>> {
  if (iss === trust.ownIssuer) {
    const tenant = jws.payload['tenant_id'];
    // The tenant becomes x-tenant-id: only a tenant id, even under our own signature.
    if (!isIdentifier(tenant)) deny(malformed, 'own level without a valid tenant_id');
    return { own: true, issuer: undefined, tenant };
  }
  const record = await denying(malformed, () => trust.registry.issuer(iss));
  if (record === undefined)
    deny('untrusted_issuer', `issuer ${untrustedText(iss)} is not registered`);
  // Records are validated where they enter the registry; one that slipped past is as good as absent.
  if (!isIdentifier(record.tenant))
    deny('untrusted_issuer', `issuer ${untrustedText(iss)} is registered with an invalid tenant`);
  if (!(record.algorithms as readonly string[]).includes(jws.alg))
    deny('bad_signature', `${untrustedText(jws.alg)} is not allowed for ${untrustedText(iss)}`);
  return { own: false, issuer: record, tenant: record.tenant };
}

async function keysFor(
  jws: CompactJws,
  signer: Omit<TrustedSigner, 'keysRefreshed'>,
  trust: LevelTrust,
): Promise<KeyChoice> {
  const issuer = signer.issuer;
  if (issuer === undefined) return trust.keys.ownKey(jws.kid, jws.alg);
  return denying('unavailable', () => trust.keys.issuerKeys(issuer, jws.alg, jws.kid));
}

function checkAudience(
  jws: CompactJws,
  signer: Omit<TrustedSigner, 'keysRefreshed'>,
  ownIssuer: string,
): void {
  const expected = signer.own ? [ownIssuer] : signer.issuer?.audiences;
  if (expected === undefined) return;
  const aud = denying('audience_mismatch', () => audiences(jws.payload));
  if (!aud.some((a) => expected.includes(a)))
    deny('audience_mismatch', `aud does not name ${expected.join(' or ')}`);
}

/** A Txn-Token is valid only inside the trust domain its `aud` names: ours, configured. */
export function checkTrustDomain(jws: CompactJws, trustDomain: string | undefined): void {
  if (trustDomain === undefined)
    deny(
      'audience_mismatch',
      'a Txn-Token, and no trust domain is configured (MATRYOSHKA_TRUST_DOMAIN)',
    );
  const aud = denying('audience_mismatch', () => audiences(jws.payload));
  if (!aud.includes(trustDomain))
    deny('audience_mismatch', `the Txn-Token's aud does not name the trust domain ${trustDomain}`);
}
