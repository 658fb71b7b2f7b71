import { type Server, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  type CryptoKey,
  CompactSign,
  FlattenedSign,
  type JWK,
  type JWTPayload,
  SignJWT,
  calculateJwkThumbprint,
  exportJWK,
  generateKeyPair,
} from 'jose';

export interface LocalIssuerOptions {
  alg?: 'ES256' | 'RS256' | 'PS256' | 'EdDSA';
  host?: string;
  /** Answer JWKS requests this much later (a slow IdP, to keep checks in flight in tests). */
  jwksDelayMs?: number;
}

interface IssuerKey {
  kid: string;
  privateKey: CryptoKey;
  publicJwk: JWK;
}

/**
 * A small identity provider on loopback: OIDC discovery, a JWKS endpoint and token minting with
 * key rotation. It counts requests per path, so tests can prove how often keys were fetched.
 */
export class LocalIssuer {
  readonly hits = { discovery: 0, jwks: 0 };
  private keys: IssuerKey[] = [];
  private constructor(
    private readonly server: Server,
    readonly issuer: string,
    readonly alg: string,
  ) {}

  static async start(options: LocalIssuerOptions = {}): Promise<LocalIssuer> {
    const host = options.host ?? '127.0.0.1';
    let self: LocalIssuer | undefined;
    const server = createServer((req, res) => {
      const path = (req.url ?? '/').split('?')[0];
      if (self === undefined) return void res.writeHead(503).end();
      if (path === '/.well-known/openid-configuration') {
        self.hits.discovery++;
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(
          JSON.stringify({
            issuer: self.issuer,
            jwks_uri: `${self.issuer}/jwks`,
            id_token_signing_alg_values_supported: [self.alg],
          }),
        );
      } else if (path === '/jwks') {
        self.hits.jwks++;
        const body = JSON.stringify({ keys: self.keys.map((k) => k.publicJwk) });
        setTimeout(() => {
          res.writeHead(200, { 'content-type': 'application/json' });
          res.end(body);
        }, options.jwksDelayMs ?? 0);
      } else {
        res.writeHead(404).end();
      }
    });
    await new Promise<void>((resolve) => server.listen(0, host, resolve));
    const { port } = server.address() as AddressInfo;
    self = new LocalIssuer(server, `http://${host}:${port}`, options.alg ?? 'ES256');
    await self.rotate();
    return self;
  }

  get jwksUri(): string {
    return `${this.issuer}/jwks`;
  }

  get currentKid(): string {
    return (this.keys[0] as IssuerKey).kid;
  }

  /** A new signing key becomes current; the old one stays published (as IdPs do while tokens live). */
  async rotate(): Promise<string> {
    const pair = await generateKeyPair(this.alg, { extractable: true });
    const publicJwk = await exportJWK(pair.publicKey);
    const kid = await calculateJwkThumbprint(publicJwk);
    this.keys.unshift({
      kid,
      privateKey: pair.privateKey,
      publicJwk: { ...publicJwk, kid, alg: this.alg, use: 'sig' },
    });
    return kid;
  }

  /** Stop publishing a key (an IdP retiring a compromised key); tokens it signed must stop verifying. */
  withdraw(kid: string): void {
    this.keys = this.keys.filter((k) => k.kid !== kid);
  }

  /** A client token: `sub`, `roles` and whatever else is given; lifetime `ttl` seconds. */
  async mint(
    claims: JWTPayload & { sub: string },
    options: { ttl?: number; iat?: number; kid?: string } = {},
  ): Promise<string> {
    const key = this.keys[0] as IssuerKey;
    const iat = options.iat ?? Math.floor(Date.now() / 1000);
    return new SignJWT(claims)
      .setProtectedHeader({ alg: this.alg, kid: options.kid ?? key.kid, typ: 'JWT' })
      .setIssuer(this.issuer)
      .setIssuedAt(iat)
      .setExpirationTime(iat + (options.ttl ?? 600))
      .sign(key.privateKey);
  }

  /** Listen again on the same address after `stop()`, keys unchanged (an IdP back from an outage). */
  async resume(): Promise<void> {
    const url = new URL(this.issuer);
    await new Promise<void>((resolve) =>
      this.server.listen(Number(url.port), url.hostname, resolve),
    );
  }

  /**
   * Sign any header and payload bytes with the current key: tokens a well-behaved IdP would never
   * issue (odd headers, duplicate members, non-JSON payloads), for attack tests.
   */
  async signCompact(
    header: Record<string, unknown>,
    payload: string | Uint8Array,
    crit?: Record<string, boolean>,
  ): Promise<string> {
    const key = this.keys[0] as IssuerKey;
    const bytes = typeof payload === 'string' ? new TextEncoder().encode(payload) : payload;
    return new CompactSign(bytes)
      .setProtectedHeader({ alg: this.alg, kid: key.kid, ...header } as { alg: string })
      .sign(key.privateKey, crit === undefined ? undefined : { crit });
  }

  /** RFC 7797 unencoded payload (`b64: false`), in compact form with the raw payload. */
  async signUnencoded(payload: string): Promise<string> {
    const key = this.keys[0] as IssuerKey;
    const jws = await new FlattenedSign(new TextEncoder().encode(payload))
      .setProtectedHeader({ alg: this.alg, kid: key.kid, b64: false, crit: ['b64'] })
      .sign(key.privateKey);
    return `${jws.protected}.${payload}.${jws.signature}`;
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }
}
