/**
 * The eviction order of the connection cap (src/server/connection-guard.ts) on a real HTTP
 * listener with a cap of three: silent connections go first, then idle ones, oldest first; a
 * connection with a request in progress is never evicted, and only when all are busy is a newcomer
 * refused. No timing: each step waits for the event it expects.
 */
import assert from 'node:assert/strict';
import { type Server, createServer } from 'node:http';
import { type AddressInfo, type Socket, connect } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { guardHttpListener } from '../../src/server/connection-guard.js';

interface Peer {
  readonly name: string;
  readonly socket: Socket;
  readonly closed: Promise<void>;
  isClosed(): boolean;
  /** Resolves with the next complete response's status line. */
  response(): Promise<string>;
}

describe('connection cap: who is evicted to admit a new connection', () => {
  let server: Server;
  let port: number;
  const releases: Array<() => void> = [];
  const peers: Peer[] = [];

  before(async () => {
    server = createServer((req, res) => {
      if (req.url === '/hold') {
        releases.push(() => res.end('held\n'));
        return;
      }
      res.end('ok\n');
    });
    server.keepAliveTimeout = 60_000;
    guardHttpListener(server, { maxConnections: 3, stallMs: 60_000 });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });
  after(async () => {
    for (const release of releases) release();
    for (const p of peers) p.socket.destroy();
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  async function open(name: string): Promise<Peer> {
    const socket = connect(port, '127.0.0.1');
    socket.on('error', () => {});
    let closed = false;
    let buffered = '';
    const waiting: Array<(line: string) => void> = [];
    socket.on('data', (chunk: Buffer) => {
      buffered += chunk.toString('latin1');
      // Each response here is small: its status line is all the test reads.
      for (const match of buffered.matchAll(/HTTP\/1\.1 \d{3}[^\r]*/g)) waiting.shift()?.(match[0]);
      buffered = buffered.slice(buffered.lastIndexOf('HTTP/1.1') + 1);
    });
    const peer: Peer = {
      name,
      socket,
      closed: new Promise<void>((resolve) =>
        socket.once('close', () => {
          closed = true;
          resolve();
        }),
      ),
      isClosed: () => closed,
      response: () => new Promise<string>((resolve) => waiting.push(resolve)),
    };
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('close', () => reject(new Error(`${name} closed before connecting`)));
    });
    peers.push(peer);
    return peer;
  }

  /**
   * A request on `peer`; for /hold, resolves once the server has it (the handler parked it). The
   * response is wrapped: an async function would otherwise wait for it.
   */
  async function send(peer: Peer, path: string): Promise<{ response: Promise<string> }> {
    const response = peer.response();
    const parked = releases.length;
    peer.socket.write(`GET ${path} HTTP/1.1\r\nhost: x\r\n\r\n`);
    if (path === '/hold')
      while (releases.length === parked) await new Promise((r) => setImmediate(r));
    return { response };
  }

  /** The first of `candidates` the server closes (waits for one to close, asks no clock). */
  async function firstClosed(candidates: Peer[]): Promise<string> {
    return Promise.race(candidates.map((p) => p.closed.then(() => p.name)));
  }

  /** The server has accepted (and guarded) `peer`: a request on it is answered. */
  async function talk(peer: Peer): Promise<void> {
    const { response } = await send(peer, '/');
    assert.match(await response, /^HTTP\/1\.1 200/, `${peer.name} answered`);
  }

  it('evicts the oldest silent connection, then the oldest idle one, never a busy one; refuses only when all are busy', async () => {
    const busy = await open('busy');
    const { response: held } = await send(busy, '/hold');
    const idle = await open('idle');
    await talk(idle);
    const silent = await open('silent');

    // At the cap: a newcomer evicts the silent connection, not the idle or the busy one.
    const probe = await open('probe');
    assert.equal(await firstClosed([busy, idle, silent, probe]), 'silent');
    await talk(probe);
    assert.equal(idle.isClosed(), false, 'the idle connection stays while a silent one can go');
    assert.equal(busy.isClosed(), false);

    // Busy, idle, probe (idle now): the next newcomer evicts the oldest idle one.
    const second = await open('second');
    assert.equal(await firstClosed([busy, idle, probe, second]), 'idle');
    assert.equal(probe.isClosed(), false, 'the younger idle connection stays');
    assert.equal(
      busy.isClosed(),
      false,
      'a connection with a request in progress is never evicted',
    );
    await talk(second);

    // All three busy: a newcomer is refused, and nobody else is touched.
    const { response: held2 } = await send(probe, '/hold');
    const { response: held3 } = await send(second, '/hold');
    const refused = connect(port, '127.0.0.1', () =>
      refused.write('GET / HTTP/1.1\r\nhost: x\r\n\r\n'),
    );
    refused.on('error', () => {});
    // Closed unanswered, or (were it admitted) answered: whichever comes first, no clock.
    const fate = await new Promise<string>((resolve) => {
      refused.once('close', () => resolve('closed'));
      refused.once('data', () => resolve('answered'));
    });
    assert.equal(fate, 'closed', 'a newcomer is refused when every connection is busy');
    assert.deepEqual(
      [busy, probe, second].map((p) => p.isClosed()),
      [false, false, false],
    );
    for (const release of releases.splice(0)) release();
    for (const response of [held, held2, held3]) assert.match(await response, /^HTTP\/1\.1 200/);

    // Done with their requests, they are idle again: a newcomer is admitted by evicting the oldest.
    const last = await open('last');
    assert.equal(await firstClosed([busy, probe, second, last]), 'busy');
    await talk(last);
  });
});
