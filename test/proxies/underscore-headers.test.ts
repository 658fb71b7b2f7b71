/**
 * A header name with `_` for `-` is the same header to every CGI-style reader (PHP-FPM and other
 * FastCGI, WSGI, Rack: `X_User_Id` and `X-User-Id` both become `HTTP_X_USER_ID`). Envoy's shipped
 * configs reject such names and nginx drops them (`underscores_in_headers off`); through the shipped
 * Caddyfile they must not carry an identity the service did not vouch for, nor a method override
 * the service did not see, to the upstream.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { IDENTITY_HEADERS } from '../../src/pipeline/owned-headers.js';
import { METHOD_OVERRIDE_HEADERS } from '../../src/request-path.js';
import { proxiedAuthz } from '../helpers/proxied-authz.js';
import { type EchoReply, get, SHIPPED_PROXIES } from '../helpers/proxies.js';
import { service } from '../helpers/records.js';

/** How a CGI-style reader names a header. */
const cgi = (name: string): string => name.toLowerCase().replace(/-/g, '_');

for (const [name, start] of SHIPPED_PROXIES) {
  describe(`${name} (shipped config): header names spelled with _ for -`, () => {
    const s = proxiedAuthz(start, [
      service('orders', {
        tenant: 'acme',
        operations: [
          { name: 'read', path: '/orders/*', methods: ['GET'], required_roles: ['reader'] },
          {
            name: 'remove',
            path: '/orders/*',
            methods: ['DELETE'],
            required_roles: ['admin'],
          },
        ],
      }),
      service('billing', { tenant: 'acme' }),
    ]);

    it('a client copy of an identity header under its _ spelling never reaches the upstream', async () => {
      const token = await s.idp.mint({ sub: 'alice', roles: ['reader'] });
      const spoofed = Object.fromEntries(
        IDENTITY_HEADERS.filter((h) => h !== 'txn-token').map((h) => [
          h.replace(/-/g, '_'),
          'spoofed',
        ]),
      );
      const reply = await get(s.proxy.port, '/billing/1', {
        authorization: `Bearer ${token}`,
        ...spoofed,
      });
      assert.equal(reply.status, 200, s.proxy.logs());
      const seen = (JSON.parse(reply.body) as EchoReply).headers;
      for (const [header, value] of Object.entries(seen)) {
        if (!header.includes('_')) continue;
        assert.ok(
          !IDENTITY_HEADERS.some((owned) => cgi(owned) === cgi(header)),
          `${header}: ${String(value)} reached the upstream`,
        );
      }
    });

    it('a method override under its _ spelling never runs a method the service did not decide for', async () => {
      const reader = await s.idp.mint({ sub: 'rita', roles: ['reader'] });
      for (const override of METHOD_OVERRIDE_HEADERS) {
        const reply = await get(s.proxy.port, '/orders/42', {
          authorization: `Bearer ${reader}`,
          [override.replace(/-/g, '_')]: 'DELETE',
        });
        if (reply.status !== 200) continue; // refused: nothing ran
        const seen = (JSON.parse(reply.body) as EchoReply).headers;
        const reached = Object.keys(seen).filter((header) =>
          METHOD_OVERRIDE_HEADERS.some((o) => cgi(o) === cgi(header)),
        );
        assert.deepEqual(reached, [], `${override}: the upstream may run DELETE for a reader`);
      }
    });
  });
}
