import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { inspectChain } from '../../src/chain/inspect.js';
import { LocalIssuer } from '../../src/demo/local-issuer.js';
import { compactSign } from '../../src/keys/jws-crypto.js';
import { OwnKeys } from '../../src/keys/own-keys.js';
import { lastReason, startHarness } from '../helpers/harness.js';
import { worldSuiteWith } from '../world/suite.js';
import { localIssuer } from '../helpers/records.js';
import { authStack, claims } from '../helpers/tokens.js';

describe('a chain walked hop by hop through Check', () => {
  const h = worldSuiteWith('handler', { idp: {} }, ({ idp }) => ({
    contents: {
      issuers: [localIssuer(idp, 'acme', { algorithms: ['ES256'] })],
    },
  }));

  it('extends the chain A → B → C → D, compressing from depth 3 only when shorter, then refuses B as recursion', async () => {
    const origin = await h.of('idp').mint({
      sub: 'alice',
      roles: ['reader', 'writer'],
      pad: 'x'.repeat(700),
    });
    let token = origin;
    const path = ['A', 'B', 'C', 'D'];
    for (const [i, sid] of path.entries()) {
      const result = await h.w.check({ token, sid });
      assert.equal(result.allowed, true, `hop to ${sid}: ${result.body}`);
      assert.equal(result.grpcCode, 0);
      const minted = result.forwardedToken;
      assert.ok(minted, 'a minted token is forwarded');
      const depth = i + 1;
      assert.equal(result.headers['x-auth-depth'], String(depth));
      assert.equal(result.headers['x-auth-chain'], path.slice(0, depth).join(','));
      assert.equal(result.headers['x-tenant-id'], 'acme');
      assert.equal(result.headers['x-user-id'], 'alice');
      assert.equal(result.headers['x-user-roles'], 'reader,writer');

      const stack = authStack(minted);
      assert.equal(stack['sid'], sid);
      assert.equal(stack['depth'], depth);
      assert.equal(stack['fmt'], 'JWT');
      if (depth < 3) {
        assert.equal(stack['cmp'], undefined, `no compression at depth ${depth}`);
        assert.equal(stack['container'], token, 'the container is the incoming token itself');
      } else {
        // From depth 3 the container is compressed only if that is shorter than the token itself.
        const compressedIsShorter = stack['cmp'] === 'g';
        if (compressedIsShorter) assert.ok((stack['container'] as string).length < token.length);
        else assert.equal(stack['container'], token);
      }
      const opened = inspectChain(minted);
      assert.equal(opened.stop.kind, 'origin');
      assert.equal(opened.levels.length, depth + 1);
      assert.deepEqual(
        opened.levels.slice(1).map((l) => l.sid),
        path.slice(0, depth),
      );
      assert.equal(claims(minted)['sub'], 'alice');
      assert.equal(claims(minted)['tenant_id'], 'acme');
      assert.ok(
        (claims(minted)['exp'] as number) <= (claims(origin)['exp'] as number),
        'never outlives the origin',
      );
      token = minted;
    }
    // Depth 4 of a ~1 KB origin: gzip pays, so the depth-3 and -4 containers are compressed.
    assert.equal(authStack(token)['cmp'], 'g');
    // The first compression of the chain looks for repeats: the origin's 700 'x' are still there,
    // as plain text two levels down, and go (an entropy coder alone would save about a quarter).
    const inflate = (container: unknown): string =>
      gunzipSync(Buffer.from(container as string, 'base64')).toString('latin1');
    const third = authStack(inflate(authStack(token)['container']));
    assert.equal(third['cmp'], 'g');
    const thirdContainer = third['container'] as string;
    const inflatedThird = inflate(thirdContainer);
    assert.ok(
      thirdContainer.length < inflatedThird.length * 0.6,
      `depth 3: ${inflatedThird.length} → ${thirdContainer.length}`,
    );

    const recursion = await h.w.check({ token, sid: 'B' });
    assert.equal(recursion.allowed, false);
    assert.equal(recursion.httpStatus, 403);
    assert.equal(recursion.grpcCode, 7);
    const line = h.w.logs.findLast((l) => l['msg'] === 'check');
    assert.equal(line?.['reason'], 'recursion');
  });

  it('fetches the issuer keys once for many checks', async () => {
    const before = h.of('idp').hits.jwks;
    const token = await h.of('idp').mint({ sub: 'bob' });
    for (let i = 0; i < 20; i++) assert.equal((await h.w.check({ token, sid: 'A' })).allowed, true);
    assert.equal(h.of('idp').hits.jwks - before, 0, 'keys already cached from the first test');
  });
});

describe('the memo of verified chains: a hop opens only its own level', () => {
  it('does not inflate, parse or verify the container of a level we minted once that level has verified', async () => {
    const idp = await LocalIssuer.start();
    const ownKeys = await OwnKeys.generate();
    const h = await startHarness({
      contents: {
        issuers: [localIssuer(idp, 'acme')],
      },
      ownKeys,
    });
    try {
      let token = await idp.mint({ sub: 'alice' });
      for (const sid of ['A', 'B'])
        token = (await h.client.check({ token, sid })).forwardedToken as string;
      const minted = (await h.client.check({ token, sid: 'C' })).forwardedToken as string; // depth 3: a gzip container
      const payload = JSON.parse(
        Buffer.from(minted.split('.')[1] as string, 'base64url').toString(),
      ) as Record<string, unknown> & { auth_stack: Record<string, unknown> };
      assert.equal(payload.auth_stack['cmp'], 'g');
      // The same level, signed with our key, around a container that does not even inflate: only a
      // hop that never touches the container can accept it. (We never sign two levels with one jti.)
      const garbage = {
        ...payload,
        auth_stack: {
          ...payload.auth_stack,
          container: Buffer.from('not gzip at all').toString('base64'),
        },
      };
      const { alg, kid, privateKey } = ownKeys.signing;
      const sameJti = compactSign(alg, kid, privateKey, garbage);
      const next = await h.client.check({ token: sameJti, sid: 'D' });
      assert.equal(next.allowed, true, next.body);
      assert.equal(next.headers['x-auth-chain'], 'A,B,C,D');
      // With a jti the memo does not hold, the container is opened — and refused.
      const otherJti = compactSign(alg, kid, privateKey, { ...garbage, jti: 'never-minted-here' });
      assert.equal((await h.client.check({ token: otherJti, sid: 'D' })).allowed, false);
      assert.equal(lastReason(h), 'stack_malformed');
    } finally {
      await h.stop();
      await idp.stop();
    }
  });
});

describe('the same walk with the memo of verified chains turned off', () => {
  it('verifies every level every time and decides the same', async () => {
    const idp = await LocalIssuer.start();
    const h = await startHarness({
      contents: {
        issuers: [localIssuer(idp, 'acme')],
      },
      env: { MATRYOSHKA_MEMO_ENTRIES: '0' },
    });
    try {
      let token = await idp.mint({ sub: 'alice' });
      for (const sid of ['A', 'B', 'C']) {
        const result = await h.client.check({ token, sid });
        assert.equal(result.allowed, true);
        token = result.forwardedToken as string;
      }
      assert.equal(
        (await h.client.check({ token, sid: 'A' })).httpStatus,
        403,
        'recursion found without the memo',
      );
      assert.equal((await h.client.check({ token, sid: 'D' })).headers['x-auth-chain'], 'A,B,C,D');
    } finally {
      await h.stop();
      await idp.stop();
    }
  });
});
