import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { LocalIssuer } from '../../src/demo/local-issuer.js';
import type { OwnKeys } from '../../src/keys/own-keys.js';
import { mintExtended } from '../../src/pipeline/mint.js';
import type { Chain } from '../../src/chain/types.js';
import { type Harness, lastReason, startHarness } from '../helpers/harness.js';
import { issuer, tenant } from '../helpers/records.js';
import { claims, withPayload } from '../helpers/tokens.js';

async function walk(h: Harness, token: string, sids: string[]): Promise<string> {
  let current = token;
  for (const sid of sids) {
    const result = await h.client.check({ token: current, sid });
    assert.equal(result.allowed, true, `hop to ${sid} should be allowed`);
    current = result.forwardedToken as string;
  }
  return current;
}

describe('depth limits', () => {
  let idp: LocalIssuer;
  let h: Harness;
  before(async () => {
    idp = await LocalIssuer.start();
    h = await startHarness({
      contents: {
        issuers: [issuer({ issuer: idp.issuer, tenant: 'acme', jwks_uri: idp.jwksUri })],
        tenants: [tenant('acme', { max_depth: 3 })],
      },
    });
  });
  after(async () => {
    await h.stop();
    await idp.stop();
  });

  it('refuses the 4th hop when the tenant allows depth 3', async () => {
    const token = await walk(h, await idp.mint({ sub: 'alice' }), ['A', 'B', 'C']);
    const fourth = await h.client.check({ token, sid: 'D' });
    assert.equal(fourth.allowed, false);
    assert.equal(fourth.httpStatus, 403);
    assert.equal(lastReason(h), 'depth_exceeded');
  });

  it("lets a route's max_depth lower the limit further", async () => {
    const token = await walk(h, await idp.mint({ sub: 'alice' }), ['A']);
    const lowered = await h.client.check({
      token,
      sid: 'B',
      contextExtensions: { max_depth: '1' },
    });
    assert.equal(lowered.allowed, false);
    assert.equal(lastReason(h), 'depth_exceeded');
    const same = await h.client.check({ token, sid: 'B', contextExtensions: { max_depth: '2' } });
    assert.equal(same.allowed, true);
  });
});

describe('signatures and issuers', () => {
  let idp: LocalIssuer;
  let stranger: LocalIssuer;
  let h: Harness;
  before(async () => {
    idp = await LocalIssuer.start();
    stranger = await LocalIssuer.start();
    h = await startHarness({
      contents: {
        issuers: [issuer({ issuer: idp.issuer, tenant: 'acme', jwks_uri: idp.jwksUri })],
      },
    });
  });
  after(async () => {
    await h.stop();
    await idp.stop();
    await stranger.stop();
  });

  it('refuses a payload edited after signing, at every depth', async () => {
    const origin = await idp.mint({ sub: 'alice', roles: ['reader'] });
    const depth1 = await walk(h, origin, ['A']);
    const depth2 = await walk(h, depth1, ['B']);

    // Depth 0: the outermost token itself was edited.
    const editedOrigin = withPayload(origin, { ...claims(origin), roles: ['admin'] });
    assert.equal((await h.client.check({ token: editedOrigin, sid: 'A' })).httpStatus, 401);
    assert.equal(lastReason(h), 'bad_signature');

    // Depth 2: the outermost level (ours) was edited.
    const editedOuter = withPayload(depth2, { ...claims(depth2), sub: 'mallory' });
    assert.equal((await h.client.check({ token: editedOuter, sid: 'C' })).httpStatus, 401);
    assert.equal(lastReason(h), 'bad_signature');

    // An inner level edited and re-wrapped by a validly signed outer level: every level is verified.
    const innerEdited = withPayload(depth1, { ...claims(depth1), roles: ['admin'] });
    const keys = h.service.ownKeys;
    const rewrapped = await rewrap(innerEdited, keys);
    assert.equal((await h.client.check({ token: rewrapped, sid: 'C' })).httpStatus, 401);
    assert.equal(lastReason(h), 'bad_signature');
  });

  it('refuses an unregistered issuer without asking any JWKS endpoint', async () => {
    const hits = {
      idp: idp.hits.jwks + idp.hits.discovery,
      stranger: stranger.hits.jwks + stranger.hits.discovery,
    };
    const token = await stranger.mint({ sub: 'eve' });
    const result = await h.client.check({ token, sid: 'A' });
    assert.equal(result.httpStatus, 401);
    assert.equal(result.headers['www-authenticate'], 'Bearer error="invalid_token"');
    assert.equal(lastReason(h), 'untrusted_issuer');
    assert.equal(stranger.hits.jwks + stranger.hits.discovery, hits.stranger);
    assert.equal(idp.hits.jwks + idp.hits.discovery, hits.idp);
  });

  it("answers 503, never 401 or allow, when an issuer's keys cannot be had and none are cached", async () => {
    const down = await LocalIssuer.start();
    h.registry.putIssuer(issuer({ issuer: down.issuer, tenant: 'acme', jwks_uri: down.jwksUri }));
    const token = await down.mint({ sub: 'alice' });
    await down.stop();
    const result = await h.client.check({ token, sid: 'A' });
    assert.equal(result.httpStatus, 503);
    assert.equal(result.grpcCode, 14);
    assert.equal(lastReason(h), 'unavailable');
    assert.equal((JSON.parse(result.body) as { error: string }).error, 'unavailable');
  });

  it('refuses a token signed by a key the issuer never published', async () => {
    const token = await idp.mint({ sub: 'alice' }, { kid: 'not-a-published-kid' });
    assert.equal((await h.client.check({ token, sid: 'A' })).httpStatus, 401);
    assert.equal(lastReason(h), 'bad_signature');
  });

  it('stops trusting memoised chains as soon as the registry changes', async () => {
    const doomed = await LocalIssuer.start();
    try {
      h.registry.putIssuer(
        issuer({ issuer: doomed.issuer, tenant: 'acme', jwks_uri: doomed.jwksUri }),
      );
      const chain = await walk(h, await doomed.mint({ sub: 'alice' }), ['A']);
      assert.equal(
        (await h.client.check({ token: chain, sid: 'B' })).allowed,
        true,
        'the chain is verified (and memoised)',
      );
      h.registry.removeIssuer(doomed.issuer);
      assert.equal(
        (await h.client.check({ token: chain, sid: 'B' })).httpStatus,
        401,
        'the removed issuer no longer verifies, memo or not',
      );
      assert.equal(lastReason(h), 'untrusted_issuer');
    } finally {
      await doomed.stop();
    }
  });

  it('refuses a missing token and a non-bearer scheme as missing_token', async () => {
    assert.equal((await h.client.check({ sid: 'A' })).httpStatus, 401);
    assert.equal(lastReason(h), 'missing_token');
    assert.equal(
      (await h.client.check({ sid: 'A', headers: { authorization: 'Basic Ym9iOnBhc3N3b3Jk' } }))
        .httpStatus,
      401,
    );
    assert.equal(lastReason(h), 'missing_token');
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
    {
      issuer: 'urn:matryoshka:authz',
      ttlSeconds: 60,
      compression: 'g',
      compressFromDepth: 3,
      format: 'nested',
      headerBudget: 1024 * 1024,
      forwardHeader: 'authorization',
    },
  );
  return minted.token;
}

describe('time rules', () => {
  let idp: LocalIssuer;
  let h: Harness;
  let clock = Math.floor(Date.now() / 1000);
  before(async () => {
    idp = await LocalIssuer.start();
    h = await startHarness({
      contents: {
        issuers: [issuer({ issuer: idp.issuer, tenant: 'acme', jwks_uri: idp.jwksUri })],
      },
      now: () => clock,
      env: { MATRYOSHKA_CLOCK_SKEW: '5', MATRYOSHKA_TOKEN_TTL: '120' },
    });
  });
  after(async () => {
    await h.stop();
    await idp.stop();
  });

  it('refuses an expired outermost token', async () => {
    const token = await idp.mint({ sub: 'alice' }, { iat: clock - 700, ttl: 600 });
    assert.equal((await h.client.check({ token, sid: 'A' })).httpStatus, 401);
    assert.equal(lastReason(h), 'expired');
  });

  it('refuses a token that is not valid yet', async () => {
    const token = await idp.mint({ sub: 'alice', nbf: clock + 60 });
    assert.equal((await h.client.check({ token, sid: 'A' })).httpStatus, 401);
    assert.equal(lastReason(h), 'not_yet_valid');
  });

  it('mints levels that never outlive the origin, so our own chains end with it', async () => {
    const origin = await idp.mint({ sub: 'alice' }, { iat: clock, ttl: 60 });
    const depth1 = await walk(h, origin, ['A']);
    assert.equal(claims(depth1)['exp'], clock + 60, 'minted lifetime is capped by the origin exp');
    clock += 30;
    const depth2 = await walk(h, depth1, ['B']);
    clock += 45; // the origin is now expired; depth2 was minted while it was valid
    assert.ok(clock > (claims(origin)['exp'] as number));
    const result = await h.client.check({ token: depth2, sid: 'C' });
    assert.equal(result.httpStatus, 401, 'depth2 itself expired with the origin');
    assert.equal(lastReason(h), 'expired');
    clock = Math.floor(Date.now() / 1000);
  });

  it('refuses an inner level that had expired before it was wrapped', async () => {
    const origin = await idp.mint({ sub: 'alice' }, { iat: clock - 120, ttl: 60 });
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
      h.service.ownKeys,
      {
        issuer: 'urn:matryoshka:authz',
        ttlSeconds: 60,
        compression: 'g',
        compressFromDepth: 3,
        format: 'nested',
        headerBudget: 1024 * 1024,
        forwardHeader: 'authorization',
      },
    );
    const result = await h.client.check({ token: minted.token, sid: 'B' });
    assert.equal(result.httpStatus, 401);
    assert.equal(lastReason(h), 'expired');
  });
});
