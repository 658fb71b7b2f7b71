import type { CheckInput } from '../pipeline/check-input.js';

/**
 * The two ways a proxy asks us over HTTP:
 * - `envoy`: Envoy's `http_service` (and Istio's `envoyExtAuthzHttp`) sends the original method and
 *   path (after its `path_prefix`, which must be `/envoy`) as the request itself, the destination
 *   sid in `x-authz-sid` (`headers_to_add`, which overwrites a client's copy).
 * - `forward`: nginx `auth_request`, ingress-nginx `auth-url`, Traefik ForwardAuth and Caddy
 *   `forward_auth` call a fixed address, `/authz/<sid>`, and describe the original request in
 *   `X-Forwarded-*` / `X-Original-*` headers.
 */
export type HttpAuthzDialect = 'envoy' | 'forward';

export const ENVOY_PREFIX = '/envoy';
export const FORWARD_PREFIX = '/authz';
export const SID_HEADER = 'x-authz-sid';

/** A request we will not decide on: the proxy (or a client through it) sent something malformed. */
export interface HttpRefusal {
  readonly status: 400 | 403 | 404 | 413;
  /** One line for the log; never sent to the client. */
  readonly problem: string;
}

export type ParsedHttpAuthz =
  | { readonly ok: true; readonly dialect: HttpAuthzDialect; readonly input: CheckInput }
  | { readonly ok: false; readonly refusal: HttpRefusal };

export interface RawHttpRequest {
  readonly method: string;
  /** The request target exactly as sent (Node gives its bytes as latin1). */
  readonly url: string;
  /** Node's `headersDistinct`: lower-case names, every occurrence kept. */
  readonly headers: Readonly<Record<string, readonly string[] | undefined>>;
}

/**
 * The attributes of the original request a forward-auth request describes, each under the two
 * names proxies use: the only forwarded headers the decision reads. Declared once: the parser
 * compares the two names, and the deploy test checks that every shipped proxy config sets or
 * clears each of them.
 */
export const FORWARDED_ATTRIBUTES = {
  uri: ['x-forwarded-uri', 'x-original-uri'],
  method: ['x-forwarded-method', 'x-original-method'],
} as const satisfies Record<string, readonly [string, string]>;

/**
 * Headers that must appear at most once: the credential, the sid, the request id and the
 * description of the original request. A second copy is a parser differential waiting to happen
 * (Node keeps the first `authorization`, another hop may keep the last), so it is refused.
 */
const SINGLE_VALUED = [
  'authorization',
  SID_HEADER,
  'x-request-id',
  'x-forwarded-method',
  'x-forwarded-uri',
  'x-forwarded-host',
  'x-forwarded-proto',
  'x-original-uri',
  'x-original-method',
] as const;

/** Visible ASCII only: a URI is percent-encoded, so any other byte is not one (non-UTF-8, controls). */
const URI_TEXT = /^[\x21-\x7e]{1,8192}$/;
/** An HTTP method is a token (RFC 9110 §9.1). */
const METHOD = /^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,32}$/;
/** More than this many distinct header names is not a proxy describing one request. */
const MAX_HEADERS = 512;

const refuse = (status: HttpRefusal['status'], problem: string): ParsedHttpAuthz => ({
  ok: false,
  refusal: { status, problem },
});

/**
 * Turn an HTTP authorization request into the CheckInput the gRPC path would build for the same
 * original request. Reads headers only: a body is never read (a request announcing one is refused).
 */
export function parseHttpAuthz(request: RawHttpRequest): ParsedHttpAuthz {
  if (!URI_TEXT.test(request.url)) return refuse(400, 'request target is not printable ASCII');
  const target = request.url;
  const queryAt = target.indexOf('?');
  const routePath = queryAt < 0 ? target : target.slice(0, queryAt);
  for (const name of SINGLE_VALUED) {
    if ((request.headers[name]?.length ?? 0) > 1) return refuse(400, `${name} sent more than once`);
  }
  const one = (name: string): string | undefined => request.headers[name]?.[0];
  const length = one('content-length');
  if (one('transfer-encoding') !== undefined || (length !== undefined && length !== '0'))
    return refuse(413, 'request bodies are not read');

  const headers = new Map<string, string>();
  for (const [name, values] of Object.entries(request.headers)) {
    if (values === undefined || values.length === 0) continue;
    if (headers.size >= MAX_HEADERS) break;
    headers.set(name, values.join(','));
  }
  const headerSid = one(SID_HEADER);

  if (routePath === ENVOY_PREFIX || routePath.startsWith(`${ENVOY_PREFIX}/`)) {
    if (!METHOD.test(request.method)) return refuse(400, 'method is not a token');
    const original = target.slice(ENVOY_PREFIX.length);
    return {
      ok: true,
      dialect: 'envoy',
      input: input(
        headers,
        headerSid,
        original.startsWith('/') ? original : `/${original}`,
        request.method,
      ),
    };
  }
  if (routePath !== FORWARD_PREFIX && !routePath.startsWith(`${FORWARD_PREFIX}/`))
    return refuse(404, 'not an authorization path (/authz/<sid> or /envoy/...)');
  const pathSid =
    routePath.length > FORWARD_PREFIX.length + 1
      ? routePath.slice(FORWARD_PREFIX.length + 1)
      : undefined;
  // The address the proxy calls names the sid; a header naming another is a client trying to
  // choose its own destination (nginx and Caddy pass client headers to the authorizer).
  if (headerSid !== undefined && headerSid !== pathSid)
    return refuse(403, `${SID_HEADER} names another sid than the path`);
  // Each attribute from one source: a proxy sets one name (nginx X-Original-*, Caddy and Traefik
  // X-Forwarded-*) and passes a client's copy of the other, so two that disagree are refused.
  const read = (names: readonly [string, string]): string | undefined | { problem: string } => {
    const [first, second] = names.map(one);
    if (first !== undefined && second !== undefined && first !== second)
      return { problem: `${names[0]} and ${names[1]} disagree` };
    return first ?? second;
  };
  const path = read(FORWARDED_ATTRIBUTES.uri);
  if (typeof path === 'object') return refuse(400, path.problem);
  if (path === undefined) return refuse(400, 'no x-forwarded-uri or x-original-uri');
  if (!URI_TEXT.test(path)) return refuse(400, 'the original uri is not printable ASCII');
  const method = read(FORWARDED_ATTRIBUTES.method);
  if (typeof method === 'object') return refuse(400, method.problem);
  if (method === undefined) return refuse(400, 'no x-forwarded-method or x-original-method');
  if (!METHOD.test(method)) return refuse(400, 'the original method is not a token');
  return { ok: true, dialect: 'forward', input: input(headers, pathSid, path, method) };
}

function input(
  headers: ReadonlyMap<string, string>,
  sid: string | undefined,
  path: string,
  method: string,
): CheckInput {
  return {
    headers,
    // The pipeline reads the destination where the gRPC path puts a route's: `sid` (its grammar
    // is checked there, once, for every transport).
    contextExtensions: sid === undefined ? {} : { sid },
    sourcePrincipal: undefined,
    destinationPrincipal: undefined,
    path,
    method,
  };
}
