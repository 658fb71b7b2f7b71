import { MatryoshkaError } from '../errors.js';
import { MAX_SUBJECT_LENGTH, isHeaderValue, isRole, isSubject } from '../header-grammar.js';

/**
 * Reading registered claims the same way everywhere: numeric dates, audiences, roles.
 * Each reader returns `undefined` for "absent" and throws ClaimError for "present but invalid".
 */
export class ClaimError extends MatryoshkaError {
  constructor(
    message: string,
    code:
      | 'ERR_CLAIM_INVALID'
      | 'ERR_AUDIENCE_INVALID'
      | 'ERR_SUBJECT_INVALID' = 'ERR_CLAIM_INVALID',
  ) {
    super(code, message);
  }
}

export function numericDate(
  payload: Readonly<Record<string, unknown>>,
  name: 'exp' | 'nbf' | 'iat',
): number | undefined {
  const value = payload[name];
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0)
    throw new ClaimError(`${name} is not a NumericDate`);
  return value;
}

export function audiences(payload: Readonly<Record<string, unknown>>): string[] {
  const aud = payload['aud'];
  if (aud === undefined) return [];
  if (typeof aud === 'string') return [aud];
  if (Array.isArray(aud) && aud.every((a) => typeof a === 'string')) return aud as string[];
  throw new ClaimError('aud is not a string or list of strings', 'ERR_AUDIENCE_INVALID');
}

/**
 * A dotted path (`realm_access.roles`) into the payload; an array of strings or a space/comma list.
 * Roles are copied into the comma-separated `x-user-roles`, so one that is not a safe list element
 * (control characters, DEL, non-ASCII such as NEL, over 256 characters) is dropped: a role can
 * only be lost that way, never gained, so policy that requires it fails closed.
 */
export function rolesAt(payload: Readonly<Record<string, unknown>>, path: string): string[] {
  let value: unknown = payload;
  for (const part of path.split('.')) {
    if (value === null || typeof value !== 'object' || Array.isArray(value)) return [];
    if (!Object.hasOwn(value, part)) return [];
    value = (value as Record<string, unknown>)[part];
  }
  const list =
    typeof value === 'string' ? value.split(/[\s,]+/) : Array.isArray(value) ? value : [];
  return list.filter(isRole).slice(0, 256);
}

/**
 * The user a token speaks for: `sub`; only when a token has no `sub` at all (client credentials),
 * the client (`client_id`, then `azp`). The first of these the token carries is the answer or the
 * level is malformed: an unusable `sub` (not a string, empty, over 1,024 characters, outside the
 * header charset) must not quietly become another claim's value, which the token's holder may
 * choose more freely (`sub: 42, client_id: "admin"`).
 */
export function subjectOf(payload: Readonly<Record<string, unknown>>): string | undefined {
  for (const name of ['sub', 'client_id', 'azp']) {
    if (!Object.hasOwn(payload, name)) continue;
    const value = payload[name];
    if (!isSubject(value))
      throw new ClaimError(
        `${name} is not a usable subject (printable ASCII, 1 to ${MAX_SUBJECT_LENGTH} characters)`,
        'ERR_SUBJECT_INVALID',
      );
    return value;
  }
  return undefined;
}

/** Longest transaction id we carry (RFC 8417 `txn` is a string; UUIDs are 36 characters). */
export const MAX_TXN_LENGTH = 256;

/** A Txn-Token's or one of our levels' `txn`: absent, or a header-safe string. */
export function txnOf(payload: Readonly<Record<string, unknown>>): string | undefined {
  const value = payload['txn'];
  if (value === undefined) return undefined;
  if (!isHeaderValue(value, MAX_TXN_LENGTH) || value.includes(' '))
    throw new ClaimError(`txn is not a transaction id (visible ASCII, 1 to ${MAX_TXN_LENGTH})`);
  return value;
}

/**
 * RFC 8693 §4.1 `act`, read as the list of actors it nests, oldest first (the outermost `act` is
 * the current actor, each nested one a prior actor). Only `sub` is read from each actor and it must
 * be one element of the comma-separated `x-auth-actors` (the list-element grammar of roles): an
 * actor we could not show faithfully is refused, never dropped, because dropping one would hide a
 * delegation. The walk stops after `cap + 1` actors so a hostile nesting costs nothing; the caller
 * refuses a list longer than its level cap.
 */
export function actorsOf(payload: Readonly<Record<string, unknown>>, cap: number): string[] {
  const newestFirst: string[] = [];
  let act: unknown = payload['act'];
  while (act !== undefined && newestFirst.length <= cap) {
    if (act === null || typeof act !== 'object' || Array.isArray(act))
      throw new ClaimError('act is not a JSON object');
    const actor = act as Record<string, unknown>;
    const sub = actor['sub'];
    if (!isRole(sub))
      throw new ClaimError('an act names no usable sub (visible ASCII, no comma, at most 256)');
    newestFirst.push(sub);
    act = actor['act'];
  }
  return newestFirst.reverse();
}
