import { deny } from '../reasons.js';
import type { CheckInput } from './check-input.js';

const BEARER = /^Bearer[ \t]+([A-Za-z0-9._~+/=-]+)[ \t]*$/i;

/** The bearer token from `authorization`; anything else is `missing_token`. */
export function extractToken(input: CheckInput): string {
  const header = input.headers.get('authorization');
  if (header === undefined || header.length === 0) deny('missing_token', 'no authorization header');
  const match = BEARER.exec(header);
  if (match === null) deny('missing_token', 'authorization is not a Bearer token');
  return match[1] as string;
}
