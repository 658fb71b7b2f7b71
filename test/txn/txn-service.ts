import { type Server, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  type CryptoKey,
  type JWK,
  type JWTPayload,
  SignJWT,
  calculateJwkThumbprint,
  exportJWK,
  generateKeyPair,
} from 'jose';
import { LocalIssuer } from '../../src/demo/local-issuer.js';
import type { IssuerRecord } from '../../src/registry/records.js';
import { type Harness, type HarnessOptions, startHarness } from '../helpers/harness.js';
import { localIssuer } from '../helpers/records.js';
import { suiteParts } from '../helpers/suite-parts.js';

/**
 * An outside Transaction Token Service, as one would build it with `jose`: an ES256 key published
 * at /jwks, and Txn-Tokens signed with `typ: txntoken+jwt` and the draft's claims. Nothing of the
 * service under test is used to make them.
 */
export class TxnTokenService {
  private constructor(
    private readonly server: Server,
    readonly issuer: string,
    private readonly kid: string,
    private readonly privateKey: CryptoKey,
  ) {}

  static async start(): Promise<TxnTokenService> {
    const pair = await generateKeyPair('ES256', { extractable: true });
    const jwk = await exportJWK(pair.publicKey);
    const kid = await calculateJwkThumbprint(jwk);
    const published: JWK = { ...jwk, kid, alg: 'ES256', use: 'sig' };
    const server = createServer((req, res) => {
      if (req.url === '/jwks') {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ keys: [published] }));
      } else res.writeHead(404).end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    return new TxnTokenService(server, `http://127.0.0.1:${port}`, kid, pair.privateKey);
  }

  get jwksUri(): string {
    return `${this.issuer}/jwks`;
  }

  /** A Txn-Token for `aud`; `typ` and any claim can be overridden to build broken ones. */
  async issue(
    claims: JWTPayload & { aud: string; sub: string; txn: string },
    options: { typ?: string | undefined; ttl?: number; iat?: number } = {},
  ): Promise<string> {
    const iat = options.iat ?? Math.floor(Date.now() / 1000);
    const header = {
      alg: 'ES256',
      kid: this.kid,
      ...('typ' in options ? {} : { typ: 'txntoken+jwt' }),
    };
    if (options.typ !== undefined) Object.assign(header, { typ: options.typ });
    return new SignJWT({
      scope: 'trade.stocks',
      req_wl: 'apigateway.td.example',
      tctx: { roles: ['buyer'] },
      ...claims,
    })
      .setProtectedHeader(header)
      .setIssuer(this.issuer)
      .setIssuedAt(iat)
      .setExpirationTime(iat + (options.ttl ?? 300))
      .sign(this.privateKey);
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/** The payload of a compact JWS, unverified (for reading what a token says in assertions). */
export function payloadOf(token: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(token.split('.')[1] as string, 'base64url').toString('utf8'));
}

/** The record registering `tts` as a Transaction Token Service of `tenant`, with further raw fields. */
export const txnServiceIssuer = (
  tts: TxnTokenService,
  tenant: string,
  raw: Record<string, unknown> = {},
): IssuerRecord => localIssuer(tts, tenant, { role: 'txn_token_service', ...raw });

/** Tenant acme's IdP beside its Transaction Token Service, whose Txn-Tokens carry roles in `tctx.roles`. */
export const idpAndTts = (idp: LocalIssuer, tts: TxnTokenService): IssuerRecord[] => [
  localIssuer(idp, 'acme'),
  txnServiceIssuer(tts, 'acme', { roles_claim: 'tctx.roles' }),
];

/** The trust domain the Txn-Token suites run the service under (the Txn-Tokens' audience). */
export const TRUST_DOMAIN = 'td.example';

/**
 * One describe's IdP and Transaction Token Service, and the service (a gRPC harness) under
 * TRUST_DOMAIN with the records and settings `build` makes of them; started before the suite's
 * tests, stopped after them.
 */
export function txnSuite(build: (idp: LocalIssuer, tts: TxnTokenService) => HarnessOptions): {
  readonly idp: LocalIssuer;
  readonly tts: TxnTokenService;
  readonly h: Harness;
} {
  return suiteParts(async (own) => {
    const idp = own(await LocalIssuer.start());
    const tts = own(await TxnTokenService.start());
    const options = build(idp, tts);
    const h = own(
      await startHarness({
        ...options,
        env: { MATRYOSHKA_TRUST_DOMAIN: TRUST_DOMAIN, ...options.env },
      }),
    );
    return { idp, tts, h };
  });
}
