import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { parse, parseAllDocuments } from 'yaml';
import { LocalIssuer } from '../../src/demo/local-issuer.js';
import { ownedHeaders } from '../../src/pipeline/owned-headers.js';
import { buildCheckResponse, buildHttpAnswer } from '../../src/pipeline/respond.js';
import { toCheckInput } from '../../src/server/check-request.js';
import { ENVOY_PREFIX, SID_HEADER, parseHttpAuthz } from '../../src/server/http-authz-request.js';
import { lintEnvoyYaml } from '../../tools/envoy-lint/envoy-schema.js';
import { idpHarness } from '../helpers/idp-harness.js';
import { lastReason, startHarness } from '../helpers/harness.js';
import { inProcess } from '../helpers/in-process.js';
import { ROOT } from '../helpers/processes.js';
import { get } from '../helpers/proxies.js';
import { localIssuer, service } from '../helpers/records.js';

const OWNED = ownedHeaders('authorization');
const lower = (xs: readonly unknown[]): string[] => xs.map((x) => String(x).toLowerCase());

describe('HTTP requests become the CheckInput the gRPC path builds', () => {
  const headers = (h: Record<string, string[]>) => h;
  it('forward-auth: sid from the path, method and path from the forwarded headers', () => {
    const parsed = parseHttpAuthz({
      method: 'GET',
      url: '/authz/orders',
      headers: headers({
        authorization: ['Bearer x'],
        'x-forwarded-method': ['PUT'],
        'x-forwarded-uri': ['/orders/1?a=b'],
      }),
    });
    assert.ok(parsed.ok);
    assert.equal(parsed.dialect, 'forward');
    assert.deepEqual(parsed.input.contextExtensions, { sid: 'orders' });
    assert.equal(parsed.input.method, 'PUT');
    assert.equal(parsed.input.path, '/orders/1?a=b');
  });
  it('envoy: sid from x-authz-sid, the request line is the original request', () => {
    const parsed = parseHttpAuthz({
      method: 'DELETE',
      url: `${ENVOY_PREFIX}/orders/1?x=2`,
      headers: headers({ [SID_HEADER]: ['orders'] }),
    });
    assert.ok(parsed.ok);
    assert.equal(parsed.dialect, 'envoy');
    assert.deepEqual(parsed.input.contextExtensions, { sid: 'orders' });
    assert.equal(parsed.input.method, 'DELETE');
    assert.equal(parsed.input.path, '/orders/1?x=2');
  });
  it('gRPC carries path and method too', () => {
    const input = toCheckInput({
      attributes: { request: { http: { path: '/orders/1', method: 'POST', headers: {} } } },
    });
    assert.equal(input.path, '/orders/1');
    assert.equal(input.method, 'POST');
  });
  for (const [what, url, h, status] of [
    ['two sids', '/authz/orders', { [SID_HEADER]: ['billing'] }, 403],
    ['a header sid without a path sid', '/authz', { [SID_HEADER]: ['billing'] }, 403],
    [
      'a duplicated authorization',
      '/authz/orders',
      // Complete otherwise: only the second credential is wrong with it.
      {
        authorization: ['Bearer a', 'Bearer b'],
        'x-forwarded-method': ['GET'],
        'x-forwarded-uri': ['/'],
      },
      400,
    ],
    [
      'a duplicated sid header',
      '/envoy/',
      { [SID_HEADER]: ['orders', 'billing'], authorization: ['Bearer a'] },
      400,
    ],
    ['missing forwarded uri', '/authz/orders', { 'x-forwarded-method': ['GET'] }, 400],
    ['missing forwarded method', '/authz/orders', { 'x-forwarded-uri': ['/'] }, 400],
    [
      'a non-ASCII forwarded uri',
      '/authz/orders',
      { 'x-forwarded-method': ['GET'], 'x-forwarded-uri': ['/\xff\xfe'] },
      400,
    ],
    ['a non-ASCII request target', '/authz/\xc3(', {}, 400],
    ['a body', '/authz/orders', { 'content-length': ['10'] }, 413],
    ['another path', '/other', {}, 404],
  ] as const) {
    it(`refuses ${what} with ${status}`, () => {
      const parsed = parseHttpAuthz({ method: 'GET', url, headers: h });
      assert.ok(!parsed.ok);
      assert.equal(parsed.refusal.status, status);
    });
  }
});

describe('the HTTP answer is the gRPC answer', () => {
  it('same headers set and removed, same denial status and body', async () => {
    const idp = await LocalIssuer.start();
    try {
      const p = await inProcess({
        contents: {
          issuers: [localIssuer(idp, 'acme')],
        },
      });
      const settings = { forwardHeader: 'authorization', debugReasons: false };
      const allowed = await p.check({ token: await idp.mint({ sub: 'alice' }), sid: 'orders' });
      const grpc = buildCheckResponse(allowed, settings);
      const http = buildHttpAnswer(allowed, settings);
      assert.ok(http.allowed);
      assert.deepEqual(
        http.upstream.set.map(([k, v]) => [k, v]),
        grpc.ok_response?.headers.map((h) => [h.header.key, h.header.value]),
      );
      assert.deepEqual(http.upstream.remove, grpc.ok_response?.headers_to_remove);
      const denied = await p.check({ sid: 'orders' });
      const gd = buildCheckResponse(denied, settings);
      const hd = buildHttpAnswer(denied, settings);
      assert.ok(!hd.allowed);
      assert.equal(hd.denial.status, gd.denied_response?.status.code);
      assert.equal(hd.denial.body, gd.denied_response?.body);
    } finally {
      await idp.stop();
    }
  });
});

describe('the HTTP authorizer on its own port, under bad input', () => {
  const authz = idpHarness({
    env: { MATRYOSHKA_AUTHZ_HTTP_PORT: '0', MATRYOSHKA_IDLE_TIMEOUT_MS: '1000' },
    contents: { services: [service('orders', { tenant: 'acme' })] },
  });
  let port: number;
  before(() => {
    port = authz.h.service.authzHttpPort ?? 0;
  });
  const forward = { 'x-forwarded-method': 'GET', 'x-forwarded-uri': '/orders/1' };

  it('is off unless MATRYOSHKA_AUTHZ_HTTP_PORT is set', async () => {
    const plain = await startHarness();
    try {
      assert.equal(plain.service.authzHttpPort, undefined);
    } finally {
      await plain.stop();
    }
  });

  it('answers Envoy and forward-auth with the same decision as gRPC, logged with its reason', async () => {
    const token = await authz.idp.mint({ sub: 'alice' });
    const viaForward = await get(port, '/authz/orders', {
      authorization: `Bearer ${token}`,
      ...forward,
    });
    assert.equal(viaForward.status, 200);
    assert.equal(viaForward.headers['x-user-id'], 'alice');
    assert.equal(viaForward.headers['x-auth-chain'], 'orders');
    const viaEnvoy = await get(port, '/envoy/orders/1', {
      authorization: `Bearer ${token}`,
      [SID_HEADER]: 'orders',
    });
    assert.equal(viaEnvoy.status, 200);
    // Envoy is told to remove what we did not set (no roles here).
    assert.match(String(viaEnvoy.headers['x-envoy-auth-headers-to-remove']), /x-user-roles/);
    const viaGrpc = await authz.h.client.check({ token, sid: 'orders' });
    assert.equal(viaGrpc.httpStatus, 200);
    const denied = await get(port, '/authz/orders', forward);
    assert.equal(denied.status, 401);
    assert.equal(JSON.parse(denied.body).error, 'unauthorized');
    assert.equal(lastReason(authz.h), 'missing_token');
  });

  it('refuses oversized headers (431) and keeps answering', async () => {
    const big = await get(port, '/authz/orders', {
      ...forward,
      'x-big': 'a'.repeat(200_000),
    }).catch(() => ({ status: 0 }));
    assert.ok(big.status === 431 || big.status === 0, `status ${big.status}`);
    assert.equal((await get(port, '/authz/orders', forward)).status, 401);
  });

  it('closes slow and idle connections, and a flood of them does not slow a Check', async () => {
    const sockets = await Promise.all(
      Array.from(
        { length: 200 },
        () =>
          new Promise<ReturnType<typeof connect>>((resolve) => {
            const s = connect(port, '127.0.0.1', () => resolve(s));
            s.on('error', () => {});
          }),
      ),
    );
    // One sends half a request line and stalls: a slow client.
    sockets[0]?.write('GET /authz/orders HTTP/1.1\r\nx-forwarded-uri: /');
    let floodClosed = 0;
    for (const s of sockets) s.once('close', () => floodClosed++);
    const token = await authz.idp.mint({ sub: 'alice' });
    assert.equal(
      (await get(port, '/authz/orders', { authorization: `Bearer ${token}`, ...forward })).status,
      200,
    );
    assert.equal((await authz.h.client.check({ token, sid: 'orders' })).httpStatus, 200);
    // Not slowed: answered while the flood is still held (no figure in ms; the flood is closed at
    // the stall deadline, so a Check that waited for room would come after it).
    assert.ok(floodClosed < sockets.length, 'answered before the flood was closed');
    const closed = await Promise.all(
      sockets.map(
        (s) =>
          new Promise<boolean>((resolve) => {
            if (s.destroyed) return resolve(true);
            const t = setTimeout(() => resolve(false), 5000);
            s.once('close', () => {
              clearTimeout(t);
              resolve(true);
            });
          }),
      ),
    );
    assert.equal(
      closed.filter((c) => !c).length,
      0,
      'every idle or stalled connection is closed by the server',
    );
  });
});

describe('shipped HTTP-mode configs', () => {
  it('envoy/envoy-http.yaml lints against Envoy v3 and fixes the sid per filter', () => {
    const text = readFileSync(join(ROOT, 'envoy/envoy-http.yaml'), 'utf8');
    const { problems } = lintEnvoyYaml(text);
    assert.deepEqual(problems, []);
    assert.notDeepEqual(lintEnvoyYaml(text.replace('path_prefix:', 'path_prefx:')).problems, []);
    const cfg = parse(text);
    const authz =
      cfg.static_resources.listeners[0].filter_chains[0].filters[0].typed_config.http_filters[0]
        .typed_config;
    assert.equal(authz.http_service.path_prefix, ENVOY_PREFIX);
    assert.equal(authz.http_service.authorization_request.headers_to_add[0].key, SID_HEADER);
    assert.equal(authz.failure_mode_allow, false);
    const allowedIn = authz.allowed_headers.patterns.map((p: { exact: string }) => p.exact);
    assert.ok(!allowedIn.includes(SID_HEADER), 'a client x-authz-sid is not forwarded');
    const upstream =
      authz.http_service.authorization_response.allowed_upstream_headers.patterns.map(
        (p: { exact: string }) => p.exact,
      );
    assert.deepEqual([...upstream].sort(), [...OWNED].sort());
  });
  it('Traefik, Istio and ingress-nginx copy every owned header and fix the sid', () => {
    const [mw] = parseAllDocuments(
      readFileSync(join(ROOT, 'deploy/traefik/forward-auth.yaml'), 'utf8'),
    ).map((d) => d.toJS());
    assert.deepEqual(lower(mw.spec.forwardAuth.authResponseHeaders).sort(), [...OWNED].sort());
    assert.match(mw.spec.forwardAuth.address, /\/authz\/[a-z]+$/);
    assert.ok(!lower(mw.spec.forwardAuth.authRequestHeaders).includes(SID_HEADER));
    assert.equal(mw.spec.forwardAuth.trustForwardHeader, false);
    const istio = parse(readFileSync(join(ROOT, 'deploy/istio/mesh-config-http.yaml'), 'utf8'));
    const provider = istio.spec.meshConfig.extensionProviders[0].envoyExtAuthzHttp;
    assert.equal(provider.pathPrefix, ENVOY_PREFIX);
    assert.equal(provider.failOpen, false);
    assert.ok(provider.includeAdditionalHeadersInCheck[SID_HEADER]);
    assert.ok(!lower(provider.includeRequestHeadersInCheck).includes(SID_HEADER));
    assert.deepEqual(lower(provider.headersToUpstreamOnAllow).sort(), [...OWNED].sort());
    const [ingress] = parseAllDocuments(
      readFileSync(join(ROOT, 'deploy/nginx/ingress-nginx.yaml'), 'utf8'),
    ).map((d) => d.toJS());
    const a = ingress.metadata.annotations;
    assert.match(a['nginx.ingress.kubernetes.io/auth-url'], /\/authz\/orders$/);
    assert.deepEqual(
      lower(a['nginx.ingress.kubernetes.io/auth-response-headers'].split(',')).sort(),
      [...OWNED].sort(),
    );
  });
});
