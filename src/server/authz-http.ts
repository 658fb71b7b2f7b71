import { type IncomingMessage, type Server, type ServerResponse, createServer } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { CheckInput } from '../pipeline/check-input.js';
import type { DecisionRecord } from '../pipeline/decision.js';
import {
  type HttpAuthzAnswer,
  type ResponseSettings,
  buildHttpAnswer,
} from '../pipeline/respond.js';
import type { HttpsTls } from '../tls/server-credentials.js';
import { guardHttpListener, httpDeadlines } from './connection-guard.js';
import { maxCheckRequestBytes } from './grpc-server.js';
import { listenError } from './listen-error.js';
import { type HttpAuthzDialect, type HttpRefusal, parseHttpAuthz } from './http-authz-request.js';

export interface AuthzHttpOptions {
  readonly host: string;
  readonly port: number;
  /** Undefined: plaintext. */
  readonly tls: HttpsTls | undefined;
  readonly tlsReloadMs: number;
  readonly maxTokenLength: number;
  readonly idleTimeoutMs: number;
  readonly settings: ResponseSettings;
  /** CheckHandler.decide: the one pipeline, span, metrics and audit line every transport shares. */
  readonly decide: (input: CheckInput, deadline: number | undefined) => Promise<DecisionRecord>;
  /** A request refused before any decision (malformed description, two sids): for the log. */
  readonly onRefused: (refusal: HttpRefusal) => void;
}

export interface RunningAuthzHttp {
  readonly port: number;
  /** Stop accepting, close idle connections, let checks under way answer (up to `graceMs`). */
  close(graceMs: number): Promise<void>;
}

/**
 * Proxies pool their connections to an authorizer (Envoy, Traefik, Caddy keep them alive; nginx
 * opens one per subrequest unless told otherwise); past this many, a new one is admitted by closing
 * the oldest connection that never sent a request, else the oldest idle one (ConnectionGuard), so
 * a flood can neither take the descriptors the gRPC port and our own outgoing connections need nor
 * shut out the proxy.
 */
export const AUTHZ_HTTP_MAX_CONNECTIONS = 1024;

/** Headers (the whole request: we never read a body) within this; a proxy sends them at once. */
export const AUTHZ_HTTP_REQUEST_TIMEOUT_MS = 10_000;

/**
 * HTTP carries no deadline the way gRPC does (`grpc-timeout`). Envoy says its own in
 * `x-envoy-expected-rq-timeout-ms` when configured to; otherwise we decide within this, so a proxy
 * without a short timeout of its own (nginx, Caddy) still gets a 503 rather than a hang.
 */
export const AUTHZ_HTTP_DEFAULT_BUDGET_MS = 5_000;

function deadlineOf(req: IncomingMessage): number {
  const said = Number(req.headers['x-envoy-expected-rq-timeout-ms']);
  const budget =
    Number.isInteger(said) && said > 0 ? Math.min(said, 60_000) : AUTHZ_HTTP_DEFAULT_BUDGET_MS;
  return Date.now() + budget;
}

/**
 * The HTTP answer of a decision. Allowed: 200 and the headers to set upstream as response headers
 * (the proxy copies them: `allowed_upstream_headers`, `auth_request_set`, `authResponseHeaders`,
 * `copy_headers`). Envoy also removes what we name in `x-envoy-auth-headers-to-remove`; the
 * forward-auth proxies cannot, so their configs overwrite every owned header with our value or
 * with nothing. Denied: the status, headers and JSON body of the gRPC denial.
 */
function write(res: ServerResponse, answer: HttpAuthzAnswer, dialect: HttpAuthzDialect): void {
  if (!answer.allowed) {
    const { status, headers, body } = answer.denial;
    res.writeHead(status, [...headers.flat(), 'content-length', String(Buffer.byteLength(body))]);
    res.end(body);
    return;
  }
  const { set, remove } = answer.upstream;
  const headers: string[] = [...set.flat(), 'cache-control', 'no-store', 'content-length', '0'];
  if (dialect === 'envoy' && remove.length > 0)
    headers.push('x-envoy-auth-headers-to-remove', remove.join(','));
  res.writeHead(200, headers);
  res.end();
}

function refuse(res: ServerResponse, refusal: HttpRefusal): void {
  const body = `${JSON.stringify({ error: refusal.status === 403 ? 'forbidden' : 'bad_request' })}`;
  // A body we did not read, or a request we could not parse: the connection is not reused.
  res.writeHead(refusal.status, {
    'content-type': 'application/json',
    'cache-control': 'no-store',
    'content-length': Buffer.byteLength(body),
    connection: 'close',
  });
  res.end(body);
}

/** `MATRYOSHKA_AUTHZ_HTTP_PORT`: the Check over plain HTTP, for proxies that cannot speak gRPC. */
export async function startAuthzHttp(options: AuthzHttpOptions): Promise<RunningAuthzHttp> {
  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const parsed = parseHttpAuthz({
      method: req.method ?? '',
      url: req.url ?? '',
      headers: req.headersDistinct,
    });
    if (!parsed.ok) {
      options.onRefused(parsed.refusal);
      return refuse(res, parsed.refusal);
    }
    const record = await options.decide(parsed.input, deadlineOf(req));
    write(res, buildHttpAnswer(record, options.settings), parsed.dialect);
  };
  const stallMs = Math.min(AUTHZ_HTTP_REQUEST_TIMEOUT_MS, options.idleTimeoutMs);
  const deadlines = httpDeadlines(stallMs);
  const serverOptions = {
    // A depth-8 chain is ~20 KB of authorization header; Node's default (16 KiB) would refuse it.
    maxHeaderSize: maxCheckRequestBytes(options.maxTokenLength),
    connectionsCheckingInterval: deadlines.connectionsCheckingInterval,
    requestTimeout: deadlines.requestTimeout,
    headersTimeout: deadlines.headersTimeout,
    keepAliveTimeout: options.idleTimeoutMs,
  };
  const onRequest = (req: IncomingMessage, res: ServerResponse): void => {
    handle(req, res).catch(() => {
      // decide() never rejects; should anything else, the answer is still a refusal (fail closed).
      if (res.headersSent) return res.destroy();
      res.writeHead(503, { 'content-length': 0, 'cache-control': 'no-store', connection: 'close' });
      res.end();
    });
  };
  const server: Server = options.tls
    ? createHttpsServer({ ...options.tls.options, ...serverOptions }, onRequest)
    : createServer(serverOptions, onRequest);
  server.maxHeadersCount = 512;
  // Node's header deadline did not close a connection that sends nothing, or half a first request
  // line, in our tests, and Node's TLS handshake timeout is 120 s: the guard closes a connection
  // whose first request has not arrived within the deadline, counted from the TCP accept.
  guardHttpListener(server, {
    maxConnections: AUTHZ_HTTP_MAX_CONNECTIONS,
    stallMs: deadlines.firstRequestMs,
  });
  await new Promise<void>((resolve, reject) => {
    const failed = (error: unknown): void =>
      reject(listenError('MATRYOSHKA_AUTHZ_HTTP_PORT', `${options.host}:${options.port}`, error));
    server.once('error', failed);
    server.listen(options.port, options.host, () => {
      server.off('error', failed);
      resolve();
    });
  });
  // Failed accepts (EMFILE) lose one connection; the listener and the process carry on.
  server.on('error', () => {});
  const tls = options.tls;
  const reload =
    tls === undefined
      ? undefined
      : setInterval(() => {
          const next = tls.reload();
          if (next !== undefined && 'setSecureContext' in server)
            (server as unknown as { setSecureContext(o: object): void }).setSecureContext(next);
        }, options.tlsReloadMs);
  reload?.unref();
  return {
    port: (server.address() as AddressInfo).port,
    close: (graceMs) =>
      new Promise<void>((resolve) => {
        clearInterval(reload);
        const timer = setTimeout(() => server.closeAllConnections(), graceMs);
        timer.unref();
        server.close(() => {
          clearTimeout(timer);
          resolve();
        });
        server.closeIdleConnections();
      }),
  };
}
