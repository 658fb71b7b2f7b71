import { MatryoshkaError } from '../errors.js';
import { IDENTIFIER_DESCRIPTION, isIdentifier } from '../header-grammar.js';
import { decodeAnyBase64 } from './base64.js';
import { type Compression, InflateLimitError, inflateBounded } from './compression.js';

export type ContainerFormat = 'JWT' | 'JWE';

/** The `auth_stack` claim of one level, validated. Unknown fields are ignored by design. */
export interface AuthStack {
  readonly fmt: ContainerFormat;
  readonly cmp: Compression | undefined;
  readonly container: string;
  readonly sid: string | undefined;
  readonly depth: number | undefined;
}

/** Why a claim could not be read; mapped to `stack_malformed` or `stack_too_large` by the caller. */
export class StackFormatError extends MatryoshkaError {
  constructor(message: string, tooLarge = false) {
    super(tooLarge ? 'ERR_STACK_TOO_LARGE' : 'ERR_STACK_FORMAT', message);
  }
}

/** Returns undefined for a level without `auth_stack` (an origin token). */
/**
 * Every level's sid, ours or foreign, becomes one element of x-auth-chain and a name policy
 * compares: one with a comma or a control character would forge a hop or hide a recursion. The
 * Check path applies this to every level it opens; `inspect` shows such a sid (escaped) instead.
 */
export function checkStackSid(stack: AuthStack): void {
  if (stack.sid !== undefined && !isIdentifier(stack.sid))
    throw new StackFormatError(`auth_stack.sid must be ${IDENTIFIER_DESCRIPTION}`);
}

export function readAuthStack(payload: Readonly<Record<string, unknown>>): AuthStack | undefined {
  if (!Object.hasOwn(payload, 'auth_stack')) return undefined;
  const raw = payload['auth_stack'];
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw))
    throw new StackFormatError('auth_stack is not an object');
  const claim = raw as Record<string, unknown>;

  const fmtRaw = claim['fmt'];
  const fmt = typeof fmtRaw === 'string' ? fmtRaw.toUpperCase() : undefined;
  if (fmt !== 'JWT' && fmt !== 'JWE')
    throw new StackFormatError('auth_stack.fmt must be JWT or JWE');

  const cmpRaw = claim['cmp'];
  if (cmpRaw !== undefined && cmpRaw !== null && cmpRaw !== 'g' && cmpRaw !== 'b') {
    throw new StackFormatError('auth_stack.cmp must be g, b or null');
  }
  const cmp = cmpRaw === 'g' || cmpRaw === 'b' ? cmpRaw : undefined;

  const container = claim['container'];
  if (typeof container !== 'string' || container.length === 0)
    throw new StackFormatError('auth_stack.container must be a non-empty string');

  const sid = claim['sid'];
  if (sid !== undefined && (typeof sid !== 'string' || sid.length === 0))
    throw new StackFormatError('auth_stack.sid must be a non-empty string');

  const depth = claim['depth'];
  if (
    depth !== undefined &&
    !(typeof depth === 'number' && Number.isSafeInteger(depth) && depth >= 1)
  ) {
    throw new StackFormatError('auth_stack.depth must be a positive integer');
  }
  return { fmt, cmp, container, sid, depth };
}

/** The inner token's compact form: the container itself, or its inflated bytes when `cmp` is set. */
export function unpackContainer(stack: AuthStack, maxBytes: number): string {
  if (stack.cmp === undefined) {
    if (stack.container.length > maxBytes)
      throw new StackFormatError('container exceeds the size cap', true);
    return stack.container;
  }
  const packed = decodeAnyBase64(stack.container);
  if (packed === undefined) throw new StackFormatError('compressed container is not base64');
  let inflated: Buffer;
  try {
    inflated = inflateBounded(packed, stack.cmp, maxBytes);
  } catch (error) {
    if (error instanceof InflateLimitError) throw new StackFormatError(error.message, true);
    throw new StackFormatError((error as Error).message);
  }
  // A compact token is ASCII; anything else cannot be one, and latin1 keeps this check exact.
  const text = inflated.toString('latin1');
  if (!/^[\x21-\x7e]*$/.test(text)) throw new StackFormatError('container is not a compact token');
  return text;
}
