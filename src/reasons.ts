import { type ErrorCode, MatryoshkaError } from './errors.js';

/**
 * What a denial is about, which decides whether dry-run may let it pass:
 * - `authenticity`: we could not establish who is calling, or whether the chain is genuine (or we
 *   could not find out: `unavailable`). Never shadowed: dry-run does not let an unproven identity through.
 * - `policy`: a genuine chain that a rule refuses, or no token at all (`missing_token`: the rule
 *   that every request must carry one). Shadowed: in dry-run the request is allowed, the extended
 *   token minted (when there is a chain to extend), and the would-be denial recorded. A token that
 *   is present is judged on its authenticity first: a forged, expired, unregistered or unreadable
 *   one is never shadowed. (Istio draws the same line: a request without a token passes
 *   authentication and is judged by authorization policy; an invalid token never passes.)
 * - `request`: the request itself cannot be decided safely (a path two servers would read two
 *   ways). Never shadowed: there is no rule it could be said to pass.
 * - `limit`: what we would answer cannot be delivered (the minted headers exceed the budget). Never
 *   shadowed: letting it through would hand the upstream an oversized request, or none of our headers.
 * - `registry`: the registry record that governs the request exists but this replica cannot read it
 *   as written (an unknown field, a wrong type, not JSON). Never shadowed: the record may be the one
 *   that says `mode: enforce`, or carry the very restriction dry-run would wave through; with it
 *   unread there is no rule the request could be said to pass, so its restrictions cannot vanish.
 */
export type ReasonClass = 'authenticity' | 'policy' | 'request' | 'limit' | 'registry';

interface ReasonSpec {
  readonly status: 400 | 401 | 403 | 431 | 503;
  readonly class: ReasonClass;
}

/**
 * The closed set of decision reasons, each classed once. One type feeds the Envoy response, the
 * span, the audit log and the metrics, so a reason can never be spelt two ways.
 */
export const DENY_REASONS = {
  missing_token: { status: 401, class: 'policy' },
  malformed_token: { status: 401, class: 'authenticity' },
  untrusted_issuer: { status: 401, class: 'authenticity' },
  bad_signature: { status: 401, class: 'authenticity' },
  expired: { status: 401, class: 'authenticity' },
  not_yet_valid: { status: 401, class: 'authenticity' },
  audience_mismatch: { status: 401, class: 'authenticity' },
  stack_malformed: { status: 401, class: 'authenticity' },
  stack_too_large: { status: 401, class: 'authenticity' },
  tenant_mismatch: { status: 403, class: 'policy' },
  recursion: { status: 403, class: 'policy' },
  depth_exceeded: { status: 403, class: 'policy' },
  caller_not_allowed: { status: 403, class: 'policy' },
  role_missing: { status: 403, class: 'policy' },
  sealed_chain: { status: 403, class: 'policy' },
  unknown_service: { status: 403, class: 'policy' },
  operation_not_found: { status: 403, class: 'policy' },
  invalid_path: { status: 400, class: 'request' },
  header_budget_exceeded: { status: 431, class: 'limit' },
  txn_token_mismatch: { status: 401, class: 'authenticity' },
  unavailable: { status: 503, class: 'authenticity' },
  record_unreadable: { status: 503, class: 'registry' },
} as const satisfies Record<string, ReasonSpec>;

export type DenyReason = keyof typeof DENY_REASONS;
export type HttpDenyStatus = (typeof DENY_REASONS)[DenyReason]['status'];

export function httpStatusOf(reason: DenyReason): HttpDenyStatus {
  return DENY_REASONS[reason].status;
}

export function classOf(reason: DenyReason): ReasonClass {
  return DENY_REASONS[reason].class;
}

/**
 * A failure that ends a Check with a specific reason. `detail` is for logs and spans only; it never
 * reaches the client.
 */
export class DenyError extends MatryoshkaError {
  constructor(
    readonly reason: DenyReason,
    detail: string,
  ) {
    super('ERR_DENIED', detail);
  }
}

export function deny(reason: DenyReason, detail: string): never {
  throw new DenyError(reason, detail);
}

/**
 * The denial each coded failure stands for, in one table. `malformed` is the position's own
 * reason (`malformed_token` for the outermost level, `stack_malformed` inside the stack). Codes
 * absent here are not decisions: met during a Check they are bugs, answered 503 via `onUnexpected`.
 */
const DENIAL_OF: Partial<Record<ErrorCode, DenyReason | 'malformed'>> = {
  ERR_COMPACT_FORMAT: 'malformed',
  ERR_CLAIM_INVALID: 'malformed',
  ERR_SUBJECT_INVALID: 'malformed_token',
  ERR_AUDIENCE_INVALID: 'audience_mismatch',
  ERR_STACK_FORMAT: 'stack_malformed',
  ERR_STACK_TOO_LARGE: 'stack_too_large',
  ERR_SEAL: 'stack_malformed',
  ERR_KEYS_UNAVAILABLE: 'unavailable',
  ERR_REGISTRY_UNAVAILABLE: 'unavailable',
  ERR_RECORD_UNREADABLE: 'record_unreadable',
};

/** `error` as the denial it stands for at a position whose unreadable input is `malformed`; anything else unchanged. */
export function asDenial(error: unknown, malformed: DenyReason): unknown {
  if (!(error instanceof MatryoshkaError) || error instanceof DenyError) return error;
  const mapped = DENIAL_OF[error.code];
  if (mapped === undefined) return error;
  return new DenyError(mapped === 'malformed' ? malformed : mapped, error.message);
}

/** A failure the table says is an outage (Redis, an IdP): 503 without calling it a bug. */
export function isOutage(error: unknown): error is MatryoshkaError {
  return error instanceof MatryoshkaError && DENIAL_OF[error.code] === 'unavailable';
}

/** Run one step of the chain walk: a coded failure becomes its denial, anything else propagates. */
export function denying<T>(malformed: DenyReason, step: () => T): T {
  try {
    const result = step();
    if (result instanceof Promise)
      return result.catch((error: unknown) => Promise.reject(asDenial(error, malformed))) as T;
    return result;
  } catch (error) {
    throw asDenial(error, malformed);
  }
}
