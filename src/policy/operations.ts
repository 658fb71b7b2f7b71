import { deny } from '../reasons.js';
import type { OperationPolicy, ServicePolicy, TenantPolicy } from '../registry/records.js';
import {
  READINGS,
  methodMatches,
  methodReadings,
  methodOverride,
  pathMatches,
  readRequestMethod,
  readRequestPath,
} from '../request-path.js';

/** Which rule of the destination applies to this request. */
export type RuleMatch =
  | { readonly kind: 'service' }
  | { readonly kind: 'operation'; readonly operation: OperationPolicy }
  /** The service lists operations, none matches, and it says `deny_unmatched`. */
  | { readonly kind: 'unmatched' };

/**
 * The first listed operation whose path pattern and methods match, else the service's own rule
 * (or `unmatched` under `deny_unmatched`). Only a service with operations reads the request: one
 * the canonical view of src/request-path.ts refuses, or whose readings (exact, case-insensitive,
 * `.format` suffix, not percent-decoded) pick different operations, is `invalid_path`, never guessed
 * at. A request without a path (a CheckRequest without HTTP attributes) matches no operation.
 */
export function matchRule(service: ServicePolicy, input: RequestInput): RuleMatch {
  if (service.operations.length === 0) return { kind: 'service' };
  if (input.viewConflict !== undefined) deny('invalid_path', input.viewConflict);
  const path = input.path;
  if (path !== undefined) {
    const read = readRequestPath(path);
    if (!read.ok) deny('invalid_path', read.problem);
    let verb: string | undefined;
    if (input.method !== undefined) {
      const method = readRequestMethod(input.method);
      if (!method.ok) deny('invalid_path', method.problem);
      verb = method.method;
    }
    const override = methodOverride(input.headers, path, verb);
    if (override !== undefined) deny('invalid_path', override);
    const views = read.decoded.every((s, i) => s === read.segments[i])
      ? [read.decoded]
      : [read.decoded, read.segments];
    // The method the request line names first: the operation reported is the one it picks.
    const verbs = methodReadings(
      service.operations.flatMap((operation) => operation.methods),
      input.headers,
      verb,
    );
    let chosen: number | undefined;
    for (const method of verbs) {
      for (const segments of views) {
        for (const reading of READINGS) {
          const index = service.operations.findIndex(
            (operation) =>
              methodMatches(operation.methods, method) &&
              pathMatches(operation.path, segments, reading),
          );
          if (chosen === undefined) chosen = index;
          else if (index !== chosen)
            deny(
              'invalid_path',
              method !== verb
                ? `${verb} ${path.split('?')[0]} with a body that may name another method (_method) reads as ${name(service, chosen)} or ${name(service, index)}`
                : `path ${path.split('?')[0]} reads as ${name(service, chosen)} or ${name(service, index)} depending on how the upstream routes (case, a .format suffix, percent-decoding)`,
            );
        }
      }
    }
    const operation = chosen === undefined ? undefined : service.operations[chosen];
    if (operation !== undefined) return { kind: 'operation', operation };
  }
  return service.denyUnmatched ? { kind: 'unmatched' } : { kind: 'service' };
}

/** The parts of a CheckInput the matcher reads. */
export interface RequestInput {
  readonly path?: string | undefined;
  readonly method?: string | undefined;
  readonly headers: ReadonlyMap<string, string>;
  readonly viewConflict?: string | undefined;
}

function name(service: ServicePolicy, index: number): string {
  return index < 0 ? 'no operation' : `operation ${service.operations[index]?.name ?? index}`;
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
