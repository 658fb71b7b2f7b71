import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
export const MAIN = join(ROOT, 'dist/src/cli/main.js');
export const scripts = (
  JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
    scripts: Record<string, string>;
  }
).scripts;

const baseEnv = (): Record<string, string> => ({ PATH: process.env['PATH'] ?? '' });

/** Run the CLI to completion. */
export function runCli(
  args: string[],
  options: { input?: string; env?: Record<string, string> } = {},
) {
  const result = spawnSync(process.execPath, [MAIN, ...args], {
    input: options.input ?? '',
    env: { ...baseEnv(), ...options.env },
    encoding: 'utf8',
    timeout: 20_000,
  });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

/**
 * Run the CLI to completion without blocking this process: for commands that talk to servers
 * the test itself runs (a LocalIssuer's JWKS), which spawnSync would leave unanswered.
 */
export function runCliAsync(
  args: string[],
  options: { env?: Record<string, string> } = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [MAIN, ...args], {
      env: { ...baseEnv(), ...options.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString('utf8');
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString('utf8');
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

export interface Served {
  readonly child: ChildProcess;
  readonly lines: Array<Record<string, unknown>>;
  readonly grpcPort: number;
  readonly httpPort: number;
  stop(): Promise<number | null>;
}

export interface ServeOptions {
  /** Run under this RLIMIT_NOFILE (soft and hard), through util-linux `prlimit`, which execs node in place. */
  readonly fdLimit?: number;
}

/** Start `serve` exactly as `npm start` does (after its build step) and wait for the ports it logs. */
export function spawnServe(
  env: Record<string, string>,
  options: ServeOptions = {},
): Promise<Served> {
  // `exec` makes the shell npm runs the script in become node, so npm's signals reach it.
  const [node, script, ...args] = (scripts['start'] ?? '').replace(/^exec /, '').split(' ');
  assert.equal(node, 'node');
  const command = [process.execPath, join(ROOT, script ?? ''), ...args];
  const [file, ...argv] =
    options.fdLimit === undefined
      ? command
      : ['prlimit', `--nofile=${options.fdLimit}:${options.fdLimit}`, ...command];
  const child = spawn(file ?? process.execPath, argv, {
    env: {
      ...baseEnv(),
      MATRYOSHKA_GRPC_PORT: '0',
      MATRYOSHKA_HTTP_PORT: '0',
      MATRYOSHKA_HOST: '127.0.0.1',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: Array<Record<string, unknown>> = [];
  const stop = (): Promise<number | null> =>
    new Promise((resolve) => {
      if (child.exitCode !== null) return resolve(child.exitCode);
      child.once('exit', (code) => resolve(code));
      child.kill('SIGTERM');
    });
  return new Promise((resolve, reject) => {
    let buffered = '';
    const timer = setTimeout(() => reject(new Error('serve did not log its ports')), 15_000);
    child.stdout?.on('data', (chunk: Buffer) => {
      buffered += chunk.toString();
      for (let nl = buffered.indexOf('\n'); nl >= 0; nl = buffered.indexOf('\n')) {
        const line = JSON.parse(buffered.slice(0, nl)) as Record<string, unknown>;
        buffered = buffered.slice(nl + 1);
        lines.push(line);
        if (line['msg'] === 'matryoshka-authz serving') {
          clearTimeout(timer);
          resolve({
            child,
            lines,
            grpcPort: line['grpc_port'] as number,
            httpPort: line['http_port'] as number,
            stop,
          });
        }
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`serve exited with ${code}`));
    });
  });
}

/** Poll `probe` until it returns true or `timeoutMs` passes; returns how long it took. */
export async function eventually(
  probe: () => Promise<boolean>,
  timeoutMs: number,
  what: string,
): Promise<number> {
  const started = Date.now();
  for (;;) {
    if (await probe()) return Date.now() - started;
    if (Date.now() - started > timeoutMs) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
