/**
 * The request path as per-operation rules see it. Matching happens on the path exactly as the
 * proxy forwards it, so a path two servers could read two ways is refused, never guessed at:
 * `..` and `.` segments, empty segments (`//`), percent-encoded `/`, `\` or `.`, a backslash, a
 * `;` (path parameters some servers strip), control or non-ASCII characters. Query and fragment
 * are dropped first. Case is kept: `/Orders` is another path than `/orders`.
 */
export type RequestPath =
  | { readonly ok: true; readonly path: string; readonly segments: readonly string[] }
  | { readonly ok: false; readonly problem: string };

const MAX_PATH_LENGTH = 4096;

export function readRequestPath(raw: string): RequestPath {
  const cut = raw.search(/[?#]/);
  const path = cut === -1 ? raw : raw.slice(0, cut);
  if (path.length === 0 || path.length > MAX_PATH_LENGTH)
    return refuse('empty or longer than 4096 characters');
  if (!path.startsWith('/')) return refuse('does not start with /');
  if (!/^[\x21-\x7e]+$/.test(path))
    return refuse('holds a space, a control or a non-ASCII character');
  if (path.includes('\\')) return refuse('holds a backslash');
  if (path.includes(';'))
    return refuse('holds a ; (path parameters are read differently by different servers)');
  if (/%(2f|5c|2e)/i.test(path)) return refuse('holds a percent-encoded /, \\ or .');
  const segments = path === '/' ? [] : path.slice(1).split('/');
  // A trailing slash names the same resource on most servers: one empty last segment is allowed.
  const inner =
    segments.length > 0 && segments[segments.length - 1] === '' ? segments.slice(0, -1) : segments;
  for (const segment of inner) {
    if (segment === '') return refuse('holds an empty segment (//)');
    if (segment === '.' || segment === '..') return refuse(`holds a ${segment} segment`);
  }
  return { ok: true, path, segments: inner };
}

function refuse(problem: string): RequestPath {
  return { ok: false, problem: `path ${problem}` };
}

/**
 * A path pattern of an operation: literal segments, `*` for exactly one segment, and a final `**`
 * for any rest (none included). `/pkg.Service/*` is every method of a gRPC service.
 */
export interface PathPattern {
  readonly text: string;
  readonly segments: readonly string[];
}

/** The pattern, or what is wrong with it. */
export function parsePathPattern(text: string): PathPattern | string {
  const read = readRequestPath(text.replace(/\*/g, 'x'));
  if (!read.ok || text.includes('?') || text.includes('#'))
    return `${text} is not a normalised path pattern`;
  const segments = text === '/' ? [] : text.slice(1).replace(/\/$/, '').split('/');
  for (const [i, segment] of segments.entries()) {
    if (segment.includes('*') && segment !== '*' && segment !== '**')
      return `${text}: * stands for a whole segment`;
    if (segment === '**' && i !== segments.length - 1) return `${text}: ** only at the end`;
  }
  return { text, segments };
}

export function pathMatches(pattern: PathPattern, segments: readonly string[]): boolean {
  const want = pattern.segments;
  for (let i = 0; i < want.length; i++) {
    const part = want[i] as string;
    if (part === '**') return true;
    if (i >= segments.length) return false;
    if (part !== '*' && part !== segments[i]) return false;
  }
  return want.length === segments.length;
}
