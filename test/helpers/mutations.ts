/**
 * Mutations of valid Matryoshka tokens, as fast-check arbitraries plus a pure `applyMutation`.
 * Indices in a mutation are free naturals reduced modulo what the token offers when applied, so
 * one arbitrary serves every token and shrinking stays meaningful.
 */
import fc from 'fast-check';
import {
  B64_VARIANTS,
  type B64Variant,
  type Cmp,
  b64u,
  encodeB64,
  peel,
  replaceLevel,
  rewrap,
  withPayloadText,
} from './chain-surgery.js';

/** Where in a string: near its start, near its end, or anywhere (edges are where codecs slip). */
export type Pos = { readonly from: 'start' | 'end' | 'any'; readonly n: number };
export type Segment = 0 | 1 | 2;
/**
 * Other spellings of the same bytes: the standard alphabet, `=` padding, or the unused low bits of
 * the last character set (base64 of n bytes, n % 3 != 0, leaves 2 or 4 bits that decoders drop).
 */
export type SegmentVariant = 'std' | 'pad' | 'std-pad' | 'loose-bits';

export const STACK_FIELDS = ['sid', 'depth', 'fmt', 'cmp', 'container'] as const;
export const CLAIM_FIELDS = [
  'iss',
  'exp',
  'nbf',
  'iat',
  'tenant_id',
  'roles',
  'sub',
  'aud',
  'auth_stack',
] as const;
export const HEADER_FIELDS = [
  'alg',
  'kid',
  'typ',
  'jku',
  'x5u',
  'jwk',
  'crit',
  'b64',
  'zip',
  'cty',
] as const;

/** A value for a changed field: a literal, or one derived from the token at hand. */
export type FieldValue =
  | { readonly literal: unknown }
  | {
      readonly derived:
        | 'plus1'
        | 'minus1'
        | 'other-sid'
        | 'far-future'
        | 'own-issuer'
        | 'other-issuer'
        | 'upper'
        | 'stringified';
    };

export type Mutation =
  | {
      readonly kind: 'char';
      readonly level: number;
      readonly seg: Segment;
      readonly pos: Pos;
      readonly ch: string;
    }
  | {
      readonly kind: 'byte';
      readonly level: number;
      readonly seg: Segment;
      readonly pos: Pos;
      readonly mask: number;
    }
  | {
      readonly kind: 'container-byte';
      readonly level: number;
      readonly pos: Pos;
      readonly mask: number;
    }
  | { readonly kind: 'truncate'; readonly level: number; readonly pos: Pos }
  | { readonly kind: 'insert'; readonly level: number; readonly pos: Pos; readonly garbage: string }
  | { readonly kind: 'append'; readonly level: number; readonly garbage: string }
  | {
      readonly kind: 'reencode-segment';
      readonly level: number;
      readonly seg: Segment;
      readonly variant: SegmentVariant;
    }
  | {
      readonly kind: 'repack-container';
      readonly level: number;
      readonly cmp: Cmp | 'none';
      readonly variant: B64Variant;
    }
  | { readonly kind: 'extract'; readonly level: number }
  | { readonly kind: 'reorder'; readonly order: readonly number[] }
  | {
      readonly kind: 'splice';
      readonly level: number;
      readonly donor: number;
      readonly donorLevel: number;
    }
  | {
      readonly kind: 'field';
      readonly level: number;
      readonly field: string;
      readonly inStack: boolean;
      readonly edit: 'set' | 'delete' | 'duplicate';
      readonly value: FieldValue;
    }
  | {
      readonly kind: 'header';
      readonly level: number;
      readonly field: string;
      readonly edit: 'set' | 'delete' | 'duplicate';
      readonly value: FieldValue;
    };

/** What the mutation may draw on besides the token itself. */
export interface MutationContext {
  /** Other valid tokens (other chains) to splice from. */
  readonly donors: readonly string[];
  /** Registered issuers, our own first. */
  readonly ownIssuer: string;
  readonly otherIssuers: readonly string[];
  readonly sids: readonly string[];
}

const B64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
/** Characters a Bearer value may carry (RFC 6750 b64token) plus a few that it may not; no whitespace (HTTP trims it). */
const GARBAGE = `${B64URL}.~+/=%"{}\\`;

const posArb: fc.Arbitrary<Pos> = fc.oneof(
  fc.record({ from: fc.constant<'start'>('start'), n: fc.nat(3) }),
  fc.record({ from: fc.constant<'end'>('end'), n: fc.nat(3) }),
  fc.record({ from: fc.constant<'any'>('any'), n: fc.nat() }),
);
const levelArb = fc.oneof(
  { weight: 3, arbitrary: fc.constant(0) },
  { weight: 2, arbitrary: fc.nat(6) },
);
const segArb = fc.constantFrom<Segment>(0, 1, 2);
const garbageArb = fc.string({
  unit: fc.constantFrom(...GARBAGE.split('')),
  minLength: 1,
  maxLength: 12,
});

const literalArb: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom<unknown>(
    null,
    true,
    false,
    0,
    -1,
    1,
    2,
    3,
    4,
    5,
    1.5,
    2 ** 53,
    -(2 ** 53),
    1e308,
    4102444800,
    '',
    ' ',
    'JWT',
    'jwt',
    'JWE',
    'jwe',
    'JWS',
    'g',
    'b',
    'G',
    'x',
    'none',
    'A',
    'B',
    'Z',
    'admin',
    'acme',
    'legacy',
    'globex',
    ['admin'],
    ['admin', 'reader'],
    [],
    {},
    { fmt: 'JWT' },
    '1',
    '01',
    'depth',
  ),
  fc.string({ maxLength: 12 }),
  fc.integer(),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.jsonValue({ maxDepth: 2 }),
);
const valueArb: fc.Arbitrary<FieldValue> = fc.oneof(
  { weight: 3, arbitrary: literalArb.map((literal) => ({ literal })) },
  {
    weight: 2,
    arbitrary: fc
      .constantFrom(
        'plus1',
        'minus1',
        'other-sid',
        'far-future',
        'own-issuer',
        'other-issuer',
        'upper',
        'stringified',
      )
      .map((derived) => ({ derived }) as FieldValue),
  },
);
const editArb = fc.constantFrom<'set' | 'delete' | 'duplicate'>(
  'set',
  'set',
  'delete',
  'duplicate',
  'duplicate',
);

export const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant('char' as const),
      level: levelArb,
      seg: segArb,
      pos: posArb,
      ch: fc.constantFrom(...GARBAGE.split('')),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('byte' as const),
      level: levelArb,
      seg: segArb,
      pos: posArb,
      mask: fc.integer({ min: 1, max: 255 }),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('container-byte' as const),
      level: levelArb,
      pos: posArb,
      mask: fc.integer({ min: 1, max: 255 }),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({ kind: fc.constant('truncate' as const), level: levelArb, pos: posArb }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('insert' as const),
      level: levelArb,
      pos: posArb,
      garbage: garbageArb,
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('append' as const),
      level: levelArb,
      garbage: garbageArb,
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('reencode-segment' as const),
      level: levelArb,
      seg: segArb,
      variant: fc.constantFrom<SegmentVariant>('std', 'pad', 'std-pad', 'loose-bits'),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('repack-container' as const),
      level: levelArb,
      cmp: fc.constantFrom<Cmp | 'none'>('none', 'g', 'b'),
      variant: fc.constantFrom(...B64_VARIANTS),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('extract' as const),
      level: fc.integer({ min: 1, max: 6 }),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('reorder' as const),
      order: fc.array(fc.nat(6), { minLength: 1, maxLength: 6 }),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('splice' as const),
      level: levelArb,
      donor: fc.nat(),
      donorLevel: fc.nat(6),
    }),
  },
  {
    weight: 5,
    arbitrary: fc.oneof(
      fc.record({
        kind: fc.constant('field' as const),
        level: levelArb,
        field: fc.constantFrom(...STACK_FIELDS),
        inStack: fc.constant(true),
        edit: editArb,
        value: valueArb,
      }),
      fc.record({
        kind: fc.constant('field' as const),
        level: levelArb,
        field: fc.constantFrom(...CLAIM_FIELDS),
        inStack: fc.constant(false),
        edit: editArb,
        value: valueArb,
      }),
    ),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('header' as const),
      level: levelArb,
      field: fc.constantFrom(...HEADER_FIELDS),
      edit: editArb,
      value: valueArb,
    }),
  },
);

/** One to three mutations applied in turn: most runs one, some compound. */
export const mutationsArb: fc.Arbitrary<Mutation[]> = fc.oneof(
  { weight: 4, arbitrary: mutationArb.map((m) => [m]) },
  { weight: 1, arbitrary: fc.array(mutationArb, { minLength: 2, maxLength: 3 }) },
);

function at(pos: Pos, length: number): number {
  if (length <= 0) return 0;
  if (pos.from === 'start') return Math.min(pos.n, length - 1);
  if (pos.from === 'end') return Math.max(0, length - 1 - pos.n);
  return pos.n % length;
}

function deriveValue(value: FieldValue, current: unknown, ctx: MutationContext): unknown {
  if ('literal' in value) return value.literal;
  switch (value.derived) {
    case 'plus1':
      return typeof current === 'number' ? current + 1 : 1;
    case 'minus1':
      return typeof current === 'number' ? current - 1 : 0;
    case 'other-sid':
      return ctx.sids.find((s) => s !== current) ?? 'Other';
    case 'far-future':
      return 4102444800; // 2100-01-01
    case 'own-issuer':
      return current === ctx.ownIssuer ? ctx.otherIssuers[0] : ctx.ownIssuer;
    case 'other-issuer':
      return ctx.otherIssuers.find((i) => i !== current) ?? ctx.ownIssuer;
    case 'upper':
      return typeof current === 'string'
        ? current.toUpperCase() === current
          ? current.toLowerCase()
          : current.toUpperCase()
        : String(current);
    case 'stringified':
      return JSON.stringify(current ?? null);
  }
}

/** A JSON object text with one member changed, removed, or repeated (a second member of the same name). */
function editObjectText(
  text: string,
  path: readonly string[],
  field: string,
  edit: 'set' | 'delete' | 'duplicate',
  value: FieldValue,
  ctx: MutationContext,
): string {
  const root = JSON.parse(text) as Record<string, unknown>;
  let target: Record<string, unknown> = root;
  for (const p of path) {
    const next = target[p];
    if (next === null || typeof next !== 'object' || Array.isArray(next)) return text;
    target = next as Record<string, unknown>;
  }
  const newValue = deriveValue(value, target[field], ctx);
  if (edit === 'duplicate') {
    // Textually: the new member first or last in the object, the original one left in place.
    const member = `${JSON.stringify(field)}:${JSON.stringify(newValue ?? null)}`;
    if (path.length === 0) {
      return text.endsWith('}')
        ? `${text.slice(0, -1)}${text.length > 2 ? ',' : ''}${member}}`
        : text;
    }
    const anchor = `${JSON.stringify(path[path.length - 1])}:{`;
    const i = text.indexOf(anchor);
    if (i < 0) return text;
    const j = i + anchor.length;
    return `${text.slice(0, j)}${member},${text.slice(j)}`;
  }
  if (edit === 'delete') delete target[field];
  else target[field] = newValue === undefined ? null : newValue;
  return JSON.stringify(root);
}

function flipBytes(segment: string, pos: Pos, mask: number): string {
  const bytes = Buffer.from(segment, 'base64url');
  if (bytes.length === 0) return segment;
  const i = at(pos, bytes.length);
  bytes[i] = (bytes[i] as number) ^ mask;
  return bytes.toString('base64url');
}

function reencodeSegment(segment: string, variant: SegmentVariant): string {
  const bytes = Buffer.from(segment, 'base64url');
  const std = bytes.toString('base64');
  const url = bytes.toString('base64url');
  switch (variant) {
    case 'std':
      return std.replace(/=+$/, '');
    case 'std-pad':
      return std;
    case 'pad':
      return url + '='.repeat((4 - (url.length % 4)) % 4 || 1);
    case 'loose-bits': {
      const unused = url.length % 4 === 2 ? 4 : url.length % 4 === 3 ? 2 : 0;
      if (unused === 0) return url;
      const last = B64URL.indexOf(url[url.length - 1] as string);
      return url.slice(0, -1) + B64URL[last | ((1 << unused) - 1)];
    }
  }
}

function replaceSegment(compact: string, seg: Segment, f: (s: string) => string): string {
  const parts = compact.split('.');
  if (parts.length < 3) return f(compact);
  parts[seg] = f(parts[seg] as string);
  return parts.join('.');
}

/** Apply one mutation to `token`. Pure; never throws for a token `peel` can read at level 0. */
export function applyMutation(token: string, m: Mutation, ctx: MutationContext): string {
  const levels = peel(token);
  const k = 'level' in m ? m.level % levels.length : 0;
  const entry = levels[k] as (typeof levels)[number];
  const level = entry.level;
  const replace = (replacement: string): string => replaceLevel(levels, k, replacement);

  switch (m.kind) {
    case 'char': {
      return replace(
        replaceSegment(entry.compact, m.seg, (s) => {
          const i = at(m.pos, s.length);
          return s.length === 0 ? m.ch : `${s.slice(0, i)}${m.ch}${s.slice(i + 1)}`;
        }),
      );
    }
    case 'byte':
      return replace(replaceSegment(entry.compact, m.seg, (s) => flipBytes(s, m.pos, m.mask)));
    case 'container-byte': {
      const stack = level?.stack;
      if (level === undefined || stack === undefined) return token;
      let container: string;
      if (stack.cmp === undefined) {
        const i = at(m.pos, stack.container.length);
        const c = stack.container.charCodeAt(i) ^ (m.mask & 0x3f);
        container = `${stack.container.slice(0, i)}${B64URL[c % 64]}${stack.container.slice(i + 1)}`;
      } else {
        const bytes = Buffer.from(stack.container, 'base64');
        const i = at(m.pos, bytes.length);
        bytes[i] = (bytes[i] as number) ^ m.mask;
        container = encodeB64(bytes, stack.variant);
      }
      const text = level.payloadText.replace(JSON.stringify(stack.container), () =>
        JSON.stringify(container),
      );
      return replace(withPayloadText(level, text));
    }
    case 'truncate':
      return replace(entry.compact.slice(0, at(m.pos, entry.compact.length)));
    case 'insert': {
      const i = at(m.pos, entry.compact.length);
      return replace(`${entry.compact.slice(0, i)}${m.garbage}${entry.compact.slice(i)}`);
    }
    case 'append':
      return replace(entry.compact + m.garbage);
    case 'reencode-segment':
      return replace(replaceSegment(entry.compact, m.seg, (s) => reencodeSegment(s, m.variant)));
    case 'repack-container': {
      if (level === undefined || level.stack === undefined) return token;
      const inner = levels[k + 1]?.compact;
      if (inner === undefined) return token;
      const cmp = m.cmp === 'none' ? undefined : m.cmp;
      return replace(rewrap(level, inner, { cmp, variant: m.variant }));
    }
    case 'extract':
      return levels[m.level % levels.length]?.compact ?? token;
    case 'reorder': {
      const order = m.order.map((i) => i % levels.length);
      let current = (levels[order[order.length - 1] as number] as (typeof levels)[number]).compact;
      for (let i = order.length - 2; i >= 0; i--) {
        const outer = levels[order[i] as number]?.level;
        if (outer === undefined) return token;
        current = rewrap(outer, current);
      }
      return current;
    }
    case 'splice': {
      if (level === undefined || ctx.donors.length === 0) return token;
      const donorLevels = peel(ctx.donors[m.donor % ctx.donors.length] as string);
      const donated = donorLevels[m.donorLevel % donorLevels.length]?.compact as string;
      return replace(rewrap(level, donated));
    }
    case 'field': {
      if (level === undefined) return token;
      const text = editObjectText(
        level.payloadText,
        m.inStack ? ['auth_stack'] : [],
        m.field,
        m.edit,
        m.value,
        ctx,
      );
      return replace(withPayloadText(level, text));
    }
    case 'header': {
      if (level === undefined) return token;
      const headerText = Buffer.from(level.segments[0], 'base64url').toString('utf8');
      let edited: string;
      try {
        edited = editObjectText(headerText, [], m.field, m.edit, m.value, ctx);
      } catch {
        return token;
      }
      return replace(`${b64u(edited)}.${level.segments[1]}.${level.segments[2]}`);
    }
  }
}

export function applyMutations(
  token: string,
  ms: readonly Mutation[],
  ctx: MutationContext,
): string {
  let current = token;
  for (const m of ms) current = applyMutation(current, m, ctx);
  return current;
}

/** A short human description of a mutation list, for assertion messages. */
export function describeMutations(ms: readonly Mutation[]): string {
  return ms.map((m) => JSON.stringify(m)).join(' then ');
}
