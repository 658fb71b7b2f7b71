import { CompactSign, decodeJwt } from 'jose';
import { inspectChain } from '../../src/chain/inspect.js';

/** Claims of a token, unverified (the test already knows where it came from). */
export const claims = (token: string): Record<string, unknown> =>
  decodeJwt(token) as Record<string, unknown>;

export const authStack = (token: string): Record<string, unknown> =>
  claims(token)['auth_stack'] as Record<string, unknown>;

/** Sign arbitrary bytes as a JWS: for tokens a well-behaved library would refuse to produce. */
export async function signRaw(
  header: Record<string, unknown>,
  payload: Record<string, unknown> | string,
  key: Parameters<CompactSign['sign']>[0],
): Promise<string> {
  const bytes = new TextEncoder().encode(
    typeof payload === 'string' ? payload : JSON.stringify(payload),
  );
  return new CompactSign(bytes).setProtectedHeader(header as { alg: string }).sign(key);
}

/** Replace the payload of a compact JWS, keeping its header and (now wrong) signature. */
export function withPayload(token: string, payload: Record<string, unknown>): string {
  const [h, , s] = token.split('.');
  return `${h}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}.${s}`;
}

export const depthOf = (token: string): number => inspectChain(token).levels.length - 1;
