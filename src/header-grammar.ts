/**
 * The grammars of every value that can reach a header we emit upstream. Envoy (and Istio) without
 * `validate_mutations` copy our header values byte for byte: a CR or LF splits the request, NUL,
 * DEL or a non-ASCII character like NEL (U+0085) is read differently by each HTTP parser behind
 * it, and a comma inside one element of a comma-separated list (`x-auth-chain`, `x-user-roles`)
 * forges another element. Each value is checked against one of these where it enters (token
 * claims, routes, registry, configuration) and once more when the response is built.
 *
 * Non-ASCII is refused everywhere rather than argued safe as UTF-8: HTTP/1.1 parsers treat bytes
 * above 0x7F as opaque or reject them, Envoy's own validation refuses some of them, and U+0085 is
 * a line break to some decoders. No real service id, tenant, role or IdP subject needs it.
 */

/**
 * Service ids (sids) and tenant ids: letters, digits and `. _ : @ / -`, at most 128, starting with
 * a letter or digit — SPIFFE-style names (`spiffe://td/ns/x/sa/y`) and dotted ones fit. No comma,
 * whitespace or control character, so one sid is always exactly one element of `x-auth-chain`.
 * The registry has always used this grammar, so every registered sid and tenant still parses.
 */
const IDENTIFIER = /^[A-Za-z0-9][A-Za-z0-9._:@/-]{0,127}$/;

/** Visible ASCII and space: the characters of a header value that every parser reads alike. */
const VISIBLE_OR_SPACE = /^[\x20-\x7e]*$/;

/** One element of a comma-separated list header: visible ASCII, no comma, no space. */
const LIST_ELEMENT = /^[\x21-\x2b\x2d-\x7e]+$/;

/** Longest subject we copy into `x-user-id` (OIDC asks IdPs for at most 255; headroom for others). */
export const MAX_SUBJECT_LENGTH = 1024;
/** Longest role we copy into `x-user-roles`. */
export const MAX_ROLE_LENGTH = 256;

/** What an identifier looks like, for one-line error messages. */
export const IDENTIFIER_DESCRIPTION =
  'an identifier (letters, digits, . _ : @ / -, at most 128, starting with a letter or digit)';

export function isIdentifier(value: unknown): value is string {
  return typeof value === 'string' && IDENTIFIER.test(value);
}

/**
 * A whole header value of at most `maxLength` characters: visible ASCII with inner spaces (legal in
 * a field value and unambiguous), but not at either end, where HTTP parsers strip them — so what
 * the upstream reads is exactly what we checked.
 */
export function isHeaderValue(value: unknown, maxLength = Infinity): value is string {
  if (typeof value !== 'string' || value.length === 0 || value.length > maxLength) return false;
  if (value.charCodeAt(0) === 0x20 || value.charCodeAt(value.length - 1) === 0x20) return false;
  return VISIBLE_OR_SPACE.test(value);
}

/** A user id we may emit as `x-user-id`. */
export function isSubject(value: unknown): value is string {
  return isHeaderValue(value, MAX_SUBJECT_LENGTH);
}

/** A role we may emit as one element of `x-user-roles`. */
export function isRole(value: unknown): value is string {
  return typeof value === 'string' && value.length <= MAX_ROLE_LENGTH && LIST_ELEMENT.test(value);
}

/** The identity a Check hands upstream, as headers. */
export interface EmittedIdentity {
  readonly tenant: string | undefined;
  readonly user: string | undefined;
  readonly roles: readonly string[];
  readonly sids: readonly string[];
}

/**
 * The first value that must not be emitted, named for the log, or undefined when all are safe.
 * Input validation should make this unreachable; it is the last line if a path was missed.
 */
export function unsafeIdentity(identity: EmittedIdentity): string | undefined {
  if (identity.tenant !== undefined && !isIdentifier(identity.tenant)) return 'tenant';
  if (identity.user !== undefined && !isSubject(identity.user)) return 'user';
  if (!identity.roles.every(isRole)) return 'role';
  if (!identity.sids.every(isIdentifier)) return 'sid';
  return undefined;
}
