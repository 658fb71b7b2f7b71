/** Start and stop the servers under test: ours (`serve`, spawned) and the no-op (forked). */
import { type ChildProcess, fork, spawn } from 'node:child_process';
import { appendFileSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { get as httpGet } from 'node:http';
import { type AddressInfo, createServer } from 'node:net';
import { join } from 'node:path';
import { drainLines, stderrTail, stopChild, waitForLine } from './children.js';
import type { BenchContext } from './context.js';
import { deepestDepth, isProfiled } from './knobs.js';
import { log } from './log.js';
import { NOOP_SCRIPT, ROOT, SERVE_MAIN } from './paths.js';
import { type Memory, processMemory } from './proc.js';
import { type ProfileSummary, summarizeProfile } from './profile.js';
import type { ServeOptions } from './serve-options.js';

export interface RunningServer {
  readonly label: string;
  readonly child: ChildProcess;
  readonly pid: number;
  readonly address: string;
  /** The service's HTTP port (metrics), when it is ours. */
  readonly httpPort?: number;
  /** `host:port` of its HTTP authorization listener, when started with `authzHttp`. */
  readonly authzHttpAddress?: string;
  /** After start, before any load. */
  idleMemory: Memory;
  /** Log lines at warn or above (at LOG_LEVEL=warn, any line at all is one). */
  readonly problems: string[];
  problemCount: number;
  logLines: number;
  readonly profileDir: string | undefined;
}

/** A window of a run on CLOCK_MONOTONIC (µs): the part of a CPU profile worth summarising. */
export interface MonotonicWindow {
  readonly start: number;
  readonly end: number;
}

export async function startServe(
  ctx: BenchContext,
  label: string,
  options: ServeOptions,
): Promise<RunningServer> {
  const { knobs } = ctx;
  const profileDir = isProfiled(knobs, label)
    ? join(ROOT, 'bench/results/profiles', label)
    : undefined;
  if (profileDir !== undefined) {
    rmSync(profileDir, { recursive: true, force: true });
    mkdirSync(profileDir, { recursive: true });
  }
  const grpcPort = await freePort();
  const httpPort = await freePort();
  // Not 0: at LOG_LEVEL=warn the serving line (which reports `authz_http_port`) is not written.
  const authzHttpPort = options.authzHttp === true ? await freePort() : undefined;
  const child = ctx.children.track(
    spawn(
      process.execPath,
      [
        ...(profileDir !== undefined ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : []),
        ...knobs.serveNodeArgs,
        ...(options.nodeArgs ?? []),
        options.serveMain ?? SERVE_MAIN,
        'serve',
      ],
      {
        env: {
          PATH: process.env['PATH'] ?? '',
          MATRYOSHKA_GRPC_PORT: String(grpcPort),
          MATRYOSHKA_HTTP_PORT: String(httpPort),
          MATRYOSHKA_HOST: '127.0.0.1',
          ...(options.registryFile !== undefined
            ? { MATRYOSHKA_REGISTRY_FILE: options.registryFile }
            : {}),
          MATRYOSHKA_ALLOW_INSECURE_ISSUERS: 'true',
          // Depth-8 requests are answered with a depth-9 token: one above the default cap of 8.
          MATRYOSHKA_MAX_DEPTH: String(Math.max(8, deepestDepth(knobs) + 1)),
          // Pools are built before their run; minted levels must outlive the run (default 120 s).
          MATRYOSHKA_TOKEN_TTL: '3600',
          LOG_LEVEL: options.logLevel,
          BENCH_HS_SECRET: options.hsSecret,
          ...(options.memoEntries !== undefined
            ? { MATRYOSHKA_MEMO_ENTRIES: String(options.memoEntries) }
            : {}),
          ...(authzHttpPort !== undefined
            ? { MATRYOSHKA_AUTHZ_HTTP_PORT: String(authzHttpPort) }
            : {}),
          ...(options.signingKeysFile !== undefined
            ? { MATRYOSHKA_SIGNING_KEYS: options.signingKeysFile }
            : {}),
          ...options.env,
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    ),
  );
  const server: RunningServer = {
    label,
    child,
    pid: child.pid as number,
    address: `127.0.0.1:${grpcPort}`,
    httpPort,
    ...(authzHttpPort !== undefined ? { authzHttpAddress: `127.0.0.1:${authzHttpPort}` } : {}),
    idleMemory: { hwmKiB: NaN, rssKiB: NaN },
    problems: [],
    problemCount: 0,
    logLines: 0,
    profileDir,
  };
  const rawLog =
    knobs.serveNodeArgs.length > 0
      ? join(ROOT, 'bench/results', `serve-${label.replace(/[^A-Za-z0-9@%-]+/g, '_')}.log`)
      : undefined;
  if (rawLog !== undefined) writeFileSync(rawLog, '');
  drainLines(
    child,
    (line) => {
      server.logLines++;
      if (typeof line['level'] === 'number' && line['level'] >= 40) {
        server.problemCount++;
        if (server.problems.length < 10) server.problems.push(JSON.stringify(line).slice(0, 400));
      }
    },
    (text) => {
      if (rawLog !== undefined) appendFileSync(rawLog, `${text}\n`);
    },
  );
  // At LOG_LEVEL=warn the service does not log its ports: give it free ones and poll /readyz.
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null)
      throw new Error(
        `serve (${label}) exited (${child.exitCode ?? child.signalCode}): ${stderrTail(child)}`,
      );
    if (await isReady(httpPort)) break;
    if (Date.now() > deadline)
      throw new Error(`serve (${label}) was not ready within 20 s: ${stderrTail(child)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  server.idleMemory = processMemory(server.pid);
  return server;
}

export async function startNoop(
  ctx: BenchContext,
  label: string,
  forwardTokenLength: number,
  depth: number,
): Promise<RunningServer> {
  const child = ctx.children.track(
    fork(NOOP_SCRIPT, [], {
      env: {
        PATH: process.env['PATH'] ?? '',
        NOOP_FORWARD_TOKEN_LENGTH: String(forwardTokenLength),
        NOOP_DEPTH: String(depth),
      },
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      execArgv: [],
    }),
  );
  const serving = await waitForLine(child, (l) => l['msg'] === 'noop serving', label);
  const pid = child.pid as number;
  return {
    label,
    child,
    pid,
    address: `127.0.0.1:${serving['grpc_port'] as number}`,
    idleMemory: processMemory(pid),
    problems: [],
    problemCount: 0,
    logLines: 0,
    profileDir: undefined,
  };
}

/** Stop a server; when it ran profiled, summarise its profile over each of `windows`. */
export async function stopServer(
  server: RunningServer,
  windows: readonly MonotonicWindow[],
): Promise<ProfileSummary[] | undefined> {
  if (server.child.connected) server.child.disconnect();
  await stopChild(server.child);
  if (server.profileDir === undefined) return undefined;
  const files = readdirSync(server.profileDir).filter((f) => f.endsWith('.cpuprofile'));
  if (files.length === 0) {
    log(`${server.label}: no .cpuprofile was written`);
    return undefined;
  }
  const file = join(server.profileDir, files[0] as string);
  return windows.map((w) => summarizeProfile(file, 25, { fromUs: w.start, toUs: w.end }));
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

function isReady(httpPort: number): Promise<boolean> {
  return new Promise((resolve) => {
    const req = httpGet(
      { host: '127.0.0.1', port: httpPort, path: '/readyz', timeout: 1000 },
      (res) => {
        res.resume();
        resolve(res.statusCode === 200);
      },
    );
    req.on('error', () => resolve(false));
    req.on('timeout', () => {
      req.destroy();
      resolve(false);
    });
  });
}
