import type { Http2Session } from 'node:http2';
import * as grpc from '@grpc/grpc-js';
import type { CheckResponseMessage } from '../pipeline/respond.js';
import type { CheckRequestMessage } from './check-request.js';
import type { HealthState } from './health.js';
import { loadProtos } from './protos.js';

export interface GrpcServerOptions {
  readonly host: string;
  readonly port: number;
  readonly credentials: grpc.ServerCredentials;
  readonly health: HealthState;
  /**
   * Must never reject: every outcome, denial or error, is a CheckResponse. `deadline` is the
   * caller's (Envoy sends `grpc-timeout`), in epoch ms, or undefined when it set none.
   */
  readonly check: (request: CheckRequestMessage, deadline: number | undefined) => Promise<CheckResponseMessage>;
}

export interface RunningGrpcServer {
  readonly port: number;
  readonly server: grpc.Server;
  /** Stop accepting, let in-flight calls finish (up to `graceMs`), then force-close. */
  shutdown(graceMs: number): Promise<void>;
}

/** The thin transport: Envoy's Check and grpc.health.v1 over one port. */
export const SERVER_OPTIONS: grpc.ServerOptions = {
  'grpc.max_receive_message_length': 4 * 1024 * 1024,
  'grpc.max_send_message_length': 4 * 1024 * 1024,
  'grpc.keepalive_permit_without_calls': 1,
  // Channelz bookkeeping runs on every call (~5 µs in the depth-0 profile) and we serve no channelz
  // service that could read it.
  'grpc.enable_channelz': 0,
};

/**
 * HTTP/2 receive window of each connection, for the Check requests Envoy sends us. nghttp2 starts a
 * connection at 64 KiB and grpc-js offers no setting for it: with a dozen 20 KB depth-8 requests in
 * flight on one connection, Envoy must then wait for our WINDOW_UPDATEs and the event loop goes idle
 * with work queued on the other side (the bench saw ~12% idle and a 300 ms p99 tail at depth 8).
 * Equal to the largest message we accept, so one connection buffers at most what one call may.
 */
export const CONNECTION_RECEIVE_WINDOW = 4 * 1024 * 1024;

interface SessionEmitter {
  on(event: 'session', listener: (session: Http2Session) => void): unknown;
}

/**
 * grpc-js keeps its HTTP/2 servers in a private map; reaching into it is the only way to set the
 * connection window. If a grpc-js upgrade moves it, we keep serving with nghttp2's default and say
 * so once (a test pins the window, so the upgrade is noticed in CI).
 */
function widenReceiveWindows(server: grpc.Server): void {
  const servers = (server as unknown as { http2Servers?: unknown }).http2Servers;
  if (!(servers instanceof Map)) {
    process.emitWarning('grpc-js internals changed: HTTP/2 connection windows stay at 64 KiB', { code: 'MATRYOSHKA_H2_WINDOW' });
    return;
  }
  for (const http2Server of servers.keys() as IterableIterator<SessionEmitter>) {
    http2Server.on('session', (session) => {
      const widen = (): void => {
        try {
          if (!session.destroyed && !session.closed) session.setLocalWindowSize(CONNECTION_RECEIVE_WINDOW);
        } catch {
          // A connection that went away in between: nothing to widen, and never a reason to crash.
        }
      };
      // setLocalWindowSize before the connection is up is lost; after the handshake it is a WINDOW_UPDATE.
      if (session.connecting) session.once('connect', widen);
      else widen();
    });
  }
}

export async function startGrpcServer(options: GrpcServerOptions): Promise<RunningGrpcServer> {
  const protos = loadProtos();
  const server = new grpc.Server(SERVER_OPTIONS);
  server.addService(protos.authorization, {
    Check: (call: grpc.ServerUnaryCall<CheckRequestMessage, CheckResponseMessage>, callback: grpc.sendUnaryData<CheckResponseMessage>) => {
      const deadline = Number(call.getDeadline());
      options.check(call.request, Number.isFinite(deadline) ? deadline : undefined).then(
        (response) => callback(null, response),
        () => callback({ code: grpc.status.INTERNAL, details: 'internal error' }),
      );
    },
  });
  server.addService(protos.health, options.health.handlers());
  const port = await new Promise<number>((resolve, reject) => {
    const address = options.host.includes(':') ? `[${options.host}]:${options.port}` : `${options.host}:${options.port}`;
    server.bindAsync(address, options.credentials, (error, bound) => (error ? reject(error) : resolve(bound)));
  });
  widenReceiveWindows(server);
  return {
    port,
    server,
    shutdown: (graceMs) =>
      new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, graceMs);
        timer.unref();
        server.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      }),
  };
}
