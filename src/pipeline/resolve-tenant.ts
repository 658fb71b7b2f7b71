import type { Chain } from '../chain/types.js';
import { deny } from '../reasons.js';
import type { ServicePolicy } from '../registry/records.js';
import type { Destination } from './destination.js';

/**
 * The chain's tenant: every level must resolve to the same one (foreign levels through the
 * registry, our own through their signed claim).
 */
export function chainTenant(chain: Chain): string {
  const tenant = chain.outer.tenant;
  for (const level of chain.levels) {
    if (level.tenant !== tenant)
      deny('tenant_mismatch', `level at depth ${level.depth} belongs to another tenant`);
  }
  return tenant;
}

/** The route and the destination service, when bound to a tenant, must agree with the chain's. */
export function checkTenantBindings(
  tenant: string,
  destination: Destination,
  service: ServicePolicy | undefined,
): void {
  if (destination.routeTenant !== undefined && destination.routeTenant !== tenant)
    deny('tenant_mismatch', 'route is bound to another tenant');
  if (service?.tenant !== undefined && service.tenant !== tenant)
    deny('tenant_mismatch', `${service.sid} belongs to another tenant`);
}
