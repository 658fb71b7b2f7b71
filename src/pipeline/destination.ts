import { isIdentifier } from '../header-grammar.js';
import { deny } from '../reasons.js';
import type { RegistryReader } from '../registry/registry.js';
import type { CheckInput } from './check-input.js';

/** Where the request goes: the destination sid and what its route asks for. */
export interface Destination extends RouteBindings {
  readonly sid: string;
}

/**
 * The destination service id: the route's `sid`, else the mapped destination principal (Istio,
 * which cannot set per-route extensions), else the configured default.
 */
export async function resolveDestinationSid(
  input: CheckInput,
  registry: RegistryReader,
  defaultSid: string | undefined,
): Promise<string> {
  let sid = nonEmpty(input.contextExtensions['sid']);
  if (sid === undefined && input.destinationPrincipal !== undefined)
    sid = await registry.principal(input.destinationPrincipal);
  sid ??= defaultSid;
  if (sid === undefined) deny('unknown_service', 'no destination service id');
  // Whichever source named it, the destination becomes the last element of x-auth-chain and the
  // sid of the level we mint: a route or principal mapping that is not a service id names none.
  if (!isIdentifier(sid)) deny('unknown_service', 'the destination service id is not a valid sid');
  return sid;
}

export interface RouteBindings {
  /** `context_extensions["tenant"]`: the route is bound to this tenant. */
  readonly routeTenant: string | undefined;
  /** `context_extensions["max_depth"]`: the route lowers the depth limit. */
  readonly routeMaxDepth: number | undefined;
}

/** What the route itself asks for, beyond naming the destination. */
export function routeBindings(input: CheckInput): RouteBindings {
  const ext = input.contextExtensions;
  const rawDepth = nonEmpty(ext['max_depth']);
  let routeMaxDepth: number | undefined;
  if (rawDepth !== undefined) {
    // A route limit we cannot read must not silently become "no limit".
    if (!/^\d{1,2}$/.test(rawDepth))
      deny('depth_exceeded', `route max_depth ${JSON.stringify(rawDepth)} is not a number`);
    routeMaxDepth = Number(rawDepth);
  }
  const routeTenant = nonEmpty(ext['tenant']);
  // A route bound to a tenant it cannot name is bound to none we serve: refuse, never ignore.
  if (routeTenant !== undefined && !isIdentifier(routeTenant))
    deny('tenant_mismatch', 'route tenant is not a valid tenant id');
  return { routeTenant, routeMaxDepth };
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value.length === 0 ? undefined : value;
}
