/**
 * The closed set of decision reasons. One type feeds the Envoy response, the span, the audit log
 * and the metrics, so a reason can never be spelt two ways.
 */
export const DENY_REASONS = {
  missing_token: 401,
  malformed_token: 401,
  untrusted_issuer: 401,
  bad_signature: 401,
  expired: 401,
  not_yet_valid: 401,
  audience_mismatch: 401,
  stack_malformed: 401,
  stack_too_large: 401,
  tenant_mismatch: 403,
  recursion: 403,
  depth_exceeded: 403,
  caller_not_allowed: 403,
  role_missing: 403,
  sealed_chain: 403,
  unknown_service: 403,
  unavailable: 503,
} as const;

export type DenyReason = keyof typeof DENY_REASONS;
export type HttpDenyStatus = (typeof DENY_REASONS)[DenyReason];

export function httpStatusOf(reason: DenyReason): HttpDenyStatus {
  return DENY_REASONS[reason];
}

/**
 * A failure that ends a Check with a specific reason. `detail` is for logs and spans only; it never
 * reaches the client.
 */
export class DenyError extends Error {
  readonly reason: DenyReason;
  constructor(reason: DenyReason, detail: string) {
    super(detail);
    this.name = 'DenyError';
    this.reason = reason;
  }
}

export function deny(reason: DenyReason, detail: string): never {
  throw new DenyError(reason, detail);
}
