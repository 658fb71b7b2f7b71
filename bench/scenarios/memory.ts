/**
 * `memory`: BENCH_MEMORY_CHECKS Checks with distinct HS256 origin tokens, made by the load generator
 * on the fly, against a server with the default memo: how far its resident set grows.
 */
import { createHmac } from 'node:crypto';
import type { ServeContext } from '../lib/context.js';
import { fixtureServeOptions } from '../lib/fixture.js';
import { mib } from '../lib/format.js';
import { COUNTER_MARK, type LoadResult } from '../lib/load-types.js';
import { generatorConfig, runLoad } from '../lib/load-runner.js';
import { log } from '../lib/log.js';
import { type Memory, processMemory } from '../lib/proc.js';
import { checkRequest, originClaims } from '../lib/requests.js';
import { startServe, stopServer } from '../lib/servers.js';
import { encodeCheckFrame } from '../lib/wire.js';

/** Written into the JSON as `memory`: keep the fields (and their order) stable. */
export interface MemoryFigures {
  readonly checks: number;
  readonly distinctTokens: number;
  readonly tokenLength: number;
  readonly requestsPerSecond: number;
  readonly serverCpuMicrosPerCheck: number;
  readonly idle: Memory;
  readonly afterWarmup: Memory;
  readonly after: Memory;
  readonly memoEntries: number;
  readonly trace: LoadResult['memoryTrace'];
  readonly problems: {
    readonly denied: number;
    readonly grpcErrors: Record<string, number>;
    readonly transportErrors: number;
  };
}

export async function runMemory(ctx: ServeContext): Promise<MemoryFigures> {
  const { knobs, fixture } = ctx;
  const server = await startServe(ctx, 'memory', fixtureServeOptions(fixture, 'warn'));
  const header = Buffer.from(JSON.stringify({ alg: 'HS256', typ: 'JWT' })).toString('base64url');
  const now = Math.floor(Date.now() / 1000);
  const base = originClaims(3, fixture.pad);
  const payloadTemplate = JSON.stringify({
    ...base,
    iss: 'bench-hs256',
    sub: `user-${COUNTER_MARK}@example.com`,
    jti: `jti-${COUNTER_MARK}`,
    iat: now,
    exp: now + 3600,
  });
  const sample = ((n: string) => {
    const input = `${header}.${Buffer.from(payloadTemplate.split(COUNTER_MARK).join(n)).toString('base64url')}`;
    return `${input}.${createHmac('sha256', fixture.hsSecret).update(input).digest('base64url')}`;
  })('0'.repeat(COUNTER_MARK.length));
  // The generator writes each token over this placeholder: it must occur exactly once in the frame.
  const placeholder = 'P'.repeat(sample.length);
  const template = encodeCheckFrame(checkRequest(placeholder, knobs.dest, 0));
  const offset = template.indexOf(Buffer.from(placeholder, 'latin1'));
  if (offset < 0 || template.indexOf(Buffer.from(placeholder, 'latin1'), offset + 1) >= 0)
    throw new Error('memory: placeholder not found exactly once');
  log(
    `memory: ${knobs.memoryChecks} checks with distinct HS256 origin tokens (${sample.length} characters), concurrency ${knobs.concurrency}`,
  );
  const load = await runLoad(
    ctx,
    generatorConfig(
      ctx,
      'memory',
      server,
      {
        kind: 'hs256',
        frameTemplate: template.toString('base64'),
        tokenOffset: offset,
        tokenLength: sample.length,
        header,
        payloadTemplate,
        secret: fixture.hsSecret,
      },
      { maxRequests: knobs.memoryChecks, expectDepth: 1 },
    ),
  );
  const end = processMemory(server.pid);
  await stopServer(server, []);
  ctx.sink.recordProblems(load, 'memory');
  log(
    `memory: VmHWM ${mib(server.idleMemory.hwmKiB)} idle → ${mib(load.serverMemoryStart.hwmKiB)} after warm-up → ${mib(end.hwmKiB)} MiB after ${load.completed} checks (VmRSS ${mib(end.rssKiB)} MiB)`,
  );
  return {
    checks: load.completed,
    distinctTokens: load.pool.used,
    tokenLength: sample.length,
    requestsPerSecond: load.requestsPerSecond,
    serverCpuMicrosPerCheck: load.serverCpuMicrosPerCheck,
    idle: server.idleMemory,
    afterWarmup: load.serverMemoryStart,
    after: end,
    memoEntries: 20_000,
    trace: load.memoryTrace,
    problems: {
      denied: load.denied,
      grpcErrors: load.grpcErrors,
      transportErrors: load.transportErrors,
    },
  };
}
