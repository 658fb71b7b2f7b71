/**
 * One scenario, the same calls and the same assertions at every level the world runs: `check()` in
 * process, the Check handler, the gRPC and HTTP listeners and a spawned `serve`. A level that
 * answered differently from the others would be a transport changing a decision.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { LocalIssuer } from '../../src/demo/local-issuer.js';
import { loadConfig } from '../../src/config/config.js';
import { localIssuer, service, tenant } from '../helpers/records.js';
import { claims } from '../helpers/tokens.js';
import { LEVELS, registryDocument, startWorld } from './world.js';
import { parseRegistryDocument } from '../../src/registry/registry-file.js';
import { emptyContents } from '../../src/registry/memory-registry.js';

describe('one scenario at every level', () => {
  let idp: LocalIssuer;
  let stranger: LocalIssuer;
  const contents = () => ({
    issuers: [localIssuer(idp, 'acme')],
    tenants: [tenant('acme', { max_depth: 3 })],
    services: [service('orders', { required_roles: ['orders.read'] })],
  });
  before(async () => {
    idp = await LocalIssuer.start();
    stranger = await LocalIssuer.start();
  });
  after(async () => {
    await idp.stop();
    await stranger.stop();
  });

  for (const level of LEVELS) {
    it(`${level}: allows and extends, refuses a missing role, a stranger, too deep a chain`, async () => {
      const w = await startWorld(level, { contents: contents() });
      try {
        const origin = await idp.mint({ sub: 'alice', roles: ['orders.read'] });
        const first = await w.check({ token: origin, sid: 'orders' });
        assert.equal(first.allowed, true, String(first.reason));
        assert.equal(first.httpStatus, 200);
        assert.equal(first.reason, undefined);
        assert.equal(first.headers['x-user-id'], 'alice');
        const minted = first.forwardedToken as string;
        assert.equal(claims(minted)['iss'], w.config.issuer);
        assert.equal(claims(minted)['sub'], 'alice');

        const noRole = await w.check({ token: await idp.mint({ sub: 'bob' }), sid: 'orders' });
        assert.deepEqual(
          [noRole.allowed, noRole.httpStatus, noRole.reason],
          [false, 403, 'role_missing'],
        );

        const foreign = await w.check({ token: await stranger.mint({ sub: 'eve' }), sid: 'A' });
        assert.deepEqual([foreign.httpStatus, foreign.reason], [401, 'untrusted_issuer']);
        assert.equal(foreign.headers['www-authenticate'], 'Bearer error="invalid_token"');

        let token = minted;
        for (const sid of ['B', 'C']) {
          const hop = await w.check({ token, sid });
          assert.equal(hop.allowed, true, `${sid}: ${hop.reason}`);
          token = hop.forwardedToken as string;
        }
        const fourth = await w.check({ token, sid: 'D' });
        assert.deepEqual([fourth.httpStatus, fourth.reason], [403, 'depth_exceeded']);
        assert.equal(w.lastReason(), 'depth_exceeded');
        if (w.metrics !== undefined)
          assert.match(await w.metrics.render(), /reason="depth_exceeded"/);
      } finally {
        await w.stop();
      }
    });
  }

  it('uses the defaults of `serve`, not copies: the pipeline is what loadConfig says', async () => {
    const w = await startWorld('check', { env: { MATRYOSHKA_TOKEN_TTL: '77' } });
    try {
      const defaults = loadConfig({});
      const deps = w.assembled?.pipeline;
      assert.equal(deps?.mint.headerBudget, defaults.headerBudget);
      assert.equal(deps?.mint.ttlSeconds, 77);
      assert.equal(deps?.limits.maxLevels, defaults.maxLevels);
      assert.equal(deps?.defaultMaxDepth, defaults.maxDepth);
    } finally {
      await w.stop();
    }
  });

  it('writes the records for a spawned service as the registry file parser reads them back', () => {
    const records = { ...emptyContents(), ...contents(), principals: { 'spiffe://x/a': 'orders' } };
    assert.deepEqual(parseRegistryDocument(registryDocument(records), true), records);
  });
});
