/**
 * An identity header the service does not send reaches the upstream as nothing: not the client's
 * copy, not an empty value, and not Caddy 2.6's literal `{http.reverse_proxy.header.X-User-Roles}`
 * (what forward_auth's copy_headers sent there for a header missing from the answer).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { LocalIssuer } from '../../src/demo/local-issuer.js';
import { type Harness, startHarness } from '../helpers/harness.js';
import {
  type EchoReply,
  type RunningProxy,
  get,
  startCaddy,
  startEcho,
  startNginx,
} from '../helpers/proxies.js';
import { issuer, service } from '../helpers/records.js';

for (const [name, start] of [
  ['caddy', startCaddy],
  ['nginx', startNginx],
] as const) {
  describe(`${name} (shipped config): a header the service did not set is not sent`, () => {
    let idp: LocalIssuer;
    let h: Harness;
    let echo: Awaited<ReturnType<typeof startEcho>>;
    let proxy: RunningProxy;
    before(async () => {
      idp = await LocalIssuer.start();
      h = await startHarness({
        env: { MATRYOSHKA_AUTHZ_HTTP_PORT: '0' },
        contents: {
          issuers: [issuer({ issuer: idp.issuer, tenant: 'acme', jwks_uri: idp.jwksUri })],
          services: [service('orders', { tenant: 'acme' }), service('billing', { tenant: 'acme' })],
        },
      });
      echo = await startEcho();
      const authzPort = h.service.authzHttpPort;
      assert.ok(authzPort !== undefined);
      proxy = await start({ authzPort, upstreamPort: echo.port });
      echo.setProxy(proxy.port);
    });
    after(async () => {
      await proxy?.stop();
      await echo?.close();
      await h?.stop();
      await idp?.stop();
    });

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
