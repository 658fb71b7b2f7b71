/**
 * One canonical request view at every entry: the same spellings of one request through the real gRPC
 * server (Envoy's CheckRequest), the HTTP authorizer's Envoy `http_service` dialect, and its
 * forward-auth dialect as nginx (X-Original-*) and as Caddy/Traefik (X-Forwarded-*) describe it.
 *
 * Service `orders`: `export: /orders/export` (admin, listed first), `read: GET /orders/*` (reader),
 * `remove: DELETE /orders/*` (admin), and no deny_unmatched, so whatever falls through gets the
 * service's own rule, which needs no role. A reader must never be allowed on a spelling that any
 * common router (decoding, case-insensitive, .format suffix, raw) sends to the export handler.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { LocalIssuer } from '../../src/demo/local-issuer.js';
import { type Harness, startHarness } from '../helpers/harness.js';
import { SPELLINGS as ROWS } from '../helpers/path-spellings.js';
import { rawHttp } from '../helpers/raw-http.js';
import { issuer, ordersWithOperations } from '../helpers/records.js';

interface Outcome {
  readonly status: number;
  /** The decision's reason and operation; undefined when the transport refused before deciding. */
  readonly decided: { reason: unknown; operation: unknown } | undefined;
}

describe('one canonical request view at every entry', () => {
  let idp: LocalIssuer;
  let h: Harness;
  let authzPort: number;
  before(async () => {
    idp = await LocalIssuer.start();
    h = await startHarness({
      env: { MATRYOSHKA_AUTHZ_HTTP_PORT: '0' },
      contents: {
        issuers: [issuer({ issuer: idp.issuer, tenant: 'acme', jwks_uri: idp.jwksUri })],
        services: [ordersWithOperations()],
      },
    });
    const port = h.service.authzHttpPort;
    assert.ok(port !== undefined);
    authzPort = port;
  });
  after(async () => {
    await h?.stop();
    await idp?.stop();
  });

  /** Run one request, return its status and the decision the service logged for it (if any). */
  async function outcome(run: () => Promise<number>): Promise<Outcome> {
    const before = h.logs.length;
    const status = await run();
    const line = h.logs.slice(before).find((l) => l['msg'] === 'check');
    return {
      status,
      decided:
        line === undefined ? undefined : { reason: line['reason'], operation: line['operation'] },
    };
  }

  type Send = (
    method: string,
    path: string,
    token: string,
    extra?: Record<string, string>,
  ) => Promise<number>;
  const entries: ReadonlyArray<readonly [string, Send]> = [
    [
      'gRPC CheckRequest',
      async (method, path, token, extra = {}) =>
        (await h.client.check({ token, sid: 'orders', method, path, headers: extra })).httpStatus,
    ],
    [
      'Envoy http_service',
      (method, path, token, extra = {}) =>
        rawHttp(authzPort, method, `/envoy${path}`, {
          'x-authz-sid': 'orders',
          authorization: `Bearer ${token}`,
          ...extra,
        }),
    ],
    [
      'forward-auth as nginx (X-Original-URI, X-Original-Method)',
      (method, path, token, extra = {}) =>
        rawHttp(authzPort, 'GET', '/authz/orders', {
          'x-original-uri': path,
          'x-original-method': method,
          authorization: `Bearer ${token}`,
          ...extra,
        }),
    ],
    [
      'forward-auth as Caddy and Traefik (X-Forwarded-Uri, X-Forwarded-Method)',
      (method, path, token, extra = {}) =>
        rawHttp(authzPort, 'GET', '/authz/orders', {
          'x-forwarded-uri': path,
          'x-forwarded-method': method,
          authorization: `Bearer ${token}`,
          ...extra,
        }),
    ],
  ];

  for (const [entry, send] of entries) {
    it(`${entry}: ${ROWS.length} spellings, each decided on the one canonical view`, async () => {
      const tokens = new Map<string, string>();
      const tokenFor = async (roles: readonly string[]): Promise<string> => {
        const key = roles.join(',');
        let token = tokens.get(key);
        if (token === undefined) {
          token = await idp.mint({ sub: 'alice', roles: [...roles] });
          tokens.set(key, token);
        }
        return token;
      };
      const wrong: string[] = [];
      for (const [method, path, roles, expect] of ROWS) {
        const got = await outcome(async () => send(method, path, await tokenFor(roles)));
        const want =
          expect === 'invalid'
            ? { status: 400, reason: 'invalid_path', operation: undefined }
            : expect === 'service'
              ? { status: 200, reason: undefined, operation: undefined }
              : roles.includes(expect === 'read' ? 'reader' : 'admin')
                ? { status: 200, reason: undefined, operation: expect }
                : { status: 403, reason: 'role_missing', operation: expect };
        // A transport that refuses a malformed spelling before deciding (400, no decision) is as
        // good as invalid_path; anything else must be the decision the table names.
        const ok =
          got.status === want.status &&
          (got.decided === undefined
            ? expect === 'invalid'
            : got.decided.reason === want.reason && got.decided.operation === want.operation);
        if (!ok)
          wrong.push(`${method} ${path}: ${JSON.stringify(got)}, want ${JSON.stringify(want)}`);
      }
      assert.deepEqual(wrong, []);
    });
  }

  it('over gRPC, a :path or :method pseudo-header that disagrees with http.path is refused', async () => {
    const token = await idp.mint({ sub: 'alice', roles: ['reader'] });
    const pseudo: ReadonlyArray<Record<string, string>> = [
      { ':path': '/orders/export' },
      { ':method': 'DELETE' },
    ];
    for (const headers of pseudo) {
      const got = await outcome(
        async () =>
          (
            await h.client.check({
              token,
              sid: 'orders',
              method: 'GET',
              path: '/orders/42',
              headers,
            })
          ).httpStatus,
      );
      assert.deepEqual(got, {
        status: 400,
        decided: { reason: 'invalid_path', operation: undefined },
      });
    }
  });

  it('a method-override header naming another method is refused at every entry', async () => {
    const token = await idp.mint({ sub: 'alice', roles: ['reader'] });
    for (const [entry, send] of entries) {
      for (const name of ['x-http-method-override', 'x-http-method', 'x-method-override']) {
        const got = await outcome(() => send('GET', '/orders/42', token, { [name]: 'DELETE' }));
        assert.deepEqual(
          got,
          { status: 400, decided: { reason: 'invalid_path', operation: undefined } },
          `${entry}, ${name}`,
        );
      }
    }
  });
});
