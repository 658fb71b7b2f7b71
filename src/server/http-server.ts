import { type IncomingMessage, type Server, type ServerResponse, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { guardHttpListener, httpDeadlines } from './connection-guard.js';
import { listenError } from './listen-error.js';

export interface HttpRoutes {
  /** Public keys of the tokens we mint. */
  jwks(): unknown;
  /** Live: the process answers. */
  live(): boolean;
  /** Ready: the registry can answer and we are not shutting down. */
  ready(): boolean;
  /** Prometheus text, when metrics are enabled. */
  metrics?(): Promise<string>;
}

export interface HttpLimits {
  /** `MATRYOSHKA_IDLE_TIMEOUT_MS`: caps the keep-alive wait and the time to send one request. */
  readonly idleTimeoutMs: number;
}

/**
 * Probes and scrapers need a handful of connections; past this many, a new one is admitted by
 * closing the oldest connection that never sent a request, else the oldest idle one
 * (ConnectionGuard), so a flood on the operator's port can neither take the file descriptors the
 * gRPC port and our own outgoing connections (Redis, JWKS) need, nor shut out a kubelet probe.
 */
export const HTTP_MAX_CONNECTIONS = 64;

/** Whole request (headers included) within this; a prober that needs longer is not a prober. */
export const HTTP_REQUEST_TIMEOUT_MS = 10_000;

/** Node's default wait for the next request on a kept-alive connection. */
export const HTTP_KEEP_ALIVE_MS = 5_000;

export interface RunningHttpServer {
  readonly port: number;
  close(): Promise<void>;
}

function send(
  res: ServerResponse,
  status: number,
  type: string,
  body: string,
  extra: Record<string, string> = {},
): void {
  res.writeHead(status, {
    'content-type': type,
    'content-length': Buffer.byteLength(body),
    ...extra,
  });
  res.end(body);
}

/** The operator's port: JWKS, liveness, readiness, metrics. GET only, nothing else. */
export async function startHttpServer(
  host: string,
  port: number,
  limits: HttpLimits,
  routes: HttpRoutes,
): Promise<RunningHttpServer> {
  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD')
      return send(res, 405, 'text/plain', 'method not allowed\n', { allow: 'GET, HEAD' });
    switch (path) {
      case '/.well-known/jwks.json':
        return send(res, 200, 'application/jwk-set+json', JSON.stringify(routes.jwks()), {
          'cache-control': 'public, max-age=60',
        });
      case '/healthz':
        return routes.live()
          ? send(res, 200, 'text/plain', 'ok\n')
          : send(res, 503, 'text/plain', 'not live\n');
      case '/readyz':
        return routes.ready()
          ? send(res, 200, 'text/plain', 'ready\n')
          : send(res, 503, 'text/plain', 'not ready\n');
      case '/metrics':
        if (routes.metrics)
          return send(res, 200, 'text/plain; version=0.0.4', await routes.metrics());
        return send(res, 404, 'text/plain', 'not found\n');
      default:
        return send(res, 404, 'text/plain', 'not found\n');
    }
  };
  const stallMs = Math.min(HTTP_REQUEST_TIMEOUT_MS, limits.idleTimeoutMs);
  const deadlines = httpDeadlines(stallMs);
  const server: Server = createServer(
    { connectionsCheckingInterval: deadlines.connectionsCheckingInterval },
    (req, res) => {
      handle(req, res).catch(() => {
        if (!res.headersSent) send(res, 500, 'text/plain', 'internal error\n');
        else res.destroy();
      });
    },
  );
  server.headersTimeout = deadlines.headersTimeout;
  server.requestTimeout = deadlines.requestTimeout;
  server.keepAliveTimeout = Math.min(HTTP_KEEP_ALIVE_MS, limits.idleTimeoutMs);
  // Not Node's `maxConnections`: that refuses the newcomer and keeps the flood.
  guardHttpListener(server, {
    maxConnections: HTTP_MAX_CONNECTIONS,
    stallMs: deadlines.firstRequestMs,
  });
  await new Promise<void>((resolve, reject) => {
    const failed = (error: unknown): void =>
      reject(listenError('MATRYOSHKA_HTTP_PORT', `${host}:${port}`, error));
    server.once('error', failed);
    server.listen(port, host, () => {
      server.off('error', failed);
      resolve();
    });
  });
  // Once listening, the only errors are failed accepts (EMFILE when descriptors run out): the
  // connection is lost, the server keeps listening, and the process must not die of it.
  server.on('error', () => {});
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
