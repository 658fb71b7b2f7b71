/** Fault: key rotation at the IdP during load (see test/helpers/fault-load.ts). */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { decodeProtectedHeader } from 'jose';
import { LocalIssuer } from '../../src/demo/local-issuer.js';
import { type Harness, startHarness } from '../helpers/harness.js';
import { localIssuer } from '../helpers/records.js';
import {
  sleep,
  type Job,
  type Sample,
  loadLoop,
  tally,
  tamperings,
} from '../helpers/fault-load.js';

describe('fault: key rotation at the IdP during load', () => {
  const COOLDOWN_MS = 100;
  const SETTLE_MS = 300;
  let idp: LocalIssuer;
  let slowIdp: LocalIssuer;
  let h: Harness;

  before(async () => {
    idp = await LocalIssuer.start();
    // An IdP that takes 100 ms to serve its JWKS (as a real one over the internet may).
    slowIdp = await LocalIssuer.start({ jwksDelayMs: 100 });
    h = await startHarness({
      env: { MATRYOSHKA_JWKS_COOLDOWN_MS: String(COOLDOWN_MS), LOG_LEVEL: 'warn' },
      contents: {
        issuers: [
          localIssuer(idp, 'acme', { algorithms: ['ES256'] }),
          localIssuer(slowIdp, 'acme', { algorithms: ['ES256'] }),
        ],
      },
    });
  });
  after(async () => {
    await h?.stop();
    await idp?.stop();
    await slowIdp?.stop();
  });

  it('accepts the new kid after one refetch, refuses every tampered token, and fetches the JWKS a bounded number of times', async () => {
    const oldTokens = await Promise.all(
      Array.from({ length: 4 }, (_, i) => idp.mint({ sub: `early-${i}` })),
    );
    assert.equal((await h.client.check({ token: oldTokens[0], sid: 'A' })).allowed, true);
    assert.equal(idp.hits.jwks, 1, 'one fetch to warm up');

    // Tokens minted with the current key (and tamperings of them), a small pool per kid.
    const pools = new Map<
      string,
      Promise<{ valid: string[]; tampered: Array<{ tag: string; token: string }> }>
    >();
    const poolFor = (
      kid: string,
    ): Promise<{ valid: string[]; tampered: Array<{ tag: string; token: string }> }> => {
      let pool = pools.get(kid);
      if (pool === undefined) {
        pool = (async () => {
          const valid = await Promise.all(
            Array.from({ length: 16 }, (_, i) => idp.mint({ sub: `user-${i}` })),
          );
          return { valid, tampered: (await Promise.all(valid.slice(0, 4).map(tamperings))).flat() };
        })();
        pools.set(kid, pool);
      }
      return pool;
    };
    await poolFor(idp.currentKid);
    const rotations: Array<{ at: number; kid: string }> = [];
    const rotator = (async () => {
      for (const at of [1000, 2000]) {
        await sleep(at - (rotations.length === 0 ? 0 : 1000));
        const kid = await idp.rotate();
        rotations.push({ at: Date.now(), kid });
      }
    })();
    const samples = await loadLoop({
      client: h.client,
      workers: 16,
      durationMs: 3000,
      maxRequests: 30_000,
      next: async (n): Promise<Job> => {
        const slot = n % 10;
        if (slot === 6)
          return {
            kind: 'valid-old-kid',
            expect: 'allow',
            token: oldTokens[n % oldTokens.length] as string,
          };
        const pool = await poolFor(idp.currentKid);
        if (slot < 6) {
          const token = pool.valid[n % pool.valid.length] as string;
          return {
            kind: 'valid',
            expect: 'allow',
            token,
            tag: decodeProtectedHeader(token).kid as string,
          };
        }
        const variant = pool.tampered[n % pool.tampered.length] as { tag: string; token: string };
        return { kind: 'tampered', expect: 'deny', token: variant.token, tag: variant.tag };
      },
    });
    await rotator;

    const t = tally(samples);
    const inWindow = (s: Sample): boolean =>
      rotations.some((r) => s.sentAt >= r.at && s.sentAt < r.at + SETTLE_MS);
    const wrongDenials = samples.filter(
      (s) => s.job.expect === 'allow' && s.result !== undefined && !s.result.allowed,
    );
    const wrongDenialsSettled = wrongDenials.filter((s) => !inWindow(s));
    const newKidChecks = samples.filter(
      (s) => s.job.kind === 'valid' && rotations.some((r) => r.kid === s.job.tag),
    );
    const figures = {
      ...t,
      rotations: rotations.length,
      newKidChecks: newKidChecks.length,
      wrongDenialsInSettlingWindow: wrongDenials.length - wrongDenialsSettled.length,
      wrongDenialsAfterSettling: wrongDenialsSettled.length,
      wrongDenialReasons: [
        ...new Set(wrongDenials.map((s) => String(s.result?.metadata['reason']))),
      ],
      jwksFetches: idp.hits.jwks,
    };
    console.log('[faults] key rotation under load:', JSON.stringify(figures));
    assert.equal(rotations.length, 2);
    assert.ok(t.total > 200, `a steady load (${t.total})`);
    assert.ok(
      newKidChecks.length > 30,
      `tokens with the rotated kids were checked (${newKidChecks.length})`,
    );
    assert.equal(t.rpcErrors, 0, 'every request got an answer');
    assert.equal(t.wrongAllows, 0, 'ZERO wrong allows');
    assert.equal(
      wrongDenialsSettled.length,
      0,
      `zero wrong denials after a ${SETTLE_MS} ms settling window`,
    );
    assert.ok(
      idp.hits.jwks <= 1 + rotations.length,
      `the JWKS was fetched ${idp.hits.jwks} times: once to warm up and once per rotation, not per request`,
    );
  });

  it('holds every concurrent first request with a new kid until the one refetch lands (no denial inside the cooldown)', async () => {
    const warm = await slowIdp.mint({ sub: 'warm' });
    assert.equal((await h.client.check({ token: warm, sid: 'A' })).allowed, true);
    await sleep(COOLDOWN_MS + 50);
    const before = slowIdp.hits.jwks;
    await slowIdp.rotate();
    const tokens = await Promise.all(
      Array.from({ length: 20 }, (_, i) => slowIdp.mint({ sub: `user-${i}` })),
    );
    const results = await Promise.all(tokens.map((token) => h.client.check({ token, sid: 'A' })));
    const denied = results.filter((r) => !r.allowed);
    console.log(
      '[faults] 20 concurrent checks with a new kid (IdP answers in 100 ms):',
      JSON.stringify({
        allowed: results.length - denied.length,
        denied: denied.map((r) => `${r.httpStatus}/${String(r.metadata['reason'])}`),
        jwksFetches: slowIdp.hits.jwks - before,
      }),
    );
    assert.equal(slowIdp.hits.jwks - before, 1, 'one refetch for all of them');
    assert.equal(
      denied.length,
      0,
      'zero wrong denials: the checks that arrive while the refetch is in flight wait for it',
    );
  });
});
