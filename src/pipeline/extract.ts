import { deny } from '../reasons.js';
import type { CheckInput } from './check-input.js';

const BEARER_SCHEME = /^Bearer(?:[ \t]+|$)/i;
/** A Bearer credential anywhere in the value: first, or after the "," that joins repeated headers. */
const BEARER_ANYWHERE = /(?:^|,)[ \t]*Bearer(?:[ \t,]|$)/i;

/**
 * The bearer token from `authorization`. No header, an empty one, or one credential of another
 * scheme is `missing_token`; an empty Bearer value (`Bearer`, which proxies trim `Bearer ` to) is
 * `malformed_token`, and so is a Bearer credential beside another (`Basic …,Bearer …`, how Envoy
 * joins two headers): a token that is present is never read as an absent one, which dry-run would
 * let through. Its characters are not scanned here: the chain opener accepts
 * only a compact JWS whose every segment is canonical base64url, which is stricter than RFC 6750's
 * b64token, and refuses anything else (spaces, quotes, braces…) as `malformed_token` too — one
 * pass over a 20 KB token instead of two.
 */
export function extractToken(input: CheckInput): string {
  const header = input.headers.get('authorization');
  if (!claimsBearer(header)) {
    if (header === undefined || header.trim().length === 0)
      deny('missing_token', 'no authorization header');
    deny('missing_token', 'authorization is not a Bearer token');
  }
  const value = header as string;
  const scheme = BEARER_SCHEME.exec(value);
  if (scheme === null) deny('malformed_token', 'authorization holds a Bearer token beside another');
  // Trailing blanks trimmed by hand: a `[ \t]+$` regex backtracks quadratically on inner runs.
  let end = value.length;
  while (
    end > scheme[0].length &&
    (value.charCodeAt(end - 1) === 32 || value.charCodeAt(end - 1) === 9)
  )
    end--;
  const token = value.slice(scheme[0].length, end);
  if (token.length === 0) deny('malformed_token', 'the Bearer value is empty');
  return token;
}

/**
 * Whether `authorization` carries a Bearer credential, however placed: then it is read as the
 * request's token (and refused if it cannot be), and a Txn-Token beside it is not the origin.
 */
export function claimsBearer(header: string | undefined): boolean {
  if (header === undefined) return false;
  return BEARER_SCHEME.test(header) || BEARER_ANYWHERE.test(header);
}
