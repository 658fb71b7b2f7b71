/**
 * Property (fast-check): the codec (inspectChain, parseCompactJws, readAuthStack, unpackContainer,
 * base64, hasDuplicateKeys) never throws anything but its own error type on arbitrary input, and
 * agrees with reference implementations. Seeds and run counts: test/helpers/fast-check-runs.ts.
 */
import assert from 'node:assert/strict';
import { brotliCompressSync, brotliDecompressSync, gunzipSync, gzipSync } from 'node:zlib';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  type AuthStack,
  StackFormatError,
  readAuthStack,
  unpackContainer,
} from '../../src/chain/auth-stack.js';
import { decodeAnyBase64, decodeSegment } from '../../src/chain/base64.js';
import { CompactFormatError, parseCompactJws } from '../../src/chain/compact.js';
import { hasDuplicateKeys } from '../../src/chain/duplicate-keys.js';
import { inspectChain } from '../../src/chain/inspect.js';
import { withContainer } from '../../src/pipeline/mint.js';
import { DEFAULT_LIMITS } from '../../src/chain/limits.js';
import {
  B64_VARIANTS,
  type B64Variant,
  type Cmp,
  b64u,
  encodeB64,
  packContainer,
} from '../helpers/chain-surgery.js';

import { PURE_RUNS, params } from '../helpers/fast-check-runs.js';

const B64URL_CHARS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'.split('');
const B64STD_CHARS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'.split('');
const seg = (value: unknown): string =>
  b64u(typeof value === 'string' ? value : JSON.stringify(value));

/** An unsigned but well-formed chain: what inspectChain must walk to the origin. */
interface GeneratedChain {
  readonly token: string;
  readonly sids: readonly string[];
  readonly fmts: readonly string[];
  readonly cmps: ReadonlyArray<Cmp | undefined>;
}

// The sid grammar (src/header-grammar.ts): a letter or digit, then letters, digits and . - _ : @ /.
const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
const sidArb = fc
  .tuple(
    fc.constantFrom(...ALNUM.split('')),
    fc.string({ unit: fc.constantFrom(...`${ALNUM}.-_:@/`.split('')), maxLength: 15 }),
  )
  .map(([first, rest]) => first + rest);
const levelSpecArb = fc.record({
  sid: fc.option(sidArb, { nil: undefined }),
  fmt: fc.constantFrom('JWT', 'jwt', 'Jwt'),
  cmp: fc.constantFrom<Cmp | null | undefined>(undefined, null, 'g', 'b'),
  variant: fc.constantFrom<B64Variant>(...B64_VARIANTS),
  declareDepth: fc.boolean(),
  extra: fc.dictionary(
    fc.string({ maxLength: 6 }).filter((k) => k !== 'auth_stack' && k !== '__proto__'),
    fc.jsonValue({ maxDepth: 1 }),
    { maxKeys: 2 },
  ),
});
const generatedChainArb: fc.Arbitrary<GeneratedChain> = fc
  .record({
    origin: fc.dictionary(
      fc.string({ maxLength: 6 }).filter((k) => k !== 'auth_stack' && k !== '__proto__'),
      fc.jsonValue({ maxDepth: 2 }),
      { maxKeys: 4 },
    ),
    header: fc.record(
      {
        alg: fc.constantFrom('ES256', 'HS256', 'RS256', 'EdDSA'),
        kid: fc.option(fc.string({ maxLength: 8 }), { nil: undefined }),
      },
      { requiredKeys: ['alg'] },
    ),
    levels: fc.array(levelSpecArb, { maxLength: 6 }),
    sig: fc.uint8Array({ minLength: 0, maxLength: 72 }),
  })
  .map(({ origin, header, levels, sig }) => {
    const sign = (payload: unknown): string =>
      `${seg(header)}.${seg(payload)}.${Buffer.from(sig).toString('base64url')}`;
    let token = sign(origin);
    for (const [i, l] of levels.entries()) {
      const container = packContainer(token, l.cmp ?? undefined, l.variant);
      const stack = {
        fmt: l.fmt,
        ...(l.cmp === undefined ? {} : { cmp: l.cmp }),
        ...(l.sid === undefined ? {} : { sid: l.sid }),
        ...(l.declareDepth ? { depth: i + 1 } : {}),
        container,
      };
      token = sign({ ...l.extra, auth_stack: stack });
    }
    return {
      token,
      sids: levels.map((l) => l.sid ?? ''),
      fmts: levels.map((l) => l.fmt.toUpperCase()),
      cmps: levels.map((l) => l.cmp ?? undefined),
    };
  });

/** Strings of every shape inspectChain or parseCompactJws might be handed. */
const tokenishArb: fc.Arbitrary<string> = fc.oneof(
  fc.string(),
  fc.string({ unit: 'binary' }),
  fc.base64String(),
  fc
    .array(
      fc.oneof(
        fc.string({ unit: fc.constantFrom(...B64URL_CHARS) }),
        fc.jsonValue({ maxDepth: 2 }).map(seg),
        fc.base64String(),
      ),
      { minLength: 1, maxLength: 6 },
    )
    .map((p) => p.join('.')),
  generatedChainArb.map((c) => c.token),
  fc
    .tuple(generatedChainArb, fc.nat(), fc.string({ maxLength: 4 }))
    .map(([c, n, junk]) => c.token.slice(0, n % (c.token.length + 1)) + junk),
  fc.tuple(generatedChainArb, fc.nat(), fc.constantFrom(...B64URL_CHARS)).map(([c, n, ch]) => {
    const i = n % c.token.length;
    return c.token.slice(0, i) + ch + c.token.slice(i + 1);
  }),
);

/** The auth_stack validity rules of the format spec, written independently of auth-stack.ts. */
function stackIsValidPerSpec(payload: Record<string, unknown>): boolean {
  const s = payload['auth_stack'];
  if (s === null || typeof s !== 'object' || Array.isArray(s)) return false;
  const c = s as Record<string, unknown>;
  const fmtOk = typeof c['fmt'] === 'string' && ['JWT', 'JWE'].includes(c['fmt'].toUpperCase());
  const cmpOk = c['cmp'] === undefined || c['cmp'] === null || c['cmp'] === 'g' || c['cmp'] === 'b';
  const containerOk = typeof c['container'] === 'string' && c['container'] !== '';
  const sidOk =
    c['sid'] === undefined ||
    (typeof c['sid'] === 'string' && /^[A-Za-z0-9][A-Za-z0-9._:@/-]{0,127}$/.test(c['sid']));
  const d = c['depth'];
  const depthOk =
    d === undefined ||
    (typeof d === 'number' && Number.isInteger(d) && d >= 1 && d <= Number.MAX_SAFE_INTEGER);
  return fmtOk && cmpOk && containerOk && sidOk && depthOk;
}

/** A JSON document model in which an object may repeat a member name. */
type JNode =
  | { t: 'obj'; members: Array<[string, JNode]> }
  | { t: 'arr'; items: JNode[] }
  | { t: 'str'; v: string }
  | { t: 'lit'; v: string };

const keyArb = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.constantFrom(
      'a',
      'b',
      'iss',
      'sub',
      'auth_stack',
      'container',
      '__proto__',
      '',
      'a"b',
      'a\\b',
      '\\',
      '"',
      'é',
      '\u0000',
      '\ud800',
      '{',
      '}',
      ',',
      ':',
      '[',
    ),
  },
  { weight: 1, arbitrary: fc.string({ maxLength: 5 }) },
);
const jnodeArb: fc.Arbitrary<JNode> = fc.letrec<{ node: JNode }>((tie) => ({
  node: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.oneof(keyArb, fc.string({ maxLength: 6 })).map((v): JNode => ({ t: 'str', v })),
    fc
      .constantFrom('1', '-0.5e3', 'true', 'false', 'null', '0')
      .map((v): JNode => ({ t: 'lit', v })),
    fc.array(tie('node'), { maxLength: 4 }).map((items): JNode => ({ t: 'arr', items })),
    fc
      .array(fc.tuple(keyArb, tie('node')), { maxLength: 5 })
      .map((members): JNode => ({ t: 'obj', members })),
  ),
})).node;

/** Serialise with random whitespace and random (but valid) escaping of every string. */
function serialise(node: JNode, rnd: () => number): string {
  const ws = (): string => [' ', '', '\n', '\t', ''][Math.floor(rnd() * 5)] as string;
  const str = (s: string): string => {
    let out = '"';
    for (const ch of s) {
      const code = ch.codePointAt(0) as number;
      const r = rnd();
      const u = `\\u${code.toString(16).padStart(4, '0')}`;
      if (ch === '"') out += r < 0.5 ? '\\"' : u;
      else if (ch === '\\') out += r < 0.5 ? '\\\\' : u;
      else if (code < 0x20 || (code >= 0xd800 && code <= 0xdfff))
        out += r < 0.5 ? u : u.toUpperCase().replace('\\U', '\\u');
      else if (r < 0.2 && code <= 0xffff) out += `\\u${code.toString(16).padStart(4, '0')}`;
      else if (r < 0.25 && ch === '/') out += '\\/';
      else out += ch;
    }
    return `${out}"`;
  };
  switch (node.t) {
    case 'str':
      return str(node.v);
    case 'lit':
      return node.v;
    case 'arr':
      return `[${ws()}${node.items.map((n) => serialise(n, rnd)).join(`${ws()},${ws()}`)}${ws()}]`;
    case 'obj':
      return `{${ws()}${node.members.map(([k, v]) => `${str(k)}${ws()}:${ws()}${serialise(v, rnd)}`).join(`${ws()},${ws()}`)}${ws()}}`;
  }
}

/** Reference: does any object in the model repeat a member name (as decoded, which JSON compares)? */
function modelHasDuplicates(node: JNode): boolean {
  if (node.t === 'arr') return node.items.some(modelHasDuplicates);
  if (node.t !== 'obj') return false;
  const seen = new Set<string>();
  for (const [k, v] of node.members) {
    if (seen.has(k)) return true;
    seen.add(k);
    if (modelHasDuplicates(v)) return true;
  }
  return false;
}

function referenceInflate(bytes: Buffer, cmp: Cmp): Buffer | undefined {
  try {
    return cmp === 'g' ? gunzipSync(bytes) : brotliDecompressSync(bytes);
  } catch {
    return undefined;
  }
}

describe('property: the codec on arbitrary input', () => {
  it('a payload with its container spliced in parses to the payload JSON.stringify would give', () => {
    const base64ish = fc.string({
      unit: fc.constantFrom(...'ABCxyz019+/=_-.'.split('')),
      maxLength: 400,
    });
    // The fast path is for our own encodings; a quote or backslash must still come out intact.
    const hostile = fc
      .tuple(base64ish, fc.constantFrom('"', '\\', '\\"', '"}}'), base64ish)
      .map(([a, b, c]) => a + b + c);
    fc.assert(
      fc.property(
        fc.oneof(base64ish, hostile),
        fc.string({ maxLength: 40 }),
        fc.array(fc.string({ maxLength: 12 }), { maxLength: 4 }),
        (container, sub, roles) => {
          const payload = {
            iss: 'https://authz.test',
            sub,
            roles,
            auth_stack: { fmt: 'JWT', cmp: 'g', sid: 'svc', depth: 3, container: '' },
          };
          const json = withContainer(payload, container);
          assert.deepEqual(JSON.parse(json), {
            ...payload,
            auth_stack: { ...payload.auth_stack, container },
          });
        },
      ),
      params(PURE_RUNS),
    );
  });

  it('inspectChain never throws and always names why it stopped', () => {
    fc.assert(
      fc.property(
        tokenishArb,
        fc.constantFrom('', 'Bearer ', 'bearer\t', '  '),
        (token, prefix) => {
          const result = inspectChain(prefix + token);
          assert.ok(
            ['origin', 'sealed', 'error'].includes(result.stop.kind),
            `stop ${result.stop.kind}`,
          );
          assert.equal(typeof result.stop.detail, 'string');
          assert.equal(result.sealed, result.stop.kind === 'sealed');
          assert.ok(result.levels.length <= DEFAULT_LIMITS.maxLevels);
          if (result.stop.kind === 'origin') {
            assert.ok(result.levels.length >= 1);
            assert.equal(result.levels[0]?.fmt, undefined, 'the origin has no container');
          }
        },
      ),
      params(PURE_RUNS),
    );
  });

  it('inspectChain walks every well-formed chain to its origin (any fmt case, cmp, base64 spelling)', () => {
    fc.assert(
      fc.property(generatedChainArb, (chain) => {
        const result = inspectChain(chain.token);
        assert.equal(result.stop.kind, 'origin', result.stop.detail);
        assert.equal(result.levels.length, chain.sids.length + 1);
        assert.deepEqual(
          result.levels.slice(1).map((l) => l.sid ?? ''),
          chain.sids,
        );
        assert.deepEqual(
          result.levels.slice(1).map((l) => l.fmt),
          chain.fmts,
        );
        assert.deepEqual(
          result.levels.slice(1).map((l) => l.cmp),
          chain.cmps,
        );
      }),
      params(PURE_RUNS / 2),
    );
  });

  it('parseCompactJws throws nothing but CompactFormatError', () => {
    fc.assert(
      fc.property(tokenishArb, (token) => {
        try {
          const jws = parseCompactJws(token);
          assert.ok(typeof jws.alg === 'string' && jws.alg.length > 0);
          for (const part of [jws.header, jws.payload])
            assert.ok(part !== null && typeof part === 'object' && !Array.isArray(part));
        } catch (error) {
          assert.ok(
            error instanceof CompactFormatError,
            `threw ${(error as Error)?.name}: ${(error as Error)?.message}`,
          );
        }
      }),
      params(PURE_RUNS),
    );
  });

  it('readAuthStack returns or throws StackFormatError, and accepts exactly what the spec allows', () => {
    const fieldArb = fc.oneof(
      fc.jsonValue({ maxDepth: 1 }),
      fc.constantFrom(
        'JWT',
        'jwt',
        'JwE',
        'JWS',
        'g',
        'b',
        'G',
        '',
        'x',
        0,
        1,
        -1,
        1.5,
        2 ** 53,
        2 ** 53 - 1,
        null,
        'A',
      ),
    );
    const stackArb = fc.record(
      {
        fmt: fieldArb,
        cmp: fieldArb,
        container: fieldArb,
        sid: fieldArb,
        depth: fieldArb,
        hash: fieldArb,
      },
      { requiredKeys: [] },
    );
    const payloadArb = fc.oneof(
      fc.record({
        auth_stack: fc.oneof(
          { weight: 4, arbitrary: stackArb },
          { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 2 }) },
        ),
      }),
      fc
        .jsonValue({ maxDepth: 3 })
        .filter(
          (v): v is Record<string, fc.JsonValue> =>
            v !== null && typeof v === 'object' && !Array.isArray(v),
        ),
    );
    fc.assert(
      fc.property(payloadArb, (value) => {
        // Through JSON text, as a payload reaches it.
        const payload = JSON.parse(JSON.stringify(value)) as Record<string, unknown>;
        let stack: AuthStack | undefined;
        try {
          stack = readAuthStack(payload);
        } catch (error) {
          assert.ok(error instanceof StackFormatError, `threw ${(error as Error)?.name}`);
          assert.equal(
            stackIsValidPerSpec(payload),
            false,
            `refused a valid auth_stack: ${JSON.stringify(payload['auth_stack'])} (${(error as Error).message})`,
          );
          return;
        }
        if (!Object.hasOwn(payload, 'auth_stack')) {
          assert.equal(stack, undefined);
          return;
        }
        assert.ok(
          stackIsValidPerSpec(payload),
          `accepted an invalid auth_stack: ${JSON.stringify(payload['auth_stack'])}`,
        );
        assert.ok(stack !== undefined && (stack.fmt === 'JWT' || stack.fmt === 'JWE'));
      }),
      params(PURE_RUNS),
    );
  });

  it('unpackContainer returns the inflated token or throws StackFormatError, within its cap', () => {
    const printable = fc.string({
      unit: fc.constantFrom(...'abcXYZ019.-_~'.split('')),
      maxLength: 300,
    });
    const containerArb = fc.oneof(
      fc.base64String({ maxLength: 80 }),
      fc.string({ maxLength: 40 }),
      fc
        .tuple(printable, fc.constantFrom<Cmp>('g', 'b'), fc.constantFrom(...B64_VARIANTS))
        .map(([text, cmp, v]) => packContainer(text, cmp, v)),
      fc
        .tuple(
          fc.uint8Array({ maxLength: 200 }),
          fc.constantFrom<Cmp>('g', 'b'),
          fc.constantFrom(...B64_VARIANTS),
        )
        .map(([bytes, cmp, v]) =>
          encodeB64(cmp === 'g' ? gzipSync(bytes) : brotliCompressSync(bytes), v),
        ),
      fc.tuple(printable, fc.constantFrom<Cmp>('g', 'b'), fc.nat()).map(([text, cmp, n]) => {
        const packed = packContainer(text, cmp, 'std-pad');
        return packed.slice(0, n % (packed.length + 1));
      }),
    );
    fc.assert(
      fc.property(
        containerArb,
        fc.constantFrom<Cmp | undefined>('g', 'b', undefined),
        fc.integer({ min: 0, max: 400 }),
        (container, cmp, maxBytes) => {
          fc.pre(container.length > 0);
          const stack: AuthStack = { fmt: 'JWT', cmp, container, sid: undefined, depth: undefined };
          let out: string;
          try {
            out = unpackContainer(stack, maxBytes);
          } catch (error) {
            assert.ok(
              error instanceof StackFormatError,
              `threw ${(error as Error)?.name}: ${(error as Error)?.message}`,
            );
            if (error.code === 'ERR_STACK_TOO_LARGE') {
              const size =
                cmp === undefined
                  ? container.length
                  : referenceInflate(decodeAnyBase64(container) as Buffer, cmp)?.length;
              assert.ok(
                size === undefined || size > maxBytes,
                `tooLarge, yet it is ${size} bytes for a cap of ${maxBytes}`,
              );
            }
            return;
          }
          assert.ok(out.length <= maxBytes, `${out.length} bytes past a cap of ${maxBytes}`);
          if (cmp === undefined) {
            assert.equal(out, container);
          } else {
            assert.match(out, /^[\x21-\x7e]*$/);
            const reference = referenceInflate(Buffer.from(container, 'base64'), cmp);
            assert.equal(out, reference?.toString('latin1'), 'inflates to what zlib says');
          }
        },
      ),
      params(PURE_RUNS),
    );
  });

  it('base64 decoders accept exactly the canonical spellings the alphabet rules allow (reference: the rules written out)', () => {
    const INDEX = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
    const sextet = (c: string): number =>
      c === '+' || c === '-' ? 62 : c === '/' || c === '_' ? 63 : INDEX.indexOf(c);
    const unusedBitsZero = (unpadded: string): boolean => {
      const rest = unpadded.length % 4;
      return rest === 0 || (sextet(unpadded.slice(-1)) & (rest === 2 ? 0x0f : 0x03)) === 0;
    };
    const referenceSegment = (t: string): boolean =>
      /^[A-Za-z0-9_-]*$/.test(t) && t.length % 4 !== 1 && unusedBitsZero(t);
    const referenceAny = (t: string): boolean => {
      if (!/^[A-Za-z0-9+/]*={0,2}$/.test(t) && !/^[A-Za-z0-9_-]*={0,2}$/.test(t)) return false;
      const unpadded = t.replace(/=+$/, '');
      return (
        unpadded.length % 4 !== 1 &&
        (t.length === unpadded.length || t.length % 4 === 0) &&
        unusedBitsZero(unpadded)
      );
    };
    const chars = fc.constantFrom(...`${INDEX}+/-_= .\n%`.split(''));
    const textArb = fc.oneof(
      fc.string({ unit: chars, maxLength: 24 }),
      fc
        .tuple(fc.uint8Array({ maxLength: 24 }), fc.constantFrom(...B64_VARIANTS))
        .map(([bytes, v]) => encodeB64(Buffer.from(bytes), v)),
      // A canonical spelling with one character changed, added or removed.
      fc
        .tuple(
          fc.uint8Array({ minLength: 1, maxLength: 24 }),
          fc.constantFrom(...B64_VARIANTS),
          fc.nat(),
          chars,
          fc.constantFrom('set', 'insert', 'delete'),
        )
        .map(([bytes, v, at, c, op]) => {
          const t = encodeB64(Buffer.from(bytes), v);
          const i = at % t.length;
          return op === 'set'
            ? t.slice(0, i) + c + t.slice(i + 1)
            : op === 'insert'
              ? t.slice(0, i) + c + t.slice(i)
              : t.slice(0, i) + t.slice(i + 1);
        }),
    );
    fc.assert(
      fc.property(textArb, (text) => {
        const segment = decodeSegment(text);
        assert.equal(
          segment !== undefined,
          referenceSegment(text),
          `decodeSegment(${JSON.stringify(text)})`,
        );
        if (segment !== undefined) assert.equal(segment.toString('base64url'), text);
        const any = decodeAnyBase64(text);
        assert.equal(
          any !== undefined,
          referenceAny(text),
          `decodeAnyBase64(${JSON.stringify(text)})`,
        );
        if (any !== undefined) assert.deepEqual(any, Buffer.from(text, 'base64'));
      }),
      params(PURE_RUNS),
    );
  });

  it('hasDuplicateKeys agrees with a reference on JSON texts with repeated, escaped and nested member names', () => {
    fc.assert(
      fc.property(jnodeArb, fc.integer(), (node, salt) => {
        let state = salt >>> 0 || 1;
        const rnd = (): number => {
          state = (Math.imul(state, 1103515245) + 12345) >>> 0;
          return (state >>> 8) / 0x1000000;
        };
        const text = serialise(node, rnd);
        JSON.parse(text); // the input contract: text that JSON.parse accepted
        assert.equal(hasDuplicateKeys(text), modelHasDuplicates(node), text);
      }),
      params<[JNode, number]>(PURE_RUNS, {
        examples: [
          [
            {
              t: 'obj',
              members: [
                ['a', { t: 'lit', v: '1' }],
                ['a', { t: 'lit', v: '2' }],
              ],
            },
            7,
          ],
        ],
      }),
    );
  });

  it('decodeSegment accepts only the canonical base64url of the bytes (one spelling per signature)', () => {
    // A JWS segment that decodes to the same bytes under two spellings makes a token malleable:
    // a signature's unused low bits can be changed and it still verifies.
    fc.assert(
      fc.property(
        fc.string({ unit: fc.constantFrom(...B64URL_CHARS, '=', '+', '/'), maxLength: 12 }),
        (text) => {
          const bytes = decodeSegment(text);
          if (bytes !== undefined)
            assert.equal(
              bytes.toString('base64url'),
              text,
              `${JSON.stringify(text)} decodes to the bytes of ${JSON.stringify(bytes.toString('base64url'))}`,
            );
        },
      ),
      params(PURE_RUNS, { examples: [['AB'], ['AAB']] }),
    );
  });

  it('decodeAnyBase64 reads each byte string from its standard and URL-safe, padded and unpadded spellings only', () => {
    fc.assert(
      fc.property(
        fc.string({ unit: fc.constantFrom(...B64STD_CHARS, '-', '_', '='), maxLength: 12 }),
        (text) => {
          const bytes = decodeAnyBase64(text);
          if (bytes === undefined) return;
          const normalised = text.replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
          assert.equal(
            bytes.toString('base64url'),
            normalised,
            `${JSON.stringify(text)} decodes to the bytes of ${JSON.stringify(bytes.toString('base64url'))}`,
          );
        },
      ),
      params(PURE_RUNS),
    );
    // And every spelling of random bytes is read back to those bytes.
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 40 }),
        fc.constantFrom(...B64_VARIANTS),
        (bytes, variant) => {
          const decoded = decodeAnyBase64(encodeB64(bytes, variant));
          assert.ok(decoded !== undefined);
          assert.deepEqual(new Uint8Array(decoded), bytes);
        },
      ),
      params(PURE_RUNS),
    );
  });
});
