import { randomBytes } from 'node:crypto';
import { type IncomingMessage, type Server, type ServerResponse, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair } from 'jose';

/**
 * A real OpenID provider (panva's `oidc-provider`, v9) on 127.0.0.1, plain http, for tests: one
 * confidential client allowed the client_credentials grant, JWT access tokens signed ES256 with a
 * key generated at start, and a count of requests per path so a test can tell how often the
 * service under test fetched discovery and the JWKS.
 *
 * Configuration checked against node-oidc-provider docs/README.md (features.clientCredentials,
 * features.resourceIndicators: defaultResource / getResourceServerInfo with accessTokenFormat
 * 'jwt' and jwt.sign.alg, ttl, jwks, adapter, features.devInteractions) and the v9 sources
 * (lib/shared/check_resource.js, lib/actions/grants/client_credentials.js,
 * lib/models/formats/jwt.js: a client-credentials JWT carries sub = client_id, typ at+jwt).
 */

/** The resource (RFC 8707) a token is issued for; each maps to its own `aud`. */
export const ORDERS_RESOURCE = 'urn:matryoshka:test:orders';
export const BILLING_RESOURCE = 'urn:matryoshka:test:billing';
export const RESOURCE_AUDIENCES: Readonly<Record<string, string>> = Object.freeze({
  [ORDERS_RESOURCE]: 'orders-api',
  [BILLING_RESOURCE]: 'billing-api',
});
const RESOURCE_SCOPE = 'orders:read orders:write';

export interface TokenRequest {
  /** RFC 8707 `resource`; default ORDERS_RESOURCE (aud `orders-api`). */
  resource?: string;
  scope?: string;
}

/** Minimal in-memory storage adapter (docs: `adapter`): the documented way to avoid the dev-adapter warning. */
class MapAdapter {
  private static readonly stores = new Map<
    string,
    Map<string, { payload: Record<string, unknown>; expiresAt: number | undefined }>
  >();
  private readonly store: Map<
    string,
    { payload: Record<string, unknown>; expiresAt: number | undefined }
  >;

  constructor(name: string) {
    let store = MapAdapter.stores.get(name);
    if (store === undefined) {
      store = new Map();
      MapAdapter.stores.set(name, store);
    }
    this.store = store;
  }

  async upsert(id: string, payload: Record<string, unknown>, expiresIn?: number): Promise<void> {
    this.store.set(id, {
      payload,
      expiresAt: typeof expiresIn === 'number' ? Date.now() + expiresIn * 1000 : undefined,
    });
  }

  async find(id: string): Promise<Record<string, unknown> | undefined> {
    const entry = this.store.get(id);
    if (entry === undefined) return undefined;
    if (entry.expiresAt !== undefined && entry.expiresAt <= Date.now()) {
      this.store.delete(id);
      return undefined;
    }
    return entry.payload;
  }

  async findByUserCode(userCode: string): Promise<Record<string, unknown> | undefined> {
    for (const [id, entry] of this.store)
      if (entry.payload['userCode'] === userCode) return this.find(id);
    return undefined;
  }

  async findByUid(uid: string): Promise<Record<string, unknown> | undefined> {
    for (const [id, entry] of this.store) if (entry.payload['uid'] === uid) return this.find(id);
    return undefined;
  }

  async consume(id: string): Promise<void> {
    const entry = this.store.get(id);
    if (entry !== undefined) entry.payload['consumed'] = Math.floor(Date.now() / 1000);
  }

  async destroy(id: string): Promise<void> {
    this.store.delete(id);
  }

  async revokeByGrantId(grantId: string): Promise<void> {
    for (const [id, entry] of this.store)
      if (entry.payload['grantId'] === grantId) this.store.delete(id);
  }
}

interface ProviderInstance {
  callback(): (req: IncomingMessage, res: ServerResponse) => void;
}
type ProviderConstructor = new (
  issuer: string,
  configuration: Record<string, unknown>,
) => ProviderInstance;

/**
 * oidc-provider ships no type declarations, so it is imported by a non-literal specifier (typed
 * here). v9 also prints "Unsupported runtime" on Node 20 at import; that one line is kept out of
 * the test output, every other warning passes through.
 */
interface ProviderModule {
  Provider: ProviderConstructor;
  errors: { InvalidTarget: new (description?: string) => Error };
}

async function loadProvider(): Promise<ProviderModule> {
  const specifier: string = 'oidc-provider';
  const warn = console.warn;
  console.warn = (...args: unknown[]) => {
    if (
      typeof args[0] === 'string' &&
      args[0].includes('oidc-provider WARNING: Unsupported runtime')
    )
      return;
    warn.apply(console, args);
  };
  try {
    return (await import(specifier)) as ProviderModule;
  } finally {
    console.warn = warn;
  }
}

export class TestOidcProvider {
  private constructor(
    private readonly server: Server,
    /** Requests received, by path (query string removed). */
    readonly hits: ReadonlyMap<string, number>,
    readonly issuer: string,
    readonly clientId: string,
    private readonly clientSecret: string,
    readonly tokenEndpoint: string,
    readonly jwksUri: string,
  ) {}

  static async start(): Promise<TestOidcProvider> {
    const { Provider, errors } = await loadProvider();
    const { privateKey } = await generateKeyPair('ES256', { extractable: true });
    const signingJwk = {
      ...(await exportJWK(privateKey)),
      kid: `es256-${randomBytes(6).toString('hex')}`,
      alg: 'ES256',
      use: 'sig',
    };
    const clientId = 'orders-worker';
    const clientSecret = randomBytes(24).toString('base64url');

    // The issuer names the port, so listen first, then build the provider and attach it.
    let handler: ((req: IncomingMessage, res: ServerResponse) => void) | undefined;
    const hits = new Map<string, number>();
    const server = createServer((req, res) => {
      const path = new URL(req.url ?? '/', 'http://placeholder').pathname;
      hits.set(path, (hits.get(path) ?? 0) + 1);
      if (handler === undefined) {
        res.writeHead(503).end();
        return;
      }
      handler(req, res);
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    const { port } = server.address() as AddressInfo;
    const issuer = `http://127.0.0.1:${port}`;

    const provider = new Provider(issuer, {
      adapter: MapAdapter,
      clients: [
        {
          client_id: clientId,
          client_secret: clientSecret,
          grant_types: ['client_credentials'],
          response_types: [],
          redirect_uris: [],
          token_endpoint_auth_method: 'client_secret_basic',
          id_token_signed_response_alg: 'ES256',
        },
      ],
      clientDefaults: { id_token_signed_response_alg: 'ES256' },
      jwks: { keys: [signingJwk] },
      routes: { token: '/token', jwks: '/jwks' },
      ttl: { ClientCredentials: 600, AccessToken: 600 },
      features: {
        devInteractions: { enabled: false },
        clientCredentials: { enabled: true },
        resourceIndicators: {
          enabled: true,
          // No `resource` in the token request: the token is for the orders API.
          defaultResource: async () => ORDERS_RESOURCE,
          getResourceServerInfo: async (_ctx: unknown, resourceIndicator: string) => {
            const audience = RESOURCE_AUDIENCES[resourceIndicator];
            if (audience === undefined) throw new errors.InvalidTarget();
            return {
              scope: RESOURCE_SCOPE,
              audience,
              accessTokenTTL: 600,
              accessTokenFormat: 'jwt',
              jwt: { sign: { alg: 'ES256' } },
            };
          },
        },
      },
    });
    handler = provider.callback();

    // Read discovery once to learn the endpoints the provider really publishes, then forget the
    // hits this start-up made: counts belong to the test.
    const discovery = (await (
      await fetch(`${issuer}/.well-known/openid-configuration`)
    ).json()) as {
      issuer?: unknown;
      token_endpoint?: unknown;
      jwks_uri?: unknown;
    };
    if (
      discovery.issuer !== issuer ||
      typeof discovery.token_endpoint !== 'string' ||
      typeof discovery.jwks_uri !== 'string'
    ) {
      server.close();
      throw new Error(`unexpected discovery document ${JSON.stringify(discovery)}`);
    }
    hits.clear();
    return new TestOidcProvider(
      server,
      hits,
      issuer,
      clientId,
      clientSecret,
      discovery.token_endpoint,
      discovery.jwks_uri,
    );
  }

  /** Times `/.well-known/openid-configuration` was requested since start. */
  get discoveryHits(): number {
    return this.hits.get('/.well-known/openid-configuration') ?? 0;
  }

  /** Times the `jwks_uri` of the discovery document was requested since start. */
  get jwksHits(): number {
    return this.hits.get(new URL(this.jwksUri).pathname) ?? 0;
  }

  /** A real client-credentials token request (client_secret_basic); returns the access_token. */
  async clientCredentialsToken(request: TokenRequest = {}): Promise<string> {
    const body = new URLSearchParams({
      grant_type: 'client_credentials',
      scope: request.scope ?? 'orders:read',
    });
    if (request.resource !== undefined) body.set('resource', request.resource);
    // RFC 6749 §2.3.1: id and secret are form-encoded before Basic.
    const basic = Buffer.from(
      `${encodeURIComponent(this.clientId)}:${encodeURIComponent(this.clientSecret)}`,
    ).toString('base64');
    const response = await fetch(this.tokenEndpoint, {
      method: 'POST',
      headers: {
        authorization: `Basic ${basic}`,
        'content-type': 'application/x-www-form-urlencoded',
        accept: 'application/json',
      },
      body,
    });
    const json = (await response.json()) as {
      access_token?: unknown;
      token_type?: unknown;
      error?: unknown;
      error_description?: unknown;
    };
    if (response.status !== 200 || typeof json.access_token !== 'string') {
      throw new Error(`token request failed: HTTP ${response.status} ${JSON.stringify(json)}`);
    }
    return json.access_token;
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }
}
