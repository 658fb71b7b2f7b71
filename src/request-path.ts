/**
 * The request as per-operation rules see it: its path and its method, in one canonical form.
 *
 * The decision must hold for every way the upstream behind the proxy could read the same request
 * (docs/policy.md, "One reading of a request"). So a path is accepted only in a form every common
 * server reads alike, and an operation is chosen only when every common reading of the path chooses
 * the same one; anything else is `invalid_path`, never guessed at:
 * - The query is dropped first; a `#` anywhere is refused (a request target has no fragment).
 * - A percent-encoded unreserved letter, digit, `-`, `_` or `~` (RFC 3986 §2.3, any hex case) is
 *   decoded: it is the same character (§6.2.2.2). Every other percent-encoding is refused: `/`
 *   `\` `.` (they change segments), `%25` (decoded twice by some stacks), controls, `;` `?` `#`,
 *   spaces, reserved characters, and every non-ASCII byte (overlong UTF-8, full-width look-alikes).
 * - `.`/`..` and empty segments, a segment ending in `.`, a backslash, a `;`, a control, space or
 *   non-ASCII character are refused.
 * - Case is kept (`/Orders` is not `/orders`), but a path that a case-insensitive router, a
 *   `.format`-suffix router (Rails, Spring's suffix match) or a router that does not decode (Express)
 *   would send to another operation than the exact reading is refused as ambiguous.
 * - The method is upper case (a token); HEAD meets the operations that list GET, because frameworks
 *   run the GET handler for HEAD. A method-override header naming another method, or `_method` in
 *   the query, is refused; a POST whose body may name another method is decided for each method it
 *   could become (`methodReadings`).
 */
export type RequestPath =
  | {
      readonly ok: true;
      readonly path: string;
      /** The segments as written (one trailing slash dropped). */
      readonly segments: readonly string[];
      /** The same, percent-encoded unreserved characters decoded: the canonical reading. */
      readonly decoded: readonly string[];
    }
  | { readonly ok: false; readonly problem: string };

const MAX_PATH_LENGTH = 4096;

export function readRequestPath(raw: string): RequestPath {
  // A request target has no fragment (RFC 9112 §3.2); nginx passes one on as written and a server
  // that takes the target as given (Go's net/http) reads `/orders/read#/../export` as a path that
  // cleans to /orders/export, while a fragment-stripping reading sees /orders/read.
  if (raw.includes('#')) return refuse('holds a # (a request target has no fragment)');
  const cut = raw.indexOf('?');
  const path = cut === -1 ? raw : raw.slice(0, cut);
  if (path.length === 0 || path.length > MAX_PATH_LENGTH)
    return refuse('empty or longer than 4096 characters');
  if (!path.startsWith('/')) return refuse('does not start with /');
  if (!/^[\x21-\x7e]+$/.test(path))
    return refuse('holds a space, a control or a non-ASCII character');
  if (path.includes('\\')) return refuse('holds a backslash');
  if (path.includes(';'))
    return refuse('holds a ; (path parameters are read differently by different servers)');
  const segments = path === '/' ? [] : path.slice(1).split('/');
  // A trailing slash names the same resource on most servers: one empty last segment is allowed.
  const inner =
    segments.length > 0 && segments[segments.length - 1] === '' ? segments.slice(0, -1) : segments;
  const decoded: string[] = [];
  for (const segment of inner) {
    const plain = decodeUnreserved(segment);
    if (typeof plain !== 'string') return refuse(plain.problem);
    // Checked on the decoded form: what a decoding upstream sees is what must be normalised.
    if (plain === '') return refuse('holds an empty segment (//)');
    if (plain === '.' || plain === '..') return refuse(`holds a ${plain} segment`);
    if (plain.endsWith('.'))
      return refuse('holds a segment ending in . (some servers drop a trailing dot)');
    decoded.push(plain);
  }
  return { ok: true, path, segments: inner, decoded };
}

function refuse(problem: string): RequestPath {
  return { ok: false, problem: `path ${problem}` };
}

const HEX = /^[0-9a-fA-F]{2}$/;

/** Decode %XX of unreserved letters, digits, `-`, `_`, `~`; anything else encoded is refused. */
function decodeUnreserved(segment: string): string | { problem: string } {
  if (!segment.includes('%')) return segment;
  let out = '';
  for (let i = 0; i < segment.length; i++) {
    const c = segment[i] as string;
    if (c !== '%') {
      out += c;
      continue;
    }
    const hex = segment.slice(i + 1, i + 3);
    if (!HEX.test(hex)) return { problem: 'holds a % that is not followed by two hex digits' };
    const byte = Number.parseInt(hex, 16);
    const ch = String.fromCharCode(byte);
    if (/^[A-Za-z0-9_~-]$/.test(ch)) {
      out += ch;
      i += 2;
      continue;
    }
    return { problem: `holds %${hex}, ${encodedProblem(byte)}` };
  }
  return out;
}

function encodedProblem(byte: number): string {
  if (byte === 0x2f || byte === 0x5c || byte === 0x2e) return 'a percent-encoded /, \\ or .';
  if (byte === 0x25) return 'a double percent-encoding (%25)';
  if (byte >= 0x80) return 'a percent-encoded non-ASCII byte (overlong UTF-8, look-alikes)';
  if (byte < 0x21 || byte === 0x7f) return 'a percent-encoded space or control character';
  return 'a percent-encoded reserved character (read as data by some servers, as syntax by others)';
}

/**
 * A path pattern of an operation: literal segments, `*` for exactly one segment, and a final `**`
 * for any rest (none included). `/pkg.Service/*` is every method of a gRPC service. Patterns are
 * written in the canonical form: no percent-encoding.
 */
export interface PathPattern {
  readonly text: string;
  readonly segments: readonly string[];
}

/** The pattern, or what is wrong with it. */
export function parsePathPattern(text: string): PathPattern | string {
  const read = readRequestPath(text.replace(/\*/g, 'x'));
  if (!read.ok || text.includes('?') || text.includes('#') || text.includes('%'))
    return `${text} is not a normalised path pattern`;
  const segments = text === '/' ? [] : text.slice(1).replace(/\/$/, '').split('/');
  for (const [i, segment] of segments.entries()) {
    if (segment.includes('*') && segment !== '*' && segment !== '**')
      return `${text}: * stands for a whole segment`;
    if (segment === '**' && i !== segments.length - 1) return `${text}: ** only at the end`;
  }
  return { text, segments };
}

/**
 * How an upstream may compare a literal segment: case-insensitively (ASP.NET Core, IIS, Express's
 * default), and with a `.format` suffix on the last segment (Rails' `(.:format)`, Spring's suffix
 * pattern match).
 */
export interface Reading {
  readonly foldCase?: boolean;
  readonly formatSuffix?: boolean;
}

export function pathMatches(
  pattern: PathPattern,
  segments: readonly string[],
  reading: Reading = {},
): boolean {
  const want = pattern.segments;
  for (let i = 0; i < want.length; i++) {
    const part = want[i] as string;
    if (part === '**') return true;
    if (i >= segments.length) return false;
    const last = i === want.length - 1 && i === segments.length - 1;
    if (part !== '*' && !literalMatches(part, segments[i] as string, reading, last)) return false;
  }
  return want.length === segments.length;
}

function literalMatches(want: string, got: string, reading: Reading, last: boolean): boolean {
  if (want === got) return true;
  // Both are printable ASCII here, so toLowerCase folds ASCII letters only.
  const a = reading.foldCase === true ? want.toLowerCase() : want;
  const b = reading.foldCase === true ? got.toLowerCase() : got;
  if (a === b) return true;
  return reading.formatSuffix === true && last && b.startsWith(`${a}.`);
}

/** Every reading an upstream may take of one path; the decision must not depend on which. */
export const READINGS: readonly Reading[] = [
  {},
  { foldCase: true },
  { formatSuffix: true },
  { foldCase: true, formatSuffix: true },
];

/** A method as the matcher reads it: an upper-case token, or what is wrong with it. */
export type RequestMethod =
  | { readonly ok: true; readonly method: string }
  | { readonly ok: false; readonly problem: string };

const METHOD = /^[!#$%&'*+.^_`|~0-9A-Z-]{1,32}$/;

export function readRequestMethod(method: string): RequestMethod {
  if (!METHOD.test(method))
    return { ok: false, problem: 'method is not an upper-case token (methods are case-sensitive)' };
  return { ok: true, method };
}

/** Whether an operation listing `methods` (empty: any) applies to `method`; HEAD meets GET. */
export function methodMatches(methods: readonly string[], method: string | undefined): boolean {
  if (methods.length === 0) return true;
  if (method === undefined) return false;
  return methods.includes(method) || (method === 'HEAD' && methods.includes('GET'));
}

/**
 * Headers and the query parameter with which frameworks let a client run another method than the
 * request line's (ASP.NET Core's UseHttpMethodOverride, Express method-override, Rack, Symfony).
 */
export const METHOD_OVERRIDE_HEADERS = [
  'x-http-method-override',
  'x-http-method',
  'x-method-override',
] as const;

/**
 * The request headers the matcher reads besides the path and method: a proxy that sends the
 * authorizer only an allow-list of headers (Envoy's `allowed_headers`, Istio's
 * `includeRequestHeadersInCheck`, Traefik's `authRequestHeaders`) must list each, or the matcher
 * decides blind to the override the upstream runs. test/deploy/decision-headers.test.ts holds
 * every shipped config to this list.
 */
export const DECISION_REQUEST_HEADERS: readonly string[] = [
  ...METHOD_OVERRIDE_HEADERS,
  'content-type',
];

const OVERRIDE_NAMES: ReadonlySet<string> = new Set(METHOD_OVERRIDE_HEADERS);

/** What in the request asks an upstream to run another method than `method`, if anything. */
export function methodOverride(
  headers: ReadonlyMap<string, string>,
  rawPath: string,
  method: string | undefined,
): string | undefined {
  for (const name of METHOD_OVERRIDE_HEADERS) {
    const value = headers.get(name);
    if (value !== undefined && value.trim().toUpperCase() !== method)
      return `${name} asks for another method than the request's`;
  }
  // The same names spelled with _ for -: CGI-style readers (FastCGI, WSGI, Rack) read them alike,
  // and a proxy that passes such names (Caddy) passes them to the upstream too. Refused whatever
  // they say: no honest client spells them so.
  for (const name of headers.keys()) {
    if (name.includes('_') && OVERRIDE_NAMES.has(name.replace(/_/g, '-')))
      return `${name} is a method-override header spelled with _`;
  }
  const queryAt = rawPath.indexOf('?');
  if (queryAt >= 0 && queryNamesMethod(rawPath.slice(queryAt + 1)))
    return 'the query holds _method (a method override)';
  return undefined;
}

/**
 * Whether a query holds a parameter some framework reads as `_method`. Names are compared as the
 * frameworks read them, not as written: percent-decoded and `+` as space (every query parser:
 * `%5Fmethod`), case folded, PHP's renaming of a leading-space-stripped name's `.`, space and `[`
 * to `_` (`.method`, `[method`, read by Symfony and Laravel), and with or without a `[]` suffix. A
 * `#` ends nothing here: a server that takes the request target as written (Go's net/http) reads
 * what follows it as query too.
 */
function queryNamesMethod(query: string): boolean {
  for (const part of query.split(/[&;]/)) {
    const eq = part.indexOf('=');
    const raw = (eq < 0 ? part : part.slice(0, eq)).replace(/\+/g, ' ');
    const name = percentDecodeLenient(raw)
      .replace(/^[ ]+/, '')
      .toLowerCase()
      .replace(/[. []/g, '_');
    if (name.startsWith('_method')) return true;
  }
  return false;
}

/** %XX decoded byte by byte where it spells a byte; anything else kept as written. */
function percentDecodeLenient(text: string): string {
  return text.replace(/%([0-9a-fA-F]{2})/g, (_, hex: string) =>
    String.fromCharCode(Number.parseInt(hex, 16)),
  );
}

/**
 * Whether the request's body, which we never see, may name another method than the request's:
 * Rails, Laravel, Symfony and Spring's HiddenHttpMethodFilter run the method a POST's form field
 * `_method` names (Laravel from a JSON body too). So a POST carrying such a body is decided for
 * every method it could become.
 */
export function bodyMayOverride(
  headers: ReadonlyMap<string, string>,
  method: string | undefined,
): boolean {
  if (method !== 'POST') return false;
  const type = headers.get('content-type');
  if (type === undefined) return false;
  const media = (type.split(';')[0] ?? '').trim().toLowerCase();
  return (
    media === 'application/x-www-form-urlencoded' ||
    media === 'multipart/form-data' ||
    media.endsWith('/json') ||
    media.endsWith('+json') ||
    // A content-type a framework could still read as one of those (two joined copies, a typo'd
    // parameter) is not one we can rule out.
    !/^[a-z0-9!#$&^_.+-]+\/[a-z0-9!#$&^_.+-]+$/.test(media)
  );
}

/**
 * The methods a request may run as: its own and, when its body may override it, every method an
 * operation of the service lists, the common ones, and one no operation lists (standing for any
 * other). The decision must not depend on which.
 */
export function methodReadings(
  listed: readonly string[],
  headers: ReadonlyMap<string, string>,
  method: string | undefined,
): readonly (string | undefined)[] {
  if (!bodyMayOverride(headers, method)) return [method];
  return [...new Set([method, ...OVERRIDE_METHODS, ...listed, UNLISTED_METHOD])];
}

const OVERRIDE_METHODS = ['GET', 'HEAD', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'] as const;
/** Not a token, so no operation lists it: it matches operations that list no method only. */
const UNLISTED_METHOD = '(another method)';
