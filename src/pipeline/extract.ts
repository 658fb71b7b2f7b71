import { deny } from '../reasons.js';
import type { CheckInput } from './check-input.js';

const BEARER_SCHEME = /^Bearer[ \t]+/i;
/** RFC 6750 b64token: the only characters a bearer token can have. */
const B64TOKEN = /^[A-Za-z0-9._~+/-]+=*$/;

/**
 * The bearer token from `authorization`. No header or another scheme is `missing_token`; a Bearer
 * value that cannot be a token (spaces, quotes, braces…) is `malformed_token`.
 */
export function extractToken(input: CheckInput): string {
  const header = input.headers.get('authorization');
  if (header === undefined || header.length === 0) deny('missing_token', 'no authorization header');
  const scheme = BEARER_SCHEME.exec(header);
  if (scheme === null) deny('missing_token', 'authorization is not a Bearer token');
  // Trailing blanks trimmed by hand: a `[ \t]+$` regex backtracks quadratically on inner runs.
  let end = header.length;
  while (end > scheme[0].length && (header.charCodeAt(end - 1) === 32 || header.charCodeAt(end - 1) === 9)) end--;
  const token = header.slice(scheme[0].length, end);
  if (!B64TOKEN.test(token)) deny('malformed_token', 'the Bearer value is not a token');
  return token;
}
