import { MatryoshkaError, messageOf } from '../errors.js';
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
  /**
   * Present on a compact level (see compact-form.ts): one record per hop the level stands for,
   * oldest first, the last being the level itself. Absent on a nested level.
   */
  readonly hops?: readonly HopRecord[] | undefined;
}

/** Longest jti a hop record may carry: ours are 22 characters, older ones 36 (UUIDs). */
export const MAX_HOP_JTI = 128;

/** One hop of a compact level: what the nested level of ours it replaces said about itself. */
export interface HopRecord {
  readonly sid: string;
  readonly iat: number;
  readonly exp: number;
  readonly jti: string;
  /** Absent: the compact level's own kid. */
  readonly kid: string | undefined;
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
  for (const hop of stack.hops ?? []) {
    if (!isIdentifier(hop.sid))
      throw new StackFormatError(`auth_stack.hops sids must be ${IDENTIFIER_DESCRIPTION}`);
  }
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
  const hops = readHops(claim);
  if (hops !== undefined) {
    // The claims that say who and where the level is must agree with its own (newest) record.
    const newest = hops[hops.length - 1] as HopRecord;
    if (fmt !== 'JWT') throw new StackFormatError('a compact level is never sealed');
    if (sid !== newest.sid) throw new StackFormatError('auth_stack.sid is not the newest hop');
    if (depth === undefined) throw new StackFormatError('a compact level must declare its depth');
  }
  return { fmt, cmp, container, sid, depth, ...(hops === undefined ? {} : { hops }) };
}

/**
 * `form: "compact"` with its `hops`, or neither. Any other form, or hops without the form, is
 * refused: a reader must never take collapsed hops for something it does not understand.
 */
function readHops(claim: Record<string, unknown>): HopRecord[] | undefined {
  const form = claim['form'];
  const raw = claim['hops'];
  if (form === undefined && raw === undefined) return undefined;
  if (form !== 'compact') throw new StackFormatError('auth_stack.form must be compact');
  if (!Array.isArray(raw) || raw.length === 0)
    throw new StackFormatError('auth_stack.hops must be a non-empty list');
  return raw.map((entry: unknown, i) => readHop(entry, i));
}

const isTime = (v: unknown): v is number =>
  typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

function readHop(entry: unknown, i: number): HopRecord {
  if (!Array.isArray(entry) || entry.length < 4 || entry.length > 5)
    throw new StackFormatError(`auth_stack.hops[${i}] must be [sid, iat, exp, jti, kid?]`);
  const [sid, iat, exp, jti, kid] = entry as unknown[];
  if (typeof sid !== 'string' || sid.length === 0)
    throw new StackFormatError(`auth_stack.hops[${i}] sid must be a non-empty string`);
  if (!isTime(iat) || !isTime(exp))
    throw new StackFormatError(`auth_stack.hops[${i}] iat and exp must be whole NumericDates`);
  if (typeof jti !== 'string' || jti.length === 0 || jti.length > MAX_HOP_JTI)
    throw new StackFormatError(`auth_stack.hops[${i}] jti must be a short non-empty string`);
  if (kid !== undefined && (typeof kid !== 'string' || kid.length === 0 || kid.length > 256))
    throw new StackFormatError(`auth_stack.hops[${i}] kid must be a non-empty string`);
  return { sid, iat, exp, jti, kid };
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
    throw new StackFormatError(messageOf(error));
  }
  // A compact token is ASCII; anything else cannot be one, and latin1 keeps this check exact.
  const text = inflated.toString('latin1');
  if (!/^[\x21-\x7e]*$/.test(text)) throw new StackFormatError('container is not a compact token');
  return text;
}
