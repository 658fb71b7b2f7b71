import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { inspectChain } from '../../src/chain/inspect.js';
import { type World, startWorld } from '../world/world.js';
import { seedLevel as seedLevelAs, seedWrap } from '../helpers/property-chains.js';
import { hmacIssuer } from '../helpers/records.js';

const SECRET = 'example'; // the seed's shared secret
const key = new TextEncoder().encode(SECRET);

/** A level as the seed writes it, signed with the seed's secret. */
const seedLevel = (claims: Record<string, unknown>, iat: number, exp: number): Promise<string> =>
  seedLevelAs(claims, iat, exp, key);

const wrapClaims = (inner: string, sid: string, depth: number, cmp?: 'g' | 'b') =>
  seedWrap(inner, sid, depth, cmp, { name: 'John Doe' });

describe("tokens in the seed's style from another implementation", () => {
  let h: World;
  before(async () => {
    h = await startWorld('handler', {
      contents: {
        issuers: [
          hmacIssuer('legacy-hs', 'acme', 'LEGACY_HS_SECRET', {
            mints_for: ['Organization.Services.*'],
          }),
        ],
      },
      processEnv: { LEGACY_HS_SECRET: SECRET },
    });
  });
  after(() => h.stop());

  it('opens an HS256 chain with lowercase fmt, a hash field, gzip in padded base64 and brotli', async () => {
    const now = Math.floor(Date.now() / 1000);
    const origin = await seedLevel(
      { sub: '1234567890', name: 'John Doe', roles: ['user'] },
      now - 30,
      now + 600,
    );
    const l1 = await seedLevel(
      wrapClaims(origin, 'Organization.Services.ServiceA', 1),
      now - 20,
      now + 300,
    );
    const l2 = await seedLevel(
      wrapClaims(l1, 'Organization.Services.ServiceB', 2),
      now - 10,
      now + 300,
    );
    const l3 = await seedLevel(
      wrapClaims(l2, 'Organization.Services.ServiceC', 3, 'g'),
      now - 5,
      now + 300,
    );
    const l4 = await seedLevel(
      wrapClaims(l3, 'Organization.Services.ServiceD', 4, 'b'),
      now,
      now + 300,
    );
    assert.ok(l3.includes('.'), 'sanity');

    const result = await h.check({ token: l4, sid: 'Organization.Services.ServiceE' });
    assert.equal(result.allowed, true, result.body);
    assert.equal(result.headers['x-auth-depth'], '5');
    assert.equal(
      result.headers['x-auth-chain'],
      ['A', 'B', 'C', 'D', 'E'].map((s) => `Organization.Services.Service${s}`).join(','),
    );
    assert.equal(result.headers['x-user-id'], '1234567890');
    assert.equal(result.headers['x-user-roles'], 'user');
    assert.equal(inspectChain(result.forwardedToken as string).levels.length, 6);
  });

  it('keeps a chain whose origin expired after it was wrapped', async () => {
    const now = Math.floor(Date.now() / 1000);
    // The origin expired 10 s ago, but it was valid when ServiceA wrapped it 60 s ago.
    const origin = await seedLevel({ sub: '1234567890' }, now - 120, now - 10);
    const l1 = await seedLevel(
      wrapClaims(origin, 'Organization.Services.ServiceA', 1),
      now - 60,
      now + 300,
    );
    const result = await h.check({ token: l1, sid: 'Organization.Services.ServiceB' });
    assert.equal(result.allowed, true, result.body);
  });

  it('refuses a level wrapped after its inner level had expired', async () => {
    const now = Math.floor(Date.now() / 1000);
    const origin = await seedLevel({ sub: '1234567890' }, now - 300, now - 200);
    const l1 = await seedLevel(
      wrapClaims(origin, 'Organization.Services.ServiceA', 1),
      now - 10,
      now + 300,
    );
    const result = await h.check({ token: l1, sid: 'Organization.Services.ServiceB' });
    assert.equal(result.httpStatus, 401);
    assert.equal(h.lastReason(), 'expired');
  });

  it('refuses a level whose declared depth lies about the chain below it', async () => {
    const now = Math.floor(Date.now() / 1000);
    const origin = await seedLevel({ sub: '1234567890' }, now - 30, now + 600);
    const lying = await seedLevel(
      wrapClaims(origin, 'Organization.Services.ServiceA', 3),
      now,
      now + 300,
    );
    const result = await h.check({ token: lying, sid: 'Organization.Services.ServiceB' });
    assert.equal(result.httpStatus, 401);
    assert.equal(h.lastReason(), 'stack_malformed');
  });

  it('refuses an HS256 level signed with another secret', async () => {
    const now = Math.floor(Date.now() / 1000);
    const forged = await seedLevelAs(
      { sub: 'x' },
      now,
      now + 60,
      new TextEncoder().encode('guessed'),
    );
    assert.equal((await h.check({ token: forged, sid: 'A' })).httpStatus, 401);
    assert.equal(h.lastReason(), 'bad_signature');
  });
});
