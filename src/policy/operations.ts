import { deny } from '../reasons.js';
import type { OperationPolicy, ServicePolicy, TenantPolicy } from '../registry/records.js';
import { pathMatches, readRequestPath } from '../request-path.js';

/** Which rule of the destination applies to this request. */
export type RuleMatch =
  | { readonly kind: 'service' }
  | { readonly kind: 'operation'; readonly operation: OperationPolicy }
  /** The service lists operations, none matches, and it says `deny_unmatched`. */
  | { readonly kind: 'unmatched' };

/**
 * The first listed operation whose path pattern and methods match, else the service's own rule
 * (or `unmatched` under `deny_unmatched`). Only a service with operations reads the path: a path
 * that is not normalised is refused (`invalid_path`), never guessed at. A request without a path
 * (a CheckRequest without HTTP attributes) matches no operation.
 */
export function matchRule(
  service: ServicePolicy,
  path: string | undefined,
  method: string | undefined,
): RuleMatch {
  if (service.operations.length === 0) return { kind: 'service' };
  if (path !== undefined) {
    const read = readRequestPath(path);
    if (!read.ok) deny('invalid_path', read.problem);
    const verb = method?.toUpperCase();
    for (const operation of service.operations) {
      if (operation.methods.length > 0 && (verb === undefined || !operation.methods.includes(verb)))
        continue;
      if (pathMatches(operation.path, read.segments)) return { kind: 'operation', operation };
    }
  }
  return service.denyUnmatched ? { kind: 'unmatched' } : { kind: 'service' };
}

/**
 * The tenant and service policy as one operation sees them: each rule field the operation sets
 * replaces the service's, except the depth limit: the service's and the operation's both apply.
 */
export function withOperation(
  tenant: TenantPolicy,
  service: ServicePolicy,
  operation: OperationPolicy,
): { tenant: TenantPolicy; service: ServicePolicy } {
  return {
    tenant: { ...tenant, entryOnly: tenant.entryOnly || operation.entryOnly === true },
    service: {
      ...service,
      allowedCallers: operation.allowedCallers ?? service.allowedCallers,
      requiredRoles: operation.requiredRoles ?? service.requiredRoles,
      entry: operation.entry ?? service.entry,
      bindSource: operation.bindSource ?? service.bindSource,
      maxDepth: lowest(service.maxDepth, operation.maxDepth),
    },
  };
}

function lowest(a: number | undefined, b: number | undefined): number | undefined {
  return a === undefined ? b : b === undefined ? a : Math.min(a, b);
}
