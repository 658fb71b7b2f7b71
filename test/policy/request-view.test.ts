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
import { before, describe, it } from 'node:test';
import { idpHarness } from '../helpers/idp-harness.js';
import { SPELLINGS as ROWS } from '../helpers/path-spellings.js';
import { rawHttp } from '../helpers/raw-http.js';
import { ordersWithOperations } from '../helpers/records.js';

interface Outcome {
  readonly status: number;
  /** The decision's reason and operation; undefined when the transport refused before deciding. */
  readonly decided: { reason: unknown; operation: unknown } | undefined;
}

describe('one canonical request view at every entry', () => {
  const s = idpHarness({
    env: { MATRYOSHKA_AUTHZ_HTTP_PORT: '0' },
    contents: { services: [ordersWithOperations()] },
  });
  let authzPort: number;
  before(() => {
    const port = s.h.service.authzHttpPort;
    assert.ok(port !== undefined);
    authzPort = port;
  });

  /** Run one request, return its status and the decision the service logged for it (if any). */
  async function outcome(run: () => Promise<number>): Promise<Outcome> {
    const before = s.h.logs.length;
    const status = await run();
    const line = s.h.logs.slice(before).find((l) => l['msg'] === 'check');
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
  /** Forward-auth: the original request in the two headers a proxy names it by. */
  const forwardAuth =
    (uriHeader: string, methodHeader: string): Send =>
    (method, path, token, extra = {}) =>
      rawHttp(authzPort, 'GET', '/authz/orders', {
        [uriHeader]: path,
        [methodHeader]: method,
        authorization: `Bearer ${token}`,
        ...extra,
      });
  const entries: ReadonlyArray<readonly [string, Send]> = [
    [
      'gRPC CheckRequest',
      async (method, path, token, extra = {}) =>
        (await s.h.client.check({ token, sid: 'orders', method, path, headers: extra })).httpStatus,
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
      forwardAuth('x-original-uri', 'x-original-method'),
    ],
    [
      'forward-auth as Caddy and Traefik (X-Forwarded-Uri, X-Forwarded-Method)',
      forwardAuth('x-forwarded-uri', 'x-forwarded-method'),
    ],
  ];

  for (const [entry, send] of entries) {
    it(`${entry}: ${ROWS.length} spellings, each decided on the one canonical view`, async () => {
      const tokens = new Map<string, string>();
      const tokenFor = async (roles: readonly string[]): Promise<string> => {
        const key = roles.join(',');
        let token = tokens.get(key);
        if (token === undefined) {
          token = await s.idp.mint({ sub: 'alice', roles: [...roles] });
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
    const token = await s.idp.mint({ sub: 'alice', roles: ['reader'] });
    const pseudo: ReadonlyArray<Record<string, string>> = [
      { ':path': '/orders/export' },
      { ':method': 'DELETE' },
    ];
    for (const headers of pseudo) {
      const got = await outcome(
        async () =>
          (
            await s.h.client.check({
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
    const token = await s.idp.mint({ sub: 'alice', roles: ['reader'] });
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
