/**
 * What the README tells a newcomer to do, done literally: a key file, a token minted from it, the
 * service started on the example registry answering for that token, `explain` saying why a token
 * of an unknown key cannot be verified; `npm start` stopped through npm's own process; a tracing
 * collector that cannot be reached warned about once and never holding the exit.
 */
import assert from 'node:assert/strict';
import { runProgramWithEnv, runProgramHere } from '../helpers/program.js';
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { type Server, type Socket, connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ROOT, spawnServe } from '../helpers/processes.js';
import { freePort } from '../helpers/redis-server.js';

const dir = mkdtempSync(join(tmpdir(), 'matryoshka-newcomer-'));
const keys = join(dir, 'keys.json');
const EXAMPLE = join(ROOT, 'examples/registry.yaml');

/** One Envoy-less forward-auth request, as the README's curl sends it. */
async function forwardAuth(port: number, sid: string, token: string): Promise<Response> {
  return fetch(`http://127.0.0.1:${port}/authz/${sid}`, {
    headers: {
      authorization: `Bearer ${token}`,
      'x-forwarded-method': 'GET',
      'x-forwarded-uri': '/',
    },
  });
}

describe('README: try it with a token of your own', () => {
  let token: string;
  before(async () => {
    const generated = await runProgramHere(['keys', 'generate', '--out', keys]);
    assert.equal(generated.code, 0, generated.stderr);
    const minted = await runProgramWithEnv(
      ['token', 'mint', '--tenant', 'demo', '--sub', 'alice', '--roles', 'reader'],
      { MATRYOSHKA_SIGNING_KEYS: keys },
    );
    assert.equal(minted.code, 0, minted.stderr);
    token = minted.stdout.trim();
  });

  it('the service started with the same key file and the example registry allows it, and mints', async () => {
    const served = await spawnServe({
      MATRYOSHKA_SIGNING_KEYS: keys,
      MATRYOSHKA_REGISTRY_FILE: EXAMPLE,
      MATRYOSHKA_AUTHZ_HTTP_PORT: '0',
    });
    try {
      const port = served.lines.find((l) => l['authz_http_port'] !== undefined)?.[
        'authz_http_port'
      ];
      assert.equal(typeof port, 'number', 'the HTTP authorization port is logged');
      const allowed = await forwardAuth(port as number, 'orders', token);
      assert.equal(allowed.status, 200);
      assert.equal(allowed.headers.get('x-auth-chain'), 'orders');
      assert.equal(allowed.headers.get('x-user-id'), 'alice');
      assert.match(allowed.headers.get('authorization') ?? '', /^Bearer ey/);
      // The example registry requires `reader` for orders: a token without it is refused.
      const bare = (
        await runProgramWithEnv(['token', 'mint', '--tenant', 'demo', '--sub', 'bob'], {
          MATRYOSHKA_SIGNING_KEYS: keys,
        })
      ).stdout.trim();
      assert.equal((await forwardAuth(port as number, 'orders', bare)).status, 403);
    } finally {
      await served.stop();
    }
  });

  it('explain with the key file allows; without it, it says bad_signature and why', async () => {
    const withKeys = await runProgramWithEnv(['explain', '--sid', 'orders', token], {
      MATRYOSHKA_SIGNING_KEYS: keys,
      MATRYOSHKA_REGISTRY_FILE: EXAMPLE,
    });
    assert.equal(withKeys.code, 0, withKeys.stderr + withKeys.stdout);
    assert.match(withKeys.stdout, /decision\s+allow/);

    const without = await runProgramWithEnv(['explain', '--sid', 'orders', token], {
      MATRYOSHKA_REGISTRY_FILE: EXAMPLE,
    });
    assert.equal(without.code, 1, without.stderr);
    assert.match(without.stdout, /refused: bad_signature/);
    assert.match(without.stdout, /hint: .*MATRYOSHKA_SIGNING_KEYS is not set/);
    const json = JSON.parse(
      (
        await runProgramWithEnv(['explain', '--json', '--sid', 'orders', token], {
          MATRYOSHKA_REGISTRY_FILE: EXAMPLE,
        })
      ).stdout,
    ) as { hint?: string };
    assert.match(json.hint ?? '', /MATRYOSHKA_SIGNING_KEYS/);
  });
});

describe('npm start', () => {
  it('stops with the signal sent to npm’s own process', async () => {
    const npm = spawn('npm', ['start', '--ignore-scripts', '--silent'], {
      cwd: ROOT,
      env: {
        PATH: process.env['PATH'] ?? '',
        HOME: process.env['HOME'] ?? dir,
        MATRYOSHKA_GRPC_PORT: '0',
        MATRYOSHKA_HTTP_PORT: '0',
        MATRYOSHKA_HOST: '127.0.0.1',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
      // Its own process group, so that whatever is left of it can be ended by the group's id.
      detached: true,
    });
    let out = '';
    const port = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`not serving:\n${out}`)), 20_000);
      npm.stdout.on('data', (chunk: Buffer) => {
        out += chunk.toString();
        const match = /"grpc_port":(\d+)/.exec(out);
        if (match) {
          clearTimeout(timer);
          resolve(Number(match[1]));
        }
      });
    });
    // 'close': every process holding npm's output pipe, the server included, has exited.
    const closed = new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), 15_000);
      npm.once('close', () => {
        clearTimeout(timer);
        resolve(true);
      });
    });
    npm.kill('SIGTERM');
    const stopped = await closed;
    if (!stopped) process.kill(-(npm.pid as number), 'SIGKILL');
    assert.ok(stopped, 'the server exited within 15 s of the SIGTERM sent to npm');
    // The server drained and said so, and its port no longer accepts connections.
    assert.match(out, /"msg":"matryoshka-authz stopped"/);
    const refused = await new Promise<boolean>((resolve) => {
      const socket: Socket = connect(port, '127.0.0.1');
      socket.once('connect', () => {
        socket.destroy();
        resolve(false);
      });
      socket.once('error', () => resolve(true));
    });
    assert.ok(refused, 'nothing listens on the gRPC port any more');
  });
});

describe('an OTLP endpoint that cannot be reached', () => {
  /** Accepts connections and never answers: a collector that hangs. */
  let blackhole: Server;
  let blackholePort: number;
  const sockets: Socket[] = [];
  before(async () => {
    blackhole = createServer((socket) => sockets.push(socket));
    blackholePort = await freePort();
    await new Promise<void>((resolve) => blackhole.listen(blackholePort, '127.0.0.1', resolve));
  });
  after(() => {
    for (const socket of sockets) socket.destroy();
    blackhole.close();
  });

  async function checksThenStop(endpoint: string, batches: number) {
    const served = await spawnServe({
      OTEL_EXPORTER_OTLP_ENDPOINT: endpoint,
      OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
      OTEL_BSP_SCHEDULE_DELAY: '100',
      MATRYOSHKA_AUTHZ_HTTP_PORT: '0',
      MATRYOSHKA_SHUTDOWN_GRACE_MS: '1000',
    });
    const port = served.lines.find((l) => l['authz_http_port'] !== undefined)?.[
      'authz_http_port'
    ] as number;
    for (let batch = 0; batch < batches; batch++) {
      await forwardAuth(port, 'orders', 'x.y.z');
      await new Promise((resolve) => setTimeout(resolve, 400));
    }
    const started = Date.now();
    const code = await served.stop();
    return { code, stoppedInMs: Date.now() - started, lines: served.lines };
  }

  it('refused: one warning however many exports fail', async () => {
    const closed = await freePort();
    const run = await checksThenStop(`http://127.0.0.1:${closed}`, 4);
    assert.equal(run.code, 0);
    const warnings = run.lines.filter((l) =>
      String(l['msg']).startsWith('spans cannot be exported'),
    );
    assert.equal(warnings.length, 1, JSON.stringify(run.lines.map((l) => l['msg'])));
  });

  it('hanging: the exit is not held for the exporter’s own timeout (10 s)', async () => {
    const run = await checksThenStop(`http://127.0.0.1:${blackholePort}`, 1);
    assert.equal(run.code, 0);
    // Grace 1 s, then at most what is left of it for the flush: far below the exporter's 10 s.
    assert.ok(run.stoppedInMs < 7_000, `stopped in ${run.stoppedInMs} ms`);
  });
});
