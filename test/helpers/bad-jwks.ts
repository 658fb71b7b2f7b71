import { type IncomingMessage, type Server, type ServerResponse, createServer } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

/** What one path of a misbehaving JWKS endpoint does with a request. */
export type Behaviour =
  /** Accept the request and never answer (not even headers). */
  | { kind: 'hang' }
  /** Send 200 and headers, then one byte of whitespace every `intervalMs`, forever. */
  | { kind: 'trickle'; intervalMs: number }
  /** A fixed answer. */
  | { kind: 'body'; body: string; status?: number; contentType?: string }
  /**
   * `bytes` of JSON-looking text (a JWK Set whose one key never ends), streamed from one reused
   * buffer so the server itself holds almost nothing; with or without Content-Length (chunked).
   */
  | { kind: 'huge'; bytes: number; contentLength: boolean };

const FILLER = Buffer.alloc(64 * 1024, 'A');
const HUGE_PREFIX = Buffer.from('{"keys":[{"kty":"EC","crv":"P-256","kid":"huge","x":"');
const HUGE_SUFFIX = Buffer.from('"}]}');

/**
 * An identity provider's JWKS endpoint gone wrong, on loopback: every path has a Behaviour. It
 * counts requests and the bytes it managed to write per path, and `stop()` cuts every connection
 * it still holds (hanging ones included).
 */
export class MisbehavingJwks {
  readonly hits = new Map<string, number>();
  readonly bytesSent = new Map<string, number>();
  private readonly sockets = new Set<Socket>();
  private readonly timers = new Set<NodeJS.Timeout>();

  private constructor(
    private readonly server: Server,
    readonly base: string,
    private readonly routes: Map<string, Behaviour>,
  ) {}

  static async start(routes: Record<string, Behaviour> = {}): Promise<MisbehavingJwks> {
    let self: MisbehavingJwks | undefined;
    const server = createServer((req, res) => self?.handle(req, res));
    // A hanging request must not be cut by the server's own timeouts while a test watches it.
    server.requestTimeout = 0;
    server.headersTimeout = 60_000;
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    self = new MisbehavingJwks(server, `http://127.0.0.1:${port}`, new Map(Object.entries(routes)));
    server.on('connection', (socket: Socket) => {
      self?.sockets.add(socket);
      socket.on('close', () => self?.sockets.delete(socket));
    });
    return self;
  }

  url(path: string): string {
    return `${this.base}${path}`;
  }

  set(path: string, behaviour: Behaviour): void {
    this.routes.set(path, behaviour);
  }

  hitsOf(path: string): number {
    return this.hits.get(path) ?? 0;
  }

  /** Connections the server holds open right now. */
  get openConnections(): number {
    return this.sockets.size;
  }

  private count(path: string, bytes: number): void {
    this.bytesSent.set(path, (this.bytesSent.get(path) ?? 0) + bytes);
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    this.hits.set(path, this.hitsOf(path) + 1);
    const behaviour = this.routes.get(path);
    if (behaviour === undefined) return void res.writeHead(404).end();
    switch (behaviour.kind) {
      case 'hang':
        return; // the request is read; the answer never comes
      case 'trickle': {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.flushHeaders();
        const timer = setInterval(() => {
          if (res.destroyed || res.writableEnded) return;
          res.write(' ');
          this.count(path, 1);
        }, behaviour.intervalMs);
        this.timers.add(timer);
        res.on('close', () => {
          clearInterval(timer);
          this.timers.delete(timer);
        });
        return;
      }
      case 'body': {
        const body = Buffer.from(behaviour.body);
        res.writeHead(behaviour.status ?? 200, {
          'content-type': behaviour.contentType ?? 'application/json',
          'content-length': body.length,
        });
        res.end(body);
        this.count(path, body.length);
        return;
      }
      case 'huge':
        void this.streamHuge(path, res, behaviour.bytes, behaviour.contentLength);
        return;
    }
  }

  private async streamHuge(
    path: string,
    res: ServerResponse,
    bytes: number,
    contentLength: boolean,
  ): Promise<void> {
    res.writeHead(200, {
      'content-type': 'application/json',
      ...(contentLength ? { 'content-length': bytes } : {}),
    });
    let closed = false;
    res.on('close', () => {
      closed = true;
    });
    res.on('error', () => undefined);
    const write = async (chunk: Buffer): Promise<void> => {
      if (closed) return;
      this.count(path, chunk.length);
      if (!res.write(chunk)) {
        await new Promise<void>((resolve) => {
          const done = (): void => {
            res.off('drain', done);
            res.off('close', done);
            resolve();
          };
          res.on('drain', done);
          res.on('close', done);
        });
      }
    };
    await write(HUGE_PREFIX);
    let left = bytes - HUGE_PREFIX.length - HUGE_SUFFIX.length;
    while (left > 0 && !closed) {
      const chunk = left >= FILLER.length ? FILLER : FILLER.subarray(0, left);
      left -= chunk.length;
      await write(chunk);
    }
    await write(HUGE_SUFFIX);
    if (!closed) res.end();
  }

  async stop(): Promise<void> {
    for (const timer of this.timers) clearInterval(timer);
    this.timers.clear();
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      for (const socket of this.sockets) socket.destroy();
    });
  }
}
