import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { LocalIssuer } from '../../src/demo/local-issuer.js';
import { type Harness, startHarness } from '../helpers/harness.js';
import { issuer, service } from '../helpers/records.js';
import { payloadOf } from './txn-service.js';

interface Act {
  sub: string;
  act?: Act;
}

/** RFC 8693 nested `act`, most recent actor outermost, flattened in that order. */
function actors(act: Act | undefined): string[] {
  const list: string[] = [];
  for (let a = act; a !== undefined; a = a.act) list.push(a.sub);
  return list;
}

/**
 * Delegation as RFC 8693 nested `act`: every minted level names the chain's callers, most recent
 * outermost (x-auth-chain reversed); an origin's own actors count toward depth and recursion, are
 * shown upstream as x-auth-actors, and are bounded by the level cap.
 */
for (const format of ['nested', 'compact'] as const) {
  describe(`nested act in every minted level (${format} chains)`, () => {
    let idp: LocalIssuer;
    let h: Harness;
    before(async () => {
      idp = await LocalIssuer.start();
      h = await startHarness({
        env: { MATRYOSHKA_CHAIN_FORMAT: format, MATRYOSHKA_MAX_LEVELS: '6' },
        contents: {
          issuers: [issuer({ issuer: idp.issuer, tenant: 'acme', jwks_uri: idp.jwksUri })],
          services: [service('shallow', { max_depth: 2 })],
        },
      });
    });
    after(async () => {
      await h?.stop();
      await idp?.stop();
    });

    async function walk(token: string, sids: readonly string[]) {
      let current = token;
      let last: Awaited<ReturnType<typeof h.client.check>> | undefined;
      for (const sid of sids) {
        last = await h.client.check({ token: current, sid });
        assert.equal(last.allowed, true, `${sid}: ${last.body}`);
        current = last.forwardedToken as string;
      }
      return last as NonNullable<typeof last>;
    }

    it('names the callers, most recent outermost: x-auth-chain reversed, on every hop', async () => {
      let token = await idp.mint({ sub: 'alice' });
      for (const sid of ['gateway', 'orders', 'billing']) {
        const result = await walk(token, [sid]);
        const act = payloadOf(result.forwardedToken as string)['act'] as Act;
        assert.deepEqual(
          actors(act),
          (result.headers['x-auth-chain'] as string).split(',').reverse(),
          sid,
        );
        token = result.forwardedToken as string;
      }
    });

    it("continues inwards with the origin's own actors, shown upstream as x-auth-actors", async () => {
      const origin = await idp.mint({
        sub: 'alice',
        act: { sub: 'agent-7', act: { sub: 'planner' } },
      });
      const result = await walk(origin, ['gateway', 'orders']);
      assert.equal(
        result.headers['x-auth-actors'],
        'planner,agent-7',
        'oldest first, as x-auth-chain',
      );
      assert.deepEqual(actors(payloadOf(result.forwardedToken as string)['act'] as Act), [
        'orders',
        'gateway',
        'agent-7',
        'planner',
      ]);
      const audit = h.logs.findLast((l) => l['msg'] === 'check');
      assert.equal(audit?.['actors'], 'planner,agent-7');
    });

    it("counts an origin's actors toward depth and recursion", async () => {
      const plain = await idp.mint({ sub: 'alice' });
      assert.equal((await h.client.check({ token: plain, sid: 'shallow' })).allowed, true);
      const delegated = await idp.mint({
        sub: 'alice',
        act: { sub: 'agent-7', act: { sub: 'planner' } },
      });
      const deep = await h.client.check({ token: delegated, sid: 'shallow' });
      assert.equal(
        deep.metadata['reason'],
        'depth_exceeded',
        'two actors and this hop: depth 3 > 2',
      );
      const looping = await idp.mint({ sub: 'alice', act: { sub: 'orders' } });
      const back = await walk(looping, ['gateway']);
      const again = await h.client.check({ token: back.forwardedToken as string, sid: 'orders' });
      assert.equal(again.metadata['reason'], 'recursion', 'an actor is a caller seen before');
    });

    it('bounds actors by the level cap, and refuses an actor it could not show faithfully', async () => {
      let act: Act | undefined;
      for (const sub of ['a1', 'a2', 'a3', 'a4', 'a5', 'a6'])
        act = act === undefined ? { sub } : { sub, act };
      const tooMany = await h.client.check({
        token: await idp.mint({ sub: 'alice', act }),
        sid: 'orders',
      });
      assert.equal(tooMany.metadata['reason'], 'stack_too_large');
      const comma = await h.client.check({
        token: await idp.mint({ sub: 'alice', act: { sub: 'agent,admin' } }),
        sid: 'orders',
      });
      assert.equal(comma.metadata['reason'], 'malformed_token');
      const notObject = await h.client.check({
        token: await idp.mint({ sub: 'alice', act: 'agent-7' }),
        sid: 'orders',
      });
      assert.equal(notObject.metadata['reason'], 'malformed_token');
    });
  });
}
