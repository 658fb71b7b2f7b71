/**
 * Authorization requests over HTTP/1.1 keep-alive, for the HTTP rows: a node:http Agent with a
 * fixed number of sockets, as a proxy's connection pool to an authorizer (HTTP/1.1 has one request
 * in flight per connection, so sockets bound concurrency). Responses have no body worth reading on
 * an allow; a denial's JSON body is drained so the socket is reused.
 */
import { Agent, request } from 'node:http';

/** One request of a pool: the original request as the proxy describes it to us. */
export interface HttpAuthzRequest {
  readonly method: string;
  readonly path: string;
  readonly headers: Readonly<Record<string, string>>;
}

export interface HttpResult {
  /** HTTP status, 0 when no answer arrived. */
  readonly status: number;
  /** Lower-case names; the first value of each. */
  readonly headers: Readonly<Record<string, string>>;
  /** A transport failure (refused, reset, timed out). */
  readonly error: string | undefined;
}

const MAX_RESPONSE_HEADER_BYTES = 256 * 1024;

export class Http1Pool {
  private readonly agent: Agent;

  constructor(
    private readonly host: string,
    private readonly port: number,
    sockets: number,
    /** Abandon a request after this long (the socket is destroyed); 0 = never. */
    private readonly timeoutMs: number,
  ) {
    // maxFreeSockets = sockets: none is closed between requests, so no handshake is measured.
    this.agent = new Agent({ keepAlive: true, maxSockets: sockets, maxFreeSockets: sockets });
  }

  /** `target` is `host:port`, as the gRPC pool takes it. */
  static forTarget(target: string, sockets: number, timeoutMs: number): Http1Pool {
    const at = target.lastIndexOf(':');
    return new Http1Pool(target.slice(0, at), Number(target.slice(at + 1)), sockets, timeoutMs);
  }

  call(req: HttpAuthzRequest, done: (result: HttpResult) => void): void {
    let settled = false;
    const finish = (result: HttpResult): void => {
      if (settled) return;
      settled = true;
      done(result);
    };
    const outgoing = request(
      {
        host: this.host,
        port: this.port,
        method: req.method,
        path: req.path,
        headers: req.headers,
        agent: this.agent,
        // An allow at depth 8 carries a ~28 KB minted token as a response header: over Node's
        // default 16 KiB (Envoy's own limit is 60 KiB). The client is not what is measured.
        maxHeaderSize: MAX_RESPONSE_HEADER_BYTES,
      },
      (res) => {
        const headers: Record<string, string> = {};
        for (const [name, value] of Object.entries(res.headers))
          if (value !== undefined) headers[name] = Array.isArray(value) ? (value[0] ?? '') : value;
        res.on('error', (e) => finish({ status: 0, headers: {}, error: e.message }));
        res.on('end', () => finish({ status: res.statusCode ?? 0, headers, error: undefined }));
        res.resume();
      },
    );
    if (this.timeoutMs > 0)
      outgoing.setTimeout(this.timeoutMs, () => outgoing.destroy(new Error('timed out')));
    outgoing.on('error', (e) => finish({ status: 0, headers: {}, error: e.message }));
    outgoing.end();
  }

  close(): void {
    this.agent.destroy();
  }
}
