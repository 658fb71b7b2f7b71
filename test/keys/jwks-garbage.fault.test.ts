/** Fault: a JWKS endpoint returning garbage or 10 MB (see test/helpers/fault-load.ts). */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type JWK, decodeProtectedHeader } from 'jose';
import type { CheckResult } from '../../src/demo/envoy-client.js';
import { LocalIssuer } from '../../src/demo/local-issuer.js';
import { MisbehavingJwks } from '../helpers/bad-jwks.js';
import { type Harness, startHarness } from '../helpers/harness.js';
import { issuer } from '../helpers/records.js';
import { round, tamperings, peakRssGrowth } from '../helpers/fault-load.js';

describe('fault: a JWKS endpoint returning garbage or 10 MB', () => {
  const TEN_MB = 10 * 1024 * 1024;
  let bad: MisbehavingJwks;
  let good: LocalIssuer;
  const issuers: Record<string, LocalIssuer> = {};
  let h: Harness;
  const garbage: Record<string, string> = {
    'not-json': '<html><body>502 Bad Gateway</body></html>',
    'truncated-json': '{"keys":[{"kty":"EC","crv":"P-256"',
    'json-null': 'null',
    'json-array': '[{"kty":"EC","crv":"P-256","x":"a","y":"b"}]',
    'json-string': '"keys"',
    'keys-not-array': '{"keys":"all of them"}',
    'no-keys-member': '{"jwks":[]}',
  };

  before(async () => {
    good = await LocalIssuer.start();
    const goodJwk = ((await (await fetch(good.jwksUri)).json()) as { keys: JWK[] }).keys[0] as JWK;
    // Malformed keys next to the good one (distinct kids), some before it and some after.
    const mixed = JSON.stringify({
      keys: [
        null,
        1,
        'a string',
        { kty: 42, kid: 'kty-not-a-string' },
        {
          kty: 'EC',
          kid: 'bad-ec-coordinates',
          crv: 'P-256',
          x: '!!!not base64!!!',
          y: 'AAAA',
          alg: 'ES256',
        },
        {
          kty: 'EC',
          kid: 'bad-ec-off-curve',
          crv: 'P-256',
          x: Buffer.alloc(32, 1).toString('base64url'),
          y: Buffer.alloc(32, 2).toString('base64url'),
        },
        { kty: 'RSA', kid: 'bad-rsa', n: '', e: '' },
        goodJwk,
        { kty: 'EC', kid: 'no-curve', x: 'AAAA', y: 'AAAA' },
        { kty: 'oct', kid: 'symmetric', k: Buffer.from('secret').toString('base64url') },
      ],
    });
    bad = await MisbehavingJwks.start({
      ...Object.fromEntries(
        Object.entries(garbage).map(([name, body]) => [
          `/${name}`,
          {
            kind: 'body' as const,
            body,
            contentType: name === 'not-json' ? 'text/html' : 'application/json',
          },
        ]),
      ),
      '/mixed': { kind: 'body', body: mixed },
      '/huge-content-length': { kind: 'huge', bytes: TEN_MB, contentLength: true },
      '/huge-chunked': { kind: 'huge', bytes: TEN_MB, contentLength: false },
    });
    const names = [...Object.keys(garbage), 'huge-content-length', 'huge-chunked'];
    const started = await Promise.all(names.map(() => LocalIssuer.start()));
    for (const [i, name] of names.entries()) issuers[name] = started[i] as LocalIssuer;
    h = await startHarness({
      env: {
        MATRYOSHKA_JWKS_TIMEOUT_MS: '3000',
        MATRYOSHKA_JWKS_COOLDOWN_MS: '0',
        LOG_LEVEL: 'warn',
      },
      contents: {
        issuers: [
          issuer({
            issuer: good.issuer,
            tenant: 'acme',
            jwks_uri: bad.url('/mixed'),
            algorithms: ['ES256'],
          }),
          ...names.map((name) =>
            issuer({
              issuer: (issuers[name] as LocalIssuer).issuer,
              tenant: 'acme',
              jwks_uri: bad.url(`/${name}`),
            }),
          ),
        ],
      },
    });
  });
  after(async () => {
    await h?.stop();
    await bad?.stop();
    await good?.stop();
    for (const i of Object.values(issuers)) await i.stop();
  });

  it('answers a clean 503 for documents that are not a JWK Set', async () => {
    const outcomes: Record<string, string> = {};
    for (const name of Object.keys(garbage)) {
      const token = await (issuers[name] as LocalIssuer).mint({ sub: 'alice' });
      const result = await h.client.check({ token, sid: 'A' });
      outcomes[name] = `${result.httpStatus}/${String(result.metadata['reason'])}`;
      assert.equal(result.allowed, false, `${name}: ZERO wrong allows`);
      assert.equal(result.httpStatus, 503, `${name}: keys unavailable is 503`);
      assert.equal(result.metadata['reason'], 'unavailable', name);
      assert.ok(bad.hitsOf(`/${name}`) >= 1, `${name}: the endpoint was asked`);
    }
    console.log('[faults] garbage JWKS:', JSON.stringify(outcomes));
  });

  it('keeps the good key of a set that also holds malformed keys; tokens naming a malformed key are refused, never 5xx-crashed', async () => {
    const token = await good.mint({ sub: 'alice' });
    const ok = await h.client.check({ token, sid: 'A' });
    assert.equal(
      ok.allowed,
      true,
      'the good key works next to malformed ones (zero wrong denials)',
    );
    const kidLess = await good.signCompact(
      { kid: undefined, typ: 'JWT' },
      JSON.stringify({
        iss: good.issuer,
        sub: 'alice',
        iat: Math.floor(Date.now() / 1000),
        exp: Math.floor(Date.now() / 1000) + 600,
      }),
    );
    assert.equal(decodeProtectedHeader(kidLess).kid, undefined);
    const kidLessResult = await h.client.check({ token: kidLess, sid: 'A' });
    assert.equal(
      kidLessResult.allowed,
      true,
      'a token without kid finds the good key past the malformed ones',
    );
    const outcomes: Record<string, string> = {};
    for (const kid of [
      'kty-not-a-string',
      'bad-ec-coordinates',
      'bad-ec-off-curve',
      'bad-rsa',
      'no-curve',
      'symmetric',
    ]) {
      const result = await h.client.check({
        token: await good.mint({ sub: 'mallory' }, { kid }),
        sid: 'A',
      });
      outcomes[kid] = `${result.httpStatus}/${String(result.metadata['reason'])}`;
      assert.equal(result.allowed, false, `kid ${kid}: ZERO wrong allows`);
      assert.equal(result.httpStatus, 401, `kid ${kid}: refused as a bad signature`);
      assert.equal(result.metadata['reason'], 'bad_signature', kid);
    }
    for (const t of await tamperings(token))
      assert.equal(
        (await h.client.check({ token: t.token, sid: 'A' })).allowed,
        false,
        `${t.tag}: ZERO wrong allows`,
      );
    console.log(
      '[faults] mixed JWKS:',
      JSON.stringify({
        good: ok.httpStatus,
        kidLess: kidLessResult.httpStatus,
        malformedKids: outcomes,
      }),
    );
  });

  it('refuses a 10 MB JWKS (with Content-Length and chunked) with a 503, without the memory ballooning', async () => {
    const figures: Record<string, unknown> = {};
    for (const name of ['huge-content-length', 'huge-chunked']) {
      const idp = issuers[name] as LocalIssuer;
      const tokens = await Promise.all(
        Array.from({ length: 4 }, (_, i) => idp.mint({ sub: `user-${i}` })),
      );
      const before = bad.hitsOf(`/${name}`);
      // 8 rounds of 4 concurrent checks: every round finds no keys cached and fetches again.
      const {
        result: results,
        growthMb,
        baselineMb,
      } = await peakRssGrowth(async () => {
        const all: CheckResult[] = [];
        for (let round = 0; round < 8; round++)
          all.push(
            ...(await Promise.all(tokens.map((token) => h.client.check({ token, sid: 'A' })))),
          );
        return all;
      });
      const fetches = bad.hitsOf(`/${name}`) - before;
      figures[name] = {
        checks: results.length,
        statuses: [
          ...new Set(results.map((r) => `${r.httpStatus}/${String(r.metadata['reason'])}`)),
        ],
        fetches,
        bytesSentPerFetchKb: Math.round(
          (bad.bytesSent.get(`/${name}`) ?? 0) / Math.max(1, bad.hitsOf(`/${name}`)) / 1024,
        ),
        rssBaselineMb: Math.round(baselineMb),
        rssPeakGrowthMb: round(growthMb),
      };
      assert.ok(
        results.every((r) => !r.allowed),
        `${name}: ZERO wrong allows`,
      );
      assert.ok(
        results.every((r) => r.httpStatus === 503 && r.metadata['reason'] === 'unavailable'),
        `${name}: a clean 503`,
      );
      assert.ok(fetches >= 1, `${name}: the endpoint was asked`);
      assert.ok(growthMb < 50, `${name}: RSS growth ${round(growthMb)} MB < 50 MB`);
    }
    console.log('[faults] 10 MB JWKS:', JSON.stringify(figures));
    // Nothing crashed: the service still answers checks and probes.
    assert.equal((await fetch(`http://127.0.0.1:${h.service.httpPort}/healthz`)).status, 200);
    assert.equal(
      (await h.client.check({ token: await good.mint({ sub: 'alice' }), sid: 'A' })).allowed,
      true,
    );
  });
});
