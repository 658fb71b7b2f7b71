/**
 * A token this replica minted is remembered under its exact text with a record of the new level
 * built at mint (src/pipeline/mint.ts). A hop that shows us that very token then verifies nothing,
 * so the record must be exactly what verifying the token would have produced — checked here against
 * a walk with no memo at all, at every depth, compressed, and sealed.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ChainMemo } from '../../src/chain/chain-memo.js';
import { fastestMemoHash, memoDigest } from '../../src/chain/memo-hash.js';
import { openChain, type OpenChainDeps } from '../../src/chain/open-chain.js';
import type { Chain } from '../../src/chain/types.js';
import { LocalIssuer } from '../../src/demo/local-issuer.js';
import { type MintSettings, type Minted, mintExtended } from '../../src/pipeline/mint.js';
import { DenyError } from '../../src/reasons.js';
import { suiteParts } from '../helpers/suite-parts.js';
import { chainWalkDeps, handMint } from '../helpers/in-process.js';

const OWN_ISSUER = 'https://authz.test';

describe('the record of a level we mint', () => {
  const s = suiteParts(async (own) => {
    const idp = own(await LocalIssuer.start());
    const walk = await chainWalkDeps(idp, OWN_ISSUER);
    const bare: OpenChainDeps = { ...walk, now: () => Math.floor(Date.now() / 1000) };
    /** `mintExtended` of alice's chain in tenant acme, at `bare`'s time. */
    const mint = (
      token: string,
      chain: Chain,
      destination: string,
      settings: MintSettings,
      over: { roles?: readonly string[]; seal?: boolean } = {},
    ) =>
      mintExtended(
        {
          incoming: token,
          chain,
          destination,
          tenant: 'acme',
          subject: 'alice',
          roles: over.roles ?? [],
          seal: over.seal ?? false,
          now: bare.now(),
        },
        walk.ownKeys,
        settings,
      );
    /** Remember a level this replica minted around `chain`, as the pipeline does after minting. */
    const remember = (memo: ChainMemo, minted: Minted, chain: Chain): void =>
      memo.rememberMinted(
        minted.token,
        minted.jti,
        minted.levels,
        minted.inside,
        chain.sealed,
        bare.trust.registry.version(),
      );
    return { idp, bare, mint, remember };
  });

  for (const compression of ['g', 'b'] as const) {
    it(`equals what verifying the minted token records, depths 1 to 6 (${compression}), sealed or not`, async () => {
      const settings: MintSettings = handMint(OWN_ISSUER, { compression });
      let token = await s.idp.mint({
        sub: 'alice',
        roles: ['reader', 'writer'],
        pad: 'x'.repeat(600),
      });
      let chain: Chain = await openChain(token, s.bare);
      let compressedSeen = false;
      for (let depth = 1; depth <= 6; depth++) {
        const seal = depth === 4;
        const minted = await s.mint(token, chain, `svc-${depth}`, settings, {
          roles: chain.levels[0]?.roles ?? [],
          seal,
        });
        const verified = await openChain(minted.token, s.bare);
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
      const deps: OpenChainDeps = { ...s.bare, memo };
      const origin = await s.idp.mint({ sub: 'alice' });
      const chain = await openChain(origin, deps);
      const minted = await s.mint(origin, chain, 'A', handMint(OWN_ISSUER));
      s.remember(memo, minted, chain);

      const seen = await openChain(minted.token, deps);
      assert.equal(seen.verifiedHere, 0, 'nothing verified: we signed this very text');
      assert.deepEqual(seen.levels, (await openChain(minted.token, s.bare)).levels);

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
      let token = await s.idp.mint({ sub: 'alice', pad: 'y'.repeat(600) });
      for (let depth = 1; depth <= 5; depth++) {
        const memo = replicas[depth % 2] as ChainMemo;
        const chain = await openChain(token, { ...s.bare, memo });
        // The first hop verifies the origin and the second both levels; from then on the level
        // inside the one just received was minted by this very replica, one hop earlier.
        assert.equal(chain.verifiedHere, depth <= 2 ? depth : 1, `hop ${depth}`);
        assert.deepEqual(chain.levels, (await openChain(token, s.bare)).levels);
        const minted = await s.mint(token, chain, `svc-${depth}`, settings);
        if (depth >= 3) assert.equal(minted.level.stack?.cmp, 'g');
        s.remember(memo, minted, chain);
        token = minted.token;
      }
    });

  it('verifies a chain once for the many levels other replicas mint around it (fan-in), plain or compressed', async () => {
    const settings: MintSettings = handMint(OWN_ISSUER, { compression: 'b' });
    const wrap = async (token: string, chain: Chain, sid: string) =>
      (await s.mint(token, chain, sid, settings)).token;
    // Another replica (no memo here) walks an origin to depth 2, then wraps it several times.
    let inner = await s.idp.mint({ sub: 'alice', pad: 'z'.repeat(600) });
    for (const sid of ['A', 'B']) inner = await wrap(inner, await openChain(inner, s.bare), sid);
    const innerChain = await openChain(inner, s.bare);
    const origin = await s.idp.mint({ sub: 'alice' });
    const originChain = await openChain(origin, s.bare);
    for (const [around, chain, depth] of [
      [origin, originChain, 1],
      [inner, innerChain, 3],
    ] as const) {
      const memo = new ChainMemo(100);
      for (let n = 0; n < 3; n++) {
        const token = await wrap(around, chain, `C${n}`);
        const opened = await openChain(token, { ...s.bare, memo });
        // The first verifies everything; later ones only their own level, found inside (the
        // depth-3 ones once decompressed) under the text of the chain they wrap.
        assert.equal(opened.verifiedHere, n === 0 ? depth + 1 : 1, `depth ${depth}, level ${n}`);
        assert.equal(opened.outer.stack?.cmp, depth >= 3 ? 'b' : undefined);
        assert.deepEqual(opened.levels, (await openChain(token, s.bare)).levels);
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
