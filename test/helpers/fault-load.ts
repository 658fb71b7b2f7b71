import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SignJWT, decodeJwt, decodeProtectedHeader, generateKeyPair } from 'jose';
import { type CheckResult, EnvoyLikeClient } from '../../src/demo/envoy-client.js';
import { type Served, spawnServe } from './processes.js';
import { runProgramWithEnv } from './program.js';
import { withPayload } from './tokens.js';

export const sleep = (ms: number): Promise<void> =>
  new Promise((resolve) => setTimeout(resolve, ms));
export const b64u = (value: string): string => Buffer.from(value).toString('base64url');

export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[
    Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))
  ] as number;
}
export const round = (n: number): number => Math.round(n * 10) / 10;

export type Expect = 'allow' | 'deny';
export interface Job {
  readonly kind: string;
  readonly expect: Expect;
  readonly token: string;
  readonly tag?: string;
}
export interface Sample {
  readonly job: Job;
  readonly sentAt: number;
  readonly answeredAt: number;
  readonly result?: CheckResult;
  readonly error?: string;
}

/**
 * `workers` concurrent senders for at most `durationMs` and at most `maxRequests` in all; every
 * request and its answer (or RPC error) is recorded.
 */
export async function loadLoop(options: {
  client: EnvoyLikeClient;
  workers: number;
  durationMs: number;
  maxRequests: number;
  next: (n: number) => Job | Promise<Job>;
  sid?: string;
}): Promise<Sample[]> {
  const samples: Sample[] = [];
  const stopAt = Date.now() + options.durationMs;
  let issued = 0;
  const worker = async (): Promise<void> => {
    while (Date.now() < stopAt && issued < options.maxRequests) {
      const job = await options.next(issued++);
      const sentAt = Date.now();
      try {
        const result = await options.client.check({
          token: job.token,
          sid: options.sid ?? 'A',
          deadlineMs: 5000,
        });
        samples.push({ job, sentAt, answeredAt: Date.now(), result });
      } catch (error) {
        samples.push({ job, sentAt, answeredAt: Date.now(), error: (error as Error).message });
      }
    }
  };
  await Promise.all(Array.from({ length: options.workers }, worker));
  return samples;
}

export interface Tally {
  total: number;
  wrongAllows: number;
  wrongDenials: number;
  rpcErrors: number;
  byStatus: Record<string, number>;
}

export function tally(samples: readonly Sample[]): Tally {
  const t: Tally = {
    total: samples.length,
    wrongAllows: 0,
    wrongDenials: 0,
    rpcErrors: 0,
    byStatus: {},
  };
  for (const s of samples) {
    if (s.result === undefined) {
      t.rpcErrors++;
      continue;
    }
    const key = `${s.job.kind}:${s.result.httpStatus}`;
    t.byStatus[key] = (t.byStatus[key] ?? 0) + 1;
    if (s.job.expect === 'deny' && s.result.allowed) t.wrongAllows++;
    if (s.job.expect === 'allow' && !s.result.allowed) t.wrongDenials++;
  }
  return t;
}

/** A signing key that is not the issuer's, to forge tokens naming the issuer's `kid`. */
export const attackerKey = generateKeyPair('ES256');

/** Ways to tamper with a valid token; none of them may ever be allowed. `kid` stays known on purpose. */
export async function tamperings(token: string): Promise<Array<{ tag: string; token: string }>> {
  const [h, p, s] = token.split('.') as [string, string, string];
  const i = Math.floor(s.length / 2);
  const flipped = `${h}.${p}.${s.slice(0, i)}${s[i] === 'A' ? 'B' : 'A'}${s.slice(i + 1)}`;
  const claims = decodeJwt(token);
  const header = decodeProtectedHeader(token);
  const escalated = withPayload(token, { ...claims, sub: 'mallory', roles: ['admin'] });
  const none = `${b64u(JSON.stringify({ alg: 'none', typ: 'JWT', kid: header.kid }))}.${p}.`;
  const truncated = `${h}.${p}.${s.slice(0, s.length - 8)}`;
  const forged = await new SignJWT({ ...claims, sub: 'mallory' })
    .setProtectedHeader({ alg: 'ES256', kid: header.kid as string, typ: 'JWT' })
    .sign((await attackerKey).privateKey);
  return [
    { tag: 'flipped-signature', token: flipped },
    { tag: 'escalated-payload', token: escalated },
    { tag: 'alg-none', token: none },
    { tag: 'truncated-signature', token: truncated },
    { tag: 'forged-with-known-kid', token: forged },
  ];
}

/** The CLI without blocking this process (the load loop keeps running while it works). */
export const cliAsync = runProgramWithEnv;

/** Peak RSS growth of this process while `task` runs, sampled every 5 ms. */
export async function peakRssGrowth<T>(
  task: () => Promise<T>,
): Promise<{ result: T; growthMb: number; baselineMb: number }> {
  const baseline = process.memoryUsage().rss;
  let peak = baseline;
  const timer = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage().rss);
  }, 5);
  try {
    const result = await task();
    peak = Math.max(peak, process.memoryUsage().rss);
    return {
      result,
      growthMb: (peak - baseline) / 1024 / 1024,
      baselineMb: baseline / 1024 / 1024,
    };
  } finally {
    clearInterval(timer);
  }
}

/**
 * `workers` sequential senders of checks for tokens that must be allowed: at least `min` checks,
 * then more while `busy()` (another request is in flight), never more than `max`.
 */
export async function burst(
  client: EnvoyLikeClient,
  tokens: readonly string[],
  options: { workers: number; min: number; max: number; busy: () => boolean },
): Promise<{ latencies: number[]; allowed: boolean[] }> {
  const latencies: number[] = [];
  const allowed: boolean[] = [];
  let sent = 0;
  const worker = async (): Promise<void> => {
    while ((sent < options.min || options.busy()) && sent < options.max) {
      const token = tokens[sent++ % tokens.length] as string;
      const started = performance.now();
      const result = await client.check({ token, sid: 'A', deadlineMs: 2000 });
      latencies.push(performance.now() - started);
      allowed.push(result.allowed);
    }
  };
  await Promise.all(Array.from({ length: options.workers }, worker));
  return { latencies, allowed };
}

export interface SpawnedService {
  readonly served: Served;
  readonly client: EnvoyLikeClient;
  stop(): Promise<void>;
}

/** `serve` in its own process (as `npm start` runs it), embedded registry from a YAML file. */
export async function serveWithRegistry(
  issuers: Array<{ issuer: string; jwks_uri: string }>,
  env: Record<string, string>,
): Promise<SpawnedService> {
  const dir = mkdtempSync(join(tmpdir(), 'matryoshka-faults-'));
  const file = join(dir, 'registry.yaml');
  writeFileSync(
    file,
    `issuers:\n${issuers.map((i) => `  - issuer: ${i.issuer}\n    tenant: acme\n    jwks_uri: ${i.jwks_uri}\n`).join('')}`,
  );
  const served = await spawnServe({
    MATRYOSHKA_REGISTRY_FILE: file,
    MATRYOSHKA_ALLOW_INSECURE_ISSUERS: 'true',
    LOG_LEVEL: 'info',
    ...env,
  });
  const client = new EnvoyLikeClient(`127.0.0.1:${served.grpcPort}`);
  return {
    served,
    client,
    stop: async () => {
      client.close();
      await served.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
