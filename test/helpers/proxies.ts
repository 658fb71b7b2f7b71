/**
 * Real nginx and Caddy processes (Debian packages, see .ci/run) on free loopback ports, each run
 * from the shipped deploy/ config with only addresses and paths templated in, in its own temp dir
 * (own pid, logs, temp paths; never the system service). Plus the small upstream they front.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { type IncomingMessage, type Server, createServer, request } from 'node:http';
import { type AddressInfo, connect, createServer as createNetServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT, eventually } from './processes.js';

export interface RunningProxy {
  readonly name: string;
  readonly port: number;
  readonly logs: () => string;
  stop(): Promise<void>;
}

export async function freePort(): Promise<number> {
  const server = createNetServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

const accepts = (port: number): Promise<boolean> =>
  new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });

function replaceAll(text: string, pairs: ReadonlyArray<readonly [string, string]>): string {
  let out = text;
  for (const [from, to] of pairs) {
    if (!out.includes(from)) throw new Error(`shipped config no longer contains ${from}`);
    out = out.split(from).join(to);
  }
  return out;
}

function startProcess(
  name: string,
  dir: string,
  port: number,
  command: string,
  args: string[],
  env: Record<string, string>,
): Promise<RunningProxy> {
  const out: string[] = [];
  const child: ChildProcess = spawn(command, args, {
    env: { PATH: process.env['PATH'] ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout?.on('data', (c: Buffer) => out.push(c.toString()));
  child.stderr?.on('data', (c: Buffer) => out.push(c.toString()));
  const logs = (): string => {
    let files = '';
    for (const f of ['error.log']) {
      try {
        files += readFileSync(join(dir, f), 'utf8');
      } catch {}
    }
    return out.join('') + files;
  };
  const stop = (): Promise<void> =>
    new Promise((resolve) => {
      const done = (): void => {
        rmSync(dir, { recursive: true, force: true });
        resolve();
      };
      if (child.exitCode !== null || child.signalCode !== null) return done();
      child.once('exit', done);
      child.kill('SIGTERM');
    });
  return eventually(
    async () => {
      if (child.exitCode !== null) throw new Error(`${name} exited: ${logs()}`);
      return accepts(port);
    },
    15_000,
    `${name} listening`,
  ).then(() => ({ name, port, logs, stop }));
}

export interface ProxyTargets {
  /** Where matryoshka-authz's HTTP authorizer listens. */
  readonly authzPort: number;
  /** Where the `orders` and `billing` upstreams listen (one echo server can be both). */
  readonly upstreamPort: number;
}

/** deploy/nginx/authz.conf and its include, as shipped, with loopback addresses. */
export async function startNginx(targets: ProxyTargets): Promise<RunningProxy> {
  const dir = mkdtempSync(join(tmpdir(), 'matryoshka-nginx-'));
  mkdirSync(join(dir, 'tmp'), { mode: 0o777 });
  const port = await freePort();
  const include = join(dir, 'matryoshka-authz-headers.conf');
  writeFileSync(include, readFileSync(join(ROOT, 'deploy/nginx/matryoshka-authz-headers.conf')));
  const server = replaceAll(readFileSync(join(ROOT, 'deploy/nginx/authz.conf'), 'utf8'), [
    ['matryoshka-authz:9193', `127.0.0.1:${targets.authzPort}`],
    ['orders:8080', `127.0.0.1:${targets.upstreamPort}`],
    ['billing:8080', `127.0.0.1:${targets.upstreamPort}`],
    ['listen 8080;', `listen 127.0.0.1:${port};`],
    ['/etc/nginx/matryoshka-authz-headers.conf', include],
  ]);
  writeFileSync(join(dir, 'authz.conf'), server);
  const t = join(dir, 'tmp');
  writeFileSync(
    join(dir, 'nginx.conf'),
    `pid ${dir}/nginx.pid;\nerror_log ${dir}/error.log warn;\nworker_processes 1;\nevents { worker_connections 256; }\nhttp {\n  access_log off;\n  client_body_temp_path ${t};\n  proxy_temp_path ${t};\n  fastcgi_temp_path ${t};\n  uwsgi_temp_path ${t};\n  scgi_temp_path ${t};\n  include ${dir}/authz.conf;\n}\n`,
  );
  return startProcess(
    'nginx',
    dir,
    port,
    'nginx',
    ['-p', dir, '-c', join(dir, 'nginx.conf'), '-g', 'daemon off;'],
    {},
  );
}

/** deploy/caddy/Caddyfile as shipped, with loopback addresses. */
export async function startCaddy(targets: ProxyTargets): Promise<RunningProxy> {
  const dir = mkdtempSync(join(tmpdir(), 'matryoshka-caddy-'));
  const port = await freePort();
  const file = replaceAll(readFileSync(join(ROOT, 'deploy/caddy/Caddyfile'), 'utf8'), [
    ['matryoshka-authz:9193', `127.0.0.1:${targets.authzPort}`],
    ['orders:8080', `127.0.0.1:${targets.upstreamPort}`],
    ['billing:8080', `127.0.0.1:${targets.upstreamPort}`],
    ['\n:8080 {', `\nhttp://127.0.0.1:${port} {`],
  ]);
  writeFileSync(join(dir, 'Caddyfile'), file);
  return startProcess(
    'caddy',
    dir,
    port,
    'caddy',
    ['run', '--config', join(dir, 'Caddyfile'), '--adapter', 'caddyfile'],
    { HOME: dir, XDG_DATA_HOME: dir, XDG_CONFIG_HOME: dir },
  );
}

export interface Reply {
  readonly status: number;
  readonly headers: IncomingMessage['headers'];
  readonly body: string;
}

export function get(
  port: number,
  path: string,
  headers: Record<string, string> = {},
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          body: Buffer.concat(chunks).toString(),
        }),
      );
    });
    req.setTimeout(15_000, () => req.destroy(new Error('request timed out')));
    req.on('error', reject);
    req.end();
  });
}

/** What one echo hop saw, and what its own outgoing call (if asked for one) came back with. */
export interface EchoReply {
  readonly path: string;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly next?: { readonly status: number; readonly body: string };
}

/**
 * The upstream behind the proxy. It echoes the headers it received; with `x-test-next: /p1,/p2`
 * it first calls the proxy at /p1 (carrying `x-test-next: /p2`) with the token it was given and
 * spoofed identity headers of its own, like a service making its outgoing call.
 */
export async function startEcho(): Promise<{
  port: number;
  hits: () => number;
  setProxy(port: number): void;
  close(): Promise<void>;
}> {
  let proxyPort = 0;
  let hits = 0;
  const server: Server = createServer((req, res) => {
    hits++;
    void (async () => {
      const nextList = String(req.headers['x-test-next'] ?? '')
        .split(',')
        .filter((p) => p.length > 0);
      let next: EchoReply['next'];
      const [first, ...rest] = nextList;
      if (first !== undefined) {
        const reply = await get(proxyPort, first, {
          authorization: String(req.headers['authorization'] ?? ''),
          'x-user-id': 'mallory',
          'x-tenant-id': 'evil',
          ...(rest.length > 0 ? { 'x-test-next': rest.join(',') } : {}),
        });
        next = { status: reply.status, body: reply.body };
      }
      const body = JSON.stringify({ path: req.url, headers: req.headers, next });
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(body);
    })();
  });
  return {
    ...(await listenLoopback(server)),
    hits: () => hits,
    setProxy: (port) => {
      proxyPort = port;
    },
  };
}

/** `server` listening on a free loopback port; closing it also cuts the connections kept alive. */
export async function listenLoopback(
  server: Server,
): Promise<{ port: number; close(): Promise<void> }> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** The proxies whose shipped configs the suites run in front of the service, by name. */
export const SHIPPED_PROXIES = [
  ['nginx', startNginx],
  ['caddy', startCaddy],
] as const;
