import type { Http2Session, ServerHttp2Stream } from 'node:http2';
import { constants } from 'node:http2';
import type { Socket } from 'node:net';

/**
 * The events of one of grpc-js's HTTP/2 servers that we need. `connection` is the raw TCP socket
 * (before TLS, when there is TLS); `session` comes once HTTP/2 runs on it.
 */
export interface Http2ServerEvents {
  on(event: 'connection', listener: (socket: Socket) => void): unknown;
  on(event: 'session', listener: (session: Http2Session) => void): unknown;
  on(event: 'stream', listener: (stream: ServerHttp2Stream) => void): unknown;
}

/**
 * Deadlines for peers that stall instead of talking. grpc-js's idle timeout only counts time
 * without open streams, and Node's TLS handshake timeout is 120 s, so without these a socket that
 * never finishes its TLS or HTTP/2 handshake, or a stream whose request never ends (announce 128 KiB,
 * send all but the last byte), holds its file descriptor and buffers for as long as the peer likes.
 * Envoy sends its whole preface and each whole CheckRequest within milliseconds; `ms` is seconds.
 */
export function enforceStallDeadlines(server: Http2ServerEvents, ms: number): void {
  // The HTTP/2 session hides its socket behind a proxy, so the two are matched by the peer's
  // address and port, which identify one live connection to one listening socket.
  const handshaking = new Map<string, NodeJS.Timeout>();
  const peer = (address: string | undefined, port: number | undefined): string | undefined =>
    address === undefined || port === undefined ? undefined : `${address}|${port}`;

  server.on('connection', (socket) => {
    const key = peer(socket.remoteAddress, socket.remotePort);
    if (key === undefined) {
      // Already gone before we saw it: nothing to wait for.
      socket.destroy();
      return;
    }
    const timer = setTimeout(() => socket.destroy(), ms);
    timer.unref();
    handshaking.set(key, timer);
    socket.once('close', () => {
      clearTimeout(timer);
      if (handshaking.get(key) === timer) handshaking.delete(key);
    });
  });

  server.on('session', (session) => {
    // The client's SETTINGS frame follows its preface: from here on grpc-js's idle and keepalive
    // timers look after the connection.
    session.once('remoteSettings', () => {
      const key = peer(session.socket?.remoteAddress, session.socket?.remotePort);
      if (key === undefined) return;
      clearTimeout(handshaking.get(key));
      handshaking.delete(key);
    });
  });

  server.on('stream', (stream) => {
    // Our methods are unary or server-streaming: the client half-closes right after its one request.
    let ended = false;
    stream.once('end', () => {
      ended = true;
    });
    const timer = setTimeout(() => {
      if (!ended && !stream.destroyed) stream.close(constants.NGHTTP2_CANCEL);
    }, ms);
    timer.unref();
    stream.once('close', () => clearTimeout(timer));
  });
}
