/**
 * Real nginx and Caddy, each running the shipped deploy/ config, in front of an upstream that routes
 * the way common frameworks do: on the percent-decoded path (nginx `location =`, Go net/http,
 * Spring, Django), case-insensitively (ASP.NET Core, Express), with a `.format` suffix (Rails),
 * decoding twice, folding Unicode look-alikes, dropping `;` parameters, trailing dots or a NUL's
 * tail, running GET for HEAD and honouring method overrides. Whatever spelling a client sends, and
 * whatever X-Forwarded- or X-Original- copies it adds, no handler runs for a caller that lacks the
 * roles of the operation that handler belongs to.
 */
import assert from 'node:assert/strict';
import { type Server, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { idpHarness } from '../helpers/idp-harness.js';
import { SPELLINGS } from '../helpers/path-spellings.js';
import { type RunningProxy, SHIPPED_PROXIES } from '../helpers/proxies.js';
import { rawRequest } from '../helpers/raw-http.js';
import { ordersWithOperations, service } from '../helpers/records.js';

/** The roles each handler of the upstream belongs to (the registry's operations). */
const NEEDS: Readonly<Record<string, string>> = {
  export: 'admin',
  remove: 'admin',
  read: 'reader',
};

/** Every path a common framework may route `raw` as. */
function readingsOf(raw: string): Set<string> {
  const out = new Set<string>();
  const decode = (p: string): string | undefined => {
    try {
      return decodeURIComponent(p);
    } catch {
      return undefined;
    }
  };
  // Dot segments, repeated and back slashes resolved, as Go's path.Clean or nginx's merge do.
  const clean = (p: string): string => {
    const parts: string[] = [];
    for (const part of p.replace(/\\/g, '/').split('/')) {
      if (part === '' || part === '.') continue;
      if (part === '..') parts.pop();
      else parts.push(part);
    }
    return `/${parts.join('/')}`;
  };
  const add = (p: string | undefined): void => {
    if (p === undefined) return;
    const variants = [p, p.split('\0')[0] ?? p, p.replace(/;[^/]*/g, '')];
    for (const v of variants) {
      const c = clean(v);
      for (const w of [c, c.normalize('NFKC')]) {
        const trimmed = w.replace(/[. ]+(?=\/|$)/g, '');
        for (const x of [w, trimmed, w.replace(/\.[^/]*$/, '')]) {
          out.add(clean(x));
          out.add(clean(x).toLowerCase());
        }
      }
    }
  };
  add(raw);
  const once = decode(raw);
  add(once);
  add(once === undefined ? undefined : decode(once));
  // A lenient decoder (IIS of old) reads overlong UTF-8 as the ASCII it spells.
  add(decode(raw.replace(/%c0%ae/gi, '.').replace(/%c0%af/gi, '/')));
  return out;
}

/** The handlers a framework may run for this request. */
function handlersFor(method: string, target: string, headers: Record<string, unknown>): string[] {
  const [path = '', query = ''] = target.split('?');
  const methods = new Set([method, method.toUpperCase()]);
  if (methods.has('HEAD')) methods.add('GET');
  for (const name of ['x-http-method-override', 'x-http-method', 'x-method-override']) {
    const value = headers[name];
    if (typeof value === 'string') methods.add(value.toUpperCase());
  }
  const override = /(?:^|&)_method=([^&]*)/i.exec(query)?.[1];
  if (override !== undefined) methods.add(override.toUpperCase());
  const handlers = new Set<string>();
  for (const p of readingsOf(path)) {
    if (p === '/orders/export') handlers.add('export');
    if (/^\/orders\/[^/]+$/.test(p) && methods.has('DELETE')) handlers.add('remove');
    if (/^\/orders\/[^/]+$/.test(p) && p !== '/orders/export' && methods.has('GET'))
      handlers.add('read');
  }
  return [...handlers];
}

for (const [name, start] of SHIPPED_PROXIES) {
  describe(`${name} (shipped config) in front of an upstream that routes like the frameworks do`, () => {
    const s = idpHarness({
      env: { MATRYOSHKA_AUTHZ_HTTP_PORT: '0' },
      contents: { services: [ordersWithOperations(), service('billing', { tenant: 'acme' })] },
    });
    let upstream: Server;
    let proxy: RunningProxy;
    /** What the upstream ran, by the x-test-id the client sent. */
    const ran = new Map<string, { method: string; target: string; handlers: string[] }>();
    let next = 0;

    before(async () => {
      upstream = createServer((req, res) => {
        const target = req.url ?? '';
        const handlers = handlersFor(req.method ?? '', target, req.headers);
        ran.set(String(req.headers['x-test-id']), {
          method: req.method ?? '',
          target,
          handlers,
        });
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ handlers }));
      });
      await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
      const authzPort = s.h.service.authzHttpPort;
      assert.ok(authzPort !== undefined);
      proxy = await start({ authzPort, upstreamPort: (upstream.address() as AddressInfo).port });
    });
    after(async () => {
      await proxy?.stop();
      upstream?.closeAllConnections();
      await new Promise<void>((resolve) =>
        upstream ? upstream.close(() => resolve()) : resolve(),
      );
    });

    const tokens = new Map<string, string>();
    async function tokenFor(roles: readonly string[]): Promise<string> {
      let token = tokens.get(roles.join(','));
      if (token === undefined) {
        token = await s.idp.mint({ sub: 'alice', roles: [...roles] });
        tokens.set(roles.join(','), token);
      }
      return token;
    }

    /** Send through the proxy; what the upstream ran for it (undefined: never reached). */
    async function send(
      method: string,
      target: string,
      roles: readonly string[],
      extra: Record<string, string> = {},
    ) {
      const id = `t${next++}`;
      const reply = await rawRequest(proxy.port, method, target, {
        authorization: `Bearer ${await tokenFor(roles)}`,
        'x-test-id': id,
        ...extra,
      });
      return { status: reply.status, ran: ran.get(id) };
    }

    /** The handlers that ran for a caller who lacks their roles. */
    const trespass = (handlers: readonly string[], roles: readonly string[]): string[] =>
      handlers.filter((handler) => !roles.includes(NEEDS[handler] ?? ''));

    it('the upstream routes as its frameworks do (the export handler runs for an admin)', async () => {
      const admin = await send('GET', '/orders/export', ['admin']);
      assert.equal(admin.status, 200, proxy.logs());
      assert.deepEqual(admin.ran?.handlers, ['export']);
      const reader = await send('GET', '/orders/42', ['reader']);
      assert.deepEqual(reader.ran?.handlers, ['read']);
      const refused = await send('GET', '/orders/export', ['reader']);
      assert.equal(refused.status, 403);
      assert.equal(refused.ran, undefined);
      // Without the service's view the reader's %65 would reach the export handler.
      assert.deepEqual(handlersFor('GET', '/orders/%65xport', {}).sort(), ['export', 'read']);
    });

    it(`no spelling (${SPELLINGS.length}) runs a handler for a caller without its roles`, async () => {
      const breaches: string[] = [];
      for (const [method, path, roles] of SPELLINGS) {
        if (!path.startsWith('/orders/')) continue; // the proxy routes /orders/* only
        const got = await send(method, path, roles);
        const bad = trespass(got.ran?.handlers ?? [], roles);
        if (bad.length > 0)
          breaches.push(`${method} ${path} by [${roles.join(',')}] ran ${bad.join(',')}`);
      }
      assert.deepEqual(breaches, []);
    });

    it('a client copy of each X-Forwarded-* and X-Original-* name changes nothing', async () => {
      const breaches: string[] = [];
      const copies: ReadonlyArray<Record<string, string>> = [
        { 'x-forwarded-method': 'GET' },
        { 'x-original-method': 'GET' },
        { 'x-forwarded-method': 'GET', 'x-original-method': 'GET' },
        { 'x-forwarded-uri': '/orders/1' },
        { 'x-original-uri': '/orders/1' },
        { 'x-forwarded-uri': '/orders/1', 'x-original-uri': '/orders/1' },
        { 'x-forwarded-host': 'admin.internal', 'x-forwarded-proto': 'https' },
      ];
      for (const copy of copies) {
        // A reader asking to DELETE, or for the export, while describing a read.
        for (const [method, path] of [
          ['DELETE', '/orders/1'],
          ['GET', '/orders/export'],
        ] as const) {
          const got = await send(method, path, ['reader'], copy);
          const bad = trespass(got.ran?.handlers ?? [], ['reader']);
          if (bad.length > 0) breaches.push(`${method} ${path} + ${JSON.stringify(copy)}: ${bad}`);
        }
        // The proxy's own description wins over the client's, so a legitimate request still passes.
        const admin = await send('DELETE', '/orders/1', ['admin'], copy);
        if (admin.status !== 200 || !admin.ran?.handlers.includes('remove'))
          breaches.push(`admin DELETE + ${JSON.stringify(copy)}: ${admin.status}`);
      }
      assert.deepEqual(breaches, []);
    });
  });
}
