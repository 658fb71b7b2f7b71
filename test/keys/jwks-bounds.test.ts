import assert from 'node:assert/strict';
import {
  type JsonWebKey,
  type KeyObject,
  createHash,
  createPrivateKey,
  generateKeyPairSync,
  generatePrimeSync,
  randomBytes,
  sign,
} from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { type JWK, exportJWK } from 'jose';
import { LocalIssuer } from '../../src/demo/local-issuer.js';
import { suiteParts } from '../helpers/suite-parts.js';
import { MisbehavingJwks } from '../helpers/bad-jwks.js';
import { type Harness, startHarness } from '../helpers/harness.js';
import { eventually } from '../helpers/processes.js';
import { runProgramWithEnv } from '../helpers/program.js';
import { issuer, localIssuer } from '../helpers/records.js';
import { RedisServer } from '../helpers/redis-server.js';

/**
 * What an issuer's JWKS may contain (item 5) and what a slow IdP may cost the checks of tenants
 * that hold its keys (item 6). Real service on loopback, real gRPC client, real HTTP JWKS
 * endpoints, real redis-server.
 */

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const b64u = (value: Buffer | string): string => Buffer.from(value).toString('base64url');
const nowSeconds = (): number => Math.floor(Date.now() / 1000);

/** A compact JWS signed with node:crypto directly: no library in the test refuses the odd keys. */
function signToken(
  alg: 'RS256' | 'ES256' | 'EdDSA',
  key: KeyObject,
  kid: string | undefined,
  iss: string,
  sub: string,
): string {
  const header = b64u(JSON.stringify({ alg, typ: 'JWT', ...(kid === undefined ? {} : { kid }) }));
  const payload = b64u(JSON.stringify({ iss, sub, iat: nowSeconds(), exp: nowSeconds() + 600 }));
  const input = `${header}.${payload}`;
  const signature =
    alg === 'EdDSA'
      ? sign(null, Buffer.from(input), key)
      : sign(
          'sha256',
          Buffer.from(input),
          alg === 'ES256' ? { key, dsaEncoding: 'ieee-p1363' } : key,
        );
  return `${input}.${b64u(signature)}`;
}

const toBytes = (n: bigint): Buffer => {
  const hex = n.toString(16);
  return Buffer.from(hex.length % 2 ? `0${hex}` : hex, 'hex');
};
const gcd = (a: bigint, b: bigint): bigint => (b === 0n ? a : gcd(b, a % b));
function modInverse(a: bigint, m: bigint): bigint {
  let [oldR, r, oldS, s] = [a % m, m, 1n, 0n];
  while (r !== 0n) {
    const q = oldR / r;
    [oldR, r] = [r, oldR - q * r];
    [oldS, s] = [s, oldS - q * s];
  }
  return ((oldS % m) + m) % m;
}

/**
 * A working RSA key pair whose public exponent has `exponentBits` bits: the attacker's key of the
 * report (3072-bit modulus, 3070-bit exponent), which makes every verification a full-size
 * modular exponentiation. Tokens it signs are genuinely valid.
 */
function rsaWithHugeExponent(exponentBits: number): { privateKey: KeyObject; publicJwk: JWK } {
  const p = generatePrimeSync(1536, { bigint: true });
  const q = generatePrimeSync(1536, { bigint: true });
  const lambda = ((p - 1n) * (q - 1n)) / gcd(p - 1n, q - 1n);
  let e: bigint;
  do {
    e =
      BigInt(`0x${randomBytes(exponentBits / 8).toString('hex')}`) |
      (1n << BigInt(exponentBits - 1)) |
      1n;
  } while (gcd(e, lambda) !== 1n);
  const d = modInverse(e, lambda);
  const jwk = { kty: 'RSA', n: b64u(toBytes(p * q)), e: b64u(toBytes(e)) };
  const privateKey = createPrivateKey({
    key: {
      ...jwk,
      d: b64u(toBytes(d)),
      p: b64u(toBytes(p)),
      q: b64u(toBytes(q)),
      dp: b64u(toBytes(d % (p - 1n))),
      dq: b64u(toBytes(d % (q - 1n))),
      qi: b64u(toBytes(modInverse(q, p))),
    } as JsonWebKey,
    format: 'jwk',
  });
  return { privateKey, publicJwk: jwk };
}

/**
 * With e = 1 "verifying" is the identity, so anyone can forge: the signature is the PKCS#1 v1.5
 * encoding of the digest itself.
 */
function forgeForExponentOne(modulusBytes: number, kid: string, iss: string, sub: string): string {
  const header = b64u(JSON.stringify({ alg: 'RS256', typ: 'JWT', kid }));
  const payload = b64u(JSON.stringify({ iss, sub, iat: nowSeconds(), exp: nowSeconds() + 600 }));
  const input = `${header}.${payload}`;
  const digestInfo = Buffer.from('3031300d060960864801650304020105000420', 'hex'); // SHA-256, RFC 8017 §9.2
  const digest = createHash('sha256').update(input).digest();
  const encoded = Buffer.concat([
    Buffer.from([0, 1]),
    Buffer.alloc(modulusBytes - 3 - digestInfo.length - digest.length, 0xff),
    Buffer.from([0]),
    digestInfo,
    digest,
  ]);
  return `${input}.${b64u(encoded)}`;
}

async function metric(h: Harness, name: string): Promise<string[]> {
  const text = await (await fetch(`http://127.0.0.1:${h.service.httpPort}/metrics`)).text();
  return text.split('\n').filter((line) => line.startsWith(`${name}{`));
}

/** Checks whose issuer keys had to be fetched (the service's own key-cache miss counter). */
const keyCacheMisses = async (h: Harness): Promise<number> =>
  (await metric(h, 'authz_key_cache_lookups_total'))
    .filter((l) => l.includes('result="miss"'))
    .reduce((sum, l) => sum + Number(l.split(' ').at(-1)), 0);

// ---------------------------------------------------------------------------------------------

describe('JWKS import bounds: what a JWK Set may contain and what one token may cost', () => {
  let good: LocalIssuer;
  let jwks: MisbehavingJwks;
  let h: Harness;
  let goodJwk: JWK;
  const huge = rsaWithHugeExponent(3072 - 8);
  const small = generateKeyPairSync('rsa', { modulusLength: 1024 });
  const k1 = generateKeyPairSync('ec', { namedCurve: 'secp256k1' });
  const ed448 = generateKeyPairSync('ed448');
  const base2048 = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({
    format: 'jwk',
  });
  // A 16384-bit modulus: any odd number of that size imports as a public key (no private half needed to be refused).
  const modulus16k = Buffer.concat([Buffer.from([0xc0]), randomBytes(2046), Buffer.from([0x01])]);
  const refused: Array<{ kid: string; reason: string; jwk: Record<string, unknown> }> = [];

  before(async () => {
    good = await LocalIssuer.start({ alg: 'RS256' });
    goodJwk = ((await (await fetch(good.jwksUri)).json()) as { keys: JWK[] }).keys[0] as JWK;
    refused.push(
      {
        kid: 'rsa-huge-exponent',
        reason: 'rsa_exponent',
        jwk: { ...huge.publicJwk, kid: 'rsa-huge-exponent', use: 'sig' },
      },
      {
        kid: 'rsa-1024',
        reason: 'rsa_modulus',
        jwk: { ...(await exportJWK(small.publicKey)), kid: 'rsa-1024', alg: 'RS256' },
      },
      {
        kid: 'rsa-16384',
        reason: 'rsa_modulus',
        jwk: { kty: 'RSA', kid: 'rsa-16384', n: b64u(modulus16k), e: 'AQAB' },
      },
      {
        kid: 'rsa-exponent-one',
        reason: 'rsa_exponent',
        jwk: { ...base2048, kid: 'rsa-exponent-one', e: 'AQ' },
      },
      {
        kid: 'rsa-even-exponent',
        reason: 'rsa_exponent',
        jwk: { ...base2048, kid: 'rsa-even-exponent', e: b64u(Buffer.from([1, 0, 0])) },
      },
      {
        kid: 'rsa-33-bit-exponent',
        reason: 'rsa_exponent',
        jwk: { ...base2048, kid: 'rsa-33-bit-exponent', e: b64u(Buffer.from([1, 0, 0, 0, 1])) },
      },
      {
        kid: 'ec-secp256k1',
        reason: 'unsupported_curve',
        jwk: { ...(await exportJWK(k1.publicKey)), kid: 'ec-secp256k1' },
      },
      {
        kid: 'okp-ed448',
        reason: 'unsupported_curve',
        jwk: { ...(await exportJWK(ed448.publicKey)), kid: 'okp-ed448' },
      },
      {
        kid: 'oct-secret',
        reason: 'unsupported_key_type',
        jwk: { kty: 'oct', kid: 'oct-secret', k: b64u('not a public key') },
      },
    );
    // The refused RSA keys come first: before the good one, they fill a kid-less token's candidate slots.
    const set = {
      keys: [
        ...refused.map((r) => r.jwk),
        { kty: 'RSA', kid: 'enc-key', use: 'enc', n: base2048.n, e: base2048.e },
        goodJwk,
      ],
    };
    jwks = await MisbehavingJwks.start({ '/jwks': { kind: 'body', body: JSON.stringify(set) } });
    h = await startHarness({
      env: { MATRYOSHKA_JWKS_COOLDOWN_MS: '0', LOG_LEVEL: 'info' },
      contents: {
        issuers: [
          issuer({
            issuer: good.issuer,
            tenant: 'acme',
            jwks_uri: jwks.url('/jwks'),
            algorithms: ['RS256', 'ES256', 'EdDSA'],
          }),
        ],
      },
    });
  });
  after(async () => {
    await h?.stop();
    await jwks?.stop();
    await good?.stop();
  });

  it('refuses RSA keys outside 2048..8192 bits or with an exponent that is not odd, ≥ 3 and ≤ 32 bits, and curves we do not verify; the good key keeps working, with and without kid; each refusal is logged and counted once', async () => {
    const iss = good.issuer;
    const attempts: Record<string, string> = {
      'rsa-huge-exponent': signToken('RS256', huge.privateKey, 'rsa-huge-exponent', iss, 'mallory'),
      'rsa-1024': signToken('RS256', small.privateKey, 'rsa-1024', iss, 'mallory'),
      'rsa-16384': signToken('RS256', small.privateKey, 'rsa-16384', iss, 'mallory'),
      'rsa-exponent-one': forgeForExponentOne(256, 'rsa-exponent-one', iss, 'mallory'),
      'ec-secp256k1': signToken('ES256', k1.privateKey, 'ec-secp256k1', iss, 'mallory'),
      'okp-ed448': signToken('EdDSA', ed448.privateKey, 'okp-ed448', iss, 'mallory'),
      // Without kid: the huge-exponent key would be among the candidates.
      'kid-less-huge-exponent': signToken('RS256', huge.privateKey, undefined, iss, 'mallory'),
    };
    const goodToken = await good.mint({ sub: 'alice' });
    // A kid-less token signed with the good key: the good key sits behind six refused RSA keys.
    const kidLess = await good.signCompact(
      { kid: undefined, typ: 'JWT' },
      JSON.stringify({ iss, sub: 'alice', iat: nowSeconds(), exp: nowSeconds() + 600 }),
    );

    const round = async (): Promise<Record<string, string>> => {
      const outcomes: Record<string, string> = {};
      for (const [name, token] of Object.entries(attempts)) {
        const result = await h.client.check({ token, sid: 'A' });
        outcomes[name] = `${result.httpStatus}/${String(result.metadata['reason'])}`;
        assert.equal(result.allowed, false, `${name}: ZERO wrong allows`);
        assert.equal(result.httpStatus, 401, `${name}: the issuer's ordinary refusal, not a 5xx`);
        assert.equal(result.metadata['reason'], 'bad_signature', name);
      }
      assert.equal(
        (await h.client.check({ token: goodToken, sid: 'A' })).allowed,
        true,
        'the good key works next to the refused ones',
      );
      assert.equal(
        (await h.client.check({ token: kidLess, sid: 'A' })).allowed,
        true,
        'a kid-less token finds the good key: refused keys take no candidate slot',
      );
      return outcomes;
    };
    const first = await round();
    const fetchesAfterFirst = jwks.hitsOf('/jwks');
    // Again, twice: a refused kid is known (no refetch for it), and nothing is logged or counted again.
    await round();
    await round();
    assert.equal(
      jwks.hitsOf('/jwks'),
      fetchesAfterFirst,
      'tokens naming refused kids cause no refetch',
    );
    // A refetch of the same set (an unknown kid, cooldown 0) re-vets it without reporting anything again.
    const unknown = await h.client.check({
      token: await good.mint({ sub: 'x' }, { kid: 'no-such-kid' }),
      sid: 'A',
    });
    assert.equal(unknown.httpStatus, 401);
    assert.equal(jwks.hitsOf('/jwks'), fetchesAfterFirst + 1, 'the unknown kid refetched the set');
    await round();

    const lines = h.logs.filter((l) => l['msg'] === 'jwks key refused');
    for (const r of refused) {
      const mine = lines.filter((l) => l['key'] === `kid:${r.kid}`);
      assert.equal(mine.length, 1, `${r.kid} logged exactly once (${mine.length})`);
      assert.equal(mine[0]?.['reason'], r.reason, `${r.kid}: ${String(mine[0]?.['detail'])}`);
      assert.equal(mine[0]?.['issuer'], iss);
      assert.equal(mine[0]?.['level'], 40, 'a warning');
    }
    assert.equal(
      lines.length,
      refused.length,
      'nothing else refused: the good key and the encryption key are not reported',
    );
    const series = await metric(h, 'authz_jwks_keys_refused_total');
    const expected = new Map<string, number>();
    for (const r of refused) expected.set(r.reason, (expected.get(r.reason) ?? 0) + 1);
    for (const [reason, count] of expected) {
      const line = series.find(
        (l) => l.includes(`reason="${reason}"`) && l.includes(`issuer="${iss}"`),
      );
      assert.ok(line !== undefined, `a series for ${reason}: ${series.join(' | ')}`);
      assert.equal(
        Number(line.split(' ').at(-1)),
        count,
        `${reason} counted once per key (${line})`,
      );
    }
    console.log(
      '[jwks-bounds] refused keys:',
      JSON.stringify({
        outcomes: first,
        refusals: lines.map((l) => `${String(l['key'])}: ${String(l['detail'])}`),
        fetches: jwks.hitsOf('/jwks'),
      }),
    );
  });
});

// ---------------------------------------------------------------------------------------------

describe('JWKS key count and candidates: at most 100 keys read, at most 4 tried for a kid-less token', () => {
  let idp: LocalIssuer;
  let jwks: MisbehavingJwks;
  let h: Harness;
  const extra = Array.from({ length: 149 }, () =>
    generateKeyPairSync('ec', { namedCurve: 'P-256' }),
  );

  before(async () => {
    idp = await LocalIssuer.start();
    const own = ((await (await fetch(idp.jwksUri)).json()) as { keys: JWK[] }).keys[0] as JWK;
    const others = await Promise.all(
      extra.map(async (pair, i) => ({
        ...(await exportJWK(pair.publicKey)),
        kid: `extra-${i}`,
        alg: 'ES256',
      })),
    );
    jwks = await MisbehavingJwks.start({
      // The issuer's key 4th of the fitting ones: a kid-less token still reaches it.
      '/fourth': { kind: 'body', body: JSON.stringify({ keys: [...others.slice(0, 3), own] }) },
      // 5th: past the candidate bound.
      '/fifth': { kind: 'body', body: JSON.stringify({ keys: [...others.slice(0, 4), own] }) },
      // 100th entry: read; 101st: past the cap.
      '/hundredth': {
        kind: 'body',
        body: JSON.stringify({ keys: [...others.slice(0, 99), own, ...others.slice(99)] }),
      },
      '/hundred-and-first': {
        kind: 'body',
        body: JSON.stringify({ keys: [...others.slice(0, 100), own, ...others.slice(100)] }),
      },
    });
    h = await startHarness({
      env: { MATRYOSHKA_JWKS_COOLDOWN_MS: '0', LOG_LEVEL: 'info' },
      contents: {
        issuers: ['/fourth', '/fifth', '/hundredth', '/hundred-and-first'].map((path, i) =>
          issuer({
            issuer: `${idp.issuer}/t${i}`,
            tenant: 'acme',
            jwks_uri: jwks.url(path),
            algorithms: ['ES256'],
          }),
        ),
      },
    });
  });
  after(async () => {
    await h?.stop();
    await jwks?.stop();
    await idp?.stop();
  });

  const token = (iss: string, kid: string | undefined): Promise<string> =>
    idp.signCompact(
      { kid, typ: 'JWT' },
      JSON.stringify({ iss, sub: 'alice', iat: nowSeconds(), exp: nowSeconds() + 600 }),
    );

  it('tries a kid-less token against the first 4 fitting keys only, and reads only the first 100 keys of a set (the cap logged once)', async () => {
    const at = (i: number): string => `${idp.issuer}/t${i}`;
    const check = async (iss: string, kid: string | undefined): Promise<boolean> =>
      (await h.client.check({ token: await token(iss, kid), sid: 'A' })).allowed;
    assert.equal(await check(at(0), undefined), true, 'kid-less, the key is the 4th candidate');
    assert.equal(
      await check(at(1), undefined),
      false,
      'kid-less, the key is the 5th candidate: not tried',
    );
    assert.equal(
      await check(at(1), idp.currentKid),
      true,
      'with its kid the same key is found at once',
    );
    assert.equal(await check(at(2), idp.currentKid), true, 'the 100th key is read');
    assert.equal(await check(at(3), idp.currentKid), false, 'the 101st is not');
    for (let i = 0; i < 5; i++) await check(at(3), 'extra-120');
    const capped = h.logs.filter(
      (l) => l['msg'] === 'jwks key refused' && l['reason'] === 'too_many_keys',
    );
    assert.deepEqual(
      capped.map((l) => l['issuer']),
      [at(2), at(3)],
      'each oversized set reported once',
    );
  });
});

// ---------------------------------------------------------------------------------------------

/**
 * An IdP that served its keys and then hangs (accepts connections, never answers). Keys older than
 * MATRYOSHKA_JWKS_MAX_AGE (1 s here) are served while the refresh runs in the background, until
 * MATRYOSHKA_JWKS_MAX_STALE (4 s); each check must be well under the JWKS timeout (1.5 s).
 */
const JWKS_TIMEOUT_MS = 1500;
/** A ratio, not a speed figure: a check that waited on the IdP would take the whole timeout. */
const FAST_MS = JWKS_TIMEOUT_MS / 2;
const SWR_ENV = {
  MATRYOSHKA_JWKS_MAX_AGE: '1',
  MATRYOSHKA_JWKS_MAX_STALE: '4',
  MATRYOSHKA_JWKS_TIMEOUT_MS: String(JWKS_TIMEOUT_MS),
  MATRYOSHKA_JWKS_COOLDOWN_MS: '300',
  LOG_LEVEL: 'info',
};

async function jwksBody(idp: LocalIssuer, only?: string): Promise<string> {
  const keys = ((await (await fetch(idp.jwksUri)).json()) as { keys: JWK[] }).keys;
  return JSON.stringify({ keys: only === undefined ? keys : keys.filter((k) => k.kid === only) });
}

/**
 * 20 checks, four at a time, each with its own token (a token seen before is answered from the
 * memo of verified chains without looking at keys at all): every one allowed, every one fast.
 */
async function twentyFastChecks(
  h: Harness,
  tokens: readonly string[],
  what: string,
): Promise<number[]> {
  assert.equal(tokens.length, 20);
  const latencies: number[] = [];
  for (let round = 0; round < 5; round++) {
    await Promise.all(
      tokens.slice(round * 4, round * 4 + 4).map(async (token) => {
        const started = performance.now();
        const result = await h.client.check({ token, sid: 'A', deadlineMs: 1000 });
        const ms = performance.now() - started;
        latencies.push(Math.round(ms));
        assert.equal(
          result.allowed,
          true,
          `${what}: a known kid is allowed while the IdP hangs (${result.httpStatus}/${String(result.metadata['reason'])})`,
        );
        assert.ok(
          ms < FAST_MS,
          `${what}: answered in ${Math.round(ms)} ms, without waiting on the IdP`,
        );
      }),
    );
  }
  return latencies;
}

const fetchesOk = (h: Harness): number =>
  h.logs.filter((l) => l['msg'] === 'jwks fetch' && l['outcome'] === 'ok').length;

describe('stale-while-revalidate: a hanging IdP does not hold checks while we hold its keys (embedded)', () => {
  const s = suiteParts(async (own) => {
    const idp = own(await LocalIssuer.start());
    const jwks = own(
      await MisbehavingJwks.start({ '/jwks': { kind: 'body', body: await jwksBody(idp) } }),
    );
    const h = own(
      await startHarness({
        env: SWR_ENV,
        contents: { issuers: [localIssuer(idp, 'acme', { jwks_uri: jwks.url('/jwks') })] },
      }),
    );
    return { idp, jwks, h };
  });

  it('serves the held keys at once past max-age while one refresh hangs, picks up a rotated set in the background, and serves nothing past max-stale', async () => {
    // Distinct tokens signed with the first key, minted before the IdP rotates it away.
    const tokens = await Promise.all(
      Array.from({ length: 200 }, (_, i) => s.idp.mint({ sub: `user-${i}` })),
    );
    const next = (): string => tokens.shift() as string;
    assert.equal(
      (await s.h.client.check({ token: next(), sid: 'A' })).allowed,
      true,
      'keys fetched',
    );
    s.jwks.set('/jwks', { kind: 'hang' });
    await sleep(1100);
    const hitsBefore = s.jwks.hitsOf('/jwks');
    const latencies = await twentyFastChecks(s.h, tokens.splice(0, 20), 'embedded');
    await eventually(
      async () => s.jwks.hitsOf('/jwks') > hitsBefore,
      1000,
      'the background refresh reaches the hanging IdP',
    );
    assert.equal(
      s.jwks.hitsOf('/jwks') - hitsBefore,
      1,
      'one refresh in flight for the issuer, however many checks found the keys old',
    );

    // The IdP answers again, with a rotated set that no longer holds the old key.
    const newKid = await s.idp.rotate();
    s.jwks.set('/jwks', { kind: 'body', body: await jwksBody(s.idp, newKid) });
    const fetched = fetchesOk(s.h);
    // Checks with the old, known kid go on being answered from memory; a later refresh brings the new set.
    await eventually(
      async () => {
        await s.h.client.check({ token: next(), sid: 'A', deadlineMs: 1000 });
        await sleep(50);
        return fetchesOk(s.h) > fetched;
      },
      3 * JWKS_TIMEOUT_MS,
      'a background refresh reaches the IdP again',
    );
    const missesBefore = await keyCacheMisses(s.h);
    const rotated = await s.idp.mint({ sub: 'bob' });
    const fresh = await s.h.client.check({ token: rotated, sid: 'A', deadlineMs: 1000 });
    assert.equal(fresh.allowed, true, 'the rotated key is accepted');
    assert.equal(
      await keyCacheMisses(s.h),
      missesBefore,
      'from the set the background refresh brought: the new kid was already in memory',
    );
    assert.equal(
      (await s.h.client.check({ token: next(), sid: 'A' })).allowed,
      false,
      'the key the IdP withdrew is gone',
    );

    // The IdP hangs again and stays down past max-stale: nothing stale is served, fail closed.
    s.jwks.set('/jwks', { kind: 'hang' });
    await sleep(4200);
    const started = performance.now();
    const late = await s.h.client.check({
      token: await s.idp.mint({ sub: 'carol' }),
      sid: 'A',
      deadlineMs: 500,
    });
    const lateMs = performance.now() - started;
    assert.equal(late.allowed, false, 'ZERO wrong allows past max-stale');
    assert.equal(late.httpStatus, 503);
    assert.equal(late.metadata['reason'], 'unavailable');
    console.log(
      '[jwks-bounds] stale-while-revalidate, embedded:',
      JSON.stringify({
        latencies,
        lateMs: Math.round(lateMs),
        jwksRequests: s.jwks.hitsOf('/jwks'),
      }),
    );
  });
});

describe('stale-while-revalidate with the Redis-shared JWKS cache', () => {
  let redis: RedisServer;
  let idp: LocalIssuer;
  let jwks: MisbehavingJwks;
  const harnesses: Harness[] = [];

  before(async () => {
    redis = await RedisServer.start();
    idp = await LocalIssuer.start();
    jwks = await MisbehavingJwks.start({ '/jwks': { kind: 'body', body: await jwksBody(idp) } });
    const added = await runProgramWithEnv(
      [
        'issuer',
        'add',
        '--tenant',
        'acme',
        '--issuer',
        idp.issuer,
        '--jwks-uri',
        jwks.url('/jwks'),
        '--algorithms',
        'ES256',
      ],
      { REDIS_URL: redis.url, MATRYOSHKA_ALLOW_INSECURE_ISSUERS: 'true' },
    );
    assert.equal(added.code, 0, added.stderr);
  });
  after(async () => {
    for (const h of harnesses) await h.stop();
    await jwks?.stop();
    await idp?.stop();
    await redis?.dispose();
  });

  const replica = async (): Promise<Harness> => {
    const h = await startHarness({ env: { ...SWR_ENV, REDIS_URL: redis.url } });
    harnesses.push(h);
    return h;
  };

  it('a warm replica and one started cold both answer a known kid at once from stale keys while the IdP hangs, then pick up the rotated set', async () => {
    const tokens = await Promise.all(
      Array.from({ length: 41 }, (_, i) => idp.mint({ sub: `user-${i}` })),
    );
    const warm = await replica();
    await eventually(
      async () => (await warm.client.check({ token: tokens[0] as string, sid: 'A' })).allowed,
      5000,
      'the first replica reads the registry and fetches the keys',
    );
    assert.equal(jwks.hitsOf('/jwks'), 1);
    jwks.set('/jwks', { kind: 'hang' });
    await sleep(1100);
    // The second replica holds nothing in memory: the fleet's stale copy in Redis is all it has.
    const cold = await replica();
    await eventually(
      async () => (await fetch(`http://127.0.0.1:${cold.service.httpPort}/readyz`)).status === 200,
      5000,
      'the second replica has read the registry',
    );
    const coldLatencies = await twentyFastChecks(cold, tokens.slice(1, 21), 'cold replica');
    const warmLatencies = await twentyFastChecks(warm, tokens.slice(21, 41), 'warm replica');
    assert.ok(
      jwks.hitsOf('/jwks') <= 3,
      `the fleet asked the hanging IdP at most once per replica: ${jwks.hitsOf('/jwks') - 1}`,
    );

    const newKid = await idp.rotate();
    jwks.set('/jwks', { kind: 'body', body: await jwksBody(idp, newKid) });
    for (const [name, h] of [
      ['warm', warm],
      ['cold', cold],
    ] as const) {
      let n = 0;
      await eventually(
        async () =>
          (
            await h.client.check({
              token: await idp.mint({ sub: `${name}-${n++}` }),
              sid: 'A',
              deadlineMs: 1000,
            })
          ).allowed,
        4 * JWKS_TIMEOUT_MS,
        `the ${name} replica picks up the rotated set`,
      );
    }
    console.log(
      '[jwks-bounds] stale-while-revalidate, Redis:',
      JSON.stringify({ coldLatencies, warmLatencies, jwksRequests: jwks.hitsOf('/jwks') }),
    );
  });
});
