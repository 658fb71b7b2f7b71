import { MatryoshkaError, messageOf } from '../errors.js';
import { SpanStatusCode, trace } from '@opentelemetry/api';
import type { IssuerRecord } from '../registry/records.js';
import { type FetchLimits, FetchFailedError, fetchJson } from './fetch-json.js';
import {
  type KeyRefusal,
  MAX_KEYS_PER_SET,
  type PublishedKey,
  vetKeySet,
} from './published-keys.js';
import type { SharedJwksCache, SharedKeySet } from './shared-jwks.js';

const tracer = trace.getTracer('matryoshka-authz');

export interface RemoteJwksOptions {
  fetch: FetchLimits;
  /** Keys older than this are refetched in the background; until that lands they are served as they are. */
  maxAgeMs: number;
  /** How long the last good keys keep being served while the IdP is unreachable (or hangs). */
  maxStaleMs: number;
  /** Minimum time between two fetches for one issuer when a token names an unknown `kid`. */
  cooldownMs: number;
  now?: () => number;
  /** Observes every fetch: issuer, outcome and duration. */
  onFetch?: (issuer: string, outcome: 'ok' | 'error', durationMs: number) => void;
  /** Keys and a fetch lock shared by replicas (Redis); absent in embedded mode. */
  shared?: SharedJwksCache;
  /** How long a replica waits for another replica's fetch before fetching itself. */
  lockWaitMs?: number;
  /** A published key was refused at import: called once per issuer and key while the key stays published. */
  onKeyRefused?: (issuer: string, refusal: KeyRefusal) => void;
}

/** The IdP could not be asked and nothing usable is cached: the answer is 503, never a denial. */
export class KeysUnavailableError extends MatryoshkaError {
  constructor(detail: string) {
    super('ERR_KEYS_UNAVAILABLE', detail);
  }
}

/** One issuer's key set as we hold it: only keys within bounds, imported. */
interface KeySet {
  readonly keys: readonly PublishedKey[];
  /** `kid`s of refused keys: known (a token naming one is refused at once, without a refetch), never used. */
  readonly refusedKids: ReadonlySet<string>;
  readonly refusals: readonly KeyRefusal[];
  /** The entries as published (the first MAX_KEYS_PER_SET), for the shared cache. */
  readonly published: readonly unknown[];
  readonly fetchedAt: number;
}

interface IssuerState {
  current: KeySet | undefined;
  lastAttempt: number;
  inflight: Promise<KeySet> | undefined;
  /** A read of the shared cache by a replica that holds nothing yet for this issuer. */
  loading: Promise<void> | undefined;
  jwksUri: string | undefined;
  /** Refusals of the current set already reported, so each is logged and counted once. */
  reported: ReadonlySet<string>;
}

function keySet(entries: readonly unknown[], fetchedAt: number): KeySet {
  const { keys, refusals } = vetKeySet(entries);
  const refusedKids = new Set(refusals.flatMap((r) => (r.kid === undefined ? [] : [r.kid])));
  return { keys, refusedKids, refusals, published: entries.slice(0, MAX_KEYS_PER_SET), fetchedAt };
}

function readJwks(doc: unknown, url: string): unknown[] {
  const keys = (doc as { keys?: unknown } | null)?.keys;
  if (!Array.isArray(keys)) throw new FetchFailedError(url, 'not a JWK Set');
  return keys;
}

const knows = (set: KeySet, kid: string | undefined): boolean =>
  kid === undefined || set.refusedKids.has(kid) || set.keys.some((k) => k.jwk.kid === kid);

/** One key in two sets: the same `kid`, or for keys without one, the same public material. */
const sameKey = (a: PublishedKey, b: PublishedKey): boolean =>
  a.jwk.kid !== undefined || b.jwk.kid !== undefined
    ? a.jwk.kid === b.jwk.kid
    : a.key.equals(b.key);

/** What the fleet shares: the entries as published, so every replica vets (and reports) the same keys. */
const toShared = (set: KeySet): SharedKeySet => ({ keys: set.published, fetchedAt: set.fetchedAt });

/**
 * Per-issuer JWKS, fetched lazily on first use, vetted and imported once per key set
 * (src/keys/published-keys.ts), kept in process memory, refreshed when a token names a `kid` we
 * do not have (at most once per cooldown, one fetch at a time per issuer) and in the background
 * once older than max-age, and served stale while the IdP is down or hangs, up to max-stale.
 * Keys are never looked up across issuers.
 */
export class RemoteJwks {
  private readonly states = new Map<string, IssuerState>();
  private withdrawals = 0;
  private readonly now: () => number;

  constructor(private readonly options: RemoteJwksOptions) {
    this.now = options.now ?? Date.now;
  }

  /**
   * The issuer's keys for a token naming `kid` (or none). Keys we hold that know the `kid` are
   * answered at once, even when old: past max-age a background refresh is started (one per
   * issuer, at most one per cooldown) and the old keys are served until it lands or they pass
   * max-stale — a hanging IdP never holds a check. Only an unknown `kid`, or no usable keys at
   * all, waits for the network. `refreshed` says the keys were not simply in memory.
   */
  async keys(
    issuer: IssuerRecord,
    kid: string | undefined,
  ): Promise<{ keys: readonly PublishedKey[]; refreshed: boolean }> {
    const state = this.stateOf(issuer.issuer);
    if (
      this.usable(state.current) === undefined &&
      this.options.shared !== undefined &&
      state.inflight === undefined
    ) {
      // A replica starting cold adopts what the fleet already holds, stale or not, before waiting on the IdP.
      await this.loadShared(issuer, state);
    }
    const now = this.now();
    const current = this.usable(state.current);
    if (current !== undefined && knows(current, kid)) {
      if (now - current.fetchedAt >= this.options.maxAgeMs) this.revalidate(issuer, state, now);
      return { keys: current.keys, refreshed: false };
    }
    // An unknown kid: a refetch under way is joined (the kid may be in its answer); otherwise at
    // most one fetch per cooldown while we hold usable keys.
    const mayFetch =
      current === undefined ||
      state.inflight !== undefined ||
      now - state.lastAttempt >= this.options.cooldownMs;
    if (!mayFetch) return { keys: current.keys, refreshed: false };
    try {
      return { keys: (await this.refresh(issuer, state, kid)).keys, refreshed: true };
    } catch (error) {
      const fallback = this.usable(state.current);
      if (fallback !== undefined) return { keys: fallback.keys, refreshed: true };
      throw new KeysUnavailableError(`keys of ${issuer.issuer} unavailable: ${messageOf(error)}`);
    }
  }

  /** Forget an issuer's keys (it was removed from the registry or its jwks_uri changed). */
  forget(issuer: string): void {
    if (this.states.delete(issuer)) this.withdrawals++;
  }

  /**
   * Grows whenever a key we held is withdrawn (an IdP stopped publishing it, or its issuer was
   * forgotten): what was verified with such a key must be verified again, not answered from memory.
   */
  get version(): number {
    return this.withdrawals;
  }

  private stateOf(issuer: string): IssuerState {
    let state = this.states.get(issuer);
    if (state === undefined) {
      state = {
        current: undefined,
        lastAttempt: 0,
        inflight: undefined,
        loading: undefined,
        jwksUri: undefined,
        reported: new Set(),
      };
      this.states.set(issuer, state);
    }
    return state;
  }

  /** A set we may still answer from: fresh, or stale within max-stale. */
  private usable(set: KeySet | undefined): KeySet | undefined {
    if (set === undefined) return undefined;
    const age = this.now() - set.fetchedAt;
    return age < this.options.maxAgeMs || age < this.options.maxStaleMs ? set : undefined;
  }

  /** Refresh old keys without anyone waiting: at most one in flight, one started per cooldown. */
  private revalidate(issuer: IssuerRecord, state: IssuerState, now: number): void {
    if (state.inflight !== undefined || now - state.lastAttempt < this.options.cooldownMs) return;
    // The outcome is reported through onFetch; a failure leaves the old keys in place.
    this.refresh(issuer, state, undefined).catch(() => undefined);
  }

  private loadShared(issuer: IssuerRecord, state: IssuerState): Promise<void> {
    state.loading ??= this.readShared(issuer, state.current?.fetchedAt ?? -1)
      .then((set) => {
        if (set !== undefined && this.usable(set) !== undefined)
          this.adopt(issuer.issuer, state, set);
      })
      // The shared cache is an optimisation: without it we simply ask the IdP.
      .catch(() => undefined)
      .finally(() => {
        state.loading = undefined;
      });
    return state.loading;
  }

  /**
   * The fleet's copy when it is newer than `than`, vetted again (Redis may hold a set written by
   * another version); older copies are not imported at all (this is polled while waiting on a lock).
   */
  private async readShared(issuer: IssuerRecord, than: number): Promise<KeySet | undefined> {
    const raw = await this.options.shared?.read(issuer);
    return raw === undefined || raw.fetchedAt <= than ? undefined : keySet(raw.keys, raw.fetchedAt);
  }

  /** `set` becomes the issuer's keys; its refusals not reported for the previous set are reported now. */
  private adopt(issuer: string, state: IssuerState, set: KeySet): void {
    const held = state.current?.keys ?? [];
    if (held.some((old) => !set.keys.some((k) => sameKey(k, old)))) this.withdrawals++;
    state.current = set;
    const ids = new Set(set.refusals.map((r) => r.id));
    for (const refusal of set.refusals)
      if (!state.reported.has(refusal.id)) this.options.onKeyRefused?.(issuer, refusal);
    state.reported = ids;
  }

  /** One refresh per issuer at a time in this process; `kid` is the key the caller is missing. */
  private refresh(
    issuer: IssuerRecord,
    state: IssuerState,
    kid: string | undefined,
  ): Promise<KeySet> {
    if (state.inflight) return state.inflight;
    state.lastAttempt = this.now();
    state.inflight = this.refreshShared(issuer, state, kid)
      .then((result) => {
        this.adopt(issuer.issuer, state, result);
        return result;
      })
      .finally(() => {
        state.inflight = undefined;
      });
    return state.inflight;
  }

  /**
   * Across replicas: adopt a key set another replica fetched recently; otherwise take the lock and
   * fetch; if another replica holds the lock, wait for its result before fetching ourselves.
   */
  private async refreshShared(
    issuer: IssuerRecord,
    state: IssuerState,
    kid: string | undefined,
  ): Promise<KeySet> {
    const shared = this.options.shared;
    if (shared === undefined) return this.fetchFromIdp(issuer, state);
    // A plain boolean, not a type guard: a set that is not adoptable is still a set (the fallback below).
    const adoptable = (set: KeySet): boolean => {
      if (set.fetchedAt <= (state.current?.fetchedAt ?? -1)) return false;
      const age = this.now() - set.fetchedAt;
      if (age >= this.options.maxAgeMs) return false;
      // A set fetched within the cooldown is the freshest anyone may ask for, kid or no kid.
      return knows(set, kid) || age < this.options.cooldownMs;
    };
    const cached = await this.readShared(issuer, -1);
    if (cached !== undefined && adoptable(cached)) return cached;
    const lock = await shared.lock(issuer, this.options.fetch.timeoutMs * 2 + 1000);
    if (lock.acquired) {
      // Another replica may have fetched and released the lock between our read and our lock.
      const meanwhile = await this.readShared(issuer, cached?.fetchedAt ?? -1);
      if (meanwhile !== undefined && adoptable(meanwhile)) {
        await lock.release();
        return meanwhile;
      }
    } else {
      const deadline = this.now() + (this.options.lockWaitMs ?? this.options.fetch.timeoutMs + 500);
      while (this.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 25));
        const theirs = await this.readShared(issuer, cached?.fetchedAt ?? -1);
        if (theirs !== undefined && adoptable(theirs)) return theirs;
      }
    }
    try {
      const fetched = await this.fetchFromIdp(issuer, state);
      await shared.write(issuer, toShared(fetched), this.options.maxStaleMs);
      return fetched;
    } catch (error) {
      // The IdP is down: a copy another replica fetched is still better than nothing.
      if (
        cached !== undefined &&
        this.now() - cached.fetchedAt < this.options.maxStaleMs &&
        cached.fetchedAt > (state.current?.fetchedAt ?? -1)
      )
        return cached;
      throw error;
    } finally {
      await lock.release();
    }
  }

  private fetchFromIdp(issuer: IssuerRecord, state: IssuerState): Promise<KeySet> {
    return tracer.startActiveSpan(
      'jwks fetch',
      { attributes: { 'authz.issuer': issuer.issuer, 'authz.tenant': issuer.tenant } },
      async (span) => {
        const started = performance.now();
        try {
          const result = await this.fetchKeys(issuer, state);
          span.setAttribute('authz.keys', result.keys.length);
          this.options.onFetch?.(issuer.issuer, 'ok', performance.now() - started);
          return result;
        } catch (error) {
          span.setStatus({ code: SpanStatusCode.ERROR, message: messageOf(error) });
          this.options.onFetch?.(issuer.issuer, 'error', performance.now() - started);
          throw error;
        } finally {
          span.end();
        }
      },
    );
  }

  private async fetchKeys(issuer: IssuerRecord, state: IssuerState): Promise<KeySet> {
    const jwksUri = issuer.jwksUri ?? state.jwksUri ?? (await this.discover(issuer));
    state.jwksUri = issuer.jwksUri === undefined ? jwksUri : undefined;
    return keySet(readJwks(await fetchJson(jwksUri, this.options.fetch), jwksUri), this.now());
  }

  /** OIDC discovery; the document must name the registered issuer exactly (OpenID Connect Discovery §4.3). */
  private async discover(issuer: IssuerRecord): Promise<string> {
    const url = `${issuer.issuer.replace(/\/+$/, '')}/.well-known/openid-configuration`;
    const doc = (await fetchJson(url, this.options.fetch)) as {
      issuer?: unknown;
      jwks_uri?: unknown;
    } | null;
    if (doc?.issuer !== issuer.issuer)
      throw new FetchFailedError(url, 'discovery document names another issuer');
    if (typeof doc.jwks_uri !== 'string')
      throw new FetchFailedError(url, 'discovery document has no jwks_uri');
    const jwksUri = new URL(doc.jwks_uri);
    if (
      jwksUri.protocol !== 'https:' &&
      !(this.options.fetch.allowInsecure && jwksUri.protocol === 'http:')
    ) {
      throw new FetchFailedError(url, 'jwks_uri is not https');
    }
    return doc.jwks_uri;
  }
}
