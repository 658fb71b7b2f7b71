import { SpanStatusCode, trace } from '@opentelemetry/api';
import type { JWK } from 'jose';
import type { IssuerRecord } from '../registry/records.js';
import { type FetchLimits, FetchFailedError, fetchJson } from './fetch-json.js';
import type { SharedJwksCache } from './shared-jwks.js';

const tracer = trace.getTracer('matryoshka-authz');

export interface RemoteJwksOptions {
  fetch: FetchLimits;
  /** Keys older than this are refetched before use (served stale if the refetch fails). */
  maxAgeMs: number;
  /** How long the last good keys keep being served while the IdP is unreachable. */
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
}

/** The IdP could not be asked and nothing usable is cached: the answer is 503, never a denial. */
export class KeysUnavailableError extends Error {
  constructor(detail: string) {
    super(detail);
    this.name = 'KeysUnavailableError';
  }
}

interface IssuerKeys {
  keys: JWK[];
  fetchedAt: number;
}

interface IssuerState {
  current: IssuerKeys | undefined;
  lastAttempt: number;
  inflight: Promise<IssuerKeys> | undefined;
  jwksUri: string | undefined;
}

function readJwks(doc: unknown, url: string): JWK[] {
  const keys = (doc as { keys?: unknown } | null)?.keys;
  if (!Array.isArray(keys)) throw new FetchFailedError(url, 'not a JWK Set');
  return keys.filter((k): k is JWK => k !== null && typeof k === 'object' && typeof (k as JWK).kty === 'string').slice(0, 100);
}

/**
 * Per-issuer JWKS, fetched lazily on first use, kept in process memory, refreshed when a token
 * names a `kid` we do not have (at most once per cooldown, one fetch at a time per issuer), and
 * served stale while the IdP is down. Keys are never looked up across issuers.
 */
export class RemoteJwks {
  private readonly states = new Map<string, IssuerState>();
  private readonly now: () => number;

  constructor(private readonly options: RemoteJwksOptions) {
    this.now = options.now ?? Date.now;
  }

  /**
   * The issuer's current keys; refreshes first when `kid` is unknown or the set is old.
   * `refreshed` says the keys were not simply in memory (the caller's key-cache miss).
   */
  async keys(issuer: IssuerRecord, kid: string | undefined): Promise<{ keys: JWK[]; refreshed: boolean }> {
    const state = this.stateOf(issuer.issuer);
    const now = this.now();
    const current = state.current;
    const hasKid = current !== undefined && (kid === undefined || current.keys.some((k) => k.kid === kid));
    const fresh = current !== undefined && now - current.fetchedAt < this.options.maxAgeMs;
    if (hasKid && fresh) return { keys: current.keys, refreshed: false };
    // A refetch already under way is joined, whatever the cooldown: the kid may be in its answer.
    const mayFetch = current === undefined || !fresh || state.inflight !== undefined || now - state.lastAttempt >= this.options.cooldownMs;
    if (!mayFetch) return { keys: current.keys, refreshed: false };
    try {
      return { keys: (await this.refresh(issuer, state, kid)).keys, refreshed: true };
    } catch (error) {
      if (current !== undefined && now - current.fetchedAt < this.options.maxStaleMs) return { keys: current.keys, refreshed: true };
      throw new KeysUnavailableError(`keys of ${issuer.issuer} unavailable: ${(error as Error).message}`);
    }
  }

  /** Forget an issuer's keys (it was removed from the registry or its jwks_uri changed). */
  forget(issuer: string): void {
    this.states.delete(issuer);
  }

  private stateOf(issuer: string): IssuerState {
    let state = this.states.get(issuer);
    if (state === undefined) {
      state = { current: undefined, lastAttempt: 0, inflight: undefined, jwksUri: undefined };
      this.states.set(issuer, state);
    }
    return state;
  }

  /** One refresh per issuer at a time in this process; `kid` is the key the caller is missing. */
  private refresh(issuer: IssuerRecord, state: IssuerState, kid: string | undefined): Promise<IssuerKeys> {
    if (state.inflight) return state.inflight;
    state.lastAttempt = this.now();
    state.inflight = this.refreshShared(issuer, state, kid)
      .then((result) => {
        state.current = result;
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
  private async refreshShared(issuer: IssuerRecord, state: IssuerState, kid: string | undefined): Promise<IssuerKeys> {
    const shared = this.options.shared;
    if (shared === undefined) return this.fetchFromIdp(issuer, state);
    const adoptable = (set: IssuerKeys | undefined): set is IssuerKeys => {
      if (set === undefined || set.fetchedAt <= (state.current?.fetchedAt ?? -1)) return false;
      const age = this.now() - set.fetchedAt;
      if (age >= this.options.maxAgeMs) return false;
      // A set fetched within the cooldown is the freshest anyone may ask for, kid or no kid.
      return kid === undefined || set.keys.some((k) => k.kid === kid) || age < this.options.cooldownMs;
    };
    const cached = await shared.read(issuer);
    if (adoptable(cached)) return cached;
    const lock = await shared.lock(issuer, this.options.fetch.timeoutMs * 2 + 1000);
    if (lock.acquired) {
      // Another replica may have fetched and released the lock between our read and our lock.
      const meanwhile = await shared.read(issuer);
      if (meanwhile !== undefined && meanwhile.fetchedAt > (cached?.fetchedAt ?? -1) && adoptable(meanwhile)) {
        await lock.release();
        return meanwhile;
      }
    } else {
      const deadline = this.now() + (this.options.lockWaitMs ?? this.options.fetch.timeoutMs + 500);
      while (this.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 25));
        const theirs = await shared.read(issuer);
        if (theirs !== undefined && theirs.fetchedAt > (cached?.fetchedAt ?? -1) && adoptable(theirs)) return theirs;
      }
    }
    try {
      const fetched = await this.fetchFromIdp(issuer, state);
      await shared.write(issuer, fetched, this.options.maxStaleMs);
      return fetched;
    } catch (error) {
      // The IdP is down: a copy another replica fetched is still better than nothing.
      if (cached !== undefined && this.now() - cached.fetchedAt < this.options.maxStaleMs && cached.fetchedAt > (state.current?.fetchedAt ?? -1)) return cached;
      throw error;
    } finally {
      await lock.release();
    }
  }

  private fetchFromIdp(issuer: IssuerRecord, state: IssuerState): Promise<IssuerKeys> {
    return tracer.startActiveSpan('jwks fetch', { attributes: { 'authz.issuer': issuer.issuer, 'authz.tenant': issuer.tenant } }, async (span) => {
      const started = performance.now();
      try {
        const result = await this.fetchKeys(issuer, state);
        span.setAttribute('authz.keys', result.keys.length);
        this.options.onFetch?.(issuer.issuer, 'ok', performance.now() - started);
        return result;
      } catch (error) {
        span.setStatus({ code: SpanStatusCode.ERROR, message: (error as Error).message });
        this.options.onFetch?.(issuer.issuer, 'error', performance.now() - started);
        throw error;
      } finally {
        span.end();
      }
    });
  }

  private async fetchKeys(issuer: IssuerRecord, state: IssuerState): Promise<IssuerKeys> {
    const jwksUri = issuer.jwksUri ?? state.jwksUri ?? (await this.discover(issuer));
    state.jwksUri = issuer.jwksUri === undefined ? jwksUri : undefined;
    const keys = readJwks(await fetchJson(jwksUri, this.options.fetch), jwksUri);
    return { keys, fetchedAt: this.now() };
  }

  /** OIDC discovery; the document must name the registered issuer exactly (OpenID Connect Discovery §4.3). */
  private async discover(issuer: IssuerRecord): Promise<string> {
    const url = `${issuer.issuer.replace(/\/+$/, '')}/.well-known/openid-configuration`;
    const doc = (await fetchJson(url, this.options.fetch)) as { issuer?: unknown; jwks_uri?: unknown } | null;
    if (doc?.issuer !== issuer.issuer) throw new FetchFailedError(url, 'discovery document names another issuer');
    if (typeof doc.jwks_uri !== 'string') throw new FetchFailedError(url, 'discovery document has no jwks_uri');
    const jwksUri = new URL(doc.jwks_uri);
    if (jwksUri.protocol !== 'https:' && !(this.options.fetch.allowInsecure && jwksUri.protocol === 'http:')) {
      throw new FetchFailedError(url, 'jwks_uri is not https');
    }
    return doc.jwks_uri;
  }
}
