/** The requests the bench sends: CheckRequests as Envoy builds them, carrying realistic origin tokens. */
import { randomBytes, randomUUID } from 'node:crypto';
import { EnvoyLikeClient } from '../../src/demo/envoy-client.js';
import type { LocalIssuer } from '../../src/demo/local-issuer.js';
import type { HttpAuthzRequest } from './http1.js';
import type { HttpDialect } from './knobs.js';

const USER_AGENTS = [
  'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36',
  'okhttp/4.12.0',
  'curl/8.5.0',
];

/** The headers of the `i`-th original request: what a real call to the orders service carries. */
function originalRequest(i: number): {
  readonly path: string;
  readonly authority: string;
  readonly headers: Record<string, string>;
} {
  return {
    path: `/api/orders/${100000 + (i % 900000)}?include=items`,
    authority: 'orders.internal.example.com',
    headers: {
      'user-agent': USER_AGENTS[i % USER_AGENTS.length] as string,
      accept: 'application/json',
      'accept-encoding': 'gzip, br',
      'x-forwarded-for': `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`,
      'x-forwarded-proto': 'https',
      'x-envoy-expected-rq-timeout-ms': '15000',
      'x-request-id': randomUUID(),
    },
  };
}

/** A CheckRequest as Envoy sends it for one call to `sid`: the headers a real request carries. */
export function checkRequest(token: string, sid: string, i: number): Record<string, unknown> {
  const original = originalRequest(i);
  return EnvoyLikeClient.request({
    token,
    sid,
    headers: {
      ':method': 'GET',
      ':path': original.path,
      ':authority': original.authority,
      ':scheme': 'https',
      ...original.headers,
    },
  });
}

/**
 * The same call as `checkRequest`, asked over the HTTP authorization port: Envoy's `http_service`
 * (the original method and path after `/envoy`, the sid in `x-authz-sid`, as `envoy/envoy-http.yaml`
 * adds it) or forward-auth (`GET /authz/<sid>`, the original request in `X-Forwarded-*`).
 * `budgetMs` is the deadline the proxy announces (`x-envoy-expected-rq-timeout-ms`), as
 * `grpc-timeout` is over gRPC; 0 leaves the service's own default.
 */
export function httpAuthzRequest(
  token: string,
  sid: string,
  i: number,
  dialect: HttpDialect,
  budgetMs: number,
): HttpAuthzRequest {
  const original = originalRequest(i);
  const { 'x-envoy-expected-rq-timeout-ms': _, ...headers } = original.headers;
  const common = {
    ...headers,
    authorization: `Bearer ${token}`,
    ...(budgetMs > 0 ? { 'x-envoy-expected-rq-timeout-ms': String(budgetMs) } : {}),
  };
  return dialect === 'envoy'
    ? {
        method: 'GET',
        path: `/envoy${original.path}`,
        headers: { ...common, host: original.authority, 'x-authz-sid': sid },
      }
    : {
        method: 'GET',
        path: `/authz/${sid}`,
        headers: {
          ...common,
          host: 'authz.internal',
          'x-forwarded-method': 'GET',
          'x-forwarded-uri': original.path,
          'x-forwarded-host': original.authority,
        },
      };
}

/** Origin-token claims padded to about `bytes` characters of compact JWS (a realistic IdP token). */
export function originClaims(i: number, pad: string): { sub: string } & Record<string, unknown> {
  const user = i % 5000;
  return {
    sub: `user-${String(user).padStart(4, '0')}@example.com`,
    aud: ['orders', 'cart', 'billing'],
    azp: 'web-frontend',
    jti: randomUUID(),
    session_state: randomUUID(),
    name: `Bench User ${user}`,
    given_name: 'Bench',
    family_name: `User ${user}`,
    email: `user-${user}@example.com`,
    email_verified: true,
    preferred_username: `bench.user.${user}`,
    roles: ['orders:read', 'orders:write', 'cart:read', 'billing:read'],
    groups: ['/customers', '/customers/eu', '/beta-testers'],
    scope: 'openid profile email orders cart billing offline_access',
    amr: ['pwd', 'otp'],
    acr: 'urn:example:loa:2',
    locale: 'en-GB',
    ...(pad.length > 0 ? { ext: pad } : {}),
  };
}

export async function originPad(issuer: LocalIssuer, bytes: number): Promise<string> {
  const bare = (await issuer.mint(originClaims(0, ''), { ttl: 3600 })).length;
  const missing = bytes - bare - 10; // `,"ext":""` in JSON is 9 bytes → 12 base64 characters
  // Opaque, incompressible text (a signed session reference, say): a run of one letter would make
  // the chain compress far better than real claims do.
  return missing > 0
    ? randomBytes(Math.floor((missing * 3) / 4))
        .toString('base64url')
        .slice(0, Math.floor((missing * 3) / 4))
    : '';
}

export async function mintOrigins(
  issuer: LocalIssuer,
  count: number,
  pad: string,
): Promise<string[]> {
  const tokens: string[] = [];
  for (let at = 0; at < count; at += 256) {
    const batch = Array.from({ length: Math.min(256, count - at) }, (_, k) =>
      issuer.mint(originClaims(at + k, pad), { ttl: 3600 }),
    );
    tokens.push(...(await Promise.all(batch)));
  }
  return tokens;
}
