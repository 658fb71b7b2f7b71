/**
 * The load generator: a separate process (forked by bench/lib/load-runner.ts) that speaks gRPC over node:http2
 * (or, for an `http-pool` source, HTTP/1.1 keep-alive to the HTTP authorization port) to one server, with fixed concurrency (closed loop) or a fixed arrival rate (open loop), for a
 * warm-up and then a measured window. It samples the server's own CPU time and memory from /proc
 * at the edges of the window, checks every answer (grpc-status, allow vs deny), and reports one
 * JSON result over IPC. It exits when its parent goes away.
 */
import { createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { GrpcH2Pool, type UnaryResult } from './lib/h2grpc.js';
import { Http1Pool, type HttpResult } from './lib/http1.js';
import { readHttpPool, readPool } from './lib/pool-file.js';
import { type Memory, machineJiffies, processCpuMicros, processMemory } from './lib/proc.js';
import { Samples, summarize } from './lib/stats.js';
import {
  COUNTER_MARK,
  type LoadConfig,
  type LoadResult,
  type LoadSource,
} from './lib/load-types.js';
import {
  type DecodedCheckResponse,
  decodeCheckResponse,
  quickVerdict,
  unframe,
} from './lib/wire.js';

type NextRequest = () => Buffer;

function poolSource(file: string): {
  next: NextRequest;
  size: number;
  stats: () => { used: number; reused: number };
} {
  const frames = readPool(readFileSync(file));
  if (frames.length === 0) throw new Error(`empty pool ${file}`);
  let used = 0;
  return {
    size: frames.length,
    next: () => frames[used++ % frames.length] as Buffer,
    stats: () => ({ used, reused: Math.max(0, used - frames.length) }),
  };
}

function hs256Source(source: Extract<LoadSource, { kind: 'hs256' }>): {
  next: NextRequest;
  size: number;
  stats: () => { used: number; reused: number };
} {
  const template = Buffer.from(source.frameTemplate, 'base64');
  const [before, ...rest] = source.payloadTemplate.split(COUNTER_MARK);
  if (before === undefined || rest.length === 0)
    throw new Error('payload template has no counter mark');
  let counter = 0;
  return {
    size: Infinity,
    next: () => {
      const n = String(counter++).padStart(COUNTER_MARK.length, '0');
      const payload = before + n + rest.join(n);
      const input = `${source.header}.${Buffer.from(payload).toString('base64url')}`;
      const token = `${input}.${createHmac('sha256', source.secret).update(input).digest('base64url')}`;
      if (token.length !== source.tokenLength)
        throw new Error(`token length ${token.length} != ${source.tokenLength}`);
      const frame = Buffer.from(template);
      frame.write(token, source.tokenOffset, 'latin1');
      return frame;
    },
    stats: () => ({ used: counter, reused: 0 }),
  };
}

/**
 * One answer, whatever the transport: no answer, an answer that is not a decision (grpc-status ≠ 0,
 * an HTTP refusal), or a decision, read cheaply (`verdict`) and in full only when sampled.
 */
type Outcome =
  | { readonly kind: 'transport'; readonly error: string }
  | { readonly kind: 'refused'; readonly key: string; readonly text: string }
  | {
      readonly kind: 'answer';
      readonly verdict: 'allow' | 'deny' | 'malformed';
      readonly decode: () => DecodedCheckResponse;
    };

interface Driver {
  readonly size: number;
  stats(): { used: number; reused: number };
  send(done: (outcome: Outcome) => void): void;
  close(): void;
  destroy(): void;
}

function grpcOutcome(result: UnaryResult): Outcome {
  if (result.error !== undefined) return { kind: 'transport', error: result.error };
  if (result.grpcStatus !== 0)
    return {
      kind: 'refused',
      key: String(result.grpcStatus),
      text: `grpc-status ${result.grpcStatus} (http ${result.httpStatus}): ${result.grpcMessage ?? ''}`,
    };
  const message = result.body === undefined ? undefined : unframe(result.body);
  if (message === undefined)
    return {
      kind: 'answer',
      verdict: 'malformed',
      decode: () => decodeCheckResponse(Buffer.alloc(0)),
    };
  return {
    kind: 'answer',
    verdict: quickVerdict(message),
    decode: () => decodeCheckResponse(message),
  };
}

/** The HTTP statuses of a decision (docs/http-authz.md): 200 allow; 401, 403, 503 deny. Anything else is a refusal. */
const HTTP_DENIALS = new Set([401, 403, 503]);

function httpOutcome(result: HttpResult): Outcome {
  if (result.error !== undefined) return { kind: 'transport', error: result.error };
  const { status, headers } = result;
  if (status !== 200 && !HTTP_DENIALS.has(status))
    return { kind: 'refused', key: `http ${status}`, text: `http ${status}` };
  const reason = headers['x-authz-reason'];
  return {
    kind: 'answer',
    verdict: status === 200 ? 'allow' : 'deny',
    // The HTTP answer carries the gRPC one's headers; its metadata only as the reason header, when on.
    decode: () => ({
      allowed: status === 200,
      statusCode: status,
      headers,
      metadata: {
        decision: status === 200 ? 'allow' : 'deny',
        ...(reason !== undefined ? { reason } : {}),
      },
    }),
  };
}

async function grpcDriver(config: LoadConfig): Promise<Driver> {
  const source =
    config.source.kind === 'hs256' ? hs256Source(config.source) : poolSource(config.source.file);
  const client = await GrpcH2Pool.connect(config.target, {
    sessions: config.sessions,
    streamWindow: config.streamWindow,
    sessionWindow: config.sessionWindow,
    timeoutMs: config.timeoutMs,
  });
  return {
    size: source.size,
    stats: source.stats,
    send: (done) => client.call(source.next(), (result) => done(grpcOutcome(result))),
    close: () => client.close(),
    destroy: () => client.destroy(),
  };
}

function httpDriver(config: LoadConfig, file: string, sockets: number): Driver {
  const requests = readHttpPool(readFileSync(file));
  if (requests.length === 0) throw new Error(`empty pool ${file}`);
  // The deadline travels in the request (x-envoy-expected-rq-timeout-ms); the client waits for the answer.
  const client = Http1Pool.forTarget(config.target, sockets, 0);
  let used = 0;
  return {
    size: requests.length,
    stats: () => ({ used, reused: Math.max(0, used - requests.length) }),
    send: (done) =>
      client.call(requests[used++ % requests.length] as (typeof requests)[number], (result) =>
        done(httpOutcome(result)),
      ),
    close: () => client.close(),
    destroy: () => client.close(),
  };
}

async function run(config: LoadConfig): Promise<LoadResult> {
  const source =
    config.source.kind === 'http-pool'
      ? httpDriver(config, config.source.file, config.source.sockets)
      : await grpcDriver(config);

  const latencies = new Samples();
  const timeline: Array<{ atMs: number; completed: number; maxLatencyMs: number }> = [];
  const fromIntended = new Samples();
  let windowOpen = false;
  let stopping = false;
  let inFlight = 0;
  let sent = 0;
  let completed = 0;
  let allowed = 0;
  let denied = 0;
  let malformed = 0;
  let transportErrors = 0;
  let decoded = 0;
  let depthMismatches = 0;
  let windowCompletions = 0;
  const grpcErrors: Record<string, number> = {};
  const denyReasons: Record<string, number> = {};
  const decisions: Record<string, number> = {};
  const firstProblems: string[] = [];
  const fwdLengths: number[] = [];
  const problem = (text: string): void => {
    if (firstProblems.length < 10) firstProblems.push(text);
  };

  let closeWindow: (() => void) | undefined;

  const onResult = (outcome: Outcome, sentAt: number, intendedAt: number | undefined): void => {
    inFlight--;
    if (!windowOpen) return;
    const now = performance.now();
    windowCompletions++;
    completed++;
    latencies.push(now - sentAt);
    const bucket = Math.floor((now - startWall) / 250);
    while (timeline.length <= bucket)
      timeline.push({ atMs: timeline.length * 250, completed: 0, maxLatencyMs: 0 });
    const slot = timeline[bucket] as { completed: number; maxLatencyMs: number };
    slot.completed++;
    if (now - sentAt > slot.maxLatencyMs) slot.maxLatencyMs = now - sentAt;
    if (intendedAt !== undefined) fromIntended.push(now - intendedAt);
    if (outcome.kind === 'transport') {
      transportErrors++;
      problem(`transport: ${outcome.error}`);
    } else if (outcome.kind === 'refused') {
      grpcErrors[outcome.key] = (grpcErrors[outcome.key] ?? 0) + 1;
      problem(outcome.text);
    } else {
      const { verdict } = outcome;
      if (verdict === 'allow') allowed++;
      else if (verdict === 'deny') denied++;
      else {
        malformed++;
        problem('malformed response body');
      }
      const sampleIt =
        verdict !== 'malformed' &&
        (decoded < 32 || verdict === 'deny' || windowCompletions % config.sampleEvery === 0);
      if (sampleIt && (verdict !== 'deny' || Object.keys(denyReasons).length < 50)) {
        decoded++;
        const response = outcome.decode();
        const decision = String(response.metadata['decision'] ?? '(none)');
        decisions[decision] = (decisions[decision] ?? 0) + 1;
        if (!response.allowed) {
          const reason = String(response.metadata['reason'] ?? `status ${response.statusCode}`);
          denyReasons[reason] = (denyReasons[reason] ?? 0) + 1;
          problem(`denied: ${reason}`);
        } else {
          const forward = response.headers['authorization'];
          if (forward !== undefined) fwdLengths.push(forward.replace(/^Bearer /, '').length);
          if (
            config.expectDepth !== undefined &&
            response.headers['x-auth-depth'] !== String(config.expectDepth)
          ) {
            depthMismatches++;
            problem(
              `x-auth-depth ${response.headers['x-auth-depth']} where ${config.expectDepth} was expected`,
            );
          }
        }
      }
    }
    if (config.maxRequests !== undefined && windowCompletions >= config.maxRequests)
      closeWindow?.();
  };

  const send = (intendedAt: number | undefined): void => {
    inFlight++;
    sent++;
    const sentAt = performance.now();
    source.send((outcome) => {
      onResult(outcome, sentAt, intendedAt);
      if (config.rate === undefined && !stopping) send(undefined);
    });
  };

  // Window edges: CPU and memory of the server, CPU of this process, the machine.
  let startCpu = 0;
  let startClient = process.cpuUsage();
  let startMachine = machineJiffies();
  let startMemory: Memory = processMemory(config.serverPid);
  let startWall = 0;
  let startMono = 0;
  const monoUs = (): number => Number(process.hrtime.bigint() / 1000n);
  const windowDone = new Promise<{
    cpu: number;
    client: NodeJS.CpuUsage;
    machine: { busy: number; total: number };
    memory: Memory;
    seconds: number;
    mono: { start: number; end: number };
  }>((resolve) => {
    closeWindow = () => {
      if (stopping) return;
      stopping = true;
      windowOpen = false;
      const seconds = (performance.now() - startWall) / 1000;
      resolve({
        cpu: processCpuMicros(config.serverPid) - startCpu,
        client: process.cpuUsage(startClient),
        machine: ((end) => ({
          busy: end.busy - startMachine.busy,
          total: end.total - startMachine.total,
        }))(machineJiffies()),
        memory: processMemory(config.serverPid),
        seconds,
        mono: { start: startMono, end: monoUs() },
      });
    };
  });

  const memoryTrace: Array<{ completed: number; rssKiB: number; hwmKiB: number }> = [];
  const traceMemory = (): void => {
    const m = processMemory(config.serverPid);
    memoryTrace.push({ completed, rssKiB: m.rssKiB, hwmKiB: m.hwmKiB });
  };
  let tracer: NodeJS.Timeout | undefined;
  const LOOP_RESOLUTION_MS = 2;
  const loopDelay = monitorEventLoopDelay({ resolution: LOOP_RESOLUTION_MS });
  const openWindow = (): void => {
    loopDelay.enable();
    tracer = setInterval(traceMemory, 2000);
    startCpu = processCpuMicros(config.serverPid);
    startClient = process.cpuUsage();
    startMachine = machineJiffies();
    startMemory = processMemory(config.serverPid);
    startWall = performance.now();
    startMono = monoUs();
    windowOpen = true;
    if (config.maxRequests === undefined) setTimeout(() => closeWindow?.(), config.durationMs);
  };

  const started = performance.now();
  let ticker: NodeJS.Timeout | undefined;
  if (config.rate === undefined) {
    for (let i = 0; i < config.concurrency; i++) send(undefined);
  } else {
    const interval = 1000 / config.rate;
    const cap = config.maxInFlight ?? 1024;
    let k = 0;
    ticker = setInterval(() => {
      const now = performance.now();
      while (!stopping && inFlight < cap && started + k * interval <= now)
        send(started + interval * k++);
    }, 1);
  }
  setTimeout(openWindow, config.warmupMs);
  const edges = await windowDone;
  clearInterval(tracer);
  loopDelay.disable();
  traceMemory();
  if (ticker !== undefined) clearInterval(ticker);

  // Let what is in flight finish (not counted), then close.
  const drainUntil = performance.now() + 10_000;
  while (inFlight > 0 && performance.now() < drainUntil) await new Promise((r) => setTimeout(r, 5));
  const drained = inFlight === 0;
  if (drained) source.close();
  else source.destroy();

  const ticks = edges.machine.total;
  const machineCores = ticks > 0 ? (edges.machine.busy / ticks) * cpus().length : NaN;
  const clientMicros = edges.client.user + edges.client.system;
  const poolStats = source.stats();
  return {
    label: config.label,
    windowSeconds: edges.seconds,
    completed,
    allowed,
    denied,
    malformed,
    grpcErrors,
    transportErrors,
    firstProblems,
    denyReasons,
    requestsPerSecond: completed / edges.seconds,
    allowedPerSecond: allowed / edges.seconds,
    memoryTrace,
    timeline: timeline.map((t) => ({ ...t, maxLatencyMs: Math.round(t.maxLatencyMs * 100) / 100 })),
    latencyMs: summarize(latencies.values()),
    ...(config.keepLatencies === true ? { latenciesMs: Array.from(latencies.values()) } : {}),
    latencyFromIntendedMs: config.rate === undefined ? undefined : summarize(fromIntended.values()),
    serverCpuMicros: edges.cpu,
    serverCpuMicrosPerCheck: completed > 0 ? edges.cpu / completed : NaN,
    serverCores: edges.cpu / 1e6 / edges.seconds,
    clientCpuMicrosPerRequest: completed > 0 ? clientMicros / completed : NaN,
    clientCores: clientMicros / 1e6 / edges.seconds,
    machineBusyCores: machineCores,
    serverMemoryStart: startMemory,
    serverMemoryEnd: edges.memory,
    pool: {
      size: source.size === Infinity ? poolStats.used : source.size,
      used: poolStats.used,
      reused: poolStats.reused,
    },
    samples: {
      decoded,
      depthMismatches,
      forwardedTokenLength:
        fwdLengths.length === 0
          ? undefined
          : {
              min: Math.min(...fwdLengths),
              max: Math.max(...fwdLengths),
              mean: fwdLengths.reduce((a, b) => a + b, 0) / fwdLengths.length,
            },
      decisions,
    },
    sentTotal: sent,
    offeredRate: config.rate,
    drained,
    windowMonotonicUs: edges.mono,
    // The histogram records whole timer intervals: the resolution itself is not delay.
    clientLoopDelayMs: {
      p50: Math.max(0, loopDelay.percentile(50) / 1e6 - LOOP_RESOLUTION_MS),
      p99: Math.max(0, loopDelay.percentile(99) / 1e6 - LOOP_RESOLUTION_MS),
      max: Math.max(0, loopDelay.max / 1e6 - LOOP_RESOLUTION_MS),
    },
  };
}

if (process.send === undefined) {
  process.stderr.write('bench/load.js is started by bench/run.js (it reports over IPC)\n');
  process.exit(2);
}
let reported = false;
process.on('disconnect', () => process.exit(reported ? 0 : 3)); // the coordinator went away: stop at once
const report = (message: object): void => {
  process.send?.(message, () => {
    reported = true;
    process.disconnect();
  });
};
const config = JSON.parse(process.argv[2] ?? '{}') as LoadConfig;
run(config).then(
  (result) => report({ ok: true, result }),
  (error: unknown) => report({ ok: false, error: (error as Error).stack ?? String(error) }),
);
