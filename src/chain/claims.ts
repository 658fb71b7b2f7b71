import { MatryoshkaError } from '../errors.js';
import { MAX_SUBJECT_LENGTH, isRole, isSubject } from '../header-grammar.js';

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
