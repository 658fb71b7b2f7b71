import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

export interface ConnectionGuardOptions {
  /** Connections held at once on this listener; past it, one is evicted to admit the new one. */
  readonly maxConnections: number;
  /** A connection that has not finished its handshake and first request by then is closed. */
  readonly stallMs: number;
}

interface Tracked {
  readonly key: string;
  readonly socket: Socket;
  /** The peer finished its handshake (HTTP/2 SETTINGS) or sent a whole request. */
  talked: boolean;
  /** Requests (HTTP) or streams (HTTP/2) in progress. */
  inFlight: number;
  readonly stall: NodeJS.Timeout;
}

/**
 * The raw TCP socket, the TLS socket on top of it and the HTTP/2 session's proxy of either all
 * report the same peer address and port, which identify one live connection to one listener.
 */
export function peerKey(socket: Pick<Socket, 'remoteAddress' | 'remotePort'>): string | undefined {
  const { remoteAddress, remotePort } = socket;
  return remoteAddress === undefined || remotePort === undefined
    ? undefined
    : `${remoteAddress}|${remotePort}`;
}

/**
 * Every connection of one listener, from accept to close, so that neither silence nor numbers can
 * shut out a probe or Envoy:
 * - a connection that has not talked (TLS and HTTP/2 handshakes done, or a first HTTP request
 *   received) within `stallMs` of its accept is closed, whatever the protocol's own timers say;
 * - at `maxConnections`, a new connection is admitted by closing the oldest one that never talked,
 *   else the oldest idle one (no request in progress); only when every connection is busy is the
 *   new one refused. A flood of silent sockets thus costs a prober nothing but one eviction, where
 *   a plain cap (Node's `maxConnections`) would turn the prober away and keep the flood.
 */
export class ConnectionGuard {
  // Map order is accept order: the first match in a walk is the oldest.
  private readonly connections = new Map<string, Tracked>();

  constructor(private readonly options: ConnectionGuardOptions) {}

  get size(): number {
    return this.connections.size;
  }

  /** A socket just accepted (the raw TCP socket, before TLS). */
  admit(socket: Socket): void {
    const key = peerKey(socket);
    if (socket.destroyed || key === undefined) {
      // Already gone (or closed by a listener before us): nothing to hold.
      socket.destroy();
      return;
    }
    if (this.connections.size >= this.options.maxConnections && !this.evictOne()) {
      socket.destroy();
      return;
    }
    const stall = setTimeout(() => socket.destroy(), this.options.stallMs);
    stall.unref();
    const tracked: Tracked = { key, socket, talked: false, inFlight: 0, stall };
    this.connections.set(key, tracked);
    socket.once('close', () => {
      clearTimeout(stall);
      if (this.connections.get(key) === tracked) this.connections.delete(key);
    });
  }

  /** The peer completed its handshake: from here the protocol's idle timers look after it. */
  talked(key: string | undefined): void {
    const tracked = key === undefined ? undefined : this.connections.get(key);
    if (tracked === undefined || tracked.talked) return;
    tracked.talked = true;
    clearTimeout(tracked.stall);
  }

  /** A request began on the connection `key`; call the returned function once it is over. */
  requestStarted(key: string | undefined): () => void {
    const tracked = key === undefined ? undefined : this.connections.get(key);
    if (tracked === undefined) return () => {};
    this.talked(key);
    tracked.inFlight++;
    let ended = false;
    return () => {
      if (ended) return;
      ended = true;
      tracked.inFlight--;
    };
  }

  private evictOne(): boolean {
    let oldestIdle: Tracked | undefined;
    for (const tracked of this.connections.values()) {
      if (!tracked.talked) return this.evict(tracked);
      if (oldestIdle === undefined && tracked.inFlight === 0) oldestIdle = tracked;
    }
    return oldestIdle === undefined ? false : this.evict(oldestIdle);
  }

  private evict(tracked: Tracked): true {
    // Forgotten now, not on 'close' (next tick): the slot is the new connection's at once.
    this.connections.delete(tracked.key);
    clearTimeout(tracked.stall);
    tracked.socket.destroy();
    return true;
  }
}

/** What an HTTP/1.1 listener (node:http or node:https) offers the guard. */
export interface HttpListenerEvents {
  prependListener(event: 'connection', listener: (socket: Socket) => void): unknown;
  on(event: 'request', listener: (req: IncomingMessage, res: ServerResponse) => void): unknown;
}

/**
 * Guard an HTTP/1.1 listener: every accepted socket is admitted (or makes room) before the HTTP
 * parser sees it, and a connection counts as busy from a request's arrival until its response is
 * done or abandoned. Node's own header and keep-alive deadlines still bound later requests.
 */
export function guardHttpListener(
  server: HttpListenerEvents,
  options: ConnectionGuardOptions,
): ConnectionGuard {
  const guard = new ConnectionGuard(options);
  server.prependListener('connection', (socket) => guard.admit(socket));
  server.on('request', (req, res) => {
    res.once('close', guard.requestStarted(peerKey(req.socket)));
  });
  return guard;
}

/**
 * Node checks its header and request deadlines on an interval, so a request stalled after the
 * first is closed up to one interval late: the deadlines are set that much earlier, and the
 * interval kept short, so "at most `stallMs`" holds for every request, not only the first. The
 * guard's deadline for the first request (`firstRequestMs`) is one more interval earlier: its timer
 * then always runs before the check that would find the same socket expired, even on a loaded
 * machine where both are late (Node runs overdue timers in the order they were due), so a silent
 * socket is closed outright rather than sent a 408 it may never read.
 */
export function httpDeadlines(stallMs: number): {
  readonly connectionsCheckingInterval: number;
  readonly requestTimeout: number;
  readonly headersTimeout: number;
  readonly firstRequestMs: number;
} {
  const connectionsCheckingInterval = Math.max(25, Math.min(250, Math.floor(stallMs / 8)));
  const timeout = stallMs - connectionsCheckingInterval;
  return {
    connectionsCheckingInterval,
    requestTimeout: timeout,
    headersTimeout: timeout,
    firstRequestMs: timeout - connectionsCheckingInterval,
  };
}
