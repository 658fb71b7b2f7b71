import { deny } from '../reasons.js';
import type { CheckInput } from './check-input.js';

const BEARER_SCHEME = /^Bearer[ \t]+/i;

/**
 * The bearer token from `authorization`. No header or another scheme is `missing_token`; an empty
 * Bearer value is `malformed_token`. Its characters are not scanned here: the chain opener accepts
 * only a compact JWS whose every segment is canonical base64url, which is stricter than RFC 6750's
 * b64token, and refuses anything else (spaces, quotes, braces…) as `malformed_token` too — one
 * pass over a 20 KB token instead of two.
 */
export function extractToken(input: CheckInput): string {
  const header = input.headers.get('authorization');
  if (header === undefined || header.length === 0) deny('missing_token', 'no authorization header');
  const scheme = BEARER_SCHEME.exec(header);
  if (scheme === null) deny('missing_token', 'authorization is not a Bearer token');
  // Trailing blanks trimmed by hand: a `[ \t]+$` regex backtracks quadratically on inner runs.
  let end = header.length;
  while (
    end > scheme[0].length &&
    (header.charCodeAt(end - 1) === 32 || header.charCodeAt(end - 1) === 9)
  )
    end--;
  const token = header.slice(scheme[0].length, end);
  if (token.length === 0) deny('malformed_token', 'the Bearer value is empty');
  return token;
}
