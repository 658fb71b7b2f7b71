import { type CryptoKey, type JWK, importJWK } from 'jose';
import type { IssuerRecord } from '../registry/records.js';
import { isHmac, jwkFitsAlgorithm } from './key-fit.js';
import type { OwnKeys } from './own-keys.js';
import { KeysUnavailableError, type RemoteJwks } from './remote-jwks.js';

export type VerifyKey = CryptoKey | Uint8Array;

/** Tokens without a `kid` are tried against at most this many keys of their issuer. */
const MAX_KID_LESS_CANDIDATES = 4;

/**
 * Verification keys for one level, chosen only among the keys of that level's own issuer:
 * our own keys for our issuer, the environment secret for HMAC issuers, the issuer's JWKS
 * otherwise. Imported keys are cached per JWK object, so a key is imported once per refresh.
 */
export class IssuerKeys {
  private readonly imported = new WeakMap<JWK, Map<string, Promise<CryptoKey | undefined>>>();
  private readonly secrets = new Map<string, { value: string; bytes: Uint8Array }>();

  constructor(
    private readonly own: OwnKeys,
    private readonly remote: RemoteJwks,
    private readonly env: NodeJS.ProcessEnv = process.env,
  ) {}

  async ownKey(kid: string | undefined, alg: string): Promise<VerifyKey[]> {
    const key = await this.own.findVerifyingKey(kid);
    return key !== undefined && key.alg === alg ? [key.publicKey] : [];
  }

  async issuerKeys(issuer: IssuerRecord, alg: string, kid: string | undefined): Promise<VerifyKey[]> {
    if (isHmac(alg)) return [this.secret(issuer)];
    const jwks = await this.remote.keys(issuer, kid);
    const fitting = jwks.filter((jwk) => (kid === undefined || jwk.kid === kid) && jwkFitsAlgorithm(jwk, alg));
    const chosen = kid === undefined ? fitting.slice(0, MAX_KID_LESS_CANDIDATES) : fitting.slice(0, 1);
    const keys = await Promise.all(chosen.map((jwk) => this.importOnce(jwk, alg)));
    return keys.filter((k): k is CryptoKey => k !== undefined);
  }

  private secret(issuer: IssuerRecord): Uint8Array {
    const name = issuer.secretEnv;
    const value = name === undefined ? undefined : this.env[name];
    if (name === undefined || value === undefined || value.length === 0) {
      throw new KeysUnavailableError(`secret for ${issuer.issuer} is not set (${name ?? 'no secret_env'})`);
    }
    let secret = this.secrets.get(name);
    if (secret?.value !== value) {
      secret = { value, bytes: new TextEncoder().encode(value) };
      this.secrets.set(name, secret);
    }
    return secret.bytes;
  }

  private importOnce(jwk: JWK, alg: string): Promise<CryptoKey | undefined> {
    let byAlg = this.imported.get(jwk);
    if (byAlg === undefined) {
      byAlg = new Map();
      this.imported.set(jwk, byAlg);
    }
    let key = byAlg.get(alg);
    if (key === undefined) {
      // A malformed JWK in an issuer's set must not break the keys next to it.
      key = importJWK({ ...jwk, alg }, alg).then(
        (k) => (k instanceof Uint8Array ? undefined : k),
        () => undefined,
      );
      byAlg.set(alg, key);
    }
    return key;
  }
}
