import type { Logger } from 'pino';
import { untrustedText } from '../untrusted-text.js';
import { MemoryRegistry } from './memory-registry.js';
import type { RedisClient } from '../redis/connection.js';
import type { RegistryStore } from './registry-store.js';
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
}

/**
 * The registry of a fleet: a whole-registry snapshot held in process memory, so a Check never
 * waits on Redis. A change notice on the pub/sub channel (or a version mismatch found by the poll,
 * or a reconnect) reloads the snapshot. While Redis is unreachable the last snapshot keeps serving
 * known issuers; an issuer it does not know may have been added meanwhile, so it is answered as
 * "unavailable" (503), never as "untrusted".
 */
export class RedisRegistry implements RegistryReader {
  private current: MemoryRegistry | undefined;
  private loadedVersion = -1;
  private reloads = 0;
  private issuerDocs = new Map<string, string>();
  private reloading: Promise<void> | undefined;
  private again = false;
  private poller: NodeJS.Timeout | undefined;
  private polling = false;
  private closed = false;
  /** When Redis last confirmed that the snapshot is the registry (-Infinity: never). */
  private confirmedAt = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly store: RegistryStore,
    private readonly subscriber: RedisClient,
    private readonly logger: Logger,
    private readonly options: RedisRegistryOptions,
  ) {}

  /** Subscribe and load in the background: startup never waits for Redis. */
  start(): void {
    this.subscriber.on('message', (channel: string) => {
      if (channel === this.store.layout.changes) this.reload('change notice');
    });
    // Every (re)connection may have missed notices: resubscribe, then resynchronise. In that order:
    // a change written before the subscription took effect is read by the reload that follows it,
    // one written after it sends a notice — none falls between the two and waits for the poll.
    this.subscriber.on('ready', () => {
      // Resynchronised even when SUBSCRIBE failed: the poll (and the next reconnect) cover notices.
      this.subscriber
        .subscribe(this.store.layout.changes)
        .catch((error: Error) =>
          this.logger.warn({ err: error.message }, 'registry subscribe failed'),
        )
        .then(() => this.reload('subscribed'));
    });
    this.store.redis.on('ready', () => this.reload('connected'));
    this.poller = setInterval(() => void this.poll(), this.options.pollIntervalMs);
    this.poller.unref();
    if (this.store.redis.status === 'ready') this.reload('start');
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.poller) clearInterval(this.poller);
    await this.reloading;
  }

  ready(): boolean {
    return this.current !== undefined;
  }

  /** Every reload builds a new snapshot, so count reloads rather than trust Redis's counter alone. */
  version(): number {
    return this.reloads;
  }

  /**
   * Redis answers and the snapshot reflects it; false while disconnected or resynchronising, and
   * while Redis has not confirmed the snapshot for `staleAfterMs`. A Redis that accepts commands
   * but answers none (paused, overloaded, a half-open connection) keeps the client "ready": only
   * the age of the last confirmed sync tells it from a live one.
   */
  private get live(): boolean {
    return this.store.redis.status === 'ready' && this.reloading === undefined && this.fresh();
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
    const snapshot = this.snapshotOrThrow();
    const record = await snapshot.issuer(iss);
    if (record === undefined && !this.live) {
      // A reload under way on a Redis that was answering a moment ago is worth waiting for (the
      // issuer may be what it brings); a stale snapshot's reload is not (Redis has stopped answering).
      if (this.reloading !== undefined && this.store.redis.status === 'ready' && this.fresh()) {
        await this.reloading;
        if (this.live) return this.snapshotOrThrow().issuer(iss);
      }
      throw new RegistryUnavailableError(
        `issuer ${untrustedText(iss)} not in the cached registry and Redis is unreachable or not answering`,
      );
    }
    return record;
  }

  async tenant(tenant: string): Promise<TenantPolicy | undefined> {
    return this.snapshotOrThrow().tenant(tenant);
  }

  async service(sid: string): Promise<ServicePolicy | undefined> {
    return this.snapshotOrThrow().service(sid);
  }

  async principal(principal: string): Promise<string | undefined> {
    return this.snapshotOrThrow().principal(principal);
  }

  /** Resolves when the current (or next) reload is done; for tests and readiness probes. */
  async settled(): Promise<void> {
    while (this.reloading) await this.reloading;
  }

  private snapshotOrThrow(): MemoryRegistry {
    if (this.current === undefined)
      throw new RegistryUnavailableError('registry not loaded yet (Redis unreachable)');
    return this.current;
  }

  private async poll(): Promise<void> {
    if (this.closed || this.reloading || this.polling || this.store.redis.status !== 'ready')
      return;
    this.polling = true;
    try {
      const asked = this.now();
      if ((await this.store.version()) !== this.loadedVersion) this.reload('version changed');
      else this.confirmedAt = Math.max(this.confirmedAt, asked);
    } catch {
      // The next poll or reconnect will try again; serving continues from the snapshot.
    } finally {
      this.polling = false;
    }
  }

  private reload(why: string): void {
    if (this.closed) return;
    if (this.reloading) {
      this.again = true;
      return;
    }
    this.reloading = this.load(why).finally(() => {
      this.reloading = undefined;
      if (this.again) {
        this.again = false;
        this.reload('queued change');
      }
    });
  }

  private async load(why: string): Promise<void> {
    try {
      const asked = this.now();
      const snapshot = await this.store.snapshot();
      for (const problem of snapshot.invalid)
        this.logger.error({ problem }, 'invalid registry record in Redis skipped');
      const docs = new Map(snapshot.contents.issuers.map((i) => [i.issuer, JSON.stringify(i)]));
      const changed = [...new Set([...docs.keys(), ...this.issuerDocs.keys()])].filter(
        (iss) => docs.get(iss) !== this.issuerDocs.get(iss),
      );
      this.current = new MemoryRegistry(snapshot.contents);
      this.reloads++;
      this.issuerDocs = docs;
      this.loadedVersion = snapshot.version;
      this.confirmedAt = Math.max(this.confirmedAt, asked);
      if (changed.length > 0) this.options.onIssuersChanged?.(changed);
      this.logger.debug(
        { why, version: snapshot.version, issuers: docs.size },
        'registry reloaded',
      );
    } catch (error) {
      this.options.onReloadFailed?.();
      this.logger.warn(
        { why, err: (error as Error).message },
        'registry reload failed; serving the last snapshot',
      );
    }
  }
}
