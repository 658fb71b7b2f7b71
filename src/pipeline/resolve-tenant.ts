import type { Chain } from '../chain/types.js';
import { deny } from '../reasons.js';
import type { ServicePolicy } from '../registry/records.js';
import type { Destination } from './destination.js';

/**
 * The chain's tenant: every level must resolve to the same one (foreign levels through the
 * registry, our own through their signed claim), and the route and the destination service, when
 * bound to a tenant, must agree.
 */
export function resolveTenant(chain: Chain, destination: Destination, service: ServicePolicy | undefined): string {
  const tenant = chain.outer.tenant;
  for (const level of chain.levels) {
    if (level.tenant !== tenant) deny('tenant_mismatch', `level at depth ${level.depth} belongs to another tenant`);
  }
  if (destination.routeTenant !== undefined && destination.routeTenant !== tenant) deny('tenant_mismatch', 'route is bound to another tenant');
  if (service?.tenant !== undefined && service.tenant !== tenant) deny('tenant_mismatch', `${service.sid} belongs to another tenant`);
  return tenant;
}
