/**
 * Arbitrary Envoy CheckRequests in the proto-loader object shape (`keepCase`), for the
 * robustness property: missing and null parts, random headers (huge, empty, binary), `header_map`
 * entries with `raw_value` bytes, random context extensions and principals, and Authorization
 * values from plausible to absurd. Some shapes cannot be encoded; the client throws for those.
 */
import fc from 'fast-check';
import { EnvoyLikeClient } from '../../src/demo/envoy-client.js';

const B64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

export interface RequestWorld {
  /** Valid tokens to embed now and then (some requests should get far into the pipeline). */
  readonly tokens: readonly string[];
  readonly principals: readonly string[];
  readonly sids: readonly string[];
  readonly issuers: readonly string[];
}

/**
 * A long string built without generating it character by character: a run of one unit, alone or
 * between two short strings (`a<60,000 spaces>b` is where backtracking regexes go quadratic).
 * Runs stay within 64 KiB, about what Envoy lets through as request headers (60 KiB by default),
 * except for runs of token characters, which go to 200,000 to pass the token-length cap.
 */
const hugeArb: fc.Arbitrary<string> = fc
  .record({
    n: fc.constantFrom(1024, 8192, 30_000, 60_000, 65_536),
    long: fc.boolean(),
    unit: fc.constantFrom(
      'a',
      '.',
      'A.',
      '=',
      ' ',
      '\t',
      ' \t',
      'é',
      '\u0000',
      'eyJ',
      '\ud83d\ude00',
      ',',
    ),
    head: fc.constantFrom('', '', 'a', 'eyJ.', 'x '),
    tail: fc.constantFrom('', '', 'b', '.sig', ' x', '='),
  })
  .map(({ n, long, unit, head, tail }) => {
    const size = long && /^[A-Za-z.=]+$/.test(unit) ? 200_000 : n;
    return head + unit.repeat(Math.ceil(size / unit.length)).slice(0, size) + tail;
  });

/** Strings of every kind: short ASCII, any code point, lone surrogates, control characters, empty, huge. */
export const anyString: fc.Arbitrary<string> = fc.oneof(
  { weight: 5, arbitrary: fc.string({ maxLength: 40 }) },
  { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 24 }) },
  {
    weight: 1,
    arbitrary: fc.constantFrom(
      '',
      ' ',
      '\t',
      '\r\n',
      '\u0000',
      '\ud800',
      '\udfff',
      'null',
      'undefined',
      '[object Object]',
      '__proto__',
      'constructor',
    ),
  },
  { weight: 1, arbitrary: hugeArb },
);

const segmentArb = fc.string({ unit: fc.constantFrom(...B64URL.split('')), maxLength: 60 });
const jsonSegmentArb = fc
  .jsonValue({ maxDepth: 3 })
  .map((v) => Buffer.from(JSON.stringify(v) ?? 'null').toString('base64url'));

function tokenArb(world: RequestWorld): fc.Arbitrary<string> {
  const payloadArb = fc
    .record(
      {
        iss: fc.oneof(fc.constantFrom(...world.issuers), fc.string({ maxLength: 20 })),
        sub: fc.string({ maxLength: 10 }),
        exp: fc.oneof(fc.integer(), fc.constant(Math.floor(Date.now() / 1000) + 600), fc.double()),
        iat: fc.integer(),
        tenant_id: fc.string({ maxLength: 8 }),
        auth_stack: fc.oneof(
          fc.jsonValue({ maxDepth: 2 }),
          fc.record(
            {
              fmt: fc.constantFrom('JWT', 'jwt', 'JWE', 'x', 1),
              cmp: fc.constantFrom('g', 'b', null, 'z'),
              sid: fc.oneof(fc.constantFrom(...world.sids), fc.string({ maxLength: 8 })),
              depth: fc.oneof(fc.integer({ min: -2, max: 40 }), fc.double()),
              container: fc.oneof(
                fc.constantFrom(...world.tokens),
                segmentArb,
                fc.constant('H4sIAAAAAAAA'),
              ),
            },
            { requiredKeys: [] },
          ),
        ),
      },
      { requiredKeys: [] },
    )
    .map((p) => Buffer.from(JSON.stringify(p)).toString('base64url'));
  const headerArb = fc
    .record(
      {
        alg: fc.constantFrom('ES256', 'HS256', 'RS256', 'none', 'EdDSA', ''),
        kid: fc.string({ maxLength: 10 }),
        typ: fc.constantFrom('JWT', 'at+jwt'),
      },
      { requiredKeys: [] },
    )
    .map((hd) => Buffer.from(JSON.stringify(hd)).toString('base64url'));
  return fc.oneof(
    { weight: 2, arbitrary: fc.constantFrom(...world.tokens) },
    {
      weight: 3,
      arbitrary: fc.tuple(headerArb, payloadArb, segmentArb).map((parts) => parts.join('.')),
    },
    {
      weight: 2,
      arbitrary: fc
        .array(fc.oneof(segmentArb, jsonSegmentArb), { minLength: 1, maxLength: 7 })
        .map((parts) => parts.join('.')),
    },
    {
      weight: 1,
      arbitrary: fc.constantFrom(
        '',
        '.',
        '..',
        '...',
        '....',
        'a.b.c',
        'e30.e30.',
        'e30.e30.e30',
        '=',
        'Bearer',
      ),
    },
    { weight: 1, arbitrary: fc.string({ maxLength: 30 }) },
    { weight: 2, arbitrary: hugeArb },
  );
}

function authorizationArb(world: RequestWorld): fc.Arbitrary<string> {
  return fc.oneof(
    {
      weight: 6,
      arbitrary: fc
        .tuple(
          fc.constantFrom('Bearer', 'bearer', 'BEARER', 'Basic', 'Token', 'Bearer:', 'Bearer,', ''),
          fc.constantFrom(' ', '\t', '  ', '', ' \t ', '\r\n '),
          tokenArb(world),
          fc.constantFrom('', ' ', '\t', ' x', ',', ', Bearer a.b.c'),
        )
        .map((p) => p.join('')),
    },
    { weight: 1, arbitrary: anyString },
  );
}

const KNOWN_HEADERS = [
  'authorization',
  'Authorization',
  'AUTHORIZATION',
  'x-request-id',
  'traceparent',
  'tracestate',
  'baggage',
  'b3',
  'x-b3-traceid',
  'x-b3-spanid',
  'x-b3-sampled',
  'x-b3-parentspanid',
  'x-tenant-id',
  'x-user-id',
  'x-auth-chain',
  ':path',
  ':method',
  ':authority',
  'content-length',
  'cookie',
  '',
] as const;

function headerKeyArb(): fc.Arbitrary<string> {
  return fc.oneof(
    { weight: 3, arbitrary: fc.constantFrom(...KNOWN_HEADERS) },
    { weight: 1, arbitrary: anyString },
  );
}

function headerValueArb(world: RequestWorld): fc.Arbitrary<string> {
  return fc.oneof(
    { weight: 2, arbitrary: anyString },
    { weight: 2, arbitrary: authorizationArb(world) },
    {
      weight: 1,
      arbitrary: fc.constantFrom(
        '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
        '00-00000000000000000000000000000000-0000000000000000-00',
        'ff-zz',
        '80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1-05e3ac9a4f6e3b90',
        '1',
        'd',
        '0',
      ),
    },
  );
}

const bytesArb = fc
  .oneof(
    fc.uint8Array({ maxLength: 64 }),
    fc.constant(new Uint8Array(0)),
    fc.constant(new Uint8Array(70_000).fill(0x41)),
  )
  .map((b) => Buffer.from(b));

/** A value that is occasionally of the wrong type, or null. */
function sometimes<T>(arb: fc.Arbitrary<T>): fc.Arbitrary<T | null | number | readonly string[]> {
  return fc.oneof(
    { weight: 12, arbitrary: arb },
    { weight: 1, arbitrary: fc.constant(null) },
    { weight: 1, arbitrary: fc.integer() },
    { weight: 1, arbitrary: fc.constant(['x']) },
  );
}

export function checkRequestArb(world: RequestWorld): fc.Arbitrary<Record<string, unknown>> {
  const principal = fc.oneof(fc.constantFrom(...world.principals), anyString);
  const peer = fc.record(
    {
      principal: sometimes(principal),
      service: anyString,
      certificate: anyString,
      labels: fc.dictionary(anyString, anyString, { maxKeys: 3 }),
      address: fc.record(
        {
          socket_address: fc.record(
            { address: anyString, port_value: fc.nat(70000) },
            { requiredKeys: [] },
          ),
        },
        { requiredKeys: [] },
      ),
    },
    { requiredKeys: [] },
  );
  const headerMapEntry = fc.record(
    {
      key: sometimes(headerKeyArb()),
      value: sometimes(headerValueArb(world)),
      raw_value: bytesArb,
    },
    { requiredKeys: [] },
  );
  const headerMapEntryWithAuth = fc
    .tuple(fc.constantFrom('authorization', 'Authorization'), authorizationArb(world))
    .map(([key, value]) => ({ key, raw_value: Buffer.from(value, 'latin1') }));
  const http = fc.record(
    {
      id: anyString,
      method: anyString,
      path: anyString,
      host: anyString,
      scheme: anyString,
      protocol: anyString,
      body: anyString,
      raw_body: bytesArb,
      size: fc.oneof(fc.nat().map(String), fc.constant('-1'), fc.constant('9223372036854775807')),
      headers: sometimes(fc.dictionary(headerKeyArb(), headerValueArb(world), { maxKeys: 8 })),
      header_map: sometimes(
        fc.record(
          {
            headers: sometimes(
              fc.array(fc.oneof(headerMapEntry, headerMapEntryWithAuth), { maxLength: 8 }),
            ),
          },
          { requiredKeys: [] },
        ),
      ),
    },
    { requiredKeys: [] },
  );
  const contextExtensions = fc.dictionary(
    fc.oneof(fc.constantFrom('sid', 'tenant', 'max_depth'), anyString),
    fc.oneof(
      fc.constantFrom(...world.sids),
      fc.constantFrom('0', '1', '8', '99', '-1', '1e3', ' 3', '3 ', '', '00', '100'),
      anyString,
    ),
    { maxKeys: 4 },
  );
  const attributes = fc.record(
    {
      source: sometimes(peer),
      destination: sometimes(peer),
      request: sometimes(
        fc.record(
          {
            http: sometimes(http),
            time: fc.record({ seconds: fc.nat().map(String), nanos: fc.nat(999_999_999) }),
          },
          { requiredKeys: [] },
        ),
      ),
      context_extensions: sometimes(contextExtensions),
    },
    { requiredKeys: [] },
  );
  // Requests as Envoy sends them, with a valid token and random extras: these get all the way through.
  const nearValid = fc
    .record({
      token: fc.constantFrom(...world.tokens),
      sid: fc.option(fc.constantFrom(...world.sids), { nil: undefined }),
      sourcePrincipal: fc.option(principal, { nil: undefined }),
      headers: fc.dictionary(headerKeyArb(), headerValueArb(world), { maxKeys: 3 }),
      contextExtensions: contextExtensions,
    })
    .map(({ token, sid, sourcePrincipal, headers, contextExtensions }) =>
      EnvoyLikeClient.request({
        token,
        sid,
        headers,
        contextExtensions,
        ...(sourcePrincipal === undefined ? {} : { sourcePrincipal }),
      }),
    );
  return fc
    .oneof(
      {
        weight: 14,
        arbitrary: fc.record({ attributes: sometimes(attributes) }, { requiredKeys: [] }),
      },
      { weight: 6, arbitrary: nearValid },
      { weight: 1, arbitrary: fc.constant({}) },
    )
    .map(printable);
}

/** Short form of a request for messages: long strings and byte arrays abbreviated. */
export function describeRequest(request: unknown): string {
  const text = JSON.stringify(request, (_k, v: unknown) => {
    if (typeof v === 'string' && v.length > 200)
      return `<${v.length} chars: ${JSON.stringify(v.slice(0, 40))}…>`;
    if (
      v !== null &&
      typeof v === 'object' &&
      (v as { type?: unknown }).type === 'Buffer' &&
      Array.isArray((v as { data?: unknown }).data)
    ) {
      const data = (v as { data: number[] }).data;
      return data.length > 64
        ? `<${data.length} bytes>`
        : `<bytes ${Buffer.from(data).toString('hex')}>`;
    }
    return v;
  });
  return text.length > 2000 ? `${text.slice(0, 2000)}…` : text;
}

/** The request, printed by fast-check in its short form (a symbol key: protobufjs never sees it). */
export function printable<T extends object>(request: T): T {
  const copy = { ...request };
  Object.defineProperty(copy, fc.toStringMethod, {
    value: () => describeRequest(copy),
    enumerable: false,
  });
  return copy;
}

/** Rough size of a request object, to stay under the server's 4 MiB message limit (a transport rule, not ours). */
export function roughSize(value: unknown): number {
  if (typeof value === 'string') return value.length * 3;
  if (value instanceof Uint8Array) return value.byteLength;
  if (value === null || typeof value !== 'object') return 8;
  let total = 0;
  for (const [k, v] of Object.entries(value)) total += k.length * 3 + roughSize(v);
  return total;
}
