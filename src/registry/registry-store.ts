import type { RedisClient } from '../redis/connection.js';
import type { RedisLayout } from '../redis/layout.js';
import type { RegistryContents } from './memory-registry.js';
import {
  type IssuerRecord,
  type ServicePolicy,
  type TenantPolicy,
  identifier,
  issuerToRaw,
  parseIssuer,
  parseService,
  parseTenant,
  serviceToRaw,
  tenantToRaw,
} from './records.js';

export interface Snapshot {
  readonly version: number;
  readonly contents: RegistryContents;
  /** Records in Redis that no longer validate (hand edits, older formats): skipped, reported. */
  readonly invalid: readonly string[];
}

/**
 * The registry as stored in Redis: atomic writes (MULTI/EXEC, then a change notice on the pub/sub
 * channel) for the CLI, and a whole-registry snapshot read for the service. Records are validated
 * on the way in and again on the way out: Redis is shared state, not a trusted source of shape.
 */
export class RegistryStore {
  constructor(
    readonly redis: RedisClient,
    readonly layout: RedisLayout,
    private readonly allowInsecure: boolean,
  ) {}

  async putIssuer(record: IssuerRecord): Promise<void> {
    const previous = await this.redis.get(this.layout.issuer(record.issuer));
    const tx = this.redis.multi();
    if (previous !== null) {
      const old = parseIssuer(JSON.parse(previous), 'stored issuer', true);
      if (old.tenant !== record.tenant)
        tx.srem(this.layout.tenantIssuers(old.tenant), record.issuer);
    }
    tx.set(this.layout.issuer(record.issuer), JSON.stringify(issuerToRaw(record)));
    tx.sadd(this.layout.issuers, record.issuer);
    tx.sadd(this.layout.tenantIssuers(record.tenant), record.issuer);
    await this.commit(tx);
  }

  /** Returns false when no such issuer was registered (nothing changes then). */
  async removeIssuer(iss: string): Promise<boolean> {
    const previous = await this.redis.get(this.layout.issuer(iss));
    if (previous === null) return false;
    const old = parseIssuer(JSON.parse(previous), 'stored issuer', true);
    const tx = this.redis.multi();
    tx.del(this.layout.issuer(iss));
    tx.srem(this.layout.issuers, iss);
    tx.srem(this.layout.tenantIssuers(old.tenant), iss);
    tx.del(this.layout.jwks(old.tenant, iss));
    await this.commit(tx);
    return true;
  }

  async putTenant(policy: TenantPolicy): Promise<void> {
    const tx = this.redis.multi();
    tx.set(this.layout.tenant(policy.tenant), JSON.stringify(tenantToRaw(policy)));
    tx.sadd(this.layout.tenants, policy.tenant);
    await this.commit(tx);
  }

  /**
   * Returns false when the tenant has no policy record. Its issuers stay registered: without the
   * record the tenant falls back to the fail-closed defaults of defaultTenantPolicy().
   */
  async removeTenant(tenant: string): Promise<boolean> {
    return this.removeRecord(this.layout.tenant(tenant), this.layout.tenants, tenant);
  }

  /** Returns false when the service has no policy record; it then gets its tenant's policy only. */
  async removeService(sid: string): Promise<boolean> {
    return this.removeRecord(this.layout.service(sid), this.layout.services, sid);
  }

  async putService(policy: ServicePolicy): Promise<void> {
    const tx = this.redis.multi();
    tx.set(this.layout.service(policy.sid), JSON.stringify(serviceToRaw(policy)));
    tx.sadd(this.layout.services, policy.sid);
    await this.commit(tx);
  }

  async mapPrincipal(principal: string, sid: string): Promise<void> {
    identifier(sid, `principal ${principal}`);
    const tx = this.redis.multi();
    tx.hset(this.layout.principals, principal, sid);
    await this.commit(tx);
  }

  /** Returns false when the principal was not mapped (nothing changes then). */
  async unmapPrincipal(principal: string): Promise<boolean> {
    if ((await this.redis.hexists(this.layout.principals, principal)) === 0) return false;
    const tx = this.redis.multi();
    tx.hdel(this.layout.principals, principal);
    await this.commit(tx);
    return true;
  }

  /** Replace everything with `contents` (the registry file pushed to Redis, or a restore). */
  async importContents(contents: RegistryContents): Promise<void> {
    for (const issuer of contents.issuers) await this.putIssuer(issuer);
    for (const tenant of contents.tenants) await this.putTenant(tenant);
    for (const service of contents.services) await this.putService(service);
    for (const [principal, sid] of Object.entries(contents.principals))
      await this.mapPrincipal(principal, sid);
  }

  async version(): Promise<number> {
    return Number((await this.redis.get(this.layout.version)) ?? '0');
  }

  /** The whole registry, read in a few round trips. */
  async snapshot(): Promise<Snapshot> {
    const l = this.layout;
    const [version, issuerNames, tenantNames, serviceNames, principals] = await Promise.all([
      this.redis.get(l.version),
      this.redis.smembers(l.issuers),
      this.redis.smembers(l.tenants),
      this.redis.smembers(l.services),
      this.redis.hgetall(l.principals),
    ]);
    const read = async (keys: string[]): Promise<Array<string | null>> =>
      keys.length === 0 ? [] : this.redis.mget(...keys);
    const [issuerDocs, tenantDocs, serviceDocs] = await Promise.all([
      read(issuerNames.map((i) => l.issuer(i))),
      read(tenantNames.map((t) => l.tenant(t))),
      read(serviceNames.map((s) => l.service(s))),
    ]);
    const invalid: string[] = [];
    const parsed = <T>(
      names: string[],
      docs: Array<string | null>,
      parse: (name: string, raw: unknown) => T,
    ): T[] =>
      names.flatMap((name, i) => {
        const doc = docs[i];
        if (doc === null || doc === undefined) return [];
        try {
          return [parse(name, JSON.parse(doc))];
        } catch (error) {
          invalid.push(`${name}: ${(error as Error).message}`);
          return [];
        }
      });
    // A mapped sid becomes a destination or a caller: one that is not a sid is skipped like any record.
    const validPrincipals: Record<string, string> = {};
    for (const [principal, sid] of Object.entries(principals)) {
      try {
        validPrincipals[principal] = identifier(sid, `principal ${principal}`);
      } catch (error) {
        invalid.push((error as Error).message);
      }
    }
    return {
      version: Number(version ?? '0'),
      contents: {
        issuers: parsed(issuerNames, issuerDocs, (name, raw) =>
          parseIssuer(raw, `issuer ${name}`, this.allowInsecure),
        ),
        tenants: parsed(tenantNames, tenantDocs, (name, raw) =>
          parseTenant(name, raw, `tenant ${name}`),
        ),
        services: parsed(serviceNames, serviceDocs, (name, raw) =>
          parseService(name, raw, `service ${name}`),
        ),
        principals: validPrincipals,
      },
      invalid,
    };
  }

  /** A record key and its name in the index set, gone in one transaction with the version bump. */
  private async removeRecord(key: string, index: string, name: string): Promise<boolean> {
    if ((await this.redis.exists(key)) === 0 && (await this.redis.sismember(index, name)) === 0)
      return false;
    const tx = this.redis.multi();
    tx.del(key);
    tx.srem(index, name);
    await this.commit(tx);
    return true;
  }

  private async commit(tx: ReturnType<RedisClient['multi']>): Promise<void> {
    tx.incr(this.layout.version);
    const results = await tx.exec();
    const failed = results?.find(([error]) => error !== null);
    if (results === null || failed !== undefined)
      throw new Error(`registry write failed${failed ? `: ${(failed[0] as Error).message}` : ''}`);
    await this.redis.publish(this.layout.changes, String(results[results.length - 1]?.[1] ?? ''));
  }
}
