import type { IssuerRecord, ServicePolicy, TenantPolicy } from '../../src/registry/records.js';
import { parseIssuer, parseService, parseTenant } from '../../src/registry/records.js';

/** Records built through the same parsers the registry file and CLI use. */
export const issuer = (raw: Record<string, unknown>): IssuerRecord => parseIssuer(raw, 'test', true);
export const tenant = (name: string, raw: Record<string, unknown> = {}): TenantPolicy => parseTenant(name, raw, `tenants.${name}`);
export const service = (sid: string, raw: Record<string, unknown> = {}): ServicePolicy => parseService(sid, raw, `services.${sid}`);
