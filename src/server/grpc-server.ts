import { invariant, messageOf } from '../errors.js';
import * as grpc from '@grpc/grpc-js';
import type { CheckResponseMessage } from '../pipeline/respond.js';
import { decodeCheckRequest, encodeCheckResponse } from './check-codec.js';
import type { CheckRequestMessage } from './check-request.js';
import type { HealthState } from './health.js';
import { listenError } from './listen-error.js';
import { loadProtos } from './protos.js';
import { ConnectionGuard } from './connection-guard.js';
import { type Http2ServerEvents, enforceStallDeadlines } from './stall-deadlines.js';

export interface GrpcServerOptions {
  readonly host: string;
  readonly port: number;
  readonly credentials: grpc.ServerCredentials;
  readonly health: HealthState;
  /**
   * Must never reject: every outcome, denial or error, is a CheckResponse. `deadline` is the
   * caller's (Envoy sends `grpc-timeout`), in epoch ms, or undefined when it set none.
   */
  readonly check: (
    request: CheckRequestMessage,
    deadline: number | undefined,
  ) => Promise<CheckResponseMessage>;
  readonly limits: TransportLimits;
}

export interface TransportLimits {
  /** `MATRYOSHKA_MAX_TOKEN_LENGTH`: the largest CheckRequest we accept is sized from it. */
  readonly maxTokenLength: number;
  /** `MATRYOSHKA_IDLE_TIMEOUT_MS`: a connection without a call in progress is closed after this. */
  readonly idleTimeoutMs: number;
}

export interface RunningGrpcServer {
  readonly port: number;
  readonly server: grpc.Server;
  /** Stop accepting, let in-flight calls finish (up to `graceMs`), then force-close. */
  shutdown(graceMs: number): Promise<void>;
}

/**
 * What a CheckRequest may hold besides the token: the other request headers (Envoy refuses more than
 * 60 KiB of them by default, `max_request_headers_kb`), the attributes and context extensions.
 */
export const CHECK_REQUEST_ROOM = 64 * 1024;

/**
 * Calls in progress on one connection. Each may buffer one unfinished request of up to
 * `maxCheckRequestBytes`, and the HTTP/2 window does not bound that: grpc-js reads DATA as it
 * arrives, which reopens the window. Envoy opens another connection when a server's limit is reached.
 */
export const MAX_CONCURRENT_STREAMS = 100;

/**
 * nghttp2's own memory per connection, in MiB (HPACK tables, frames queued to a peer that does not
 * read): past it new streams are refused. grpc-js lifts Node's 10 MiB default to unlimited; a full
 * connection of answered Checks (100 streams, each under 100 KiB of response) fits well below this.
 */
export const MAX_SESSION_MEMORY_MIB = 32;

/** Server-initiated pings find peers that vanished without closing (a dead host, a dropped route). */
export const KEEPALIVE_TIME_MS = 60_000;
export const KEEPALIVE_TIMEOUT_MS = 20_000;

/**
 * Connections held at once per listening socket. Envoy opens a few per worker thread; past this
 * many, a new connection is admitted by closing the oldest one that never finished its handshake,
 * else the oldest without a call in progress (ConnectionGuard), so a flood of sockets cannot shut
 * Envoy out, and leaves descriptors for the HTTP ports and our own outgoing connections.
 */
export const GRPC_MAX_CONNECTIONS = 1024;

/**
 * How long a peer may stall before completing its TLS or HTTP/2 handshake, or one request: never
 * longer than the idle timeout, since a stalled peer is idle in all but name.
 */
export const STALL_DEADLINE_MS = 10_000;

export function maxCheckRequestBytes(maxTokenLength: number): number {
  return maxTokenLength + CHECK_REQUEST_ROOM;
}

export function stallDeadlineMs(limits: TransportLimits): number {
  return Math.min(STALL_DEADLINE_MS, limits.idleTimeoutMs);
}

/** The thin transport's options: Envoy's Check and grpc.health.v1 over one port, every buffer bounded. */
export function serverOptions(limits: TransportLimits): grpc.ServerOptions {
  return {
    'grpc.max_receive_message_length': maxCheckRequestBytes(limits.maxTokenLength),
    'grpc.max_send_message_length': 4 * 1024 * 1024,
    'grpc.max_concurrent_streams': MAX_CONCURRENT_STREAMS,
    'grpc-node.max_session_memory': MAX_SESSION_MEMORY_MIB,
    'grpc.max_connection_idle_ms': limits.idleTimeoutMs,
    'grpc.keepalive_time_ms': KEEPALIVE_TIME_MS,
    'grpc.keepalive_timeout_ms': KEEPALIVE_TIMEOUT_MS,
    'grpc.keepalive_permit_without_calls': 1,
    // Channelz bookkeeping runs on every call (~5 µs in the depth-0 profile) and we serve no channelz
    // service that could read it.
    'grpc.enable_channelz': 0,
  };
}

/**
 * HTTP/2 receive window of each connection, for the Check requests Envoy sends us. nghttp2 starts a
 * connection at 64 KiB and grpc-js offers no setting for it: with a dozen 20 KB depth-8 requests in
 * flight on one connection, Envoy must then wait for our WINDOW_UPDATEs and the event loop goes idle
 * with work queued on the other side (the bench saw ~12% idle and a 300 ms p99 tail at depth 8).
 * The window is about throughput, not memory: what bounds a connection's unread request data is
 * MAX_CONCURRENT_STREAMS unfinished requests of at most `maxCheckRequestBytes` each.
 */
export const CONNECTION_RECEIVE_WINDOW = 4 * 1024 * 1024;

/**
 * grpc-js keeps its HTTP/2 servers in a private map; reaching into it is the only way to set the
 * connection window and the stall deadlines. If a grpc-js upgrade moves it, the service refuses to
 * start rather than run unbounded (tests pin the window and the deadlines, so CI notices first).
 */
function http2ServersOf(server: grpc.Server): Http2ServerEvents[] | undefined {
  const servers = (server as unknown as { http2Servers?: unknown }).http2Servers;
  return servers instanceof Map
    ? [...(servers.keys() as IterableIterator<Http2ServerEvents>)]
    : undefined;
}

function widenReceiveWindows(servers: readonly Http2ServerEvents[]): void {
  for (const http2Server of servers) {
    http2Server.on('session', (session) => {
      const widen = (): void => {
        try {
          if (!session.destroyed && !session.closed)
            session.setLocalWindowSize(CONNECTION_RECEIVE_WINDOW);
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

/**
 * The Authorization service with Check's request read and its response written by check-codec.ts
 * rather than by protobufjs's reflection: the same messages, without a decode–toObject and a
 * fromObject–encode pass over every field on each call.
 */
export function withStaticCodec(service: grpc.ServiceDefinition): grpc.ServiceDefinition {
  const check = service['Check'];
  if (check === undefined) invariant('the Authorization service has no Check');
  return {
    ...service,
    Check: {
      ...check,
      requestDeserialize: decodeCheckRequest,
      responseSerialize: (value: unknown) => encodeCheckResponse(value as CheckResponseMessage),
    },
  };
}

export async function startGrpcServer(options: GrpcServerOptions): Promise<RunningGrpcServer> {
  const protos = loadProtos();
  const server = new grpc.Server(serverOptions(options.limits));
  server.addService(withStaticCodec(protos.authorization), {
    Check: (
      call: grpc.ServerUnaryCall<CheckRequestMessage, CheckResponseMessage>,
      callback: grpc.sendUnaryData<CheckResponseMessage>,
    ) => {
      const deadline = Number(call.getDeadline());
      options.check(call.request, Number.isFinite(deadline) ? deadline : undefined).then(
        (response) => callback(null, response),
        () => callback({ code: grpc.status.INTERNAL, details: 'internal error' }),
      );
    },
  });
  server.addService(protos.health, options.health.handlers());
  const port = await new Promise<number>((resolve, reject) => {
    const address = options.host.includes(':')
      ? `[${options.host}]:${options.port}`
      : `${options.host}:${options.port}`;
    server.bindAsync(address, options.credentials, (error, bound) =>
      error ? reject(listenError('MATRYOSHKA_GRPC_PORT', address, error)) : resolve(bound),
    );
  });
  const http2Servers = http2ServersOf(server);
  if (http2Servers === undefined) {
    server.forceShutdown();
    invariant(
      'grpc-js internals changed: cannot reach the HTTP/2 servers to bound stalled connections',
    );
  }
  widenReceiveWindows(http2Servers);
  const stallMs = stallDeadlineMs(options.limits);
  for (const http2Server of http2Servers)
    enforceStallDeadlines(
      http2Server,
      new ConnectionGuard({ maxConnections: GRPC_MAX_CONNECTIONS, stallMs }),
      stallMs,
    );
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

/**
 * grpc-js's own log lines (a failed bind, a dropped connection) as structured warnings of ours:
 * by default it writes raw `E …` lines to stderr, beside and before our one-line error.
 */
export function routeGrpcLogs(warn: (detail: string) => void): void {
  const line = (...args: unknown[]): void => warn(args.map((a) => messageOf(a)).join(' '));
  grpc.setLogger({ error: line, info: line, debug: line });
}
