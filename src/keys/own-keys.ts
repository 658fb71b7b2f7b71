import { MatryoshkaError, errnoOf, messageOf } from '../errors.js';
import { type JsonWebKey, KeyObject, createPrivateKey, createPublicKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import {
  type CryptoKey,
  type JWK,
  calculateJwkThumbprint,
  exportJWK,
  generateKeyPair,
  importJWK,
} from 'jose';

/** JWE algorithms used to seal containers to ourselves. */
export const SEAL_KEY_ALG = 'ECDH-ES+A256KW';
export const SEAL_CONTENT_ENC = 'A256GCM';

/** Signing and verifying keys are node:crypto KeyObjects (the hot path); sealing keys stay jose's. */
export interface SigningKey {
  readonly kid: string;
  readonly alg: string;
  readonly privateKey: KeyObject;
}

export interface VerifyingKey {
  readonly kid: string;
  readonly alg: string;
  readonly publicKey: KeyObject;
  readonly publicJwk: JWK;
}

const toPrivate = (jwk: JWK): KeyObject =>
  createPrivateKey({ key: jwk as JsonWebKey, format: 'jwk' });
const toPublic = (jwk: JWK): KeyObject =>
  createPublicKey({ key: jwk as JsonWebKey, format: 'jwk' });

export interface SealKeyPair {
  readonly kid: string;
  readonly publicKey: CryptoKey;
  readonly privateKey: CryptoKey;
  readonly publicJwk: JWK;
}

export class KeyFileError extends MatryoshkaError {
  constructor(message: string) {
    super('ERR_KEY_FILE', `MATRYOSHKA_SIGNING_KEYS: ${message}`);
  }
}

const DEFAULT_SIGNING_ALG: Record<string, string> = {
  'EC:P-256': 'ES256',
  'EC:P-384': 'ES384',
  'EC:P-521': 'ES512',
  'OKP:Ed25519': 'EdDSA',
  RSA: 'RS256',
};

function publicPart(jwk: JWK): JWK {
  const {
    d: _d,
    p: _p,
    q: _q,
    dp: _dp,
    dq: _dq,
    qi: _qi,
    oth: _oth,
    k: _k,
    key_ops: _ops,
    ext: _ext,
    ...rest
  } = jwk;
  return rest;
}

/**
 * The service's own keys: the one that signs minted levels, the public keys that verify them
 * (ours, and — with Redis — our peers'), and the key pair that seals containers as JWE.
 */
export class OwnKeys {
  private readonly verifying = new Map<string, VerifyingKey>();
  private readonly sealKeys = new Map<string, SealKeyPair>();
  /** Public keys other replicas published (Redis); replaced wholesale on every refresh. */
  private peers = new Map<string, VerifyingKey>();
  /** When each of our signing keys stopped signing (ms); the current one has none. */
  private readonly retired = new Map<string, number>();
  private peerRefresh: (() => Promise<void>) | undefined;
  private lastPeerRefresh = 0;

  private constructor(
    private signingKey: SigningKey,
    signingPublic: VerifyingKey,
    readonly seal: SealKeyPair,
    extraVerifying: VerifyingKey[],
    extraSeal: SealKeyPair[],
  ) {
    for (const key of [signingPublic, ...extraVerifying]) this.verifying.set(key.kid, key);
    for (const key of [seal, ...extraSeal]) this.sealKeys.set(key.kid, key);
  }

  get signing(): SigningKey {
    return this.signingKey;
  }

  /** A fresh ES256 key takes over signing; the old one keeps verifying what it signed. */
  async rotate(now = Date.now()): Promise<SigningKey> {
    const { signing, verifying } = await generateSigningKey();
    this.verifying.set(verifying.kid, verifying);
    this.retired.set(this.signingKey.kid, now);
    this.signingKey = signing;
    return signing;
  }

  /** Our own public signing keys, each with the time it stopped signing (undefined: still signs). */
  ownPublicKeys(): Array<{ jwk: JWK; retiredAt: number | undefined }> {
    return [...this.verifying.values()].map((k) => ({
      jwk: k.publicJwk,
      retiredAt: this.retired.get(k.kid),
    }));
  }

  /** Forget our retired keys once nothing they signed can still be valid. */
  dropRetiredBefore(cutoff: number): void {
    for (const [kid, at] of this.retired) {
      if (at < cutoff) {
        this.retired.delete(kid);
        this.verifying.delete(kid);
      }
    }
  }

  /** Replace the set of peers' public keys (ours are skipped); keys that do not import are ignored. */
  async setPeerKeys(jwks: readonly JWK[]): Promise<void> {
    const next = new Map<string, VerifyingKey>();
    for (const jwk of jwks) {
      if (typeof jwk.kid !== 'string' || typeof jwk.alg !== 'string' || this.verifying.has(jwk.kid))
        continue;
      const known = this.peers.get(jwk.kid);
      if (known !== undefined) {
        next.set(jwk.kid, known);
        continue;
      }
      try {
        next.set(jwk.kid, {
          kid: jwk.kid,
          alg: jwk.alg,
          publicKey: toPublic(publicPart(jwk)),
          publicJwk: publicPart(jwk),
        });
      } catch {
        // A malformed published key must not hide the others.
      }
    }
    this.peers = next;
  }

  /** Where peers' keys come from; asked again (at most once a second) when a kid is unknown. */
  setPeerRefresh(refresh: () => Promise<void>): void {
    this.peerRefresh = refresh;
  }

  /** A verifying key of ours or of a peer; an unknown kid triggers a rate-limited peer refresh. */
  async findVerifyingKey(kid: string | undefined): Promise<VerifyingKey | undefined> {
    const known = this.verifyingKey(kid);
    if (known !== undefined || kid === undefined || this.peerRefresh === undefined) return known;
    const now = Date.now();
    if (now - this.lastPeerRefresh < 1000) return undefined;
    this.lastPeerRefresh = now;
    await this.peerRefresh().catch(() => undefined);
    return this.verifyingKey(kid);
  }

  /** Fresh ES256 and ECDH-ES P-256 key pairs, kid = RFC 7638 thumbprint. */
  static async generate(): Promise<OwnKeys> {
    const { signing, verifying } = await generateSigningKey();
    return new OwnKeys(signing, verifying, await generateSealKey(), [], []);
  }

  /** A JWK Set of private keys: the first signing key signs, the rest verify; `use: enc` keys seal. */
  static async fromJwkSet(doc: unknown): Promise<OwnKeys> {
    const keys = (doc as { keys?: unknown } | null)?.keys;
    if (!Array.isArray(keys) || keys.length === 0)
      throw new KeyFileError('not a JWK Set with keys');
    const signing: Array<{ priv: KeyObject; pub: VerifyingKey }> = [];
    const seals: SealKeyPair[] = [];
    for (const [i, raw] of keys.entries()) {
      const jwk = raw as JWK;
      if (jwk === null || typeof jwk !== 'object' || typeof jwk.kty !== 'string')
        throw new KeyFileError(`keys[${i}] is not a JWK`);
      if (jwk.kty === 'oct')
        throw new KeyFileError(
          `keys[${i}]: symmetric keys cannot be published; use an asymmetric key`,
        );
      if (typeof jwk.d !== 'string') throw new KeyFileError(`keys[${i}] has no private part`);
      const pubJwk = publicPart(jwk);
      const kid = jwk.kid ?? (await calculateJwkThumbprint(pubJwk));
      try {
        if (jwk.use === 'enc') {
          if (jwk.kty !== 'EC' || jwk.crv !== 'P-256')
            throw new KeyFileError(`keys[${i}]: sealing keys must be EC P-256`);
          seals.push({
            kid,
            privateKey: (await importJWK({ ...jwk, alg: SEAL_KEY_ALG }, SEAL_KEY_ALG)) as CryptoKey,
            publicKey: (await importJWK(
              { ...pubJwk, alg: SEAL_KEY_ALG },
              SEAL_KEY_ALG,
            )) as CryptoKey,
            publicJwk: { ...pubJwk, kid, alg: SEAL_KEY_ALG, use: 'enc' },
          });
        } else {
          const alg =
            jwk.alg ?? DEFAULT_SIGNING_ALG[jwk.kty === 'RSA' ? 'RSA' : `${jwk.kty}:${jwk.crv}`];
          if (alg === undefined)
            throw new KeyFileError(`keys[${i}]: cannot tell its algorithm; set alg`);
          signing.push({
            priv: toPrivate(jwk),
            pub: {
              kid,
              alg,
              publicKey: toPublic(pubJwk),
              publicJwk: { ...pubJwk, kid, alg, use: 'sig' },
            },
          });
        }
      } catch (error) {
        if (error instanceof KeyFileError) throw error;
        throw new KeyFileError(`keys[${i}]: ${messageOf(error)}`);
      }
    }
    const first = signing[0];
    if (first === undefined) throw new KeyFileError('no signing key (a key without use: enc)');
    const seal = seals[0] ?? (await generateSealKey());
    return new OwnKeys(
      { kid: first.pub.kid, alg: first.pub.alg, privateKey: first.priv },
      first.pub,
      seal,
      signing.slice(1).map((k) => k.pub),
      seals.slice(1),
    );
  }

  static async fromFile(path: string): Promise<OwnKeys> {
    let doc: unknown;
    try {
      doc = JSON.parse(readFileSync(path, 'utf8'));
    } catch (error) {
      throw new KeyFileError(`cannot read ${path} as JSON (${errnoOf(error) ?? 'invalid JSON'})`);
    }
    return OwnKeys.fromJwkSet(doc);
  }

  verifyingKey(kid: string | undefined): VerifyingKey | undefined {
    if (kid !== undefined) return this.verifying.get(kid) ?? this.peers.get(kid);
    return this.verifying.size === 1 && this.peers.size === 0
      ? this.verifying.values().next().value
      : undefined;
  }

  sealKey(kid: string | undefined): SealKeyPair | undefined {
    return kid === undefined ? undefined : this.sealKeys.get(kid);
  }

  /** What `/.well-known/jwks.json` serves: public halves only. */
  publicJwks(): { keys: JWK[] } {
    return {
      keys: [
        ...[...this.verifying.values()].map((k) => k.publicJwk),
        ...[...this.peers.values()].map((k) => k.publicJwk),
        ...[...this.sealKeys.values()].map((k) => k.publicJwk),
      ],
    };
  }
}

async function generateSigningKey(): Promise<{ signing: SigningKey; verifying: VerifyingKey }> {
  const pair = await generateKeyPair('ES256', { extractable: true });
  const jwk = publicPart(await exportJWK(pair.publicKey));
  const kid = await calculateJwkThumbprint(jwk);
  return {
    signing: { kid, alg: 'ES256', privateKey: KeyObject.from(pair.privateKey) },
    verifying: {
      kid,
      alg: 'ES256',
      publicKey: KeyObject.from(pair.publicKey),
      publicJwk: { ...jwk, kid, alg: 'ES256', use: 'sig' },
    },
  };
}

async function generateSealKey(): Promise<SealKeyPair> {
  const pair = await generateKeyPair(SEAL_KEY_ALG, { crv: 'P-256', extractable: true });
  const publicJwk = publicPart(await exportJWK(pair.publicKey));
  const kid = await calculateJwkThumbprint(publicJwk);
  return {
    kid,
    publicKey: pair.publicKey,
    privateKey: pair.privateKey,
    publicJwk: { ...publicJwk, kid, alg: SEAL_KEY_ALG, use: 'enc' },
  };
}

/** A fresh JWK Set for `MATRYOSHKA_SIGNING_KEYS`: one ES256 signing key and one sealing key. */
export async function generateKeyFile(): Promise<{ keys: JWK[] }> {
  const sig = await generateKeyPair('ES256', { extractable: true });
  const sigJwk = await exportJWK(sig.privateKey);
  const seal = await generateKeyPair(SEAL_KEY_ALG, { crv: 'P-256', extractable: true });
  const sealJwk = await exportJWK(seal.privateKey);
  return {
    keys: [
      {
        ...sigJwk,
        kid: await calculateJwkThumbprint(publicPart(sigJwk)),
        alg: 'ES256',
        use: 'sig',
      },
      {
        ...sealJwk,
        kid: await calculateJwkThumbprint(publicPart(sealJwk)),
        alg: SEAL_KEY_ALG,
        use: 'enc',
      },
    ],
  };
}
