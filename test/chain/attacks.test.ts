import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { brotliCompressSync, constants, createBrotliCompress, gzipSync } from 'node:zlib';
import { after, before, describe, it } from 'node:test';
import { SignJWT, exportJWK, generateKeyPair } from 'jose';
import { LocalIssuer } from '../../src/demo/local-issuer.js';
import type { DenyReason } from '../../src/reasons.js';
import { type World, startWorld } from '../world/world.js';
import { hmacIssuer, localIssuer, service, tenant } from '../helpers/records.js';

/**
 * The attack suite: every case is a token someone could send, and every one must end in a clean
 * denial with its specific reason — never an allow, never an RPC error, never a hang.
 */
const HS_SECRET = 'attack-suite-shared-secret';
const hsKey = new TextEncoder().encode(HS_SECRET);
const now = (): number => Math.floor(Date.now() / 1000);
const b64u = (value: string | Uint8Array): string => Buffer.from(value).toString('base64url');

/** Brotli of `size` zero bytes, streamed so the test never holds the expanded size itself. */
async function brotliBomb(size: number): Promise<Buffer> {
  const compressor = createBrotliCompress({
    params: {
      [constants.BROTLI_PARAM_QUALITY]: 5,
      [constants.BROTLI_PARAM_LGWIN]: 24,
      [constants.BROTLI_PARAM_SIZE_HINT]: size,
    },
  });
  const chunks: Buffer[] = [];
  compressor.on('data', (c: Buffer) => chunks.push(c));
  const done = new Promise((resolve) => compressor.on('end', resolve));
  const zeros = Buffer.alloc(16 * 1024 * 1024);
  for (let written = 0; written < size; written += zeros.length) {
    if (!compressor.write(zeros)) await new Promise((resolve) => compressor.once('drain', resolve));
  }
  compressor.end();
  await done;
  return Buffer.concat(chunks);
}

describe('attack suite', () => {
  let idp: LocalIssuer;
  let rsa: LocalIssuer;
  let globex: LocalIssuer;
  let partner: LocalIssuer;
  let h: World;
  let attackerHits = 0;
  const attacker = createServer((_req, res) => {
    attackerHits++;
    res.writeHead(200, { 'content-type': 'application/json' }).end('{"keys":[]}');
  });

  before(async () => {
    idp = await LocalIssuer.start();
    rsa = await LocalIssuer.start({ alg: 'RS256' });
    globex = await LocalIssuer.start();
    partner = await LocalIssuer.start();
    await new Promise<void>((r) => attacker.listen(0, '127.0.0.1', r));
    h = await startWorld('handler', {
      contents: {
        issuers: [
          localIssuer(idp, 'acme', { algorithms: ['ES256'] }),
          localIssuer(rsa, 'acme', { algorithms: ['RS256'] }),
          localIssuer(globex, 'globex', { mints_for: ['*'] }),
          localIssuer(partner, 'acme', { mints_for: ['partner-*'] }),
          hmacIssuer('legacy-hs', 'acme', 'ATTACK_HS', { mints_for: ['*'] }),
        ],
        tenants: [tenant('acme', { entry_only: true })],
        services: [
          service('gateway', { tenant: 'acme', entry: true }),
          service('orders', { tenant: 'acme', bind_source: true }),
          service('A', { entry: true }),
        ],
        principals: {
          'spiffe://cluster.local/ns/shop/sa/gateway': 'gateway',
          'spiffe://cluster.local/ns/shop/sa/evil': 'evil',
        },
      },
      processEnv: { ATTACK_HS: HS_SECRET },
    });
  });
  after(async () => {
    await h.stop();
    for (const i of [idp, rsa, globex, partner]) await i.stop();
    await new Promise<void>((r) => attacker.close(() => r()));
  });

  async function expectDenied(
    token: string,
    reason: DenyReason,
    sid = 'A',
    extra: { sourcePrincipal?: string } = {},
  ): Promise<number> {
    const started = performance.now();
    const result = await h.check({ token, sid, ...extra });
    const elapsed = performance.now() - started;
    assert.equal(result.allowed, false, `must be denied (${reason})`);
    assert.equal(h.lastReason(), reason);
    assert.deepEqual(Object.keys(JSON.parse(result.body) as object).sort(), [
      'error',
      'request_id',
    ]);
    return elapsed;
  }

  const claims = (extra: Record<string, unknown> = {}) =>
    JSON.stringify({ iss: idp.issuer, sub: 'alice', iat: now(), exp: now() + 300, ...extra });
  const hsLevel = (payload: Record<string, unknown>) =>
    new SignJWT({ sub: 'alice', ...payload })
      .setProtectedHeader({ alg: 'HS256' })
      .setIssuer('legacy-hs')
      .setIssuedAt()
      .setExpirationTime('5m')
      .sign(hsKey);

  it('alg none', async () => {
    await expectDenied(`${b64u('{"alg":"none","typ":"JWT"}')}.${b64u(claims())}.`, 'bad_signature');
  });

  it('HS256 "signed" with an RS256 issuer\'s public key (algorithm confusion)', async () => {
    const jwks = (await (await fetch(rsa.jwksUri)).json()) as { keys: object[] };
    const publicKeyAsSecret = new TextEncoder().encode(JSON.stringify(jwks.keys[0]));
    const forged = await new SignJWT({ sub: 'alice' })
      .setProtectedHeader({ alg: 'HS256', kid: rsa.currentKid })
      .setIssuer(rsa.issuer)
      .setIssuedAt()
      .setExpirationTime('5m')
      .sign(publicKeyAsSecret);
    await expectDenied(forged, 'bad_signature');
  });

  it('unknown and path-like kid', async () => {
    const before = idp.hits.jwks;
    await expectDenied(await idp.signCompact({ kid: 'no-such-key' }, claims()), 'bad_signature');
    await expectDenied(
      await idp.signCompact({ kid: '../../../../etc/passwd' }, claims()),
      'bad_signature',
    );
    await expectDenied(
      await idp.signCompact({ kid: 'http://127.0.0.1:1/evil' }, claims()),
      'bad_signature',
    );
    assert.ok(idp.hits.jwks - before <= 1, 'unknown kids cost at most one (rate-limited) refetch');
  });

  it('jku, x5u, jwk and x5c headers are never followed or trusted', async () => {
    const evil = await generateKeyPair('ES256', { extractable: true });
    const evilJwk = await exportJWK(evil.publicKey);
    const url = `http://127.0.0.1:${(attacker.address() as AddressInfo).port}/jwks`;
    const forged = await new SignJWT({ sub: 'alice' })
      .setProtectedHeader({
        alg: 'ES256',
        kid: 'evil',
        jku: url,
        x5u: url,
        jwk: evilJwk,
        x5c: ['MIIBfake'],
      })
      .setIssuer(idp.issuer)
      .setIssuedAt()
      .setExpirationTime('5m')
      .sign(evil.privateKey);
    await expectDenied(forged, 'bad_signature');
    assert.equal(attackerHits, 0, 'no request to any URL named in a token');
  });

  it('unknown crit, and b64: false', async () => {
    await expectDenied(
      await idp.signCompact({ crit: ['urn:x-unknown'], 'urn:x-unknown': true }, claims(), {
        'urn:x-unknown': true,
      }),
      'malformed_token',
    );
    await expectDenied(await idp.signUnencoded(claims()), 'malformed_token');
  });

  it('duplicate JSON member names, in the payload and in the header', async () => {
    const dup = `{"iss":"${idp.issuer}","sub":"alice","sub":"root","iat":${now()},"exp":${now() + 300}}`;
    await expectDenied(await idp.signCompact({}, dup), 'malformed_token');
    const token = await idp.signCompact({}, claims());
    const [, p, s] = token.split('.');
    await expectDenied(
      `${b64u(`{"alg":"ES256","kid":"${idp.currentKid}","alg":"none"}`)}.${p}.${s}`,
      'malformed_token',
    );
  });

  it('non-object payloads and invalid UTF-8', async () => {
    for (const payload of ['[1,2,3]', '"alice"', '42', 'null', 'not json'])
      await expectDenied(await idp.signCompact({}, payload), 'malformed_token');
    const invalidUtf8 = new Uint8Array([
      ...Buffer.from(`{"iss":"${idp.issuer}","sub":"`),
      0xff,
      0xfe,
      ...Buffer.from(`","exp":${now() + 300}}`),
    ]);
    await expectDenied(await idp.signCompact({}, invalidUtf8), 'malformed_token');
  });

  it('container not a string; depth negative, fractional, huge or lying; unknown fmt or cmp', async () => {
    const origin = await hsLevel({});
    const stack = (s: Record<string, unknown>) =>
      hsLevel({ auth_stack: { fmt: 'JWT', sid: 'x', depth: 1, container: origin, ...s } });
    for (const container of [42, null, ['a'], { token: origin }, ''])
      await expectDenied(await stack({ container }), 'stack_malformed');
    for (const depth of [-1, 0, 1.5, 1e300, '1', 3])
      await expectDenied(await stack({ depth }), 'stack_malformed');
    for (const fmt of ['JWS', 'jwt ', 'xml', 7])
      await expectDenied(await stack({ fmt }), 'stack_malformed');
    for (const cmp of ['z', 'gzip', 1]) await expectDenied(await stack({ cmp }), 'stack_malformed');
    await expectDenied(await stack({ cmp: 'g', container: 'not base64 !!' }), 'stack_malformed');
  });

  it('gzip and brotli bombs are refused fast with bounded memory', async () => {
    const gzipBomb = gzipSync(Buffer.alloc(40 * 1024 * 1024), { level: 9 }).toString('base64');
    const brotli = (await brotliBomb(2 * 1024 * 1024 * 1024)).toString('base64');
    assert.ok(
      brotli.length < 8 * 1024,
      `a few KB (${brotli.length} characters) expanding to 2 GiB`,
    );
    // Baseline in the same test: an ordinary denial of the same shape, fastest of three. Inflating
    // the brotli bomb's 2 GiB would cost thousands of times that.
    const honest = await hsLevel({
      auth_stack: { fmt: 'JWT', cmp: 'g', sid: 'x', depth: 1, container: 'AAAA' },
    });
    let baselineMs = Number.POSITIVE_INFINITY;
    for (let i = 0; i < 3; i++)
      baselineMs = Math.min(baselineMs, await expectDenied(honest, 'stack_malformed'));
    const rssBefore = process.memoryUsage().rss;
    for (const [cmp, container] of [
      ['g', gzipBomb],
      ['b', brotli],
    ] as const) {
      const elapsed = await expectDenied(
        await hsLevel({ auth_stack: { fmt: 'JWT', cmp, sid: 'x', depth: 1, container } }),
        'stack_too_large',
      );
      assert.ok(
        elapsed < Math.max(1000, 50 * baselineMs),
        `${cmp} bomb refused in ${Math.round(elapsed)} ms (an ordinary denial: ${Math.round(baselineMs)} ms)`,
      );
    }
    assert.ok(process.memoryUsage().rss - rssBefore < 100 * 1024 * 1024, 'memory stays bounded');
  });

  it('1,000-level nesting: a chain claiming it, one nested past the length cap, one past the level cap, and a token of several MB', async () => {
    // Each level base64url-encodes the one inside it, so an honest chain grows ~1.33x per level
    // even with compression: 1,000 real levels cannot exist. What an attacker can send is a claim
    // of that depth, or as deep a real chain as fits — which the length and level caps stop.
    const origin = await hsLevel({});
    await expectDenied(
      await hsLevel({ auth_stack: { fmt: 'JWT', sid: 's1', depth: 1000, container: origin } }),
      'stack_malformed',
    );
    const nest = async (levels: number): Promise<string> => {
      let t = origin;
      for (let depth = 1; depth <= levels; depth++) {
        const container = brotliCompressSync(Buffer.from(t), {
          params: { [constants.BROTLI_PARAM_QUALITY]: 4 },
        }).toString('base64');
        t = await hsLevel({
          auth_stack: { fmt: 'JWT', cmp: 'b', sid: `s${depth}`, depth, container },
        });
      }
      return t;
    };
    let deep = origin;
    let levels = 0;
    while (deep.length <= 64 * 1024) deep = await nest(++levels);
    await expectDenied(deep, 'stack_too_large');
    const capped = await startWorld('handler', {
      contents: {
        issuers: [hmacIssuer('legacy-hs', 'acme', 'ATTACK_HS', { mints_for: ['*'] })],
      },
      processEnv: { ATTACK_HS: HS_SECRET },
      env: { MATRYOSHKA_MAX_LEVELS: '4' },
    });
    try {
      assert.equal(
        (await capped.check({ token: await nest(3), sid: 'x' })).allowed,
        true,
        'four levels are within the cap',
      );
      assert.equal((await capped.check({ token: await nest(4), sid: 'x' })).httpStatus, 401);
      assert.equal(
        capped.logs.findLast((l) => l['msg'] === 'check')?.['reason'],
        'stack_too_large',
      );
    } finally {
      await capped.stop();
    }
    // Past the token cap but within one gRPC message: our denial.
    await expectDenied(
      `${b64u('{"alg":"ES256"}')}.${'A'.repeat(100 * 1024)}.${'B'.repeat(86)}`,
      'stack_too_large',
    );
    // Several MB: the transport refuses the message (RESOURCE_EXHAUSTED, Envoy's status_on_error)
    // as soon as its length prefix arrives, before any of it is buffered; the service stays up.
    // That is the gRPC listener's own bound: asked of the real listener.
    const huge = `${b64u('{"alg":"ES256"}')}.${'A'.repeat(3 * 1024 * 1024)}.${'B'.repeat(86)}`;
    const wire = await startWorld('grpc', { contents: { issuers: [localIssuer(idp, 'acme')] } });
    try {
      await assert.rejects(
        wire.check({ token: huge, sid: 'A' }),
        (error: { code?: number }) => error.code === 8,
      );
      assert.equal(
        (await wire.check({ token: await idp.mint({ sub: 'alice' }), sid: 'A' })).allowed,
        true,
        'still serving',
      );
    } finally {
      await wire.stop();
    }
  });

  it('a level from tenant B spliced into a chain of tenant A', async () => {
    const acmeChain = (await h.check({ token: await idp.mint({ sub: 'alice' }), sid: 'A' }))
      .forwardedToken as string;
    const spliced = await globex.mint({
      sub: 'alice',
      auth_stack: { fmt: 'JWT', sid: 'globex-gw', depth: 2, container: acmeChain },
    });
    await expectDenied(spliced, 'tenant_mismatch', 'B');
  });

  it('an inner level re-wrapped by a different registered issuer to fake a sid', async () => {
    const chain = (await h.check({ token: await idp.mint({ sub: 'alice' }), sid: 'A' }))
      .forwardedToken as string;
    // An IdP that issues origin tokens only may not wrap at all, and a partner implementation
    // only for the sids it is registered for.
    for (const minter of [idp, partner])
      await expectDenied(
        await minter.mint({
          sub: 'alice',
          auth_stack: { fmt: 'JWT', sid: 'gateway', depth: 2, container: chain },
        }),
        'untrusted_issuer',
        'B',
      );
    const honest = await partner.mint({
      sub: 'alice',
      auth_stack: { fmt: 'JWT', sid: 'partner-gw', depth: 2, container: chain },
    });
    // (acme is entry_only: a chain wrapped outside the mesh is accepted at entry services only.)
    assert.equal(
      (await h.check({ token: honest, sid: 'gateway' })).allowed,
      true,
      'the same partner, for its own sid',
    );
  });

  it("a foreign level reusing the jti of a level we minted does not borrow that level's verified chain", async () => {
    // The memo keeps the chain below each level we mint under that level's jti (ChainMemo.mintedKey).
    const minted = (await h.check({ token: await idp.mint({ sub: 'alice' }), sid: 'gateway' }))
      .forwardedToken as string;
    const jti = (
      JSON.parse(Buffer.from(minted.split('.')[1] as string, 'base64url').toString()) as {
        jti: string;
      }
    ).jti;
    const forgedOrigin = `${b64u(JSON.stringify({ alg: 'ES256', kid: idp.currentKid }))}.${b64u(claims({ sub: 'mallory', roles: ['admin'] }))}.${b64u(Buffer.alloc(64, 7))}`;
    const wrapped = await partner.mint({
      sub: 'mallory',
      jti,
      auth_stack: { fmt: 'JWT', sid: 'partner-gw', depth: 1, container: forgedOrigin },
    });
    await expectDenied(wrapped, 'bad_signature', 'gateway');
  });

  describe('replay of tokens taken from a chain', () => {
    it('an origin token extracted from a chain is refused by internal services', async () => {
      const origin = await idp.mint({ sub: 'alice' });
      assert.equal(
        (await h.check({ token: origin, sid: 'gateway' })).allowed,
        true,
        'fine at the entry service',
      );
      await expectDenied(origin, 'caller_not_allowed', 'orders');
    });

    it('a minted token replayed from another workload is refused', async () => {
      const minted = (await h.check({ token: await idp.mint({ sub: 'alice' }), sid: 'gateway' }))
        .forwardedToken as string;
      const fromGateway = await h.check({
        token: minted,
        sid: 'orders',
        sourcePrincipal: 'spiffe://cluster.local/ns/shop/sa/gateway',
      });
      assert.equal(fromGateway.allowed, true, 'from the workload it was minted for');
      await expectDenied(minted, 'caller_not_allowed', 'orders', {
        sourcePrincipal: 'spiffe://cluster.local/ns/shop/sa/evil',
      });
      await expectDenied(minted, 'caller_not_allowed', 'orders', {
        sourcePrincipal: 'spiffe://cluster.local/ns/other/sa/unknown',
      });
    });
  });
});
