/**
 * A token this replica minted is remembered under its exact text with a record of the new level
 * built at mint (src/pipeline/mint.ts). A hop that shows us that very token then verifies nothing,
 * so the record must be exactly what verifying the token would have produced — checked here against
 * a walk with no memo at all, at every depth, compressed, and sealed.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ChainMemo } from '../../src/chain/chain-memo.js';
import { fastestMemoHash, memoDigest } from '../../src/chain/memo-hash.js';
import { openChain, type OpenChainDeps } from '../../src/chain/open-chain.js';
import type { Chain } from '../../src/chain/types.js';
import { LocalIssuer } from '../../src/demo/local-issuer.js';
import type { OwnKeys } from '../../src/keys/own-keys.js';
import { type MintSettings, mintExtended } from '../../src/pipeline/mint.js';
import { DenyError } from '../../src/reasons.js';
import { chainWalkDeps, handMint } from '../helpers/in-process.js';

const OWN_ISSUER = 'https://authz.test';

describe('the record of a level we mint', () => {
  let idp: LocalIssuer;
  let ownKeys: OwnKeys;
  let bare: OpenChainDeps;
  before(async () => {
    idp = await LocalIssuer.start();
    const walk = await chainWalkDeps(idp, OWN_ISSUER);
    ownKeys = walk.ownKeys;
    bare = { ...walk, now: () => Math.floor(Date.now() / 1000) };
  });
  after(() => idp.stop());

  for (const compression of ['g', 'b'] as const) {
    it(`equals what verifying the minted token records, depths 1 to 6 (${compression}), sealed or not`, async () => {
      const settings: MintSettings = handMint(OWN_ISSUER, { compression });
      let token = await idp.mint({
        sub: 'alice',
        roles: ['reader', 'writer'],
        pad: 'x'.repeat(600),
      });
      let chain: Chain = await openChain(token, bare);
      let compressedSeen = false;
      for (let depth = 1; depth <= 6; depth++) {
        const seal = depth === 4;
        const minted = await mintExtended(
          {
            incoming: token,
            chain,
            destination: `svc-${depth}`,
            tenant: 'acme',
            subject: 'alice',
            roles: chain.levels[0]?.roles ?? [],
            seal,
            now: bare.now(),
          },
          ownKeys,
          settings,
        );
        const verified = await openChain(minted.token, bare);
        assert.equal(verified.verifiedHere, depth + 1, 'the reference walk verified every level');
        assert.deepEqual(minted.level, verified.outer, `depth ${depth}`);
        assert.deepEqual([...chain.levels, minted.level], verified.levels);
        assert.equal(minted.level.stack?.fmt, seal ? 'JWE' : 'JWT');
        compressedSeen ||= minted.level.stack?.cmp === compression;
        token = minted.token;
        chain = verified;
      }
      assert.ok(compressedSeen, 'some level was compressed');
    });
  }

  for (const hash of ['sha256', 'blake2b512'] as const)
    it(`lets the memo answer for exactly that text, and nothing else (keys by ${hash})`, async () => {
      const memo = new ChainMemo(100, hash);
      const deps: OpenChainDeps = { ...bare, memo };
      const origin = await idp.mint({ sub: 'alice' });
      const chain = await openChain(origin, deps);
      const minted = await mintExtended(
        {
          incoming: origin,
          chain,
          destination: 'A',
          tenant: 'acme',
          subject: 'alice',
          roles: [],
          seal: false,
          now: bare.now(),
        },
        ownKeys,
        handMint(OWN_ISSUER),
      );
      memo.rememberMinted(
        minted.token,
        minted.jti,
        minted.levels,
        minted.inside,
        chain.sealed,
        bare.trust.registry.version(),
      );

      const seen = await openChain(minted.token, deps);
      assert.equal(seen.verifiedHere, 0, 'nothing verified: we signed this very text');
      assert.deepEqual(seen.levels, (await openChain(minted.token, bare)).levels);

      // One character of the signature changed: not the text we signed, so it is verified — and fails.
      const [head, body, sig] = minted.token.split('.') as [string, string, string];
      const flipped = `${head}.${body}.${sig.startsWith('A') ? 'B' : 'A'}${sig.slice(1)}`;
      await assert.rejects(
        openChain(flipped, deps),
        (error: unknown) => error instanceof DenyError && error.reason === 'bad_signature',
      );
    });

  for (const hash of ['sha256', 'blake2b512'] as const)
    it(`lets replicas that take turns verify only the level the other one minted, compressed or not (keys by ${hash})`, async () => {
      // Two replicas sharing one key file: each has its own memo.
      const replicas = [new ChainMemo(100, hash), new ChainMemo(100, hash)];
      const settings: MintSettings = handMint(OWN_ISSUER);
      let token = await idp.mint({ sub: 'alice', pad: 'y'.repeat(600) });
      for (let depth = 1; depth <= 5; depth++) {
        const memo = replicas[depth % 2] as ChainMemo;
        const chain = await openChain(token, { ...bare, memo });
        // The first hop verifies the origin and the second both levels; from then on the level
        // inside the one just received was minted by this very replica, one hop earlier.
        assert.equal(chain.verifiedHere, depth <= 2 ? depth : 1, `hop ${depth}`);
        assert.deepEqual(chain.levels, (await openChain(token, bare)).levels);
        const minted = await mintExtended(
          {
            incoming: token,
            chain,
            destination: `svc-${depth}`,
            tenant: 'acme',
            subject: 'alice',
            roles: [],
            seal: false,
            now: bare.now(),
          },
          ownKeys,
          settings,
        );
        if (depth >= 3) assert.equal(minted.level.stack?.cmp, 'g');
        memo.rememberMinted(
          minted.token,
          minted.jti,
          minted.levels,
          minted.inside,
          chain.sealed,
          bare.trust.registry.version(),
        );
        token = minted.token;
      }
    });

  it('verifies a chain once for the many levels other replicas mint around it (fan-in), plain or compressed', async () => {
    const settings: MintSettings = handMint(OWN_ISSUER, { compression: 'b' });
    const wrap = async (token: string, chain: Chain, sid: string) =>
      (
        await mintExtended(
          {
            incoming: token,
            chain,
            destination: sid,
            tenant: 'acme',
            subject: 'alice',
            roles: [],
            seal: false,
            now: bare.now(),
          },
          ownKeys,
          settings,
        )
      ).token;
    // Another replica (no memo here) walks an origin to depth 2, then wraps it several times.
    let inner = await idp.mint({ sub: 'alice', pad: 'z'.repeat(600) });
    for (const sid of ['A', 'B']) inner = await wrap(inner, await openChain(inner, bare), sid);
    const innerChain = await openChain(inner, bare);
    const origin = await idp.mint({ sub: 'alice' });
    const originChain = await openChain(origin, bare);
    for (const [around, chain, depth] of [
      [origin, originChain, 1],
      [inner, innerChain, 3],
    ] as const) {
      const memo = new ChainMemo(100);
      for (let n = 0; n < 3; n++) {
        const token = await wrap(around, chain, `C${n}`);
        const opened = await openChain(token, { ...bare, memo });
        // The first verifies everything; later ones only their own level, found inside (the
        // depth-3 ones once decompressed) under the text of the chain they wrap.
        assert.equal(opened.verifiedHere, n === 0 ? depth + 1 : 1, `depth ${depth}, level ${n}`);
        assert.equal(opened.outer.stack?.cmp, depth >= 3 ? 'b' : undefined);
        assert.deepEqual(opened.levels, (await openChain(token, bare)).levels);
      }
    }
  });
});

describe('memo keys', () => {
  it('bind one exact text under either digest, in 43 base64url characters with no colon', () => {
    const text = `eyJhbGciOiJFUzI1NiJ9.${'a'.repeat(20_000)}.sig`;
    for (const hash of ['sha256', 'blake2b512'] as const) {
      const key = memoDigest(hash, text);
      assert.match(key, /^[A-Za-z0-9_-]{43}$/);
      assert.equal(memoDigest(hash, `${text}`), key, 'the same text, the same key');
      assert.notEqual(
        memoDigest(hash, `${text.slice(0, -1)}h`),
        key,
        'one character changed, another key',
      );
      assert.notEqual(memoDigest(hash, text.slice(0, -1)), key, 'one character fewer, another key');
    }
    assert.notEqual(memoDigest('sha256', text), memoDigest('blake2b512', text));
    assert.ok(['sha256', 'blake2b512'].includes(fastestMemoHash(2)));
  });
});
