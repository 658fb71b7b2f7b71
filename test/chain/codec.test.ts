/**
 * The token codec, piece by piece: base64, bounded inflation, compact JWS parsing, the
 * `auth_stack` claim and the unverified chain inspector. No keys are trusted here; tokens are
 * signed with jose only so that they are real compact serialisations.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import {
  brotliCompressSync,
  brotliDecompressSync,
  constants as zlibConstants,
  gunzipSync,
  gzipSync,
} from 'node:zlib';
import { before, describe, it } from 'node:test';
import { CompactEncrypt, SignJWT, generateKeyPair } from 'jose';
import {
  type AuthStack,
  StackFormatError,
  readAuthStack,
  unpackContainer,
} from '../../src/chain/auth-stack.js';
import { decodeAnyBase64, decodeSegment, encodeStandardBase64 } from '../../src/chain/base64.js';
import {
  CompactFormatError,
  compactKind,
  parseCompactJws,
  parseJweHeader,
} from '../../src/chain/compact.js';
import {
  InflateFormatError,
  InflateLimitError,
  compress,
  inflateBounded,
} from '../../src/chain/compression.js';
import { inspectChain } from '../../src/chain/inspect.js';
import { DEFAULT_LIMITS } from '../../src/chain/limits.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const CAP = 256 * KiB;

/** base64url of a JSON value (or of a raw string / bytes), as a compact segment. */
const seg = (value: unknown): string =>
  Buffer.isBuffer(value)
    ? value.toString('base64url')
    : Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url');

/** A compact JWS with an arbitrary header and payload and a dummy (but well-formed) signature. */
const fakeJws = (header: unknown, payload: unknown, signature = seg('signature')): string =>
  `${seg(header)}.${seg(payload)}.${signature}`;

const stackOf = (overrides: Partial<AuthStack>): AuthStack => ({
  fmt: 'JWT',
  cmp: undefined,
  container: fakeJws({ alg: 'ES256' }, { sub: 'alice' }),
  sid: undefined,
  depth: undefined,
  ...overrides,
});

/**
 * Compressed + encoded forms of a token, chosen so that the encoding really exercises the alphabet
 * under test (the `pad` claim is varied until the predicate holds; gzip output is deterministic).
 */
function packedToken(predicate: (standardBase64: string) => boolean): {
  token: string;
  packed: Buffer;
  standard: string;
} {
  for (let pad = 0; pad < 500; pad++) {
    const token = fakeJws({ alg: 'ES256', kid: 'k1' }, { sub: 'alice', pad: 'p'.repeat(pad) });
    const packed = gzipSync(Buffer.from(token, 'latin1'));
    const standard = packed.toString('base64');
    if (predicate(standard)) return { token, packed, standard };
  }
  throw new Error('no token satisfies the predicate (test data problem)');
}

describe('base64: decodeAnyBase64', () => {
  it('decodes the standard alphabet, with and without padding', () => {
    assert.deepEqual(decodeAnyBase64('QUJD'), Buffer.from('ABC'));
    assert.deepEqual(decodeAnyBase64('QUI='), Buffer.from('AB'));
    assert.deepEqual(decodeAnyBase64('QUI'), Buffer.from('AB'));
    assert.deepEqual(decodeAnyBase64('QQ=='), Buffer.from('A'));
    assert.deepEqual(decodeAnyBase64('QQ'), Buffer.from('A'));
    assert.deepEqual(decodeAnyBase64('a+/b'), Buffer.from([0x6b, 0xef, 0xdb]));
  });

  it('decodes the URL-safe alphabet to the same bytes as the standard one', () => {
    assert.deepEqual(decodeAnyBase64('a-_b'), Buffer.from([0x6b, 0xef, 0xdb]));
    const bytes = randomBytes(301);
    assert.deepEqual(decodeAnyBase64(bytes.toString('base64url')), bytes);
    assert.deepEqual(decodeAnyBase64(bytes.toString('base64')), bytes);
  });

  it('refuses a string that mixes the two alphabets', () => {
    assert.equal(decodeAnyBase64('a+_b'), undefined);
    assert.equal(decodeAnyBase64('a-/b'), undefined);
  });

  it('refuses characters outside the alphabet instead of skipping them', () => {
    for (const text of ['QU JD', 'QUJD\n', 'QU*D', 'QUJ.', 'QUJD!', 'ÄUJD', 'QU=D']) {
      assert.equal(decodeAnyBase64(text), undefined, JSON.stringify(text));
    }
  });

  it('refuses impossible lengths and wrong padding', () => {
    assert.equal(decodeAnyBase64('Q'), undefined, 'one leftover character encodes no byte');
    assert.equal(decodeAnyBase64('QUJDR'), undefined, '4n+1 characters');
    assert.equal(decodeAnyBase64('Q==='), undefined, 'three pad characters');
    assert.equal(decodeAnyBase64('QQ='), undefined, 'padded but not to a multiple of 4');
    assert.equal(decodeAnyBase64('QUJD='), undefined, 'padding after a complete quantum');
    assert.equal(decodeAnyBase64('QUJD=='), undefined, 'padding after a complete quantum');
  });

  it('decodeSegment accepts only unpadded base64url', () => {
    assert.deepEqual(decodeSegment('a-_b'), Buffer.from([0x6b, 0xef, 0xdb]));
    assert.equal(decodeSegment('a+/b'), undefined);
    assert.equal(decodeSegment('QQ=='), undefined);
    assert.equal(decodeSegment('QUJDR'), undefined);
  });

  it('encodeStandardBase64 encodes only the view of a Uint8Array, not its whole buffer', () => {
    const whole = Buffer.from('xxABCxx');
    assert.equal(encodeStandardBase64(whole.subarray(2, 5)), 'QUJD');
  });
});

describe('compression: inflateBounded and compress', () => {
  // What a container holds: JSON around base64 of (compressed) bytes — 6 bits of entropy per character.
  const sample = Buffer.from(
    JSON.stringify({
      sub: 'alice',
      roles: ['a', 'b'],
      container: randomBytes(3750).toString('base64'),
    }),
  );

  for (const kind of ['g', 'b'] as const) {
    it(`round-trips ${kind === 'g' ? 'gzip' : 'brotli'} and actually compresses base64 text`, () => {
      const packed = compress(sample, kind);
      assert.ok(
        packed.length < sample.length * 0.8,
        `compressed ${sample.length} to ${packed.length} bytes`,
      );
      assert.deepEqual(inflateBounded(packed, kind, CAP), sample);
    });

    it(`${kind === 'g' ? 'gzip' : 'brotli'}: 'repeats' finds repeated text, and both efforts open anywhere`, () => {
      const repetitive = Buffer.from(
        Buffer.from(
          JSON.stringify({
            groups: Array.from({ length: 60 }, (_, i) => `/acme/engineering/team-${i % 6}`),
          }),
        ).toString('base64url'),
      );
      const thorough = compress(repetitive, kind, 'repeats');
      const cheap = compress(repetitive, kind, 'entropy');
      assert.ok(
        thorough.length < repetitive.length * 0.4,
        `repeats: ${repetitive.length} → ${thorough.length}`,
      );
      // Huffman-only gzip cannot match repeats at all; brotli's quality 1 still does, less well.
      if (kind === 'g')
        assert.ok(
          cheap.length > repetitive.length * 0.6,
          `entropy: ${repetitive.length} → ${cheap.length}`,
        );
      else
        assert.ok(
          cheap.length >= thorough.length,
          `entropy ${cheap.length}, repeats ${thorough.length}`,
        );
      const standard = kind === 'g' ? gunzipSync : brotliDecompressSync;
      assert.deepEqual(standard(thorough), repetitive);
      assert.deepEqual(standard(cheap), repetitive);
    });

    it(`${kind === 'g' ? 'gzip' : 'brotli'}: output exactly at the cap is accepted, one byte over is not`, () => {
      const packed = compress(sample, kind);
      assert.equal(inflateBounded(packed, kind, sample.length).length, sample.length);
      assert.throws(() => inflateBounded(packed, kind, sample.length - 1), InflateLimitError);
    });
  }

  it('inflates standard gzip produced elsewhere (not only our own compress)', () => {
    const packed = gzipSync(sample, { level: 1 });
    assert.deepEqual(inflateBounded(packed, 'g', CAP), sample);
  });

  it('garbage, truncated or empty input is an InflateFormatError, not a limit error', () => {
    const garbage = Buffer.from('this is not compressed at all');
    assert.throws(() => inflateBounded(garbage, 'g', CAP), InflateFormatError);
    assert.throws(() => inflateBounded(garbage, 'b', CAP), InflateFormatError);
    const gz = gzipSync(sample);
    assert.throws(
      () => inflateBounded(gz.subarray(0, gz.length - 12), 'g', CAP),
      InflateFormatError,
    );
    assert.throws(() => inflateBounded(Buffer.alloc(0), 'g', CAP), InflateFormatError);
    assert.throws(() => inflateBounded(Buffer.alloc(0), 'b', CAP), InflateFormatError);
  });

  it('a gzip stream handed to the brotli decoder is a format error', () => {
    assert.throws(() => inflateBounded(gzipSync(sample), 'b', CAP), InflateFormatError);
  });

  describe('decompression bombs (64 MiB of zeros) under a 256 KiB cap', () => {
    let gzipBomb: Buffer;
    let brotliBomb: Buffer;

    before(() => {
      const zeros = Buffer.alloc(64 * MiB);
      gzipBomb = gzipSync(zeros, { level: 9 });
      brotliBomb = brotliCompressSync(zeros, {
        params: { [zlibConstants.BROTLI_PARAM_QUALITY]: 5 },
      });
    });

    for (const [name, kind] of [
      ['gzip', 'g'],
      ['brotli', 'b'],
    ] as const) {
      it(`${name}: throws InflateLimitError quickly without allocating the claimed size`, () => {
        const bomb = kind === 'g' ? gzipBomb : brotliBomb;
        assert.ok(bomb.length < 100 * KiB, `the ${name} bomb is small: ${bomb.length} bytes`);
        const rssBefore = process.memoryUsage().rss;
        let caught: unknown;
        // Fastest of five: a loaded machine delays a run, never speeds one up.
        const fastest = (run: () => void): number =>
          Math.min(
            ...Array.from({ length: 5 }, () => {
              const started = performance.now();
              run();
              return performance.now() - started;
            }),
          );
        const elapsed = fastest(() => {
          try {
            inflateBounded(bomb, kind, CAP);
          } catch (error) {
            caught = error;
          }
        });
        const grown = process.memoryUsage().rss - rssBefore;
        assert.ok(
          caught instanceof InflateLimitError,
          `expected InflateLimitError, got ${String(caught)}`,
        );
        // Baseline in the same test: inflating what the bomb claims, without the cap (once; a
        // loaded machine only makes it slower). Stopping at the cap costs well under a tenth of it.
        const started = performance.now();
        if (kind === 'g') gunzipSync(bomb);
        else brotliDecompressSync(bomb);
        const unbounded = performance.now() - started;
        assert.ok(
          elapsed < unbounded / 10,
          `took ${elapsed.toFixed(2)} ms, ${((100 * elapsed) / unbounded).toFixed(1)}% of inflating the whole bomb`,
        );
        assert.ok(grown < 64 * MiB, `rss grew by ${(grown / MiB).toFixed(1)} MiB`);
      });
    }
  });
});

describe('compact: compactKind and parseCompactJws', () => {
  it('compactKind counts the dots: 2 → jws, 4 → jwe, anything else → neither', () => {
    assert.equal(compactKind('a.b.c'), 'jws');
    assert.equal(compactKind('a.b.c.d.e'), 'jwe');
    assert.equal(compactKind('a.b'), 'neither');
    assert.equal(compactKind('a.b.c.d'), 'neither');
    assert.equal(compactKind('abc'), 'neither');
    assert.equal(compactKind('a.b.c.d.e.f'), 'neither');
  });

  it('parses header, payload, alg and kid of a well-formed JWS', () => {
    const token = fakeJws({ alg: 'ES256', kid: 'key-1', typ: 'JWT' }, { sub: 'alice', n: 1 });
    const jws = parseCompactJws(token);
    assert.equal(jws.signingInput, token.slice(0, token.lastIndexOf('.')));
    assert.deepEqual(
      jws.signature,
      Buffer.from(token.slice(token.lastIndexOf('.') + 1), 'base64url'),
    );
    assert.equal(jws.alg, 'ES256');
    assert.equal(jws.kid, 'key-1');
    assert.deepEqual(jws.header, { alg: 'ES256', kid: 'key-1', typ: 'JWT' });
    assert.deepEqual(jws.payload, { sub: 'alice', n: 1 });
  });

  it('kid is optional', () => {
    assert.equal(parseCompactJws(fakeJws({ alg: 'RS256' }, {})).kid, undefined);
  });

  it('requires exactly three parts', () => {
    const good = fakeJws({ alg: 'ES256' }, {});
    assert.throws(() => parseCompactJws(good.split('.').slice(0, 2).join('.')), CompactFormatError);
    assert.throws(() => parseCompactJws(`${good}.x.y`), CompactFormatError);
    assert.throws(() => parseCompactJws(''), CompactFormatError);
  });

  it('header and payload must be JSON objects', () => {
    for (const notObject of [[1, 2], 'text', 42, null, true]) {
      assert.throws(
        () => parseCompactJws(fakeJws(notObject, {})),
        CompactFormatError,
        `header ${JSON.stringify(notObject)}`,
      );
      assert.throws(
        () => parseCompactJws(fakeJws({ alg: 'ES256' }, notObject)),
        CompactFormatError,
        `payload ${JSON.stringify(notObject)}`,
      );
    }
    assert.throws(
      () => parseCompactJws(`${seg('{not json')}.${seg({})}.${seg('s')}`),
      /header is not JSON/,
    );
    assert.throws(
      () => parseCompactJws(`${seg({ alg: 'ES256' })}.${seg('{"sub":')}.${seg('s')}`),
      /payload is not JSON/,
    );
  });

  it('segments must be unpadded base64url', () => {
    const h = seg({ alg: 'ES256' });
    const p = seg({ sub: 'a' });
    assert.throws(() => parseCompactJws(`${h}=.${p}.${seg('s')}`), /header is not base64url/);
    assert.throws(() => parseCompactJws(`${h}.${p}+.${seg('s')}`), /payload is not base64url/);
    assert.throws(() => parseCompactJws(`${h}.${p}.ab/c`), /signature is not base64url/);
  });

  it('rejects a header or payload that is not valid UTF-8', () => {
    const badHeader = Buffer.concat([
      Buffer.from('{"alg":"ES256","x":"'),
      Buffer.from([0xc3, 0x28]),
      Buffer.from('"}'),
    ]);
    assert.throws(
      () => parseCompactJws(`${seg(badHeader)}.${seg({})}.${seg('s')}`),
      /header is not valid UTF-8/,
    );
    const badPayload = Buffer.concat([
      Buffer.from('{"sub":"'),
      Buffer.from([0xff, 0xfe]),
      Buffer.from('"}'),
    ]);
    assert.throws(
      () => parseCompactJws(`${seg({ alg: 'ES256' })}.${seg(badPayload)}.${seg('s')}`),
      /payload is not valid UTF-8/,
    );
  });

  it('rejects the crit and b64 header parameters', () => {
    assert.throws(() => parseCompactJws(fakeJws({ alg: 'ES256', crit: ['exp'] }, {})), /crit/);
    assert.throws(
      () => parseCompactJws(fakeJws({ alg: 'ES256', b64: false, crit: ['b64'] }, {})),
      CompactFormatError,
    );
    assert.throws(() => parseCompactJws(fakeJws({ alg: 'ES256', b64: true }, {})), /b64/);
  });

  it('requires a non-empty string alg', () => {
    assert.throws(() => parseCompactJws(fakeJws({ kid: 'k' }, {})), /alg/);
    assert.throws(() => parseCompactJws(fakeJws({ alg: '' }, {})), /alg/);
    assert.throws(() => parseCompactJws(fakeJws({ alg: 256 }, {})), /alg/);
  });

  it('requires kid, when present, to be a string', () => {
    assert.throws(() => parseCompactJws(fakeJws({ alg: 'ES256', kid: 7 }, {})), /kid/);
    assert.throws(() => parseCompactJws(fakeJws({ alg: 'ES256', kid: null }, {})), /kid/);
  });

  it('parseJweHeader reads the protected header of a five-part token and refuses a JWS', () => {
    const jwe = `${seg({ alg: 'dir', enc: 'A256GCM', kid: 'enc-1' })}.${''}.${seg('iv')}.${seg('ct')}.${seg('tag')}`;
    assert.deepEqual(parseJweHeader(jwe), { alg: 'dir', enc: 'A256GCM', kid: 'enc-1' });
    assert.throws(() => parseJweHeader(fakeJws({ alg: 'ES256' }, {})), CompactFormatError);
  });
});

describe('auth-stack: readAuthStack', () => {
  const container = fakeJws({ alg: 'ES256' }, { sub: 'alice' });
  const read = (authStack: unknown): AuthStack | undefined =>
    readAuthStack({ iss: 'x', auth_stack: authStack });

  it('a payload without auth_stack is an origin: undefined', () => {
    assert.equal(readAuthStack({ iss: 'https://idp.example', sub: 'alice' }), undefined);
  });

  it('reads a complete claim', () => {
    assert.deepEqual(read({ fmt: 'JWT', cmp: 'g', container, sid: 'orders', depth: 2 }), {
      fmt: 'JWT',
      cmp: 'g',
      container,
      sid: 'orders',
      depth: 2,
    });
  });

  it('compares fmt case-insensitively and normalises it to JWT or JWE', () => {
    assert.equal(read({ fmt: 'jwt', container })?.fmt, 'JWT');
    assert.equal(read({ fmt: 'Jwt', container })?.fmt, 'JWT');
    assert.equal(read({ fmt: 'jwe', container })?.fmt, 'JWE');
    assert.equal(read({ fmt: 'JWE', container })?.fmt, 'JWE');
  });

  it('refuses a missing or unknown fmt', () => {
    for (const fmt of [undefined, 'JWS', 'jwt ', 'JSON', '', 1, null]) {
      assert.throws(() => read({ fmt, container }), StackFormatError, `fmt ${JSON.stringify(fmt)}`);
    }
  });

  it('accepts cmp g, b, null or absent and refuses anything else', () => {
    assert.equal(read({ fmt: 'JWT', cmp: 'g', container })?.cmp, 'g');
    assert.equal(read({ fmt: 'JWT', cmp: 'b', container })?.cmp, 'b');
    assert.equal(read({ fmt: 'JWT', cmp: null, container })?.cmp, undefined);
    assert.equal(read({ fmt: 'JWT', container })?.cmp, undefined);
    for (const cmp of ['gzip', 'br', 'z', '', 0, false]) {
      assert.throws(
        () => read({ fmt: 'JWT', cmp, container }),
        StackFormatError,
        `cmp ${JSON.stringify(cmp)}`,
      );
    }
  });

  it('requires container to be a non-empty string', () => {
    for (const bad of [undefined, '', 42, null, ['a.b.c'], { token: 'a.b.c' }]) {
      assert.throws(
        () => read({ fmt: 'JWT', container: bad }),
        StackFormatError,
        `container ${JSON.stringify(bad)}`,
      );
    }
  });

  it('accepts a positive integer depth, or none', () => {
    assert.equal(read({ fmt: 'JWT', container, depth: 1 })?.depth, 1);
    assert.equal(read({ fmt: 'JWT', container, depth: 31 })?.depth, 31);
    assert.equal(read({ fmt: 'JWT', container })?.depth, undefined);
  });

  it('refuses a negative, zero, fractional, string or unsafe depth', () => {
    for (const depth of [-1, 0, 1.5, '2', 2 ** 53, null, true]) {
      assert.throws(
        () => read({ fmt: 'JWT', container, depth }),
        /depth/,
        `depth ${JSON.stringify(depth)}`,
      );
    }
  });

  it('requires sid, when present, to be a non-empty string', () => {
    assert.equal(read({ fmt: 'JWT', container, sid: 'cart-1' })?.sid, 'cart-1');
    assert.throws(() => read({ fmt: 'JWT', container, sid: '' }), /sid/);
    assert.throws(() => read({ fmt: 'JWT', container, sid: 7 }), /sid/);
  });

  it('ignores unknown fields such as hash', () => {
    const stack = read({ fmt: 'jwt', container, hash: 'abc123', extra: { nested: true } });
    assert.deepEqual(stack, {
      fmt: 'JWT',
      cmp: undefined,
      container,
      sid: undefined,
      depth: undefined,
    });
  });

  it('refuses an auth_stack that is not an object', () => {
    for (const bad of [null, 'a.b.c', 42, [{ fmt: 'JWT', container }]]) {
      assert.throws(() => read(bad), StackFormatError, JSON.stringify(bad));
    }
  });
});

describe('auth-stack: unpackContainer', () => {
  /** Assert a StackFormatError and whether it is the size cap. */
  function assertStackError(fn: () => unknown, tooLarge: boolean): void {
    assert.throws(fn, (error: unknown) => {
      assert.ok(
        error instanceof StackFormatError,
        `expected StackFormatError, got ${String(error)}`,
      );
      assert.equal(
        error.code === 'ERR_STACK_TOO_LARGE',
        tooLarge,
        `tooLarge of "${error.message}"`,
      );
      return true;
    });
  }

  it('returns a plain container as it is', () => {
    const stack = stackOf({});
    assert.equal(unpackContainer(stack, CAP), stack.container);
  });

  it('refuses a plain container longer than the cap as too large', () => {
    const container = fakeJws({ alg: 'ES256' }, { pad: 'x'.repeat(2000) });
    assert.equal(unpackContainer(stackOf({ container }), container.length), container);
    assertStackError(() => unpackContainer(stackOf({ container }), container.length - 1), true);
  });

  it('inflates gzip in standard base64 with = padding', () => {
    const { token, standard } = packedToken((b64) => /[+/]/.test(b64) && b64.endsWith('='));
    assert.equal(unpackContainer(stackOf({ cmp: 'g', container: standard }), CAP), token);
  });

  it('inflates gzip in URL-safe base64 without padding', () => {
    const { token, packed } = packedToken((b64) => /[+/]/.test(b64) && b64.endsWith('='));
    const urlSafe = packed.toString('base64url');
    assert.match(urlSafe, /[-_]/);
    assert.doesNotMatch(urlSafe, /=/);
    assert.equal(unpackContainer(stackOf({ cmp: 'g', container: urlSafe }), CAP), token);
  });

  it('inflates brotli', () => {
    const token = fakeJws({ alg: 'ES256' }, { sub: 'alice', pad: 'y'.repeat(3000) });
    const container = compress(Buffer.from(token, 'latin1'), 'b').toString('base64');
    assert.equal(unpackContainer(stackOf({ cmp: 'b', container }), CAP), token);
  });

  it('a compressed container that inflates past the cap is too large', () => {
    const token = fakeJws({ alg: 'ES256' }, { pad: 'z'.repeat(10 * KiB) });
    for (const cmp of ['g', 'b'] as const) {
      const container = compress(Buffer.from(token, 'latin1'), cmp).toString('base64');
      assert.equal(unpackContainer(stackOf({ cmp, container }), token.length), token);
      assertStackError(() => unpackContainer(stackOf({ cmp, container }), token.length - 1), true);
    }
  });

  it('a compressed container that is not base64 is malformed, not too large', () => {
    assertStackError(
      () => unpackContainer(stackOf({ cmp: 'g', container: 'H4sI AAAA' }), CAP),
      false,
    );
    assertStackError(() => unpackContainer(stackOf({ cmp: 'g', container: 'Q' }), CAP), false);
  });

  it('a compressed container that does not inflate is malformed, not too large', () => {
    const container = Buffer.from('definitely not gzip').toString('base64');
    assertStackError(() => unpackContainer(stackOf({ cmp: 'g', container }), CAP), false);
    assertStackError(() => unpackContainer(stackOf({ cmp: 'b', container }), CAP), false);
  });

  it('refuses inflated bytes that cannot be a compact token', () => {
    for (const text of ['has a space.b.c', 'tab\there', 'new\nline', 'caf\u00e9.b.c']) {
      const container = gzipSync(Buffer.from(text, 'utf8')).toString('base64');
      assertStackError(() => unpackContainer(stackOf({ cmp: 'g', container }), CAP), false);
    }
    const binary = gzipSync(randomBytes(64)).toString('base64');
    assertStackError(() => unpackContainer(stackOf({ cmp: 'g', container: binary }), CAP), false);
  });
});

describe('inspect: inspectChain', () => {
  const now = Math.floor(Date.now() / 1000);
  let origin: string;
  let level1: string;
  let level2: string;
  let signLevel: (claims: Record<string, unknown>) => Promise<string>;

  before(async () => {
    const idpKey = await generateKeyPair('ES256');
    const ownKey = await generateKeyPair('ES256');
    origin = await new SignJWT({ sub: 'alice', roles: ['reader'] })
      .setProtectedHeader({ alg: 'ES256', kid: 'idp-1' })
      .setIssuer('https://idp.acme.example')
      .setIssuedAt(now - 60)
      .setExpirationTime(now + 600)
      .sign(idpKey.privateKey);
    signLevel = (claims) =>
      new SignJWT({ sub: 'alice', tenant_id: 'acme', roles: ['reader'], ...claims })
        .setProtectedHeader({ alg: 'ES256', kid: 'own-1' })
        .setIssuer('urn:matryoshka:authz')
        .setIssuedAt(now)
        .setExpirationTime(now + 120)
        .sign(ownKey.privateKey);
    level1 = await signLevel({
      auth_stack: { fmt: 'JWT', sid: 'gateway', depth: 1, container: origin },
    });
    const packed = gzipSync(Buffer.from(level1, 'latin1')).toString('base64');
    level2 = await signLevel({
      auth_stack: {
        fmt: 'jwt',
        cmp: 'g',
        sid: 'orders',
        depth: 2,
        container: packed,
        hash: 'ignored',
      },
    });
  });

  it('opens a three-level chain origin first and stops at the origin', () => {
    const inspection = inspectChain(level2);
    assert.equal(inspection.stop.kind, 'origin');
    assert.equal(inspection.sealed, false);
    assert.equal(inspection.levels.length, 3);
    const [o, l1, l2] = inspection.levels;
    assert.ok(o && l1 && l2);

    assert.equal(o.iss, 'https://idp.acme.example');
    assert.equal(o.sub, 'alice');
    assert.equal(o.kid, 'idp-1');
    assert.equal(o.alg, 'ES256');
    assert.equal(o.depth, undefined);
    assert.equal(o.fmt, undefined);
    assert.equal(o.sid, undefined);
    assert.equal(o.exp, now + 600);
    assert.equal(o.length, origin.length);

    assert.equal(l1.iss, 'urn:matryoshka:authz');
    assert.equal(l1.sid, 'gateway');
    assert.equal(l1.depth, 1);
    assert.equal(l1.fmt, 'JWT');
    assert.equal(l1.cmp, undefined);
    assert.equal(l1.tenant, 'acme');
    assert.equal(l1.kid, 'own-1');
    assert.equal(l1.length, level1.length);

    assert.equal(l2.sid, 'orders');
    assert.equal(l2.depth, 2);
    assert.equal(l2.fmt, 'JWT', 'lowercase fmt is normalised');
    assert.equal(l2.cmp, 'g');
    assert.equal(l2.iat, now);
    assert.equal(l2.exp, now + 120);
    assert.equal(l2.length, level2.length);
  });

  it('accepts the token with a Bearer prefix and surrounding whitespace', () => {
    const inspection = inspectChain(`  Bearer ${level2}\n`);
    assert.equal(inspection.stop.kind, 'origin');
    assert.deepEqual(
      inspection.levels.map((l) => l.sid),
      [undefined, 'gateway', 'orders'],
    );
  });

  it('an origin token alone is a one-level chain', () => {
    const inspection = inspectChain(origin);
    assert.equal(inspection.stop.kind, 'origin');
    assert.equal(inspection.levels.length, 1);
    assert.equal(inspection.levels[0]?.sub, 'alice');
  });

  it('marks a chain sealed at a compact JWE container, keeping the declared depth', async () => {
    const jwe = await new CompactEncrypt(new TextEncoder().encode(level1))
      .setProtectedHeader({ alg: 'dir', enc: 'A256GCM', kid: 'seal-1' })
      .encrypt(randomBytes(32));
    assert.equal(compactKind(jwe), 'jwe');
    const outer = await signLevel({
      auth_stack: { fmt: 'JWE', sid: 'payments', depth: 2, container: jwe },
    });
    const inspection = inspectChain(outer);
    assert.equal(inspection.sealed, true);
    assert.equal(inspection.stop.kind, 'sealed');
    assert.equal(inspection.levels.length, 1, 'nothing below the JWE can be read');
    assert.equal(inspection.levels[0]?.sid, 'payments');
    assert.equal(inspection.levels[0]?.fmt, 'JWE');
    assert.equal(inspection.levels[0]?.depth, 2);
  });

  it('stops with an error on garbage, reading no level', () => {
    for (const garbage of ['garbage', 'a.b.c', '', 'x.y.z.w.v']) {
      const inspection = inspectChain(garbage);
      assert.equal(inspection.stop.kind, 'error', JSON.stringify(garbage));
      assert.equal(inspection.levels.length, 0);
      assert.equal(inspection.sealed, false);
    }
  });

  it('reports the readable outer levels when an inner container is garbage', async () => {
    const outer = await signLevel({
      auth_stack: { fmt: 'JWT', sid: 'gateway', depth: 1, container: 'not-a-token' },
    });
    const inspection = inspectChain(outer);
    assert.equal(inspection.stop.kind, 'error');
    assert.equal(inspection.levels.length, 1);
    assert.equal(inspection.levels[0]?.sid, 'gateway');
  });

  it('stops with an error on a malformed auth_stack', async () => {
    const outer = await signLevel({ auth_stack: { fmt: 'XML', container: origin } });
    const inspection = inspectChain(outer);
    assert.equal(inspection.stop.kind, 'error');
    assert.match(inspection.stop.detail, /fmt/);
  });

  it('stops with an error on a compressed bomb instead of inflating it', async () => {
    const bomb = gzipSync(Buffer.alloc(8 * MiB, 0x41), { level: 9 }).toString('base64');
    const outer = await signLevel({
      auth_stack: { fmt: 'JWT', cmp: 'g', sid: 'gateway', depth: 1, container: bomb },
    });
    const inspection = inspectChain(outer);
    assert.equal(inspection.stop.kind, 'error');
    assert.match(inspection.stop.detail, /inflates beyond/);
  });

  it('stops with an error past the level cap', () => {
    const inspection = inspectChain(level2, { ...DEFAULT_LIMITS, maxLevels: 2 });
    assert.equal(inspection.stop.kind, 'error');
    assert.match(inspection.stop.detail, /more than 2 levels/);
    assert.equal(inspection.levels.length, 2);
    assert.equal(
      inspectChain(level2, { ...DEFAULT_LIMITS, maxLevels: 3 }).stop.kind,
      'origin',
      'exactly at the cap is fine',
    );
  });
});
