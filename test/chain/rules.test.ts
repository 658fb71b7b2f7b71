/**
 * One test per rule of the chain walk that nothing else pins down: remove the rule from
 * src/chain/open-chain.ts or src/chain/verify-level.ts and the matching test here fails.
 * Chains are built from a real local IdP and our own keys, then opened at an injected time.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ChainMemo } from '../../src/chain/chain-memo.js';
import { type OpenChainDeps, openChain } from '../../src/chain/open-chain.js';
import type { Chain } from '../../src/chain/types.js';
import { LocalIssuer } from '../../src/demo/local-issuer.js';
import { compactSignJson } from '../../src/keys/jws-crypto.js';
import type { OwnKeys } from '../../src/keys/own-keys.js';
import { type MintSettings, mintExtended } from '../../src/pipeline/mint.js';
import { DenyError } from '../../src/reasons.js';
import { worldSuiteWith } from '../world/suite.js';
import { chainWalkDeps, handMint } from '../helpers/in-process.js';
import { localIssuer } from '../helpers/records.js';

const OWN_ISSUER = 'https://authz.test';
const SETTINGS: MintSettings = handMint(OWN_ISSUER);

async function reasonOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
    return 'allowed';
  } catch (error) {
    if (error instanceof DenyError) return error.reason;
    throw error;
  }
}

describe('time, audience and level rules of the chain walk', () => {
  let idp: LocalIssuer;
  let ownKeys: OwnKeys;
  let base: Awaited<ReturnType<typeof chainWalkDeps>>;
  const T = Math.floor(Date.now() / 1000);
  const at = (now: number): OpenChainDeps => ({ ...base, now: () => now });

  before(async () => {
    idp = await LocalIssuer.start();
    base = await chainWalkDeps(idp, OWN_ISSUER);
    ownKeys = base.ownKeys;
  });
  after(() => idp.stop());

  /** Our level around `inner` (whose verified chain is `chain`), issued at `iat`. */
  const wrap = async (inner: string, chain: Chain, iat: number, destination = 'A') =>
    (
      await mintExtended(
        {
          incoming: inner,
          chain,
          destination,
          tenant: 'acme',
          subject: 'alice',
          roles: [],
          seal: false,
          now: iat,
        },
        ownKeys,
        SETTINGS,
      )
    ).token;

  it('refuses an inner level wrapped before it was valid (nbf), and accepts it wrapped after', async () => {
    const origin = await idp.mint({ sub: 'alice', nbf: T + 100 }, { iat: T - 10, ttl: 1000 });
    const originChain = await openChain(origin, at(T + 200));
    const early = await wrap(origin, originChain, T);
    assert.equal(await reasonOf(openChain(early, at(T + 200))), 'not_yet_valid');
    const inTime = await wrap(origin, originChain, T + 150);
    assert.equal(await reasonOf(openChain(inTime, at(T + 200))), 'allowed');
  });

  it('refuses an inner level issued after the level that wraps it', async () => {
    const origin = await idp.mint({ sub: 'alice' }, { iat: T + 100, ttl: 1000 });
    const originChain = await openChain(origin, at(T + 200));
    const backdated = await wrap(origin, originChain, T);
    assert.equal(await reasonOf(openChain(backdated, at(T + 200))), 'stack_malformed');
    const honest = await wrap(origin, originChain, T + 110);
    assert.equal(await reasonOf(openChain(honest, at(T + 200))), 'allowed');
  });

  /** The level re-signed with our key after `edit` (what a minter without our caps could issue). */
  const resign = (
    token: string,
    edit: (claims: Record<string, unknown>) => Record<string, unknown>,
  ): string => {
    const claims = JSON.parse(
      Buffer.from(token.split('.')[1] as string, 'base64url').toString('utf8'),
    ) as Record<string, unknown>;
    return compactSignJson(
      ownKeys.signing.alg,
      ownKeys.signing.kid,
      ownKeys.signing.privateKey,
      JSON.stringify(edit(claims)),
    );
  };

  it('applies the time rules to a sub-chain found in the memo as to one verified in full', async () => {
    // The origin is remembered while valid (a hop saw it); later a level wraps it after it expired.
    // That level outlives the origin (we cap our own, a level need not be ours to be checked).
    const memo = new ChainMemo(100);
    const origin = await idp.mint({ sub: 'alice' }, { iat: T - 10, ttl: 100 });
    const originChain = await openChain(origin, { ...at(T), memo });
    const late = resign(await wrap(origin, originChain, T + 200), (c) => ({ ...c, exp: T + 500 }));
    assert.equal(await reasonOf(openChain(late, at(T + 210))), 'expired', 'verified in full');
    const viaMemo = openChain(late, { ...at(T + 210), memo });
    assert.equal(
      await reasonOf(viaMemo),
      'expired',
      'the memoised origin was still checked against the time it was wrapped',
    );
    const inTime = await wrap(origin, originChain, T + 50);
    const opened = await openChain(inTime, { ...at(T + 60), memo });
    assert.equal(opened.verifiedHere, 1, 'the origin came from the memo');
  });

  it('refuses a level signed with our key but addressed to another audience', async () => {
    const origin = await idp.mint({ sub: 'alice' });
    const originChain = await openChain(origin, at(T));
    const good = await wrap(origin, originChain, T);
    assert.equal(await reasonOf(openChain(good, at(T))), 'allowed');
    assert.equal(
      await reasonOf(
        openChain(
          resign(good, (c) => c),
          at(T),
        ),
      ),
      'allowed',
      'a re-signed copy of itself',
    );
    for (const aud of ['https://other-authz.test', ['https://other-authz.test', 'x'], 42]) {
      assert.equal(
        await reasonOf(
          openChain(
            resign(good, (c) => ({ ...c, aud })),
            at(T),
          ),
        ),
        'audience_mismatch',
        JSON.stringify(aud),
      );
    }
    const noAud = resign(good, ({ aud: _dropped, ...rest }) => rest);
    assert.equal(await reasonOf(openChain(noAud, at(T))), 'audience_mismatch', 'no aud at all');
  });

  it('stops a chain of our own levels at the level cap, whatever the cap', async () => {
    const origin = await idp.mint({ sub: 'alice' });
    let token = origin;
    let chain = await openChain(origin, at(T));
    const byLevels: string[] = [origin];
    for (let depth = 1; depth <= 6; depth++) {
      token = await wrap(token, chain, T, `svc-${depth}`);
      chain = await openChain(token, at(T));
      byLevels.push(token);
    }
    for (let cap = 1; cap <= 6; cap++) {
      const deps: OpenChainDeps = { ...at(T), limits: { ...base.limits, maxLevels: cap } };
      assert.equal(
        await reasonOf(openChain(byLevels[cap - 1] as string, deps)),
        'allowed',
        `${cap} levels with a cap of ${cap}`,
      );
      assert.equal(
        await reasonOf(openChain(byLevels[cap] as string, deps)),
        'stack_too_large',
        `${cap + 1} levels with a cap of ${cap}`,
      );
    }
  });
});

describe('a key its IdP withdraws', () => {
  it('stops verifying tokens it signed, even those the memo remembers', async () => {
    const idp = await LocalIssuer.start();
    try {
      const deps: OpenChainDeps = {
        ...(await chainWalkDeps(idp, OWN_ISSUER)),
        now: () => Math.floor(Date.now() / 1000),
        memo: new ChainMemo(100),
      };
      const old = await idp.mint({ sub: 'alice' });
      assert.equal((await openChain(old, deps)).verifiedHere, 1);
      assert.equal((await openChain(old, deps)).verifiedHere, 0, 'remembered');
      const oldKid = idp.currentKid;
      await idp.rotate();
      idp.withdraw(oldKid);
      // A token of the new key makes this replica fetch the set the IdP now publishes.
      assert.equal(await reasonOf(openChain(await idp.mint({ sub: 'bob' }), deps)), 'allowed');
      assert.equal(
        await reasonOf(openChain(old, deps)),
        'bad_signature',
        'the withdrawn key no longer vouches, memo or not',
      );
    } finally {
      await idp.stop();
    }
  });
});

describe('a route bound to a tenant, reached by a chain several hops deep', () => {
  const h = worldSuiteWith('handler', { acme: {} }, ({ acme }) => ({
    contents: {
      issuers: [localIssuer(acme, 'acme')],
    },
  }));

  it('refuses the chain on a route of another tenant and allows it on its own', async () => {
    let token = await h.of('acme').mint({ sub: 'alice' });
    for (const sid of ['gateway', 'orders']) {
      const hop = await h.w.check({ token, sid, contextExtensions: { tenant: 'acme' } });
      assert.equal(hop.allowed, true, hop.body);
      token = hop.forwardedToken as string;
    }
    const foreign = await h.w.check({
      token,
      sid: 'billing',
      contextExtensions: { tenant: 'globex' },
    });
    assert.equal(foreign.httpStatus, 403);
    assert.equal(h.w.lastReason(), 'tenant_mismatch');
    assert.equal(foreign.forwardedToken, undefined);
    assert.equal(
      (await h.w.check({ token, sid: 'billing', contextExtensions: { tenant: 'acme' } })).allowed,
      true,
    );
  });
});
