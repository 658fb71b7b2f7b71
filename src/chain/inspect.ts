import { MatryoshkaError } from '../errors.js';
import { type AuthStack, type HopRecord, readAuthStack, unpackContainer } from './auth-stack.js';
import { type CompactJws, compactKind, parseCompactJws } from './compact.js';
import { DEFAULT_LIMITS, type ChainLimits } from './limits.js';

/** What one level says about itself. Nothing here is verified. */
export interface InspectedLevel {
  readonly depth: number | undefined;
  readonly iss: string | undefined;
  readonly sub: string | undefined;
  readonly sid: string | undefined;
  readonly tenant: string | undefined;
  readonly alg: string;
  readonly kid: string | undefined;
  /**
   * The claims exactly as the token carries them (any JSON value, not only a valid NumericDate):
   * a person inspecting a suspicious token needs to see what it says, and the tree decides how
   * to show a value that is not a representable time.
   */
  readonly iat: unknown;
  readonly exp: unknown;
  /** Format and compression of this level's container; absent for the origin. */
  readonly fmt: string | undefined;
  readonly cmp: string | undefined;
  /** Characters of this level's token; 0 for a hop collapsed into a compact level (no text of its own). */
  readonly length: number;
  /** A hop read from a compact level's record (the newest of them is the compact level itself). */
  readonly form?: 'compact';
}

export interface Inspection {
  /** Origin (or innermost readable level) first. */
  readonly levels: readonly InspectedLevel[];
  readonly sealed: boolean;
  /** Why the walk ended: `origin` reached, `sealed` JWE, or an error with its description. */
  readonly stop: { readonly kind: 'origin' | 'sealed' | 'error'; readonly detail: string };
}

const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

/**
 * Open a chain without trusting it, for people: every level's header and claims, where the walk
 * stopped and why. Same codec and limits as the Check path, no keys, no network.
 */
export function inspectChain(token: string, limits: ChainLimits = DEFAULT_LIMITS): Inspection {
  const outerFirst: InspectedLevel[] = [];
  let current = token.trim().replace(/^Bearer\s+/i, '');
  let stop: Inspection['stop'] = { kind: 'origin', detail: 'origin reached' };
  let sealed = false;
  for (;;) {
    if (outerFirst.length >= limits.maxLevels) {
      stop = { kind: 'error', detail: `more than ${limits.maxLevels} levels` };
      break;
    }
    let jws: CompactJws;
    try {
      jws = parseCompactJws(current);
    } catch (error) {
      stop = {
        kind: 'error',
        detail: `level ${outerFirst.length + 1} from the outside: ${formatProblem(error)}`,
      };
      break;
    }
    let stack: AuthStack | undefined;
    try {
      stack = readAuthStack(jws.payload);
    } catch (error) {
      stop = { kind: 'error', detail: formatProblem(error) };
      break;
    }
    const p = jws.payload;
    const hops = stack?.hops ?? [];
    // A compact level's hops, newest first: each its own node, as policy sees them. Each counts
    // against the level cap as in the Check path, so a forged level of thousands of records
    // prints at most the cap's worth of them.
    let capped = false;
    for (let h = hops.length - 1; h >= 0; h--) {
      if (outerFirst.length >= limits.maxLevels) {
        capped = true;
        break;
      }
      const hop = hops[h] as HopRecord;
      outerFirst.push({
        depth: stack?.depth === undefined ? undefined : stack.depth - (hops.length - 1 - h),
        iss: str(p['iss']),
        sub: str(p['sub']),
        sid: hop.sid,
        tenant: str(p['tenant_id']),
        alg: jws.alg,
        kid: hop.kid ?? jws.kid,
        iat: hop.iat,
        exp: hop.exp,
        fmt: 'JWT',
        cmp: h === 0 ? stack?.cmp : undefined,
        length: h === hops.length - 1 ? current.length : 0,
        form: 'compact',
      });
    }
    if (capped) {
      stop = {
        kind: 'error',
        detail: `more than ${limits.maxLevels} levels (a compact level's hop records count as levels)`,
      };
      break;
    }
    if (hops.length === 0)
      outerFirst.push({
        depth: stack?.depth,
        iss: str(p['iss']),
        sub: str(p['sub']),
        sid: stack?.sid,
        tenant: str(p['tenant_id']),
        alg: jws.alg,
        kid: jws.kid,
        iat: p['iat'],
        exp: p['exp'],
        fmt: stack?.fmt,
        cmp: stack?.cmp,
        length: current.length,
      });
    if (stack === undefined) break;
    try {
      current = unpackContainer(stack, limits.maxContainerBytes);
    } catch (error) {
      stop = { kind: 'error', detail: formatProblem(error) };
      break;
    }
    if (stack.fmt === 'JWE' || compactKind(current) === 'jwe') {
      sealed = true;
      stop = { kind: 'sealed', detail: `sealed JWE container below depth ${stack.depth ?? '?'}` };
      break;
    }
  }
  return { levels: outerFirst.reverse(), sealed, stop };
}

/** What is wrong with the token, from our own format errors; anything else is a bug and propagates. */
function formatProblem(error: unknown): string {
  if (error instanceof MatryoshkaError) return error.message;
  throw error;
}
