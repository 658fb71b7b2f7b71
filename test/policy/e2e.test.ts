import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { worldSuiteWith } from '../world/suite.js';
import { localIssuer, service, tenant } from '../helpers/records.js';
import { claims } from '../helpers/tokens.js';

describe('tenant, caller and role policy through Check', () => {
  const h = worldSuiteWith('handler', { acmeIdp: {}, globexIdp: {} }, ({ acmeIdp, globexIdp }) => ({
    contents: {
      issuers: [
        localIssuer(acmeIdp, 'acme', {
          audiences: ['orders-api'],
          roles_claim: 'realm_access.roles',
        }),
        localIssuer(globexIdp, 'globex', { mints_for: ['globex-*'] }),
      ],
      tenants: [tenant('acme', { recursion: 'audit' })],
      services: [
        service('gateway', { tenant: 'acme' }),
        service('orders', {
          tenant: 'acme',
          allowed_callers: ['gateway', 'cart-*'],
          required_roles: ['buyer'],
        }),
        service('globex-only', { tenant: 'globex' }),
      ],
    },
  }));

  const acmeToken = (roles: string[] = ['buyer']) =>
    h.of('acmeIdp').mint({ sub: 'alice', aud: 'orders-api', realm_access: { roles } });

  it('checks the audience of issuers that name one', async () => {
    const wrongAud = await h.of('acmeIdp').mint({ sub: 'alice', aud: 'billing-api' });
    assert.equal((await h.w.check({ token: wrongAud, sid: 'gateway' })).httpStatus, 401);
    assert.equal(h.w.lastReason(), 'audience_mismatch');
    const noAud = await h.of('acmeIdp').mint({ sub: 'alice' });
    assert.equal((await h.w.check({ token: noAud, sid: 'gateway' })).httpStatus, 401);
    assert.equal(h.w.lastReason(), 'audience_mismatch');
  });

  it('reads roles from the issuer-specific claim path', async () => {
    const result = await h.w.check({
      token: await acmeToken(['buyer', 'viewer']),
      sid: 'gateway',
    });
    assert.equal(result.headers['x-user-roles'], 'buyer,viewer');
    assert.deepEqual(
      claims(result.forwardedToken as string)['roles'],
      ['buyer', 'viewer'],
      'minted levels carry roles as `roles`',
    );
  });

  it('admits only allowed callers, by glob on the immediate caller', async () => {
    const viaGateway = (await h.w.check({ token: await acmeToken(), sid: 'gateway' }))
      .forwardedToken as string;
    assert.equal((await h.w.check({ token: viaGateway, sid: 'orders' })).allowed, true);
    const viaCart = (await h.w.check({ token: await acmeToken(), sid: 'cart-eu' }))
      .forwardedToken as string;
    assert.equal((await h.w.check({ token: viaCart, sid: 'orders' })).allowed, true);
    const viaOther = (await h.w.check({ token: await acmeToken(), sid: 'search' }))
      .forwardedToken as string;
    assert.equal((await h.w.check({ token: viaOther, sid: 'orders' })).httpStatus, 403);
    assert.equal(h.w.lastReason(), 'caller_not_allowed');
    assert.equal(
      (await h.w.check({ token: await acmeToken(), sid: 'orders' })).httpStatus,
      403,
      'an origin token has no caller',
    );
    assert.equal(h.w.lastReason(), 'caller_not_allowed');
  });

  it('requires the roles a service names', async () => {
    const viaGateway = (await h.w.check({ token: await acmeToken(['viewer']), sid: 'gateway' }))
      .forwardedToken as string;
    assert.equal((await h.w.check({ token: viaGateway, sid: 'orders' })).httpStatus, 403);
    assert.equal(h.w.lastReason(), 'role_missing');
  });

  it('binds routes and services to their tenant', async () => {
    const globex = await h.of('globexIdp').mint({ sub: 'bob' });
    assert.equal(
      (await h.w.check({ token: globex, sid: 'gateway' })).httpStatus,
      403,
      'gateway belongs to acme',
    );
    assert.equal(h.w.lastReason(), 'tenant_mismatch');
    assert.equal(
      (await h.w.check({ token: globex, sid: 'free', contextExtensions: { tenant: 'acme' } }))
        .httpStatus,
      403,
    );
    assert.equal(h.w.lastReason(), 'tenant_mismatch');
    assert.equal(
      (
        await h.w.check({
          token: globex,
          sid: 'globex-only',
          contextExtensions: { tenant: 'globex' },
        })
      ).allowed,
      true,
    );
  });

  it('refuses a chain that mixes tenants', async () => {
    // A globex level wrapping an acme chain: each level verifies, but they belong to different tenants.
    const acmeChain = (await h.w.check({ token: await acmeToken(), sid: 'gateway' }))
      .forwardedToken as string;
    const spliced = await h.of('globexIdp').mint({
      sub: 'alice',
      auth_stack: { fmt: 'JWT', sid: 'globex-gw', depth: 2, container: acmeChain },
    });
    assert.equal((await h.w.check({ token: spliced, sid: 'free' })).httpStatus, 403);
    assert.equal(h.w.lastReason(), 'tenant_mismatch');
  });

  it("records recursion but allows it when the tenant's policy is audit", async () => {
    let token = await acmeToken();
    for (const sid of ['gateway', 'cart-eu', 'gateway']) {
      const result = await h.w.check({ token, sid });
      assert.equal(result.allowed, true);
      token = result.forwardedToken as string;
    }
    const line = h.w.logs.findLast((l) => l['msg'] === 'check');
    assert.equal(line?.['recursion_audited'], true);
    assert.equal(line?.['decision'], 'allow');
  });
});
