import { RegistryUnavailableError } from './registry.js';
import { messageOf } from '../errors.js';
import type { RedisClient } from '../redis/connection.js';
import type { RedisLayout } from '../redis/layout.js';
import type { RegistryContents } from './memory-registry.js';
import {
  type LogEntry,
  LogEntryError,
  type LogOp,
  decodeEntry,
  encodeOps,
  entryId,
  versionOfId,
} from './registry-log.js';
import { type InvalidRecord, ReplicaState } from './replica-state.js';
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

/** One record to add or replace. */
type RecordWrite =
  | { readonly kind: 'issuer'; readonly record: IssuerRecord }
  | { readonly kind: 'tenant'; readonly record: TenantPolicy }
  | { readonly kind: 'service'; readonly record: ServicePolicy }
  | { readonly kind: 'principal'; readonly name: string; readonly sid: string };

export interface Snapshot {
  readonly version: number;
  readonly contents: RegistryContents;
  /** Records in Redis that no longer validate (hand edits, older formats): skipped, reported. */
  readonly invalid: readonly string[];
}

/** How many records one import transaction (and its one log entry) carries. */
export const IMPORT_BATCH = 250;
/** Log entries kept (MAXLEN ~): a replica further behind than this reloads in full. */
export const LOG_LENGTH = 1000;
/** Records per slice of a full load: one SSCAN/HSCAN page, one MGET, parsed in one tick. */
const LOAD_SLICE = 250;

type Transaction = ReturnType<RedisClient['multi']>;
/** Queues one change's writes on `tx` and says what it changed (nothing: no write at all). */
type Change = (tx: Transaction) => LogOp[];

export interface StoreOptions {
  /** Log entries kept; default LOG_LENGTH. */
  readonly logLength?: number;
  /** Records per import transaction; default IMPORT_BATCH. */
  readonly importBatch?: number;
}

/** What a replica reads to catch up: log entries after a version, and the version Redis is at. */
export interface LogRead {
  readonly entries: LogEntry[];
  readonly version: number;
}

const nextTick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** The higher of the version counter and the last log entry's version (as `change()` reckons). */
function registryVersion(counter: string | null, last: ReadonlyArray<[string, unknown]>): number {
  const logged = versionOfId(last[0]?.[0] ?? '0-0');
  return Math.max(Number(counter ?? '0') || 0, Number.isNaN(logged) ? 0 : logged);
}

/**
 * The registry as stored in Redis. Every write is one MULTI/EXEC that changes the records, sets
 * the version one higher and appends what changed to the log stream under that version, then a
 * notice on the pub/sub channel; it runs under WATCH of the version, so the records it read first
 * (an issuer's previous tenant) are those it replaces, and concurrent writers are serialised.
 * Records are validated on the way in and again on the way out: Redis is shared state, not a
 * trusted source of shape.
 */
export class RegistryStore {
  private readonly logLength: number;
  private readonly importBatch: number;

  constructor(
    readonly redis: RedisClient,
    readonly layout: RedisLayout,
    private readonly allowInsecure: boolean,
    options: StoreOptions = {},
  ) {
    this.logLength = options.logLength ?? LOG_LENGTH;
    this.importBatch = options.importBatch ?? IMPORT_BATCH;
  }

  async putIssuer(record: IssuerRecord): Promise<void> {
    await this.putRecords([{ kind: 'issuer', record }]);
  }

  /** Returns false when no such issuer was registered (nothing changes then). */
  async removeIssuer(iss: string): Promise<boolean> {
    const version = await this.change(async () => {
      const previous = await this.redis.get(this.layout.issuer(iss));
      if (previous === null) return () => [];
      const old = parseIssuer(JSON.parse(previous), 'stored issuer', true);
      return (tx) => {
        tx.del(this.layout.issuer(iss));
        tx.srem(this.layout.issuers, iss);
        tx.srem(this.layout.tenantIssuers(old.tenant), iss);
        tx.del(this.layout.jwks(old.tenant, iss));
        return [{ kind: 'issuer', name: iss, stored: null }];
      };
    });
    return version !== undefined;
  }

  async putTenant(policy: TenantPolicy): Promise<void> {
    await this.putRecords([{ kind: 'tenant', record: policy }]);
  }

  /**
   * Returns false when the tenant has no policy record. Its issuers stay registered: without the
   * record the tenant falls back to the fail-closed defaults of defaultTenantPolicy().
   */
  async removeTenant(tenant: string): Promise<boolean> {
    return this.removeRecord('tenant', this.layout.tenant(tenant), this.layout.tenants, tenant);
  }

  /** Returns false when the service has no policy record; it then gets its tenant's policy only. */
  async removeService(sid: string): Promise<boolean> {
    return this.removeRecord('service', this.layout.service(sid), this.layout.services, sid);
  }

  async putService(policy: ServicePolicy): Promise<void> {
    await this.putRecords([{ kind: 'service', record: policy }]);
  }

  async mapPrincipal(principal: string, sid: string): Promise<void> {
    identifier(sid, `principal ${principal}`);
    await this.putRecords([{ kind: 'principal', name: principal, sid }]);
  }

  /** Returns false when the principal was not mapped (nothing changes then). */
  async unmapPrincipal(principal: string): Promise<boolean> {
    const version = await this.change(async () => {
      if ((await this.redis.hexists(this.layout.principals, principal)) === 0) return () => [];
      return (tx) => {
        tx.hdel(this.layout.principals, principal);
        return [{ kind: 'principal', name: principal, stored: null }];
      };
    });
    return version !== undefined;
  }

  /**
   * Add or replace every record of `contents` (the registry file pushed to Redis). Records that
   * are in Redis but not in `contents` stay: an import merges, it never deletes (removals are
   * the explicit `remove`/`unmap` commands). Written in transactions of `importBatch` records,
   * each with its one log entry, so a replica applies a batch whole or not at all; the contents
   * have been validated whole before (loadRegistryFile), so no batch fails half-way on a record.
   */
  async importContents(contents: RegistryContents): Promise<void> {
    const writes: RecordWrite[] = [
      ...contents.issuers.map((record): RecordWrite => ({ kind: 'issuer', record })),
      ...contents.tenants.map((record): RecordWrite => ({ kind: 'tenant', record })),
      ...contents.services.map((record): RecordWrite => ({ kind: 'service', record })),
      ...Object.entries(contents.principals).map(
        ([name, sid]): RecordWrite => ({ kind: 'principal', name, sid }),
      ),
    ];
    for (let i = 0; i < writes.length; i += this.importBatch)
      await this.putRecords(writes.slice(i, i + this.importBatch));
  }

  /** Add or replace records in one transaction (one version, one log entry). */
  private async putRecords(writes: readonly RecordWrite[]): Promise<void> {
    await this.change(async () => {
      const l = this.layout;
      const issuers = writes.flatMap((w) => (w.kind === 'issuer' ? [w.record.issuer] : []));
      // An issuer moving to another tenant leaves its old tenant's issuer list.
      const previous = issuers.length === 0 ? [] : await this.redis.mget(issuers.map(l.issuer, l));
      const previousTenant = new Map<string, string>();
      previous.forEach((doc, i) => {
        if (doc === null || doc === undefined) return;
        const old = parseIssuer(JSON.parse(doc), 'stored issuer', true);
        previousTenant.set(issuers[i] as string, old.tenant);
      });
      return (tx) =>
        writes.map((w): LogOp => {
          if (w.kind === 'issuer') {
            const { issuer, tenant } = w.record;
            const stored = JSON.stringify(issuerToRaw(w.record));
            const old = previousTenant.get(issuer);
            if (old !== undefined && old !== tenant) tx.srem(l.tenantIssuers(old), issuer);
            tx.set(l.issuer(issuer), stored);
            tx.sadd(l.issuers, issuer);
            tx.sadd(l.tenantIssuers(tenant), issuer);
            return { kind: 'issuer', name: issuer, stored };
          }
          if (w.kind === 'tenant') {
            const stored = JSON.stringify(tenantToRaw(w.record));
            tx.set(l.tenant(w.record.tenant), stored);
            tx.sadd(l.tenants, w.record.tenant);
            return { kind: 'tenant', name: w.record.tenant, stored };
          }
          if (w.kind === 'service') {
            const stored = JSON.stringify(serviceToRaw(w.record));
            tx.set(l.service(w.record.sid), stored);
            tx.sadd(l.services, w.record.sid);
            return { kind: 'service', name: w.record.sid, stored };
          }
          tx.hset(l.principals, w.name, w.sid);
          return { kind: 'principal', name: w.name, stored: w.sid };
        });
    });
  }

  /**
   * The registry's version: the counter, or the last log entry's version when that is higher (a
   * writer that appended an entry without moving the counter: its change is still past us).
   */
  async version(): Promise<number> {
    const [counter, last] = await Promise.all([
      this.redis.get(this.layout.version),
      this.redis.xrevrange(this.layout.log, '+', '-', 'COUNT', 1),
    ]);
    return registryVersion(counter, last);
  }

  /**
   * Log entries after `after` (at most `count`) and the version Redis is at, read in one
   * transaction so the two agree.
   */
  async readLog(after: number, count: number): Promise<LogRead> {
    const results = await this.redis
      .multi()
      .xrange(this.layout.log, entryId(after + 1), '+', 'COUNT', count)
      .get(this.layout.version)
      .xrevrange(this.layout.log, '+', '-', 'COUNT', 1)
      .exec();
    const failed = results?.find(([error]) => error !== null);
    if (results === null || failed !== undefined)
      throw new RegistryUnavailableError(
        `registry log read failed${failed ? `: ${messageOf(failed[0])}` : ''}`,
      );
    const raw = (results[0]?.[1] ?? []) as Array<[string, string[]]>;
    return {
      entries: raw.map(([id, fields]) => decodeEntry(id, fields)),
      version: registryVersion(
        (results[1]?.[1] ?? null) as string | null,
        (results[2]?.[1] ?? []) as Array<[string, string[]]>,
      ),
    };
  }

  /**
   * The whole registry for a replica, in slices (an SSCAN/HSCAN page and one MGET each, parsed in
   * one tick, then a yield to the event loop) so a large registry never holds the loop. The slices
   * are read across many versions, so the load starts at the version Redis was at and replays the
   * log from there: a record changed meanwhile ends at its latest value, and one that was not is
   * the same at every version — the result is the registry at the version the replay ends on.
   * Returns undefined when the log no longer reaches back to the start (trimmed during the load).
   */
  async loadSliced(): Promise<
    { state: ReplicaState; version: number; invalid: InvalidRecord[]; records: number } | undefined
  > {
    const l = this.layout;
    // Past every entry already logged: an entry that cannot be decoded is behind the load, whose
    // records hold what it changed; only one written during the load is replayed.
    const start = await this.version();
    const state = new ReplicaState(this.allowInsecure);
    const invalid: InvalidRecord[] = [];
    let records = 0;
    const sets = [
      ['issuer', l.issuers, (n: string) => l.issuer(n)],
      ['tenant', l.tenants, (n: string) => l.tenant(n)],
      ['service', l.services, (n: string) => l.service(n)],
    ] as const;
    for (const [kind, index, keyOf] of sets) {
      let cursor = '0';
      do {
        const [next, names] = await this.redis.sscan(index, cursor, 'COUNT', LOAD_SLICE);
        cursor = next;
        const docs = names.length === 0 ? [] : await this.redis.mget(names.map(keyOf));
        const ops = names.flatMap((name, i): LogOp[] => {
          const stored = docs[i];
          return stored === null || stored === undefined ? [] : [{ kind, name, stored }];
        });
        invalid.push(...state.apply(ops).invalid);
        records += ops.length;
        await nextTick();
      } while (cursor !== '0');
    }
    let cursor = '0';
    do {
      const [next, flat] = await this.redis.hscan(l.principals, cursor, 'COUNT', LOAD_SLICE);
      cursor = next;
      const ops: LogOp[] = [];
      for (let i = 0; i + 1 < flat.length; i += 2)
        ops.push({ kind: 'principal', name: flat[i] as string, stored: flat[i + 1] as string });
      invalid.push(...state.apply(ops).invalid);
      records += ops.length;
      await nextTick();
    } while (cursor !== '0');
    let version = start;
    for (;;) {
      let read: LogRead;
      try {
        read = await this.readLog(version, 16);
      } catch (error) {
        // An undecodable entry written during the load: start again, past it.
        if (error instanceof LogEntryError) return undefined;
        throw error;
      }
      const first = read.entries[0];
      if (first === undefined) {
        if (read.version === version) break;
        // Past us with nothing logged after us (trimmed), or gone back (flushed): start again.
        return undefined;
      }
      for (const entry of read.entries) {
        if (entry.version !== version + 1) return undefined;
        invalid.push(...state.apply(entry.ops).invalid);
        version = entry.version;
        await nextTick();
      }
    }
    return { state, version, invalid, records };
  }

  /** The whole registry, read in a few round trips (the CLI's list and show commands). */
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
          invalid.push(`${name}: ${messageOf(error)}`);
          return [];
        }
      });
    // A mapped sid becomes a destination or a caller: one that is not a sid is skipped like any record.
    const validPrincipals: Record<string, string> = {};
    for (const [principal, sid] of Object.entries(principals)) {
      try {
        validPrincipals[principal] = identifier(sid, `principal ${principal}`);
      } catch (error) {
        invalid.push(messageOf(error));
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
  private async removeRecord(
    kind: 'tenant' | 'service',
    key: string,
    index: string,
    name: string,
  ): Promise<boolean> {
    const version = await this.change(async () => {
      if ((await this.redis.exists(key)) === 0 && (await this.redis.sismember(index, name)) === 0)
        return () => [];
      return (tx) => {
        tx.del(key);
        tx.srem(index, name);
        return [{ kind, name, stored: null }];
      };
    });
    return version !== undefined;
  }

  /**
   * One change: WATCH the version, read what the change depends on (`prepare`), then one
   * MULTI/EXEC with the writes, the new version and the log entry; again if another writer got
   * there first. Returns the new version, or undefined when the change turned out to be none.
   */
  private async change(prepare: () => Promise<Change>): Promise<number | undefined> {
    const l = this.layout;
    for (let attempt = 0; attempt < 100; attempt++) {
      await this.redis.watch(l.version);
      let committed: Array<[Error | null, unknown]> | null;
      let version: number;
      try {
        const [current, last] = await Promise.all([
          this.redis.get(l.version),
          this.redis.xrevrange(l.log, '+', '-', 'COUNT', 1),
        ]);
        const queue = await prepare();
        // Above both the counter and the last entry: a version counter set back by hand must not
        // make the log's ids go backwards (XADD would refuse them).
        const lastLogged = versionOfId(last[0]?.[0] ?? '0-0');
        version =
          Math.max(Number(current ?? '0') || 0, Number.isNaN(lastLogged) ? 0 : lastLogged) + 1;
        const tx = this.redis.multi();
        const ops = queue(tx);
        if (ops.length === 0) {
          // Nothing was queued on the server (exec sends MULTI with the commands): just let go.
          await this.redis.unwatch();
          return undefined;
        }
        tx.set(l.version, String(version));
        tx.xadd(l.log, 'MAXLEN', '~', this.logLength, entryId(version), 'ops', encodeOps(ops));
        committed = await tx.exec();
      } catch (error) {
        await this.redis.unwatch().catch(() => undefined);
        throw error;
      }
      if (committed === null) continue;
      const failed = committed.find(([error]) => error !== null);
      if (failed !== undefined)
        throw new RegistryUnavailableError(`registry write failed: ${messageOf(failed[0])}`);
      await this.redis.publish(l.changes, String(version));
      return version;
    }
    throw new RegistryUnavailableError(
      'registry write failed: other writers kept changing the registry',
    );
  }
}
