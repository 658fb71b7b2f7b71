/**
 * h2load (nghttp2's C load generator) sending one CheckRequest, byte for byte the same each time,
 * over gRPC framing to one server; the server's CPU over exactly h2load's measured run, from /proc.
 * A C generator leaves the server nearly all of the second core; the Node one (bench/load.ts) is
 * the fallback when h2load is not installed.
 */
import { execFileSync, spawn } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { BenchContext } from './context.js';
import { CHECK_PATH } from './h2grpc.js';
import { machineJiffies, processCpuMicros } from './proc.js';

export function h2loadInstalled(): boolean {
  try {
    execFileSync('h2load', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

export interface H2loadRun {
  readonly seconds: number;
  readonly done: number;
  readonly ok2xx: number;
  readonly failed: number;
  readonly requestsPerSecond: number;
  /** Server utime + stime over the run ÷ requests done. */
  readonly serverCpuMicrosPerCheck: number;
  readonly serverCores: number;
  /** Busy cores of the whole machine minus the server's: the generator and everyone else. */
  readonly otherCores: number;
  readonly loadAverage: string;
}

export interface H2loadOptions {
  readonly clients: number;
  readonly streams: number;
  readonly seconds: number;
  readonly timeoutMs: number;
  /** Send exactly this many (every one answered before h2load exits) instead of running `seconds`. */
  readonly requests?: number;
}

function parse(output: string): { done: number; ok2xx: number; failed: number } {
  const req =
    /requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed/.exec(output);
  const codes = /status codes: (\d+) 2xx/.exec(output);
  if (req === null || codes === null) throw new Error(`h2load: unreadable output: ${output}`);
  return { done: Number(req[3]), ok2xx: Number(codes[1]), failed: Number(req[5]) };
}

function h2load(
  ctx: BenchContext,
  address: string,
  body: string,
  options: H2loadOptions,
): Promise<string> {
  const args = [
    '-c',
    String(options.clients),
    '-m',
    String(options.streams),
    '-t',
    '1',
    ...(options.requests !== undefined
      ? ['-n', String(options.requests)]
      : ['-D', String(options.seconds)]),
    '-d',
    body,
    '-H',
    'content-type: application/grpc',
    '-H',
    'te: trailers',
    ...(options.timeoutMs > 0 ? ['-H', `grpc-timeout: ${options.timeoutMs}m`] : []),
    `http://${address}${CHECK_PATH}`,
  ];
  return new Promise((resolve, reject) => {
    const child = ctx.children.track(spawn('h2load', args, { stdio: ['ignore', 'pipe', 'pipe'] }));
    let out = '';
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
    });
    child.stderr?.on('data', (d: Buffer) => {
      out += d.toString();
    });
    child.once('error', reject);
    child.once('exit', (code) =>
      code === 0 ? resolve(out) : reject(new Error(`h2load exited ${code}: ${out.slice(-2000)}`)),
    );
  });
}

/** `frame`: the 5-byte gRPC prefix + the CheckRequest. A short warm-up run first, then the measured one. */
export async function runH2load(
  ctx: BenchContext,
  address: string,
  serverPid: number,
  frame: Buffer,
  options: H2loadOptions,
  warmupSeconds: number,
): Promise<H2loadRun> {
  const body = join(ctx.workDir, `h2load-body-${serverPid}.bin`);
  writeFileSync(body, frame);
  try {
    // The warm-up also sizes the measured run: a request count, so that every request counted was
    // answered and every answer's CPU falls inside the /proc readings (a timed run stops counting
    // with requests still in flight).
    let requests = options.requests ?? Math.max(200, 300 * options.seconds);
    if (warmupSeconds > 0) {
      const t = performance.now();
      const warm = parse(await h2load(ctx, address, body, { ...options, seconds: warmupSeconds }));
      requests =
        options.requests ??
        Math.max(200, Math.round((warm.done / ((performance.now() - t) / 1000)) * options.seconds));
    }
    const nproc = ctx.machine.nproc;
    const cpu0 = processCpuMicros(serverPid);
    const m0 = machineJiffies();
    const t0 = performance.now();
    const out = await h2load(ctx, address, body, { ...options, requests });
    const seconds = (performance.now() - t0) / 1000;
    const cpu1 = processCpuMicros(serverPid);
    const m1 = machineJiffies();
    const { done, ok2xx, failed } = parse(out);
    const serverCpu = cpu1 - cpu0;
    const machineCores =
      m1.total > m0.total ? ((m1.busy - m0.busy) / (m1.total - m0.total)) * nproc : 0;
    return {
      seconds,
      done,
      ok2xx,
      failed,
      requestsPerSecond: done / seconds,
      serverCpuMicrosPerCheck: done > 0 ? serverCpu / done : Number.NaN,
      serverCores: serverCpu / 1e6 / seconds,
      otherCores: Math.max(0, machineCores - serverCpu / 1e6 / seconds),
      loadAverage: readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' '),
    };
  } finally {
    rmSync(body, { force: true });
  }
}
