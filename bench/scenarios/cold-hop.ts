/**
 * `cold` (issue 25): the real hop — a replica that has not seen the token. One CheckRequest per
 * depth (0, 1, 4, 8; `BENCH_COLD_DEPTHS`), byte for byte the same each request, against a server
 * with its memo off (`MATRYOSHKA_MEMO_ENTRIES=0`), the chain minted beforehand by another replica
 * sharing its keys, the chain form left to the service's default. Driven by h2load when installed
 * (the Node generator otherwise); the no-op and every depth are measured in interleaved rounds on
 * servers started together, so drift cancels out of the ratios. Then each depth again on a
 * profiled server (`node --cpu-prof` and a preload counting signatures), charged to pipeline steps;
 * then the tail: open loop at half the deepest depth's rate, ours against a size-matched no-op.
 * Prints its own table; writes bench/results/cold-hop.json.
 */
import { mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ServeContext } from '../lib/context.js';
import { fixtureServeOptions } from '../lib/fixture.js';
import { cryptoFloor, quickFloor } from '../lib/floor.js';
import { GrpcH2Pool } from '../lib/h2grpc.js';
import { h2loadInstalled, runH2load } from '../lib/h2load.js';
import { generatorConfig, runLoad } from '../lib/load-runner.js';
import type { LoadResult } from '../lib/load-types.js';
import { log } from '../lib/log.js';
import { ROOT } from '../lib/paths.js';
import { innerChain } from '../lib/pools.js';
import { type StepProfile, STEPS, stepProfile } from '../lib/profile-steps.js';
import { checkRequest } from '../lib/requests.js';
import { type RunningServer, startNoop, startServe, stopServer } from '../lib/servers.js';
import { median } from '../lib/stats.js';
import { decodeCheckResponse, encodeCheckFrame, unframe } from '../lib/wire.js';

const env = process.env;
const DEPTHS = (env['BENCH_COLD_DEPTHS'] ?? '0,1,4,8').split(',').map(Number);
const ROUNDS = Number(env['BENCH_COLD_ROUNDS'] ?? 3);
const SECONDS = Number(env['BENCH_COLD_SECONDS'] ?? 4);
const PROFILE = env['BENCH_COLD_PROFILE'] !== '0';
const COUNT_PRELOAD = join(ROOT, 'dist/bench/lib/crypto-count.js');
/** Another build's dist/src/cli/main.js, measured beside this one in the same rounds (before/after). */
const COMPARE = env['BENCH_COLD_COMPARE'];

interface Target {
  readonly name: string;
  readonly depth: number | undefined;
  readonly frame: Buffer;
  readonly requestTokenLength: number;
  readonly requestForm: string;
  /** The build it serves, when not this one. */
  readonly serveMain?: string | undefined;
  server: RunningServer | undefined;
  forwardedTokenLength?: number;
  readonly cpu: number[];
  readonly rate: number[];
  readonly floorNear: number[];
  readonly other: number[];
  readonly loads: string[];
  failed: number;
  profile?: StepProfile & {
    checks: number;
    verifies: number;
    signs: number;
    verifyUs: number;
    signUs: number;
  };
}

const formOf = (token: string): string => {
  try {
    const payload = JSON.parse(
      Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8'),
    ) as { auth_stack?: { form?: string } };
    return payload.auth_stack === undefined ? 'origin' : (payload.auth_stack.form ?? 'nested');
  } catch {
    return '?';
  }
};

const coldServe = (
  ctx: ServeContext,
  label: string,
  serveMain: string | undefined,
  extra: Record<string, unknown> = {},
) =>
  startServe(ctx, label, {
    ...fixtureServeOptions(ctx.fixture, 'warn', 0, ctx.fixture.sharedKeysFile),
    env: { MATRYOSHKA_MAX_DEPTH: String(Math.max(8, ...DEPTHS) + 1) },
    ...(serveMain === undefined ? {} : { serveMain }),
    ...extra,
  });

/** One Check through a plain HTTP/2 client: the answer must be an allow at `depth + 1`. */
async function checkAllowed(address: string, frame: Buffer, depth: number): Promise<number> {
  const client = await GrpcH2Pool.connect(address, {
    sessions: 1,
    streamWindow: 1 << 20,
    sessionWindow: 1 << 24,
    timeoutMs: 0,
  });
  try {
    const result = await client.callAsync(frame);
    const message = result.body === undefined ? undefined : unframe(result.body);
    const response = message === undefined ? undefined : decodeCheckResponse(message);
    if (response === undefined || !response.allowed)
      throw new Error(
        `cold: depth ${depth} was not allowed (${JSON.stringify(response?.metadata)})`,
      );
    if (response.headers['x-auth-depth'] !== String(depth + 1))
      throw new Error(
        `cold: depth ${depth} answered x-auth-depth ${response.headers['x-auth-depth']}`,
      );
    return (response.headers['authorization'] ?? '').length - 'Bearer '.length;
  } finally {
    client.close();
  }
}

async function mintRequests(ctx: ServeContext): Promise<Target[]> {
  const minter = await startServe(ctx, 'cold minter', {
    ...fixtureServeOptions(ctx.fixture, 'warn', undefined, ctx.fixture.sharedKeysFile),
    env: { MATRYOSHKA_MAX_DEPTH: String(Math.max(8, ...DEPTHS) + 1) },
  });
  const client = await GrpcH2Pool.connect(minter.address, {
    sessions: 1,
    streamWindow: 1 << 20,
    sessionWindow: 1 << 24,
    timeoutMs: 0,
  });
  try {
    const targets: Target[] = [];
    for (const depth of DEPTHS) {
      // innerChain(n) walks an origin through hops 1 … n−1: a depth-(n−1) token.
      const token = await innerChain(client, ctx.fixture.issuer, ctx.fixture.pad, depth + 1);
      targets.push(target(`depth ${depth}`, depth, token, ctx.knobs.dest));
      if (COMPARE !== undefined)
        targets.push({
          ...target(`depth ${depth} (compared build)`, depth, token, ctx.knobs.dest),
          serveMain: COMPARE,
        });
    }
    return targets;
  } finally {
    client.close();
    await stopServer(minter, []);
  }
}

function target(name: string, depth: number | undefined, token: string, dest: string): Target {
  return {
    name,
    depth,
    frame: encodeCheckFrame(checkRequest(token, dest, 1)),
    requestTokenLength: token.length,
    requestForm: formOf(token),
    server: undefined,
    cpu: [],
    rate: [],
    floorNear: [],
    other: [],
    loads: [],
    failed: 0,
  };
}

async function measure(ctx: ServeContext, t: Target, server: RunningServer, seconds: number) {
  if (h2loadInstalled()) {
    const run = await runH2load(
      ctx,
      server.address,
      server.pid,
      t.frame,
      {
        clients: ctx.knobs.sessions,
        streams: Math.ceil(ctx.knobs.concurrency / ctx.knobs.sessions),
        seconds,
        timeoutMs: ctx.knobs.timeoutMs,
      },
      1,
    );
    return {
      cpu: run.serverCpuMicrosPerCheck,
      rate: run.requestsPerSecond,
      other: run.otherCores,
      failed: run.failed + (run.done - run.ok2xx),
      load: run.loadAverage,
    };
  }
  const file = join(ctx.workDir, `cold-${server.pid}.bin`);
  writeFileSync(file, Buffer.alloc(0));
  const frames = Array.from({ length: 64 }, () => t.frame);
  writePoolFrames(file, frames);
  const load = await runLoad(
    ctx,
    generatorConfig(ctx, t.name, server, { kind: 'pool', file }, { durationMs: seconds * 1000 }),
  );
  rmSync(file, { force: true });
  return {
    cpu: load.serverCpuMicrosPerCheck,
    rate: load.allowedPerSecond,
    other: Math.max(0, load.machineBusyCores - load.serverCores - load.clientCores),
    failed: load.completed - load.allowed,
    load: readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' '),
  };
}

function writePoolFrames(file: string, frames: readonly Buffer[]): void {
  const parts: Buffer[] = [];
  for (const f of frames) {
    const n = Buffer.allocUnsafe(4);
    n.writeUInt32BE(f.length);
    parts.push(n, f);
  }
  writeFileSync(file, Buffer.concat(parts));
}

async function profileTarget(ctx: ServeContext, t: Target): Promise<void> {
  const countFile = join(ctx.workDir, `count-${t.name.replace(/ /g, '-')}.jsonl`);
  const profileDir = join(
    ROOT,
    'bench/results/profiles',
    `cold ${t.name}`.replace(/[^A-Za-z0-9 -]+/g, ''),
  );
  rmSync(profileDir, { recursive: true, force: true });
  mkdirSync(profileDir, { recursive: true });
  const server = await coldServe(ctx, `cold ${t.name} profiled`, t.serveMain, {
    nodeArgs: ['--import', COUNT_PRELOAD, '--cpu-prof', `--cpu-prof-dir=${profileDir}`],
    env: {
      MATRYOSHKA_MAX_DEPTH: String(Math.max(8, ...DEPTHS) + 1),
      BENCH_CRYPTO_COUNT_FILE: countFile,
    },
  });
  try {
    await checkAllowed(server.address, t.frame, t.depth as number);
    let seen = 0;
    const totals = async () => {
      process.kill(server.pid, 'SIGUSR2');
      // The server writes a line when it gets to the signal: wait for that line, whole.
      for (let waited = 0; waited < 10_000; waited += 50) {
        await new Promise((r) => setTimeout(r, 50));
        let lines: string[] = [];
        try {
          lines = readFileSync(countFile, 'utf8')
            .split('\n')
            .filter((l) => l.endsWith('}'));
        } catch {}
        if (lines.length > seen) {
          seen = lines.length;
          return JSON.parse(lines[lines.length - 1] as string) as {
            sign: number;
            verify: number;
            signUs: number;
            verifyUs: number;
          };
        }
      }
      throw new Error(`cold ${t.name}: the server did not report its signature counts`);
    };
    // Warm up, then the window: counts and the profile cover the same stretch.
    const warm = await runH2load(
      ctx,
      server.address,
      server.pid,
      t.frame,
      {
        clients: ctx.knobs.sessions,
        streams: Math.ceil(ctx.knobs.concurrency / ctx.knobs.sessions),
        seconds: 1,
        timeoutMs: ctx.knobs.timeoutMs,
      },
      0,
    );
    const c0 = await totals();
    const from = Number(process.hrtime.bigint() / 1000n);
    const run = await runH2load(
      ctx,
      server.address,
      server.pid,
      t.frame,
      {
        clients: ctx.knobs.sessions,
        streams: Math.ceil(ctx.knobs.concurrency / ctx.knobs.sessions),
        seconds: SECONDS,
        timeoutMs: ctx.knobs.timeoutMs,
        requests: Math.max(200, Math.round(warm.requestsPerSecond * SECONDS)),
      },
      0,
    );
    const to = Number(process.hrtime.bigint() / 1000n);
    const c1 = await totals();
    await stopServer(server, []);
    const file = readdirSync(profileDir).find((f) => f.endsWith('.cpuprofile'));
    if (file === undefined) throw new Error(`cold ${t.name}: no profile written`);
    const steps = stepProfile(join(profileDir, file), { fromUs: from, toUs: to });
    t.profile = {
      ...steps,
      checks: run.done,
      verifies: c1.verify - c0.verify,
      signs: c1.sign - c0.sign,
      verifyUs: c1.verifyUs - c0.verifyUs,
      signUs: c1.signUs - c0.signUs,
    };
  } finally {
    await stopServer(server, []);
  }
}

async function tail(
  ctx: ServeContext,
  t: Target,
  rate: number,
): Promise<{ ours: LoadResult; noop: LoadResult }> {
  const file = join(ctx.workDir, 'cold-tail.bin');
  writePoolFrames(
    file,
    Array.from({ length: 64 }, () => t.frame),
  );
  const config = { rate, maxInFlight: 1024, expectDepth: (t.depth as number) + 1 };
  const server = await coldServe(ctx, `cold ${t.name}@50%`, t.serveMain);
  let ours: LoadResult;
  try {
    ours = await runLoad(
      ctx,
      generatorConfig(ctx, `cold ${t.name}@50%`, server, { kind: 'pool', file }, config),
    );
  } finally {
    await stopServer(server, []);
  }
  const noopServer = await startNoop(
    ctx,
    'cold noop@50%',
    t.forwardedTokenLength ?? 2048,
    (t.depth as number) + 1,
  );
  let noop: LoadResult;
  try {
    noop = await runLoad(
      ctx,
      generatorConfig(
        ctx,
        'cold noop@50%',
        noopServer,
        { kind: 'pool', file },
        { rate, maxInFlight: 1024 },
      ),
    );
  } finally {
    await stopServer(noopServer, []);
    rmSync(file, { force: true });
  }
  return { ours, noop };
}

const f1 = (n: number | undefined) => (n === undefined || !Number.isFinite(n) ? '—' : n.toFixed(1));
const f2 = (n: number | undefined) => (n === undefined || !Number.isFinite(n) ? '—' : n.toFixed(2));

export async function runColdHop(ctx: ServeContext): Promise<void> {
  const floor = cryptoFloor(1024);
  const driver = h2loadInstalled() ? 'h2load' : 'node load generator';
  log(
    `cold: crypto floor ${floor.pairMicros.toFixed(1)} µs (sign ${floor.signMicros.toFixed(1)} + verify ${floor.verifyMicros.toFixed(1)}); driver ${driver}`,
  );
  const depthTargets = await mintRequests(ctx);
  const first = depthTargets[0] as Target;
  const noop: Target = {
    ...target('noop', undefined, '', ctx.knobs.dest),
    frame: first.frame,
    requestTokenLength: first.requestTokenLength,
    requestForm: first.requestForm,
  };
  const targets = [noop, ...depthTargets];
  try {
    noop.server = await startNoop(ctx, 'cold noop', 2048, 1);
    for (const t of depthTargets) {
      t.server = await coldServe(ctx, `cold ${t.name}`, t.serveMain);
      t.forwardedTokenLength = await checkAllowed(t.server.address, t.frame, t.depth as number);
    }
    for (let round = 0; round < ROUNDS; round++) {
      for (const t of round % 2 === 0 ? targets : [...targets].reverse()) {
        const server = t.server as RunningServer;
        const before = quickFloor();
        const m = await measure(ctx, t, server, SECONDS);
        const after = quickFloor();
        t.cpu.push(m.cpu);
        t.rate.push(m.rate);
        t.other.push(m.other);
        t.floorNear.push((before + after) / 2);
        t.loads.push(m.load);
        t.failed += m.failed;
        log(
          `cold round ${round + 1} ${t.name}: ${m.rate.toFixed(0)} req/s, ${m.cpu.toFixed(1)} µs CPU/check, other ${m.other.toFixed(2)} cores, load ${m.load}`,
        );
      }
    }
    for (const t of depthTargets)
      await checkAllowed((t.server as RunningServer).address, t.frame, t.depth as number);
  } finally {
    for (const t of targets) if (t.server !== undefined) await stopServer(t.server, []);
  }
  if (PROFILE) for (const t of depthTargets) await profileTarget(ctx, t);
  const ours = depthTargets.filter((t) => t.serveMain === undefined);
  const deepest = ours[ours.length - 1] as Target;
  const halfRate = median(deepest.rate) / 2;
  const tails = await tail(ctx, deepest, halfRate);
  const compared = depthTargets.filter((t) => t.serveMain !== undefined).at(-1);
  // The compared build at the same offered rate (half of this build's maximum), against the same no-op.
  const comparedTail = compared === undefined ? undefined : await tail(ctx, compared, halfRate);

  const noopCpu = median(noop.cpu);
  const rows = targets.map((t) => {
    const cpu = median(t.cpu);
    const perRound = t.cpu.map((c, i) => (c - (noop.cpu[i] ?? noopCpu)) / floor.pairMicros);
    const drift = t.cpu.map(
      (c, i) =>
        c / (t.floorNear[i] as number) - (noop.cpu[i] as number) / (noop.floorNear[i] as number),
    );
    return {
      name: t.name,
      depth: t.depth,
      form: t.depth === undefined ? undefined : t.requestForm,
      requestTokenLength: t.requestTokenLength,
      forwardedTokenLength: t.forwardedTokenLength,
      rate: median(t.rate),
      cpuMicrosPerCheck: cpu,
      aboveNoopOverFloor: t.depth === undefined ? undefined : (cpu - noopCpu) / floor.pairMicros,
      aboveNoopOverFloorPerRound: t.depth === undefined ? undefined : perRound,
      aboveNoopOverNearFloor: t.depth === undefined ? undefined : median(drift),
      otherCores: median(t.other),
      loads: t.loads,
      failed: t.failed,
      cpuPerRound: t.cpu,
      profile: t.profile,
    };
  });
  const out = [
    `cold hop (issue 25): memo off, chain minted by another replica, ${driver}, ${ROUNDS} interleaved rounds × ${SECONDS} s, floor ${floor.pairMicros.toFixed(1)} µs (sign ${floor.signMicros.toFixed(1)} + verify ${floor.verifyMicros.toFixed(1)})`,
    '| row | form | req tok | req/s | CPU µs/chk | above no-op ÷ floor (per round) | best round | ÷ near floor | other cores | load (1/5/15) |',
    '|---|---|---|---|---|---|---|---|---|---|',
    ...rows.map(
      (r) =>
        `| ${r.name} | ${r.form ?? '—'} | ${r.requestTokenLength || '—'} | ${r.rate.toFixed(0)} | ${f1(r.cpuMicrosPerCheck)} | ${r.aboveNoopOverFloor === undefined ? '—' : `**${f2(r.aboveNoopOverFloor)}×** (${r.aboveNoopOverFloorPerRound?.map(f2).join(' ')})`} | ${r.aboveNoopOverFloorPerRound === undefined ? '—' : f2(Math.min(...r.aboveNoopOverFloorPerRound))} | ${f2(r.aboveNoopOverNearFloor)} | ${f2(r.otherCores)} | ${r.loads[0]} … ${r.loads[r.loads.length - 1]} |`,
    ),
    ...(comparedTail === undefined
      ? []
      : [
          `compared build's tail at the same rate: p50 ${f2(comparedTail.ours.latencyMs.p50)} p99 ${f2(comparedTail.ours.latencyMs.p99)} ms; no-op p99 ${f2(comparedTail.noop.latencyMs.p99)} ms; p99 ratio **${f2(comparedTail.ours.latencyMs.p99 / comparedTail.noop.latencyMs.p99)}×** (allowed ${comparedTail.ours.allowed}/${comparedTail.ours.completed})`,
        ]),
    `tail: open loop at ${halfRate.toFixed(0)}/s (half of ${deepest.name}'s rate), same request: ours p50 ${f2(tails.ours.latencyMs.p50)} p99 ${f2(tails.ours.latencyMs.p99)} ms; size-matched no-op p50 ${f2(tails.noop.latencyMs.p50)} p99 ${f2(tails.noop.latencyMs.p99)} ms; p99 ratio **${f2(tails.ours.latencyMs.p99 / tails.noop.latencyMs.p99)}×** (allowed ${tails.ours.allowed}/${tails.ours.completed})`,
  ];
  if (PROFILE) {
    out.push(
      '',
      'profile of the measured replica (separate profiled run; µs per Check by pipeline step; signatures counted by a preload):',
      `| row | ${STEPS.join(' | ')} | sampled µs/chk | verifies/chk (µs each) | signs/chk (µs each) | profile under verify/sign µs/chk |`,
      `|---|${STEPS.map(() => '---').join('|')}|---|---|---|---|`,
    );
    for (const t of depthTargets) {
      const p = t.profile;
      if (p === undefined) continue;
      const per = (ms: number) => ((ms * 1000) / p.checks).toFixed(1);
      out.push(
        `| ${t.name} | ${STEPS.map((s) => per(p.byStep[s])).join(' | ')} | ${per(p.sampledMs)} | ${(p.verifies / p.checks).toFixed(2)} (${(p.verifyUs / Math.max(1, p.verifies)).toFixed(1)}) | ${(p.signs / p.checks).toFixed(2)} (${(p.signUs / Math.max(1, p.signs)).toFixed(1)}) | ${per(p.underVerifyMs)} / ${per(p.underSignMs)} |`,
      );
    }
    for (const t of depthTargets) {
      const p = t.profile;
      if (p === undefined) continue;
      out.push(`top frames outside the signatures, ${t.name} (µs/chk):`);
      for (const l of p.topLeaves.slice(0, 15))
        out.push(
          `  ${((l.ms * 1000) / p.checks).toFixed(1).padStart(6)}  ${l.step.padEnd(9)} ${l.frame}`,
        );
    }
  }
  process.stdout.write(`${out.join('\n')}\n`);
  const json = {
    startedAt: new Date().toISOString(),
    machine: ctx.machine,
    driver,
    rounds: ROUNDS,
    seconds: SECONDS,
    floor,
    rows,
    tail: {
      rate: halfRate,
      ours: {
        latencyMs: tails.ours.latencyMs,
        allowed: tails.ours.allowed,
        completed: tails.ours.completed,
        fromIntended: tails.ours.latencyFromIntendedMs,
      },
      noop: {
        latencyMs: tails.noop.latencyMs,
        completed: tails.noop.completed,
        fromIntended: tails.noop.latencyFromIntendedMs,
      },
      p99Ratio: tails.ours.latencyMs.p99 / tails.noop.latencyMs.p99,
      compared:
        comparedTail === undefined
          ? undefined
          : {
              ours: comparedTail.ours.latencyMs,
              noop: comparedTail.noop.latencyMs,
              p99Ratio: comparedTail.ours.latencyMs.p99 / comparedTail.noop.latencyMs.p99,
            },
    },
    compare: COMPARE,
  };
  writeFileSync(join(ROOT, 'bench/results/cold-hop.json'), `${JSON.stringify(json, null, 2)}\n`);
}
