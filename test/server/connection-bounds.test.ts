import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { type ClientHttp2Session, type ClientHttp2Stream, connect } from 'node:http2';
import { request as httpRequest } from 'node:http';
import { type Socket, connect as tcpConnect } from 'node:net';
import { after, before, describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { EnvoyLikeClient } from '../../src/demo/envoy-client.js';
import { MAX_CONCURRENT_STREAMS, maxCheckRequestBytes } from '../../src/server/grpc-server.js';
import { type Served, eventually, spawnServe } from '../helpers/processes.js';

const MiB = 1024 * 1024;
const CHECK_PATH = '/envoy.service.auth.v3.Authorization/Check';
const IDLE_MS = 1000;

function rssMiB(pid: number): number {
  const kib = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
  assert.ok(kib !== undefined, 'VmRSS readable');
  return Number(kib) / 1024;
}

/** Sample the service's RSS every 50 ms while `during` runs; the highest growth over `baseline`. */
async function peakGrowth(pid: number, during: () => Promise<void>): Promise<number> {
  const baseline = rssMiB(pid);
  let peak = baseline;
  const sampler = setInterval(() => {
    peak = Math.max(peak, rssMiB(pid));
  }, 50);
  try {
    await during();
  } finally {
    clearInterval(sampler);
  }
  return Math.max(peak, rssMiB(pid)) - baseline;
}

async function h2Session(port: number): Promise<ClientHttp2Session> {
  const session = connect(`http://127.0.0.1:${port}`);
  session.on('error', () => {});
  await new Promise<void>((resolve) => session.once('remoteSettings', () => resolve()));
  return session;
}

/**
 * A Check stream whose gRPC frame announces `announced` bytes, of which `sent` are sent; the
 * request is never finished. Resolves when the server ends the stream, however it does.
 */
function unfinishedCheck(
  session: ClientHttp2Session,
  announced: number,
  sent: number,
): { stream: ClientHttp2Stream; ended: Promise<void> } {
  const stream = session.request({
    ':method': 'POST',
    ':path': CHECK_PATH,
    'content-type': 'application/grpc',
    te: 'trailers',
  });
  const ended = new Promise<void>((resolve) => stream.once('close', () => resolve()));
  stream.on('error', () => {});
  stream.resume();
  const prefix = Buffer.alloc(5);
  prefix.writeUInt32BE(announced, 1);
  stream.write(prefix);
  stream.write(Buffer.alloc(sent, 0x41));
  return { stream, ended };
}

function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Sockets that connect and then never send a byte; counts how many the server has closed. */
function silentSockets(port: number, count: number): { sockets: Socket[]; closed: () => number } {
  let closed = 0;
  const sockets = Array.from({ length: count }, () => {
    const socket = tcpConnect(port, '127.0.0.1');
    socket.on('error', () => {});
    socket.resume();
    socket.once('close', () => closed++);
    return socket;
  });
  return { sockets, closed: () => closed };
}

function httpStatus(port: number, path: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { host: '127.0.0.1', port, path, agent: false, timeout: 2000 },
      (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

describe('memory per gRPC connection is bounded', () => {
  let served: Served;
  before(async () => {
    served = await spawnServe({
      MATRYOSHKA_IDLE_TIMEOUT_MS: String(IDLE_MS),
      MATRYOSHKA_MEMO_ENTRIES: '0',
    });
  });
  after(() => served.stop());

  it('ends at once 40 streams on one connection that each announce a 4 MiB message, holding none of it', async () => {
    // Before the limits: every stream stayed open and the service held ~140 MiB until the connection closed.
    const pid = served.child.pid ?? 0;
    const session = await h2Session(served.grpcPort);
    try {
      const growth = await peakGrowth(pid, async () => {
        const streams = Array.from({ length: 40 }, () =>
          unfinishedCheck(session, 4 * MiB - 5, 3.5 * MiB),
        );
        await within(
          Promise.all(streams.map((s) => s.ended)),
          8000,
          'all 40 oversized streams ended by the server',
        );
      });
      assert.ok(growth < 48, `RSS grew ${growth.toFixed(0)} MiB`);
    } finally {
      session.destroy();
    }
    assert.equal(served.child.exitCode, null, 'the service is still running');
  });

  it(`admits ${MAX_CONCURRENT_STREAMS} streams per connection, bounds what they hold, and cancels requests that never finish`, async () => {
    const pid = served.child.pid ?? 0;
    const session = await h2Session(served.grpcPort);
    try {
      assert.equal(session.remoteSettings.maxConcurrentStreams, MAX_CONCURRENT_STREAMS);
      // Three times the stream limit, each announcing the largest accepted request and sending all but its last byte.
      const largest = maxCheckRequestBytes(65536);
      const growth = await peakGrowth(pid, async () => {
        const streams = Array.from({ length: 3 * MAX_CONCURRENT_STREAMS }, () =>
          unfinishedCheck(session, largest, largest - 1),
        );
        // Each batch is cancelled after the stall deadline (here the 1 s idle timeout), so the queue drains.
        await within(
          Promise.all(streams.map((s) => s.ended)),
          20_000,
          'every unfinished request cancelled',
        );
      });
      // 100 × 128 KiB is 12.5 MiB of request data; allow for buffers and garbage not yet collected.
      assert.ok(growth < 64, `RSS grew ${growth.toFixed(0)} MiB`);
    } finally {
      session.destroy();
    }
    const client = new EnvoyLikeClient(`127.0.0.1:${served.grpcPort}`);
    try {
      const answer = await client.check({ sid: 'billing' });
      assert.equal(answer.allowed, false);
      assert.equal(answer.httpStatus, 401);
    } finally {
      client.close();
    }
  });

  it('answers a Check carrying a maximum-length token and 50 KiB of other headers; refuses a larger message with RESOURCE_EXHAUSTED', async () => {
    const client = new EnvoyLikeClient(`127.0.0.1:${served.grpcPort}`);
    try {
      const filler = Object.fromEntries(
        Array.from({ length: 50 }, (_, i) => [`x-filler-${i}`, 'f'.repeat(1000)]),
      );
      const answer = await client.check({
        token: 'A'.repeat(65536),
        sid: 'billing',
        headers: filler,
      });
      assert.equal(answer.allowed, false, 'a junk token is refused, but answered');
      await assert.rejects(
        client.check({
          sid: 'billing',
          headers: { 'x-huge': 'h'.repeat(maxCheckRequestBytes(65536)) },
        }),
        (error: grpc.ServiceError) => error.code === grpc.status.RESOURCE_EXHAUSTED,
      );
    } finally {
      client.close();
    }
  });
});

describe('idle and silent connections end', () => {
  it('under a 128-descriptor limit, closes idle sockets on both ports and serves Envoy again after the idle timeout', async () => {
    const served = await spawnServe(
      { MATRYOSHKA_IDLE_TIMEOUT_MS: String(IDLE_MS) },
      { fdLimit: 128 },
    );
    const opened: Array<{ sockets: Socket[]; closed: () => number }> = [];
    const sessions: ClientHttp2Session[] = [];
    // Keepalive as Envoy's cluster config sets it: pings must not get the connection closed.
    const envoy = new EnvoyLikeClient(
      `127.0.0.1:${served.grpcPort}`,
      grpc.credentials.createInsecure(),
      {
        'grpc.keepalive_time_ms': 300,
        'grpc.keepalive_timeout_ms': 1000,
        'grpc.keepalive_permit_without_calls': 1,
      },
    );
    try {
      assert.equal(
        (await envoy.check({ sid: 'billing' })).httpStatus,
        401,
        'served before the flood',
      );
      // HTTP/2 connections that finish their handshake and then open no stream...
      for (let i = 0; i < 20; i++) sessions.push(await h2Session(served.grpcPort));
      const sessionsClosed = Promise.all(
        sessions.map((s) => new Promise<void>((resolve) => s.once('close', () => resolve()))),
      );
      // ...then more sockets than the limit on each port that never send a byte.
      opened.push(silentSockets(served.grpcPort, 150), silentSockets(served.httpPort, 150));
      await within(sessionsClosed, 15_000, 'handshaked idle HTTP/2 connections closed');
      // A new Envoy connection (and a probe) is answered once the idle sockets are gone.
      const fresh = new EnvoyLikeClient(`127.0.0.1:${served.grpcPort}`);
      try {
        await eventually(
          () =>
            fresh.check({ sid: 'billing', deadlineMs: 1000 }).then(
              (a) => a.httpStatus === 401,
              () => false,
            ),
          15_000,
          'a new Envoy connection served',
        );
      } finally {
        fresh.close();
      }
      await eventually(
        () =>
          httpStatus(served.httpPort, '/healthz').then(
            (s) => s === 200,
            () => false,
          ),
        15_000,
        '/healthz answered again',
      );
      // Once freed, every silent socket, including those left in the backlog, has been closed.
      await eventually(
        async () => opened.every((o) => o.closed() === o.sockets.length),
        15_000,
        'every silent socket closed',
      );
      // Past several idle timeouts, the keepalive connection keeps working (reconnecting when told to).
      for (let i = 0; i < 3; i++) {
        await new Promise((r) => setTimeout(r, IDLE_MS * 1.5));
        assert.equal(
          (await envoy.check({ sid: 'billing' })).httpStatus,
          401,
          `check ${i + 1} after idling`,
        );
      }
      assert.equal(served.child.exitCode, null, 'the service never crashed');
    } finally {
      envoy.close();
      for (const s of sessions) s.destroy();
      for (const o of opened) for (const s of o.sockets) s.destroy();
      await served.stop();
    }
  });
});
