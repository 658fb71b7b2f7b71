import type { DenyReason } from '../reasons.js';
import type { ServicePolicy, TenantPolicy } from '../registry/records.js';
import { globMatches } from './glob.js';

/** Everything policy looks at, already resolved by earlier steps. */
export interface PolicyInput {
  readonly destination: string;
  /** Depth of the incoming token (levels below its outermost level). */
  readonly depth: number;
  readonly sids: readonly string[];
  readonly sealed: boolean;
  /** The immediate caller: the sid of the outermost level; undefined for an origin token. */
  readonly caller: string | undefined;
  /** The outermost level was minted by this service (a chain that went through the mesh's authz). */
  readonly outerMintedHere: boolean;
  readonly roles: readonly string[];
  readonly tenant: TenantPolicy;
  readonly service: ServicePolicy;
  /** Limits that do not come from the registry: the service-wide default and the route's. */
  readonly defaultMaxDepth: number;
  readonly routeMaxDepth: number | undefined;
  /** Present when the request names its source workload (`attributes.source.principal`). */
  readonly source: { readonly principal: string; readonly sid: string | undefined } | undefined;
}

export type PolicyOutcome =
  | { readonly allow: true; readonly recursionAudited: boolean; readonly maxDepth: number }
  | { readonly allow: false; readonly reason: DenyReason; readonly detail: string };

const refuse = (reason: DenyReason, detail: string): PolicyOutcome => ({
  allow: false,
  reason,
  detail,
});

/** The effective depth limit: the lowest of every limit that applies. */
export function effectiveMaxDepth(
  input: Pick<PolicyInput, 'defaultMaxDepth' | 'routeMaxDepth' | 'tenant' | 'service'>,
): number {
  return Math.min(
    input.defaultMaxDepth,
    input.tenant.maxDepth ?? Infinity,
    input.service.maxDepth ?? Infinity,
    input.routeMaxDepth ?? Infinity,
  );
}

/**
 * Recursion, depth, caller and role policy for one hop. Pure: the same input always gives the
 * same outcome, which is what makes shadow mode and the audit trail trustworthy.
 */
export function decide(input: PolicyInput): PolicyOutcome {
  const { service, tenant } = input;
  if (input.sealed && tenant.sealed === 'deny')
    return refuse('sealed_chain', 'the chain is sealed and the tenant refuses sealed chains');
  // An origin token (or a chain wrapped outside the mesh) pulled out of a request is only good at
  // the entry services of an entry_only tenant; everywhere else a chain minted here is required.
  if (tenant.entryOnly && !service.entry && !input.outerMintedHere) {
    return refuse(
      'caller_not_allowed',
      `${input.destination} is not an entry service and the token is not a chain minted here`,
    );
  }
  // A source principal we cannot map is a workload we do not know: it cannot be the chain's caller.
  if (
    service.bindSource &&
    input.source !== undefined &&
    (input.source.sid === undefined || input.source.sid !== input.caller)
  ) {
    return refuse(
      'caller_not_allowed',
      `source ${input.source.principal} is not the chain's caller`,
    );
  }
  const recursive = input.sids.includes(input.destination);
  if (recursive && tenant.recursion === 'deny')
    return refuse('recursion', `${input.destination} is already in the call path`);
  const maxDepth = effectiveMaxDepth(input);
  if (input.depth + 1 > maxDepth)
    return refuse('depth_exceeded', `depth ${input.depth + 1} exceeds ${maxDepth}`);
  if (service.allowedCallers.length > 0) {
    const caller = input.caller;
    if (caller === undefined || !service.allowedCallers.some((glob) => globMatches(glob, caller))) {
      return refuse(
        'caller_not_allowed',
        `caller ${caller ?? '(origin)'} may not call ${input.destination}`,
      );
    }
  }
  const missing = service.requiredRoles.filter((role) => !input.roles.includes(role));
  if (missing.length > 0) return refuse('role_missing', `missing roles ${missing.join(',')}`);
  return { allow: true, recursionAudited: recursive, maxDepth };
}
