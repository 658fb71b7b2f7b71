import { type RegistryReader, RecordUnreadableError } from './registry.js';
import type { IssuerRecord, ServicePolicy, TenantPolicy } from './records.js';

export interface RegistryContents {
  issuers: IssuerRecord[];
  tenants: TenantPolicy[];
  services: ServicePolicy[];
  principals: Record<string, string>;
}

export function emptyContents(): RegistryContents {
  return { issuers: [], tenants: [], services: [], principals: {} };
}

/** The embedded registry: plain maps, filled from the registry file or by tests. */
export class MemoryRegistry implements RegistryReader {
  private readonly issuers = new Map<string, IssuerRecord>();
  private readonly tenants = new Map<string, TenantPolicy>();
  private readonly services = new Map<string, ServicePolicy>();
  private readonly principals = new Map<string, string>();
  /** Records that exist but cannot be read: `tenant <t>` / `service <sid>` / `principal <p>` → problem. */
  private readonly unreadable = new Map<string, string>();
  private changes = 0;

  constructor(contents: RegistryContents = emptyContents()) {
    for (const issuer of contents.issuers) this.putIssuer(issuer);
    for (const tenant of contents.tenants) this.putTenant(tenant);
    for (const service of contents.services) this.putService(service);
    for (const [principal, sid] of Object.entries(contents.principals))
      this.mapPrincipal(principal, sid);
  }

  putIssuer(record: IssuerRecord): void {
    this.changes++;
    this.issuers.set(record.issuer, record);
  }
  removeIssuer(issuer: string): boolean {
    this.changes++;
    return this.issuers.delete(issuer);
  }
  putTenant(policy: TenantPolicy): void {
    this.changes++;
    this.unreadable.delete(`tenant ${policy.tenant}`);
    this.tenants.set(policy.tenant, policy);
  }
  putService(policy: ServicePolicy): void {
    this.changes++;
    this.unreadable.delete(`service ${policy.sid}`);
    this.services.set(policy.sid, policy);
  }
  /**
   * A tenant, service or principal record that exists but cannot be read: it governs its requests
   * by refusing them (RecordUnreadableError), never by the defaults of a name without a record.
   */
  markUnreadable(kind: 'tenant' | 'service' | 'principal', name: string, problem: string): void {
    this.changes++;
    if (kind === 'tenant') this.tenants.delete(name);
    else if (kind === 'service') this.services.delete(name);
    else this.principals.delete(name);
    this.unreadable.set(`${kind} ${name}`, problem);
  }
  mapPrincipal(principal: string, sid: string): void {
    this.changes++;
    this.unreadable.delete(`principal ${principal}`);
    this.principals.set(principal, sid);
  }
  removeTenant(tenant: string): boolean {
    this.changes++;
    const marked = this.unreadable.delete(`tenant ${tenant}`);
    return this.tenants.delete(tenant) || marked;
  }
  removeService(sid: string): boolean {
    this.changes++;
    const marked = this.unreadable.delete(`service ${sid}`);
    return this.services.delete(sid) || marked;
  }
  unmapPrincipal(principal: string): boolean {
    this.changes++;
    const marked = this.unreadable.delete(`principal ${principal}`);
    return this.principals.delete(principal) || marked;
  }
  /** How many records of each kind it holds (stats, tests, the bench). */
  counts(): {
    issuers: number;
    tenants: number;
    services: number;
    principals: number;
    unreadable: number;
  } {
    return {
      issuers: this.issuers.size,
      tenants: this.tenants.size,
      services: this.services.size,
      principals: this.principals.size,
      unreadable: this.unreadable.size,
    };
  }
  /** The records marked unreadable, as `tenant <t>` / `service <sid>` / `principal <p>`. */
  unreadableRecords(): string[] {
    return [...this.unreadable.keys()];
  }
  listIssuers(): IssuerRecord[] {
    return [...this.issuers.values()];
  }

  async issuer(iss: string): Promise<IssuerRecord | undefined> {
    return this.issuers.get(iss);
  }
  async tenant(tenant: string): Promise<TenantPolicy | undefined> {
    this.refuseUnreadable(`tenant ${tenant}`);
    return this.tenants.get(tenant);
  }
  async service(sid: string): Promise<ServicePolicy | undefined> {
    this.refuseUnreadable(`service ${sid}`);
    return this.services.get(sid);
  }
  private refuseUnreadable(record: string): void {
    if (this.unreadable.size === 0) return;
    const problem = this.unreadable.get(record);
    if (problem !== undefined) throw new RecordUnreadableError(record, problem);
  }
  async principal(principal: string): Promise<string | undefined> {
    this.refuseUnreadable(`principal ${principal}`);
    return this.principals.get(principal);
  }
  ready(): boolean {
    return true;
  }
  version(): number {
    return this.changes;
  }
}
