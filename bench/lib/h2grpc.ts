/**
 * Unary gRPC over node:http2, without @grpc/grpc-js (whose client costs ≈150 µs per call and would
 * saturate before the server). Several sessions, each with a large receive window, so responses
 * never wait on flow control (one connection with a 64 KiB window starves its streams).
 */
import http2 from 'node:http2';

export const CHECK_PATH = '/envoy.service.auth.v3.Authorization/Check';

export interface UnaryResult {
  /** HTTP :status (200 for any gRPC answer), 0 when none arrived. */
  readonly httpStatus: number;
  /** grpc-status from the trailers (or a trailers-only response); -1 when none arrived. */
  readonly grpcStatus: number;
  readonly grpcMessage: string | undefined;
  /** The whole response body (gRPC frames), when there was one. */
  readonly body: Buffer | undefined;
  /** A transport failure (stream reset, session gone). */
  readonly error: string | undefined;
}

export interface PoolOptions {
  readonly sessions: number;
  /** Per-stream receive window advertised in SETTINGS, and the session (connection) window. */
  readonly streamWindow: number;
  readonly sessionWindow: number;
  /** `grpc-timeout` to send, like Envoy does from its ext_authz `timeout`; 0 = none. */
  readonly timeoutMs: number;
}

export class GrpcH2Pool {
  private next = 0;
  private readonly headers: http2.OutgoingHttpHeaders;

  private constructor(
    private readonly sessions: http2.ClientHttp2Session[],
    timeoutMs: number,
    authority: string,
  ) {
    this.headers = {
      ':method': 'POST',
      ':path': CHECK_PATH,
      ':authority': authority,
      ':scheme': 'http',
      'content-type': 'application/grpc',
      te: 'trailers',
      'user-agent': 'matryoshka-bench/h2',
      ...(timeoutMs > 0 ? { 'grpc-timeout': `${timeoutMs}m` } : {}),
    };
  }

  static async connect(authority: string, options: PoolOptions): Promise<GrpcH2Pool> {
    const sessions = await Promise.all(
      Array.from(
        { length: options.sessions },
        () =>
          new Promise<http2.ClientHttp2Session>((resolve, reject) => {
            const session = http2.connect(`http://${authority}`, {
              settings: { initialWindowSize: options.streamWindow, enablePush: false },
              maxSessionMemory: 256,
            });
            const onError = (error: Error): void => reject(error);
            session.once('error', onError);
            session.once('connect', () => {
              session.off('error', onError);
              session.on('error', () => {}); // surfaced per stream
              session.setLocalWindowSize(options.sessionWindow);
              resolve(session);
            });
          }),
      ),
    );
    return new GrpcH2Pool(sessions, options.timeoutMs, authority);
  }

  /** One Check; `done` is called exactly once. */
  call(frame: Buffer, done: (result: UnaryResult) => void): void {
    const session = this.sessions[this.next++ % this.sessions.length] as http2.ClientHttp2Session;
    let httpStatus = 0;
    let grpcStatus = -1;
    let grpcMessage: string | undefined;
    let error: string | undefined;
    const chunks: Buffer[] = [];
    let finished = false;
    const finish = (): void => {
      if (finished) return;
      finished = true;
      const body =
        chunks.length === 0 ? undefined : chunks.length === 1 ? chunks[0] : Buffer.concat(chunks);
      done({ httpStatus, grpcStatus, grpcMessage, body, error });
    };
    let stream: http2.ClientHttp2Stream;
    try {
      stream = session.request(this.headers, { endStream: false });
    } catch (e) {
      error = (e as Error).message;
      finish();
      return;
    }
    const readStatus = (h: http2.IncomingHttpHeaders): void => {
      const gs = h['grpc-status'];
      if (gs !== undefined) grpcStatus = Number(gs);
      const gm = h['grpc-message'];
      if (typeof gm === 'string') grpcMessage = decodeURIComponent(gm);
    };
    stream.on('response', (h) => {
      httpStatus = Number(h[':status'] ?? 0);
      readStatus(h);
    });
    stream.on('data', (chunk: Buffer) => chunks.push(chunk));
    stream.on('trailers', readStatus);
    stream.on('error', (e: Error) => {
      error ??= e.message;
    });
    stream.on('close', () => {
      if (
        stream.rstCode !== undefined &&
        stream.rstCode !== http2.constants.NGHTTP2_NO_ERROR &&
        error === undefined
      )
        error = `RST_STREAM ${stream.rstCode}`;
      finish();
    });
    stream.end(frame);
  }

  callAsync(frame: Buffer): Promise<UnaryResult> {
    return new Promise((resolve) => this.call(frame, resolve));
  }

  close(): void {
    for (const session of this.sessions) session.close();
  }

  destroy(): void {
    for (const session of this.sessions) session.destroy();
  }
}
