import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { proxiedAuthz } from '../helpers/proxied-authz.js';
import { type EchoReply, get, SHIPPED_PROXIES } from '../helpers/proxies.js';
import { service } from '../helpers/records.js';

/**
 * The HTTP authorizer behind real nginx (auth_request) and Caddy (forward_auth), each running the
 * shipped deploy/ config: a request walks client → proxy → orders → proxy → billing, the upstreams
 * see the service's token and identity and never the client's, denials come back with our status,
 * and a stopped service fails closed.
 */
for (const [name, start] of SHIPPED_PROXIES) {
  describe(`${name} in front of the HTTP authorizer (shipped config)`, () => {
    const s = proxiedAuthz(start, [
      service('orders', { tenant: 'acme' }),
      service('billing', { tenant: 'acme' }),
    ]);

    const origin = () => s.idp.mint({ sub: 'alice', roles: ['buyer'] });
    const spoofed = {
      'x-user-id': 'mallory',
      'x-tenant-id': 'evil',
      'x-auth-chain': 'admin',
      'x-auth-depth': '0',
    };

    it('walks orders → billing through the proxy with minted tokens and our identity headers only', async () => {
      const token = await origin();
      const reply = await get(s.proxy.port, '/orders/items?x=1', {
        authorization: `Bearer ${token}`,
        'x-test-next': '/billing/pay',
        ...spoofed,
      });
      assert.equal(reply.status, 200, s.proxy.logs());
      const first = JSON.parse(reply.body) as EchoReply;
      assert.equal(first.headers['x-user-id'], 'alice');
      assert.equal(first.headers['x-tenant-id'], 'acme');
      assert.equal(first.headers['x-auth-chain'], 'orders');
      const firstToken = String(first.headers['authorization']);
      assert.match(firstToken, /^Bearer /);
      assert.notEqual(firstToken, `Bearer ${token}`, 'the upstream gets the minted token');
      assert.equal(first.next?.status, 200);
      const second = JSON.parse(first.next?.body ?? '{}') as EchoReply;
      assert.equal(second.headers['x-auth-chain'], 'orders,billing');
      assert.equal(second.headers['x-user-id'], 'alice', "the hop's own x-user-id never arrives");
      assert.equal(second.headers['x-tenant-id'], 'acme');
      assert.equal(
        Number(second.headers['x-auth-depth']),
        Number(first.headers['x-auth-depth']) + 1,
      );
      assert.notEqual(second.headers['authorization'], firstToken);
    });

    it('refuses a request without a token with 401, the upstream never reached', async () => {
      const before = s.echo.hits();
      const reply = await get(s.proxy.port, '/orders/items', spoofed);
      assert.equal(reply.status, 401);
      assert.equal(s.echo.hits(), before);
    });

    it('returns the recursion denial (403) from the proxy', async () => {
      const reply = await get(s.proxy.port, '/orders/a', {
        authorization: `Bearer ${await origin()}`,
        'x-test-next': '/billing/b,/orders/c',
      });
      const first = JSON.parse(reply.body) as EchoReply;
      const second = JSON.parse(first.next?.body ?? '{}') as EchoReply;
      assert.equal(second.next?.status, 403);
    });

    it('returns the depth denial (403) from the proxy', async () => {
      s.h.registry.putService(service('billing', { tenant: 'acme', max_depth: 1 }));
      try {
        const reply = await get(s.proxy.port, '/orders/a', {
          authorization: `Bearer ${await origin()}`,
          'x-test-next': '/billing/b',
        });
        assert.equal(reply.status, 200);
        assert.equal((JSON.parse(reply.body) as EchoReply).next?.status, 403);
      } finally {
        s.h.registry.putService(service('billing', { tenant: 'acme' }));
      }
    });

    it('refuses a client that names its own sid in x-authz-sid', async () => {
      const before = s.echo.hits();
      const reply = await get(s.proxy.port, '/orders/items', {
        authorization: `Bearer ${await origin()}`,
        'x-authz-sid': 'billing',
      });
      assert.ok(reply.status >= 400, `status ${reply.status}`);
      assert.equal(s.echo.hits(), before);
    });

    it('fails closed (5xx) once the service is stopped', async () => {
      const token = await origin();
      await s.h.stop();
      const before = s.echo.hits();
      const reply = await get(s.proxy.port, '/orders/items', { authorization: `Bearer ${token}` });
      assert.ok(reply.status >= 500 && reply.status < 600, `status ${reply.status}`);
      assert.equal(s.echo.hits(), before);
    });
  });
}
