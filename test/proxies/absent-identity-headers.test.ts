/**
 * An identity header the service does not send reaches the upstream as nothing: not the client's
 * copy, not an empty value, and not Caddy 2.6's literal `{http.reverse_proxy.header.X-User-Roles}`
 * (what forward_auth's copy_headers sent there for a header missing from the answer).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { LocalIssuer } from '../../src/demo/local-issuer.js';
import { type ProxiedAuthz, startProxiedAuthz } from '../helpers/proxied-authz.js';
import {
  type EchoReply,
  type RunningProxy,
  get,
  startCaddy,
  startNginx,
} from '../helpers/proxies.js';
import { service } from '../helpers/records.js';

for (const [name, start] of [
  ['caddy', startCaddy],
  ['nginx', startNginx],
] as const) {
  describe(`${name} (shipped config): a header the service did not set is not sent`, () => {
    let idp: LocalIssuer;
    let proxy: RunningProxy;
    let world: ProxiedAuthz | undefined;
    before(async () => {
      world = await startProxiedAuthz(start, [
        service('orders', { tenant: 'acme' }),
        service('billing', { tenant: 'acme' }),
      ]);
      ({ idp, proxy } = world);
    });
    after(() => world?.stop());

    it('a user without roles: no x-user-roles upstream, whatever the client sent', async () => {
      const token = await idp.mint({ sub: 'alice' });
      const spoofs: ReadonlyArray<Record<string, string>> = [{}, { 'x-user-roles': 'admin' }];
      for (const spoof of spoofs) {
        const reply = await get(proxy.port, '/orders/1', {
          authorization: `Bearer ${token}`,
          ...spoof,
        });
        assert.equal(reply.status, 200, proxy.logs());
        const seen = (JSON.parse(reply.body) as EchoReply).headers;
        assert.equal(seen['x-user-id'], 'alice', 'the headers the service did send arrive');
        assert.equal(seen['x-user-roles'], undefined, JSON.stringify(seen));
        for (const [header, value] of Object.entries(seen))
          assert.doesNotMatch(String(value), /\{http\.reverse_proxy/, header);
      }
    });

    it('a user with roles: the service value, not the client copy', async () => {
      const token = await idp.mint({ sub: 'alice', roles: ['reader'] });
      const reply = await get(proxy.port, '/orders/1', {
        authorization: `Bearer ${token}`,
        'x-user-roles': 'admin',
      });
      assert.equal(reply.status, 200, proxy.logs());
      assert.equal((JSON.parse(reply.body) as EchoReply).headers['x-user-roles'], 'reader');
    });
  });
}
