/**
 * An identity header the service does not send reaches the upstream as nothing: not the client's
 * copy, not an empty value, and not Caddy 2.6's literal `{http.reverse_proxy.header.X-User-Roles}`
 * (what forward_auth's copy_headers sent there for a header missing from the answer).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { proxiedAuthz } from '../helpers/proxied-authz.js';
import { type EchoReply, get, SHIPPED_PROXIES } from '../helpers/proxies.js';
import { service } from '../helpers/records.js';

for (const [name, start] of SHIPPED_PROXIES) {
  describe(`${name} (shipped config): a header the service did not set is not sent`, () => {
    const s = proxiedAuthz(start, [
      service('orders', { tenant: 'acme' }),
      service('billing', { tenant: 'acme' }),
    ]);

    it('a user without roles: no x-user-roles upstream, whatever the client sent', async () => {
      const token = await s.idp.mint({ sub: 'alice' });
      const spoofs: ReadonlyArray<Record<string, string>> = [{}, { 'x-user-roles': 'admin' }];
      for (const spoof of spoofs) {
        const reply = await get(s.proxy.port, '/orders/1', {
          authorization: `Bearer ${token}`,
          ...spoof,
        });
        assert.equal(reply.status, 200, s.proxy.logs());
        const seen = (JSON.parse(reply.body) as EchoReply).headers;
        assert.equal(seen['x-user-id'], 'alice', 'the headers the service did send arrive');
        assert.equal(seen['x-user-roles'], undefined, JSON.stringify(seen));
        for (const [header, value] of Object.entries(seen))
          assert.doesNotMatch(String(value), /\{http\.reverse_proxy/, header);
      }
    });

    it('a user with roles: the service value, not the client copy', async () => {
      const token = await s.idp.mint({ sub: 'alice', roles: ['reader'] });
      const reply = await get(s.proxy.port, '/orders/1', {
        authorization: `Bearer ${token}`,
        'x-user-roles': 'admin',
      });
      assert.equal(reply.status, 200, s.proxy.logs());
      assert.equal((JSON.parse(reply.body) as EchoReply).headers['x-user-roles'], 'reader');
    });
  });
}
