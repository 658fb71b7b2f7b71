import type { JWK } from 'jose';
import type { IssuerRecord } from '../registry/records.js';
import { type FetchLimits, FetchFailedError, fetchJson } from './fetch-json.js';

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
}

export const DEFAULT_REMOTE_JWKS_OPTIONS: Omit<RemoteJwksOptions, 'fetch'> = {
  maxAgeMs: 10 * 60_000,
  maxStaleMs: 24 * 3600_000,
  cooldownMs: 10_000,
};

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

  /** The issuer's current keys; refreshes first when `kid` is unknown or the set is old. */
  async keys(issuer: IssuerRecord, kid: string | undefined): Promise<JWK[]> {
    const state = this.stateOf(issuer.issuer);
    const now = this.now();
    const current = state.current;
    const hasKid = current !== undefined && (kid === undefined || current.keys.some((k) => k.kid === kid));
    const fresh = current !== undefined && now - current.fetchedAt < this.options.maxAgeMs;
    if (hasKid && fresh) return current.keys;
    const mayFetch = current === undefined || !fresh || now - state.lastAttempt >= this.options.cooldownMs;
    if (!mayFetch) return current.keys;
    try {
      return (await this.refresh(issuer, state)).keys;
    } catch (error) {
      if (current !== undefined && now - current.fetchedAt < this.options.maxStaleMs) return current.keys;
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

  private refresh(issuer: IssuerRecord, state: IssuerState): Promise<IssuerKeys> {
    if (state.inflight) return state.inflight;
    state.lastAttempt = this.now();
    const started = performance.now();
    const attempt = this.fetchKeys(issuer, state).then(
      (result) => {
        state.current = result;
        this.options.onFetch?.(issuer.issuer, 'ok', performance.now() - started);
        return result;
      },
      (error: unknown) => {
        this.options.onFetch?.(issuer.issuer, 'error', performance.now() - started);
        throw error;
      },
    );
    state.inflight = attempt.finally(() => {
      state.inflight = undefined;
    });
    return state.inflight;
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
