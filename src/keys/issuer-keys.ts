import { type KeyObject, createSecretKey } from 'node:crypto';
import type { IssuerRecord } from '../registry/records.js';
import type { Env } from '../env.js';
import { isHmac, jwkFitsAlgorithm, keyFitsAlgorithm } from './algorithms.js';
import type { OwnKeys } from './own-keys.js';
import { KeysUnavailableError, type RemoteJwks } from './remote-jwks.js';

export type VerifyKey = KeyObject;

/** Candidate keys for one level, and whether they had to be fetched (a key-cache miss). */
export interface KeyChoice {
  readonly keys: VerifyKey[];
  readonly refreshed: boolean;
}

/**
 * Tokens without a `kid` are tried against at most this many keys of their issuer (those that
 * fit the algorithm, in published order): with keys bounded at import, a level costs at most four
 * signature checks (four RSA-8192 verifications, ~1–2 ms), however many keys the issuer publishes.
 */
export const MAX_KID_LESS_CANDIDATES = 4;

/**
 * Verification keys for one level, chosen only among the keys of that level's own issuer:
 * our own keys for our issuer, the environment secret for HMAC issuers, the issuer's JWKS
 * otherwise (imported and bounded once per key set, by RemoteJwks).
 */
export class IssuerKeys {
  private readonly secrets = new Map<string, { value: string; key: KeyObject }>();

  constructor(
    private readonly own: OwnKeys,
    private readonly remote: RemoteJwks,
    private readonly env: Env = process.env,
  ) {}

  /** Changes whenever an issuer key we held is withdrawn (see RemoteJwks.version). */
  get version(): number {
    return this.remote.version;
  }

  async ownKey(kid: string | undefined, alg: string): Promise<KeyChoice> {
    const key = await this.own.findVerifyingKey(kid);
    return { keys: key !== undefined && key.alg === alg ? [key.publicKey] : [], refreshed: false };
  }

  async issuerKeys(issuer: IssuerRecord, alg: string, kid: string | undefined): Promise<KeyChoice> {
    if (isHmac(alg)) return { keys: [this.secret(issuer)], refreshed: false };
    const { keys: published, refreshed } = await this.remote.keys(issuer, kid);
    const fitting = published.filter(
      (k) =>
        (kid === undefined || k.jwk.kid === kid) &&
        jwkFitsAlgorithm(k.jwk, alg) &&
        keyFitsAlgorithm(k.key, alg),
    );
    const chosen =
      kid === undefined ? fitting.slice(0, MAX_KID_LESS_CANDIDATES) : fitting.slice(0, 1);
    return { keys: chosen.map((k) => k.key), refreshed };
  }

  private secret(issuer: IssuerRecord): KeyObject {
    const name = issuer.secretEnv;
    const value = name === undefined ? undefined : this.env[name];
    if (name === undefined || value === undefined || value.length === 0) {
      throw new KeysUnavailableError(
        `secret for ${issuer.issuer} is not set (${name ?? 'no secret_env'})`,
      );
    }
    let secret = this.secrets.get(name);
    if (secret?.value !== value) {
      secret = { value, key: createSecretKey(Buffer.from(value, 'utf8')) };
      this.secrets.set(name, secret);
    }
    return secret.key;
  }
}
