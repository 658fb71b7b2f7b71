import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { LocalIssuer } from '../../src/demo/local-issuer.js';
import { type Harness, lastReason, startHarness } from '../helpers/harness.js';
import { issuer, service, tenant } from '../helpers/records.js';
import { claims } from '../helpers/tokens.js';

describe('tenant, caller and role policy through Check', () => {
  let acmeIdp: LocalIssuer;
  let globexIdp: LocalIssuer;
  let h: Harness;
  before(async () => {
    acmeIdp = await LocalIssuer.start();
    globexIdp = await LocalIssuer.start();
    h = await startHarness({
      contents: {
        issuers: [
          issuer({
            issuer: acmeIdp.issuer,
            tenant: 'acme',
            jwks_uri: acmeIdp.jwksUri,
            audiences: ['orders-api'],
            roles_claim: 'realm_access.roles',
          }),
          issuer({
            issuer: globexIdp.issuer,
            tenant: 'globex',
            jwks_uri: globexIdp.jwksUri,
            mints_for: ['globex-*'],
          }),
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
    });
  });
  after(async () => {
    await h.stop();
    await acmeIdp.stop();
    await globexIdp.stop();
  });

  const acmeToken = (roles: string[] = ['buyer']) =>
    acmeIdp.mint({ sub: 'alice', aud: 'orders-api', realm_access: { roles } });

  it('checks the audience of issuers that name one', async () => {
    const wrongAud = await acmeIdp.mint({ sub: 'alice', aud: 'billing-api' });
    assert.equal((await h.client.check({ token: wrongAud, sid: 'gateway' })).httpStatus, 401);
    assert.equal(lastReason(h), 'audience_mismatch');
    const noAud = await acmeIdp.mint({ sub: 'alice' });
    assert.equal((await h.client.check({ token: noAud, sid: 'gateway' })).httpStatus, 401);
    assert.equal(lastReason(h), 'audience_mismatch');
  });

  it('reads roles from the issuer-specific claim path', async () => {
    const result = await h.client.check({
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
    const viaGateway = (await h.client.check({ token: await acmeToken(), sid: 'gateway' }))
      .forwardedToken as string;
    assert.equal((await h.client.check({ token: viaGateway, sid: 'orders' })).allowed, true);
    const viaCart = (await h.client.check({ token: await acmeToken(), sid: 'cart-eu' }))
      .forwardedToken as string;
    assert.equal((await h.client.check({ token: viaCart, sid: 'orders' })).allowed, true);
    const viaOther = (await h.client.check({ token: await acmeToken(), sid: 'search' }))
      .forwardedToken as string;
    assert.equal((await h.client.check({ token: viaOther, sid: 'orders' })).httpStatus, 403);
    assert.equal(lastReason(h), 'caller_not_allowed');
    assert.equal(
      (await h.client.check({ token: await acmeToken(), sid: 'orders' })).httpStatus,
      403,
      'an origin token has no caller',
    );
    assert.equal(lastReason(h), 'caller_not_allowed');
  });

  it('requires the roles a service names', async () => {
    const viaGateway = (
      await h.client.check({ token: await acmeToken(['viewer']), sid: 'gateway' })
    ).forwardedToken as string;
    assert.equal((await h.client.check({ token: viaGateway, sid: 'orders' })).httpStatus, 403);
    assert.equal(lastReason(h), 'role_missing');
  });

  it('binds routes and services to their tenant', async () => {
    const globex = await globexIdp.mint({ sub: 'bob' });
    assert.equal(
      (await h.client.check({ token: globex, sid: 'gateway' })).httpStatus,
      403,
      'gateway belongs to acme',
    );
    assert.equal(lastReason(h), 'tenant_mismatch');
    assert.equal(
      (await h.client.check({ token: globex, sid: 'free', contextExtensions: { tenant: 'acme' } }))
        .httpStatus,
      403,
    );
    assert.equal(lastReason(h), 'tenant_mismatch');
    assert.equal(
      (
        await h.client.check({
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
    const acmeChain = (await h.client.check({ token: await acmeToken(), sid: 'gateway' }))
      .forwardedToken as string;
    const spliced = await globexIdp.mint({
      sub: 'alice',
      auth_stack: { fmt: 'JWT', sid: 'globex-gw', depth: 2, container: acmeChain },
    });
    assert.equal((await h.client.check({ token: spliced, sid: 'free' })).httpStatus, 403);
    assert.equal(lastReason(h), 'tenant_mismatch');
  });

  it("records recursion but allows it when the tenant's policy is audit", async () => {
    let token = await acmeToken();
    for (const sid of ['gateway', 'cart-eu', 'gateway']) {
      const result = await h.client.check({ token, sid });
      assert.equal(result.allowed, true);
      token = result.forwardedToken as string;
    }
    const line = h.logs.findLast((l) => l['msg'] === 'check');
    assert.equal(line?.['recursion_audited'], true);
    assert.equal(line?.['decision'], 'allow');
  });
});
