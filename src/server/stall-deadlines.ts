import type { Http2Session, ServerHttp2Stream } from 'node:http2';
import { constants } from 'node:http2';
import type { Socket } from 'node:net';
import { type ConnectionGuard, peerKey } from './connection-guard.js';

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
 * Deadlines and the connection cap for one of grpc-js's HTTP/2 servers. grpc-js's idle timeout only
 * counts time without open streams, and Node's TLS handshake timeout is 120 s, so without these a
 * socket that never finishes its TLS or HTTP/2 handshake, or a stream whose request never ends
 * (announce 128 KiB, send all but the last byte), holds its file descriptor and buffers for as long
 * as the peer likes. Envoy sends its whole preface and each whole CheckRequest within milliseconds;
 * `ms` is seconds. The guard closes a socket that has not sent its SETTINGS within `ms` and, at its
 * cap, makes room by evicting silent, then idle connections (see ConnectionGuard).
 */
export function enforceStallDeadlines(
  server: Http2ServerEvents,
  guard: ConnectionGuard,
  ms: number,
): void {
  server.on('connection', (socket) => guard.admit(socket));

  server.on('session', (session) => {
    // The client's SETTINGS frame follows its preface: from here on grpc-js's idle and keepalive
    // timers look after the connection. The session's socket (a proxy) reports the raw socket's peer.
    session.once('remoteSettings', () => {
      if (session.socket !== undefined) guard.talked(peerKey(session.socket));
    });
  });

  server.on('stream', (stream) => {
    // A connection with a call in progress is never evicted to make room.
    const done = guard.requestStarted(
      stream.session?.socket === undefined ? undefined : peerKey(stream.session.socket),
    );
    // Our methods are unary or server-streaming: the client half-closes right after its one request.
    let ended = false;
    stream.once('end', () => {
      ended = true;
    });
    const timer = setTimeout(() => {
      if (!ended && !stream.destroyed) stream.close(constants.NGHTTP2_CANCEL);
    }, ms);
    timer.unref();
    stream.once('close', () => {
      clearTimeout(timer);
      done();
    });
  });
}
