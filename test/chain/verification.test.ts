import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LocalIssuer } from '../../src/demo/local-issuer.js';
import type { OwnKeys } from '../../src/keys/own-keys.js';
import { mintExtended } from '../../src/pipeline/mint.js';
import type { Chain } from '../../src/chain/types.js';
import { localIssuer, tenant } from '../helpers/records.js';
import { claims, withPayload } from '../helpers/tokens.js';
import { OWN_ISSUER, handMint } from '../helpers/in-process.js';
import { walkWorld, worldSuite } from '../world/suite.js';

describe('depth limits', () => {
  const s = worldSuite('handler', { tenants: [tenant('acme', { max_depth: 3 })] });

  it('refuses the 4th hop when the tenant allows depth 3', async () => {
    const token = await walkWorld(s.w, await s.idp.mint({ sub: 'alice' }), ['A', 'B', 'C']);
    const fourth = await s.w.check({ token, sid: 'D' });
    assert.equal(fourth.allowed, false);
    assert.equal(fourth.httpStatus, 403);
    assert.equal(s.w.lastReason(), 'depth_exceeded');
  });

  it("lets a route's max_depth lower the limit further", async () => {
    const token = await walkWorld(s.w, await s.idp.mint({ sub: 'alice' }), ['A']);
    const lowered = await s.w.check({
      token,
      sid: 'B',
      contextExtensions: { max_depth: '1' },
    });
    assert.equal(lowered.allowed, false);
    assert.equal(s.w.lastReason(), 'depth_exceeded');
    const same = await s.w.check({ token, sid: 'B', contextExtensions: { max_depth: '2' } });
    assert.equal(same.allowed, true);
  });
});

describe('signatures and issuers', () => {
  const s = worldSuite('handler', { idps: { acme: {}, stranger: { unregistered: true } } });

  it('refuses a payload edited after signing, at every depth', async () => {
    const origin = await s.idp.mint({ sub: 'alice', roles: ['reader'] });
    const depth1 = await walkWorld(s.w, origin, ['A']);
    const depth2 = await walkWorld(s.w, depth1, ['B']);

    // Depth 0: the outermost token itself was edited.
    const editedOrigin = withPayload(origin, { ...claims(origin), roles: ['admin'] });
    assert.equal((await s.w.check({ token: editedOrigin, sid: 'A' })).httpStatus, 401);
    assert.equal(s.w.lastReason(), 'bad_signature');

    // Depth 2: the outermost level (ours) was edited.
    const editedOuter = withPayload(depth2, { ...claims(depth2), sub: 'mallory' });
    assert.equal((await s.w.check({ token: editedOuter, sid: 'C' })).httpStatus, 401);
    assert.equal(s.w.lastReason(), 'bad_signature');

    // An inner level edited and re-wrapped by a validly signed outer level: every level is verified.
    const innerEdited = withPayload(depth1, { ...claims(depth1), roles: ['admin'] });
    const keys = s.w.ownKeys;
    const rewrapped = await rewrap(innerEdited, keys);
    assert.equal((await s.w.check({ token: rewrapped, sid: 'C' })).httpStatus, 401);
    assert.equal(s.w.lastReason(), 'bad_signature');
  });

  it('refuses an unregistered issuer without asking any JWKS endpoint', async () => {
    const hits = {
      idp: s.idp.hits.jwks + s.idp.hits.discovery,
      stranger: s.of('stranger').hits.jwks + s.of('stranger').hits.discovery,
    };
    const token = await s.of('stranger').mint({ sub: 'eve' });
    const result = await s.w.check({ token, sid: 'A' });
    assert.equal(result.httpStatus, 401);
    assert.equal(result.headers['www-authenticate'], 'Bearer error="invalid_token"');
    assert.equal(s.w.lastReason(), 'untrusted_issuer');
    assert.equal(s.of('stranger').hits.jwks + s.of('stranger').hits.discovery, hits.stranger);
    assert.equal(s.idp.hits.jwks + s.idp.hits.discovery, hits.idp);
  });

  it("answers 503, never 401 or allow, when an issuer's keys cannot be had and none are cached", async () => {
    const down = await LocalIssuer.start();
    s.w.registry.putIssuer(localIssuer(down, 'acme'));
    const token = await down.mint({ sub: 'alice' });
    await down.stop();
    const result = await s.w.check({ token, sid: 'A' });
    assert.equal(result.httpStatus, 503);
    assert.equal(result.grpcCode, 14);
    assert.equal(s.w.lastReason(), 'unavailable');
    assert.equal((JSON.parse(result.body) as { error: string }).error, 'unavailable');
  });

  it('refuses a token signed by a key the issuer never published', async () => {
    const token = await s.idp.mint({ sub: 'alice' }, { kid: 'not-a-published-kid' });
    assert.equal((await s.w.check({ token, sid: 'A' })).httpStatus, 401);
    assert.equal(s.w.lastReason(), 'bad_signature');
  });

  it('stops trusting memoised chains as soon as the registry changes', async () => {
    const doomed = await LocalIssuer.start();
    try {
      s.w.registry.putIssuer(localIssuer(doomed, 'acme'));
      const chain = await walkWorld(s.w, await doomed.mint({ sub: 'alice' }), ['A']);
      assert.equal(
        (await s.w.check({ token: chain, sid: 'B' })).allowed,
        true,
        'the chain is verified (and memoised)',
      );
      s.w.registry.removeIssuer(doomed.issuer);
      assert.equal(
        (await s.w.check({ token: chain, sid: 'B' })).httpStatus,
        401,
        'the removed issuer no longer verifies, memo or not',
      );
      assert.equal(s.w.lastReason(), 'untrusted_issuer');
    } finally {
      await doomed.stop();
    }
  });

  it('refuses a missing token and a non-bearer scheme as missing_token', async () => {
    assert.equal((await s.w.check({ sid: 'A' })).httpStatus, 401);
    assert.equal(s.w.lastReason(), 'missing_token');
    assert.equal(
      (await s.w.check({ sid: 'A', headers: { authorization: 'Basic Ym9iOnBhc3N3b3Jk' } }))
        .httpStatus,
      401,
    );
    assert.equal(s.w.lastReason(), 'missing_token');
  });
});

/** Wrap `inner` in a new level signed with our own keys, as if minted for sid Z. */
async function rewrap(inner: string, keys: OwnKeys): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  const innerClaims = claims(inner);
  const fakeChain = {
    levels: [{ jws: { payload: innerClaims } }],
    depth: (innerClaims['auth_stack'] as { depth: number }).depth,
    sids: [],
  } as unknown as Chain;
  const minted = await mintExtended(
    {
      incoming: inner,
      chain: fakeChain,
      destination: 'Z',
      tenant: 'acme',
      subject: 'alice',
      roles: ['admin'],
      seal: false,
      now,
    },
    keys,
    handMint(OWN_ISSUER, { ttlSeconds: 60 }),
  );
  return minted.token;
}

describe('time rules', () => {
  let clock = Math.floor(Date.now() / 1000);
  const s = worldSuite('handler', {
    now: () => clock,
    env: { MATRYOSHKA_CLOCK_SKEW: '5', MATRYOSHKA_TOKEN_TTL: '120' },
  });

  it('refuses an expired outermost token', async () => {
    const token = await s.idp.mint({ sub: 'alice' }, { iat: clock - 700, ttl: 600 });
    assert.equal((await s.w.check({ token, sid: 'A' })).httpStatus, 401);
    assert.equal(s.w.lastReason(), 'expired');
  });

  it('refuses a token that is not valid yet', async () => {
    const token = await s.idp.mint({ sub: 'alice', nbf: clock + 60 });
    assert.equal((await s.w.check({ token, sid: 'A' })).httpStatus, 401);
    assert.equal(s.w.lastReason(), 'not_yet_valid');
  });

  it('mints levels that never outlive the origin, so our own chains end with it', async () => {
    const origin = await s.idp.mint({ sub: 'alice' }, { iat: clock, ttl: 60 });
    const depth1 = await walkWorld(s.w, origin, ['A']);
    assert.equal(claims(depth1)['exp'], clock + 60, 'minted lifetime is capped by the origin exp');
    clock += 30;
    const depth2 = await walkWorld(s.w, depth1, ['B']);
    clock += 45; // the origin is now expired; depth2 was minted while it was valid
    assert.ok(clock > (claims(origin)['exp'] as number));
    const result = await s.w.check({ token: depth2, sid: 'C' });
    assert.equal(result.httpStatus, 401, 'depth2 itself expired with the origin');
    assert.equal(s.w.lastReason(), 'expired');
    clock = Math.floor(Date.now() / 1000);
  });

  it('refuses an inner level that had expired before it was wrapped', async () => {
    const origin = await s.idp.mint({ sub: 'alice' }, { iat: clock - 120, ttl: 60 });
    // Wrap it now, although it expired a minute ago: a correct minter would have refused.
    const now = clock;
    const fakeChain = { levels: [], depth: 0, sids: [] } as unknown as Chain;
    const minted = await mintExtended(
      {
        incoming: origin,
        chain: fakeChain,
        destination: 'A',
        tenant: 'acme',
        subject: 'alice',
        roles: [],
        seal: false,
        now,
      },
      s.w.ownKeys,
      handMint(OWN_ISSUER, { ttlSeconds: 60 }),
    );
    const result = await s.w.check({ token: minted.token, sid: 'B' });
    assert.equal(result.httpStatus, 401);
    assert.equal(s.w.lastReason(), 'expired');
  });
});
