import { MatryoshkaError } from '../errors.js';
/**
 * Where everything lives in Redis. Every key carries the same hash tag (`{prefix}`), so the whole
 * registry sits in one Cluster slot and MULTI/EXEC and MGET across keys work in Cluster mode too.
 * Tenant-owned data (issuer lists, JWKS caches, fetch locks) is namespaced under the tenant.
 *
 *   {p}:version                        the registry's version: +1 on every change (resync check)
 *   {p}:log                            STREAM of changes, entry id <version>-0, field `ops` (JSON):
 *                                      what one change wrote; trimmed (MAXLEN ~), see registry-log.ts
 *   {p}:issuers                        SET of every registered issuer
 *   {p}:issuer:<iss>                   issuer record (JSON, snake_case as in the registry file)
 *   {p}:tenants                        SET of tenants with a policy record
 *   {p}:tenant:<t>                     tenant policy (JSON)
 *   {p}:tenant:<t>:issuers             SET of the tenant's issuers
 *   {p}:tenant:<t>:jwks:<iss>          shared JWKS cache of one issuer (JSON, expires)
 *   {p}:tenant:<t>:jwks-lock:<iss>     "one fetch at a time" lock across replicas (expires)
 *   {p}:services                       SET of services with a policy record
 *   {p}:service:<sid>                  service policy (JSON)
 *   {p}:principals                     HASH principal → sid
 *   {p}:signing-keys                   ZSET of our replicas' public JWKs, score = expiry (ms)
 *   {p}:changes                        pub/sub channel: "the registry is at version <n>"
 */
export class RedisLayout {
  private readonly tag: string;

  constructor(prefix = 'matryoshka') {
    if (!/^[A-Za-z0-9_.-]{1,64}$/.test(prefix))
      throw new MatryoshkaError(
        'ERR_CONFIG',
        'MATRYOSHKA_REDIS_PREFIX: must be letters, digits, _ . - (1 to 64)',
      );
    this.tag = `{${prefix}}`;
  }

  get version(): string {
    return `${this.tag}:version`;
  }
  get log(): string {
    return `${this.tag}:log`;
  }
  get issuers(): string {
    return `${this.tag}:issuers`;
  }
  issuer(iss: string): string {
    return `${this.tag}:issuer:${iss}`;
  }
  get tenants(): string {
    return `${this.tag}:tenants`;
  }
  tenant(tenant: string): string {
    return `${this.tag}:tenant:${tenant}`;
  }
  tenantIssuers(tenant: string): string {
    return `${this.tag}:tenant:${tenant}:issuers`;
  }
  jwks(tenant: string, iss: string): string {
    return `${this.tag}:tenant:${tenant}:jwks:${iss}`;
  }
  jwksLock(tenant: string, iss: string): string {
    return `${this.tag}:tenant:${tenant}:jwks-lock:${iss}`;
  }
  get services(): string {
    return `${this.tag}:services`;
  }
  service(sid: string): string {
    return `${this.tag}:service:${sid}`;
  }
  get principals(): string {
    return `${this.tag}:principals`;
  }
  get signingKeys(): string {
    return `${this.tag}:signing-keys`;
  }
  get changes(): string {
    return `${this.tag}:changes`;
  }
}
