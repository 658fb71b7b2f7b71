import { messageOf } from '../errors.js';
import type { Logger } from 'pino';
import { untrustedText } from '../untrusted-text.js';
import type { MemoryRegistry } from './memory-registry.js';
import type { RedisClient } from '../redis/connection.js';
import { type LogEntry, LogEntryError } from './registry-log.js';
import type { InvalidRecord, ReplicaState } from './replica-state.js';
import type { LogRead, RegistryStore } from './registry-store.js';
import { type RegistryReader, RegistryUnavailableError } from './registry.js';
import type { IssuerRecord, ServicePolicy, TenantPolicy } from './records.js';

export interface RedisRegistryOptions {
  /** Safety net for a lost change notice: compare `{p}:version` this often. */
  pollIntervalMs: number;
  /**
   * How long the snapshot counts as current after Redis last confirmed it (a reload, or a poll
   * that found the same version). Default: three poll intervals.
   */
  staleAfterMs?: number;
  /** Milliseconds on a monotonic clock; injectable for tests. */
  clock?: () => number;
  /** Called with the issuers whose record changed or disappeared (their cached keys are dropped). */
  onIssuersChanged?: (issuers: string[]) => void;
  onReloadFailed?: () => void;
  /** Records that exist but cannot be read, as they are found (the metric counts them by kind). */
  onInvalidRecords?: (records: readonly InvalidRecord[]) => void;
}

/** Log entries read per round trip while catching up. */
const CATCH_UP_BATCH = 32;

/** What a replica has done so far: for tests, the bench and debugging. */
export interface RegistryStats {
  /** The registry version (Redis's) this replica holds; -1 before the first load. */
  readonly version: number;
  readonly fullLoads: number;
  readonly entriesApplied: number;
  readonly records: {
    issuers: number;
    tenants: number;
    services: number;
    principals: number;
    /** Tenant and service records held as unreadable (their requests are refused). */
    unreadable: number;
  };
  /**
   * Why this replica cannot follow Redis although Redis answers (it is then not ready and answers
   * 503); undefined while it follows, and while Redis is merely unreachable.
   */
  readonly cannotFollow: string | undefined;
}

const nextTick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/**
 * The registry of a fleet, held in process memory so a Check never waits on Redis. It follows
 * Redis change by change: a change notice (or a version mismatch found by the poll, or a
 * reconnect) makes it read the log entries after the version it holds and apply each whole, in
 * order, in one tick. Only when the log no longer reaches back that far (a replica that was away
 * for more changes than the log keeps), or at start, does it load everything — in slices, into a
 * state off to the side that replaces the current one at once. While Redis is unreachable the last
 * state keeps serving known issuers; an issuer it does not know may have been added meanwhile, so
 * it is answered as "unavailable" (503), never as "untrusted".
 */
export class RedisRegistry implements RegistryReader {
  private state: ReplicaState | undefined;
  /** The Redis version `state` is at. */
  private applied = -1;
  /** Changes of issuer records applied: what version() reports. */
  private trustChanges = 0;
  private fullLoads = 0;
  private entriesApplied = 0;
  private syncing: Promise<void> | undefined;
  private again = false;
  private poller: NodeJS.Timeout | undefined;
  private polling = false;
  private closed = false;
  /** When Redis last confirmed that the state is the registry (-Infinity: never). */
  private confirmedAt = Number.NEGATIVE_INFINITY;
  /**
   * Set when a catch-up failed while Redis kept answering: the registry moved on and this replica
   * cannot apply it, so what it holds vouches for nothing (not ready, every read 503) until a
   * catch-up succeeds. An unreachable Redis never sets it: then nobody can write, and the last
   * state keeps serving.
   */
  private cannotFollow: string | undefined;

  constructor(
    private readonly store: RegistryStore,
    private readonly subscriber: RedisClient,
    private readonly logger: Logger,
    private readonly options: RedisRegistryOptions,
  ) {}

  /** Subscribe and load in the background: startup never waits for Redis. */
  start(): void {
    this.subscriber.on('message', (channel: string, message: string) => {
      if (channel !== this.store.layout.changes) return;
      // A notice names the version it announces: one already held needs no round trip.
      const announced = Number(message);
      if (Number.isSafeInteger(announced) && announced <= this.applied && this.applied >= 0) return;
      this.sync('change notice');
    });
    // Every (re)connection may have missed notices: resubscribe, then catch up. In that order:
    // a change written before the subscription took effect is read by the catch-up that follows
    // it, one written after it sends a notice — none falls between the two and waits for the poll.
    this.subscriber.on('ready', () => {
      // Caught up even when SUBSCRIBE failed: the poll (and the next reconnect) cover notices.
      this.subscriber
        .subscribe(this.store.layout.changes)
        .catch((error: Error) =>
          this.logger.warn({ err: error.message }, 'registry subscribe failed'),
        )
        .then(() => this.sync('subscribed'));
    });
    this.store.redis.on('ready', () => this.sync('connected'));
    this.poller = setInterval(() => void this.poll(), this.options.pollIntervalMs);
    this.poller.unref();
    if (this.store.redis.status === 'ready') this.sync('start');
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.poller) clearInterval(this.poller);
    await this.syncing;
  }

  ready(): boolean {
    return this.state !== undefined && this.cannotFollow === undefined;
  }

  /**
   * Changes when an issuer record changes (or goes, or comes). The memo keyed on it holds chain
   * verifications only — signatures against an issuer's keys, its algorithms, audiences and
   * mints_for — while tenant, service and principal records are read afresh by every Check after
   * the chain is opened; so a tenant set by the thousand does not throw away every verified chain.
   */
  version(): number {
    return this.trustChanges;
  }

  stats(): RegistryStats {
    return {
      version: this.applied,
      fullLoads: this.fullLoads,
      entriesApplied: this.entriesApplied,
      records: this.state?.registry.counts() ?? {
        issuers: 0,
        tenants: 0,
        services: 0,
        principals: 0,
        unreadable: 0,
      },
      cannotFollow: this.cannotFollow,
    };
  }

  /**
   * Redis answers and the state reflects it; false while disconnected or catching up, and while
   * Redis has not confirmed the state for `staleAfterMs`. A Redis that accepts commands but
   * answers none (paused, overloaded, a half-open connection) keeps the client "ready": only the
   * age of the last confirmed sync tells it from a live one.
   */
  private get live(): boolean {
    return this.store.redis.status === 'ready' && this.syncing === undefined && this.fresh();
  }

  private fresh(): boolean {
    return this.now() - this.confirmedAt <= this.staleAfterMs;
  }

  private get staleAfterMs(): number {
    return this.options.staleAfterMs ?? 3 * this.options.pollIntervalMs;
  }

  private now(): number {
    return (this.options.clock ?? performance.now.bind(performance))();
  }

  async issuer(iss: string): Promise<IssuerRecord | undefined> {
    const record = await this.registryOrThrow().issuer(iss);
    if (record === undefined && !this.live) {
      // A catch-up under way on a Redis that was answering a moment ago is worth waiting for (the
      // issuer may be what it brings); a stale state's is not (Redis has stopped answering).
      if (this.syncing !== undefined && this.store.redis.status === 'ready' && this.fresh()) {
        await this.syncing;
        if (this.live) return this.registryOrThrow().issuer(iss);
      }
      throw new RegistryUnavailableError(
        `issuer ${untrustedText(iss)} not in the cached registry and Redis is unreachable or not answering`,
      );
    }
    return record;
  }

  async tenant(tenant: string): Promise<TenantPolicy | undefined> {
    return this.registryOrThrow().tenant(tenant);
  }

  async service(sid: string): Promise<ServicePolicy | undefined> {
    return this.registryOrThrow().service(sid);
  }

  async principal(principal: string): Promise<string | undefined> {
    return this.registryOrThrow().principal(principal);
  }

  /** Resolves when the current (or next) catch-up is done; for tests and readiness probes. */
  async settled(): Promise<void> {
    while (this.syncing) await this.syncing;
  }

  private registryOrThrow(): MemoryRegistry {
    if (this.state === undefined)
      throw new RegistryUnavailableError('registry not loaded yet (Redis unreachable)');
    if (this.cannotFollow !== undefined)
      throw new RegistryUnavailableError(
        `this replica cannot follow the registry in Redis (${this.cannotFollow})`,
      );
    return this.state.registry;
  }

  private async poll(): Promise<void> {
    if (this.closed || this.syncing || this.polling || this.store.redis.status !== 'ready') return;
    this.polling = true;
    try {
      const asked = this.now();
      if (this.cannotFollow !== undefined) this.sync('retry after failing to follow');
      else if ((await this.store.version()) !== this.applied) this.sync('version changed');
      else this.confirmedAt = Math.max(this.confirmedAt, asked);
    } catch {
      // The next poll or reconnect will try again; serving continues from memory.
    } finally {
      this.polling = false;
    }
  }

  private sync(why: string): void {
    if (this.closed) return;
    if (this.syncing) {
      this.again = true;
      return;
    }
    this.syncing = this.catchUp(why).finally(() => {
      this.syncing = undefined;
      if (this.again) {
        this.again = false;
        this.sync('queued change');
      }
    });
  }

  /** Apply the log from the version held to the version Redis is at; a full load where it cannot. */
  private async catchUp(why: string): Promise<void> {
    try {
      const asked = this.now();
      if (this.state === undefined) {
        await this.loadAll(why);
      } else {
        for (;;) {
          let read: LogRead;
          try {
            read = await this.store.readLog(this.applied, CATCH_UP_BATCH);
          } catch (error) {
            if (!(error instanceof LogEntryError)) throw error;
            // Not ours, or no longer readable: what it changed is in the records.
            this.logger.warn(
              { why, err: error.message },
              'registry log entry undecodable; loading the registry in full',
            );
            await this.loadAll('undecodable log entry');
            break;
          }
          const gap = read.entries[0] !== undefined && read.entries[0].version !== this.applied + 1;
          if (gap || (read.entries.length === 0 && read.version !== this.applied)) {
            await this.loadAll(gap ? 'gap in the log' : 'log does not reach back');
            break;
          }
          if (!(await this.applyEntries(read.entries))) {
            await this.loadAll('gap in the log');
            break;
          }
          if (this.applied >= read.version) break;
        }
      }
      this.confirmedAt = Math.max(this.confirmedAt, asked);
      if (this.cannotFollow !== undefined)
        this.logger.info({ why }, 'registry followed again; ready');
      this.cannotFollow = undefined;
    } catch (error) {
      this.options.onReloadFailed?.();
      const message = messageOf(error);
      if (await this.redisAnswers()) {
        // Redis answers and its peers can follow it: this replica's state is behind a registry it
        // cannot apply, so it stops vouching for it rather than serve what may have been removed.
        if (this.cannotFollow === undefined)
          this.logger.error(
            { why, err: message },
            'registry cannot be followed although Redis answers; not ready, Checks answered 503',
          );
        this.cannotFollow = message.slice(0, 200);
      } else {
        this.logger.warn({ why, err: message }, 'registry sync failed; serving the last state');
      }
    }
  }

  /** Whether Redis answers now: tells "cannot apply what it reads" from an outage. */
  private async redisAnswers(): Promise<boolean> {
    if (this.store.redis.status !== 'ready') return false;
    try {
      await this.store.redis.ping();
      return true;
    } catch {
      return false;
    }
  }

  /** Each entry whole in one tick, in order; false at a gap (nothing after it is applied). */
  private async applyEntries(entries: readonly LogEntry[]): Promise<boolean> {
    const state = this.state as ReplicaState;
    for (const entry of entries) {
      if (entry.version !== this.applied + 1) return false;
      const { changedIssuers, invalid } = state.apply(entry.ops);
      this.applied = entry.version;
      this.entriesApplied++;
      this.reportInvalid(invalid);
      this.issuersChanged(changedIssuers);
      await nextTick();
    }
    return true;
  }

  /** Everything, built off to the side in slices and swapped in at once. */
  private async loadAll(why: string): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      const loaded = await this.store.loadSliced();
      if (loaded === undefined) {
        // The log was trimmed past the load's start while it ran (a burst of writes): again.
        if (attempt < 3) continue;
        throw new RegistryUnavailableError(
          'registry kept changing faster than a full load could follow',
        );
      }
      const changed = this.state === undefined ? [] : loaded.state.differingIssuers(this.state);
      const first = this.state === undefined;
      this.state = loaded.state;
      this.applied = loaded.version;
      this.fullLoads++;
      this.reportInvalid(loaded.invalid);
      this.issuersChanged(first ? [] : changed);
      if (first) this.trustChanges++;
      this.logger.info(
        { why, version: loaded.version, records: loaded.records },
        'registry loaded in full',
      );
      return;
    }
  }

  private issuersChanged(issuers: string[]): void {
    if (issuers.length === 0) return;
    this.trustChanges++;
    this.options.onIssuersChanged?.(issuers);
  }

  private reportInvalid(invalid: readonly InvalidRecord[]): void {
    if (invalid.length === 0) return;
    this.options.onInvalidRecords?.(invalid);
    for (const { record, problem, refuses } of invalid) {
      if (refuses)
        this.logger.error(
          { record, problem },
          'registry record in Redis unreadable; the requests it governs are refused',
        );
      else this.logger.error({ record, problem }, 'invalid registry record in Redis skipped');
    }
  }
}
