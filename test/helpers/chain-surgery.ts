/**
 * Surgery on Matryoshka tokens for the property tests: open a chain into its levels without
 * verifying anything, change one level (a character, a byte, a field, its container's encoding)
 * and re-embed it in every level around it — re-encoding, never re-signing. Independent of the
 * service's codec on purpose (plain Buffer, zlib and JSON), so a bug there cannot hide here.
 */
import {
  brotliCompressSync,
  brotliDecompressSync,
  constants,
  gunzipSync,
  gzipSync,
} from 'node:zlib';

export type Cmp = 'g' | 'b';
/** How a compressed container is written: alphabet and padding. */
export type B64Variant = 'std-pad' | 'std' | 'url-pad' | 'url';
export const B64_VARIANTS: readonly B64Variant[] = ['std-pad', 'std', 'url-pad', 'url'];

export interface OpenedLevel {
  readonly compact: string;
  /** The three segments as written. */
  readonly segments: readonly [string, string, string];
  /** The payload as JSON text (exactly the decoded bytes). */
  readonly payloadText: string;
  readonly claims: Record<string, unknown>;
  /** The container as written in `auth_stack`, and how it is packed; undefined for an origin. */
  readonly stack:
    | { readonly container: string; readonly cmp: Cmp | undefined; readonly variant: B64Variant }
    | undefined;
}

export const b64u = (value: string | Uint8Array): string =>
  Buffer.from(value).toString('base64url');

export function encodeB64(bytes: Uint8Array, variant: B64Variant): string {
  const buf = Buffer.from(bytes);
  const std = buf.toString('base64');
  switch (variant) {
    case 'std-pad':
      return std;
    case 'std':
      return std.replace(/=+$/, '');
    case 'url-pad':
      return std.replace(/\+/g, '-').replace(/\//g, '_');
    case 'url':
      return buf.toString('base64url');
  }
}

function variantOf(container: string): B64Variant {
  const url = /[-_]/.test(container);
  const padded = container.endsWith('=');
  return url ? (padded ? 'url-pad' : 'url') : padded ? 'std-pad' : 'std';
}

function deflate(bytes: Buffer, cmp: Cmp): Buffer {
  // Quality 5, as the service writes brotli (any quality reads the same): node's default, 11,
  // spends most of a property run compressing.
  return cmp === 'g'
    ? gzipSync(bytes)
    : brotliCompressSync(bytes, { params: { [constants.BROTLI_PARAM_QUALITY]: 5 } });
}

function inflate(bytes: Buffer, cmp: Cmp): Buffer {
  return cmp === 'g'
    ? gunzipSync(bytes, { maxOutputLength: 1 << 20 })
    : brotliDecompressSync(bytes, { maxOutputLength: 1 << 20 });
}

/** A container as it would be written with this packing. */
export function packContainer(inner: string, cmp: Cmp | undefined, variant: B64Variant): string {
  return cmp === undefined ? inner : encodeB64(deflate(Buffer.from(inner, 'latin1'), cmp), variant);
}

/** One level, or undefined when it is not a readable compact JWS with a JSON object payload. */
export function openLevel(compact: string): OpenedLevel | undefined {
  const segments = compact.split('.');
  if (segments.length !== 3) return undefined;
  const [h, p, s] = segments as [string, string, string];
  let claims: unknown;
  let payloadText: string;
  try {
    payloadText = Buffer.from(p, 'base64url').toString('utf8');
    claims = JSON.parse(payloadText);
  } catch {
    return undefined;
  }
  if (claims === null || typeof claims !== 'object' || Array.isArray(claims)) return undefined;
  const record = claims as Record<string, unknown>;
  const raw = record['auth_stack'] as Record<string, unknown> | undefined;
  let stack: OpenedLevel['stack'];
  if (raw !== null && typeof raw === 'object' && typeof raw['container'] === 'string') {
    const cmp = raw['cmp'] === 'g' || raw['cmp'] === 'b' ? raw['cmp'] : undefined;
    stack = { container: raw['container'], cmp, variant: variantOf(raw['container']) };
  }
  return { compact, segments: [h, p, s], payloadText, claims: record, stack };
}

/** The compact token inside a level's container (unverified), or undefined when it cannot be had. */
export function innerOf(level: OpenedLevel): string | undefined {
  const stack = level.stack;
  if (stack === undefined) return undefined;
  if (stack.cmp === undefined) return stack.container;
  try {
    return inflate(Buffer.from(stack.container, 'base64'), stack.cmp).toString('latin1');
  } catch {
    return undefined;
  }
}

/** Every readable level, outermost first. The first entry is always the token itself (maybe unreadable). */
export function peel(
  token: string,
  maxLevels = 40,
): Array<{ compact: string; level: OpenedLevel | undefined }> {
  const out: Array<{ compact: string; level: OpenedLevel | undefined }> = [];
  let current: string | undefined = token;
  while (current !== undefined && out.length < maxLevels) {
    const level = openLevel(current);
    out.push({ compact: current, level });
    current = level === undefined ? undefined : innerOf(level);
  }
  return out;
}

/** The level with its payload replaced by `payloadText` (re-encoded), header and signature kept. */
export function withPayloadText(level: OpenedLevel, payloadText: string): string {
  return `${level.segments[0]}.${b64u(payloadText)}.${level.segments[2]}`;
}

/**
 * The level with its container replaced: `newInner` packed as the old container was (unless `packing`
 * says otherwise), written into the payload text in place, the old signature kept. A level without
 * `auth_stack` gets one (an origin made to look like a wrapper).
 */
export function rewrap(
  level: OpenedLevel,
  newInner: string,
  packing?: { cmp: Cmp | undefined; variant: B64Variant },
): string {
  const stack = level.stack;
  if (stack === undefined) {
    const claims = {
      ...level.claims,
      auth_stack: { fmt: 'JWT', sid: 'Injected', depth: 1, container: newInner },
    };
    return withPayloadText(level, JSON.stringify(claims));
  }
  const cmp = packing === undefined ? stack.cmp : packing.cmp;
  const variant = packing?.variant ?? stack.variant;
  const container = packContainer(newInner, cmp, variant);
  let text: string;
  const oldJson = JSON.stringify(stack.container);
  if (cmp === stack.cmp && level.payloadText.split(oldJson).length === 2) {
    text = level.payloadText.replace(oldJson, () => JSON.stringify(container));
  } else {
    const auth: Record<string, unknown> = {
      ...(level.claims['auth_stack'] as Record<string, unknown>),
      container,
    };
    if (cmp === undefined) delete auth['cmp'];
    else auth['cmp'] = cmp;
    text = JSON.stringify({ ...level.claims, auth_stack: auth });
  }
  return withPayloadText(level, text);
}

/**
 * Replace level `k` (0 = outermost) of `levels` with `replacement` and re-embed it outwards.
 * When the replacement is the level as it was, the token is returned untouched (no re-packing).
 */
export function replaceLevel(
  levels: ReadonlyArray<{ compact: string; level: OpenedLevel | undefined }>,
  k: number,
  replacement: string,
): string {
  const original = levels[k];
  if (original === undefined) throw new Error(`no level ${k}`);
  if (original.compact === replacement) return (levels[0] as { compact: string }).compact;
  let current = replacement;
  for (let i = k - 1; i >= 0; i--) {
    const outer = levels[i]?.level;
    if (outer === undefined) throw new Error(`level ${i} is not readable`);
    current = rewrap(outer, current);
  }
  return current;
}
