import { type IncomingMessage, type Server, type ServerResponse, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

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

export interface RunningHttpServer {
  readonly port: number;
  close(): Promise<void>;
}

function send(res: ServerResponse, status: number, type: string, body: string, extra: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body), ...extra });
  res.end(body);
}

/** The operator's port: JWKS, liveness, readiness, metrics. GET only, nothing else. */
export async function startHttpServer(host: string, port: number, routes: HttpRoutes): Promise<RunningHttpServer> {
  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(res, 405, 'text/plain', 'method not allowed\n', { allow: 'GET, HEAD' });
    switch (path) {
      case '/.well-known/jwks.json':
        return send(res, 200, 'application/jwk-set+json', JSON.stringify(routes.jwks()), { 'cache-control': 'public, max-age=60' });
      case '/healthz':
        return routes.live() ? send(res, 200, 'text/plain', 'ok\n') : send(res, 503, 'text/plain', 'not live\n');
      case '/readyz':
        return routes.ready() ? send(res, 200, 'text/plain', 'ready\n') : send(res, 503, 'text/plain', 'not ready\n');
      case '/metrics':
        if (routes.metrics) return send(res, 200, 'text/plain; version=0.0.4', await routes.metrics());
        return send(res, 404, 'text/plain', 'not found\n');
      default:
        return send(res, 404, 'text/plain', 'not found\n');
    }
  };
  const server: Server = createServer((req, res) => {
    handle(req, res).catch(() => {
      if (!res.headersSent) send(res, 500, 'text/plain', 'internal error\n');
      else res.destroy();
    });
  });
  server.headersTimeout = 10_000;
  server.requestTimeout = 10_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
