/** The contract between the bench runner (bench/lib/load-runner.ts) and the load generator (bench/load.ts). */
import type { Memory } from './proc.js';
import type { LatencySummary } from './stats.js';

export type LoadSource =
  | { readonly kind: 'pool'; readonly file: string }
  | {
      /** Requests to the HTTP authorization port (bench/lib/pools.ts `writeHttpPool`), over HTTP/1.1 keep-alive. */
      readonly kind: 'http-pool';
      readonly file: string;
      /** Connections (one request in flight each): a proxy's pool to the authorizer. */
      readonly sockets: number;
    }
  | {
      /** Distinct HS256 origin tokens made on the fly (fixed length), written into a pre-encoded request. */
      readonly kind: 'hs256';
      readonly frameTemplate: string; // base64 of a whole request frame holding a placeholder token
      readonly tokenOffset: number;
      readonly tokenLength: number;
      readonly header: string; // base64url of the JOSE header
      readonly payloadTemplate: string; // JSON with COUNTER_MARK where the counter goes
      readonly secret: string;
    };

export const COUNTER_MARK = '@@@@@@@@@@';

export interface LoadConfig {
  readonly label: string;
  readonly target: string;
  readonly serverPid: number;
  readonly source: LoadSource;
  readonly concurrency: number;
  readonly sessions: number;
  readonly streamWindow: number;
  readonly sessionWindow: number;
  readonly timeoutMs: number;
  readonly warmupMs: number;
  readonly durationMs: number;
  /** Close the window after this many completions instead of after durationMs. */
  readonly maxRequests?: number;
  /** Open loop: arrivals per second (latency also measured from the intended send time). */
  readonly rate?: number;
  /** Open loop: at most this many in flight; later arrivals wait (and their wait counts). */
  readonly maxInFlight?: number;
  /** Decoded in full every this many answers (and the first 32 of the window). */
  readonly sampleEvery: number;
  /** Expected `x-auth-depth` of the answers (depth of the minted token), when known. */
  readonly expectDepth?: number;
  /** Send every latency of the window back too (`latenciesMs`): for percentiles pooled over windows. */
  readonly keepLatencies?: boolean;
}

export interface LoadResult {
  readonly label: string;
  readonly windowSeconds: number;
  readonly completed: number;
  readonly allowed: number;
  readonly denied: number;
  readonly malformed: number;
  /** Answers that were not decisions, by grpc-status (gRPC) or `http <status>` (a refused HTTP request). */
  readonly grpcErrors: Record<string, number>;
  readonly transportErrors: number;
  readonly firstProblems: string[];
  readonly denyReasons: Record<string, number>;
  /** Answers of any kind per second in the window. */
  readonly requestsPerSecond: number;
  /** Allowed answers per second (what the targets use). */
  readonly allowedPerSecond: number;
  /** Per 250 ms of the window: answers completed and the slowest of them (ms) — where a stall shows. */
  readonly timeline: Array<{
    readonly atMs: number;
    readonly completed: number;
    readonly maxLatencyMs: number;
  }>;
  /** Server VmRSS (KiB) every ~2 s of the window, against answers completed so far. */
  readonly memoryTrace: Array<{
    readonly completed: number;
    readonly rssKiB: number;
    readonly hwmKiB: number;
  }>;
  readonly latencyMs: LatencySummary;
  /** Every latency of the window (send to last byte, ms), when the config asked to keep them. */
  readonly latenciesMs?: number[];
  /** Open loop only: from the intended send time (includes waiting behind the in-flight cap). */
  readonly latencyFromIntendedMs: LatencySummary | undefined;
  readonly serverCpuMicros: number;
  readonly serverCpuMicrosPerCheck: number;
  readonly serverCores: number;
  readonly clientCpuMicrosPerRequest: number;
  readonly clientCores: number;
  readonly machineBusyCores: number;
  readonly serverMemoryStart: Memory;
  readonly serverMemoryEnd: Memory;
  readonly pool: { readonly size: number; readonly used: number; readonly reused: number };
  readonly samples: {
    readonly decoded: number;
    readonly depthMismatches: number;
    readonly forwardedTokenLength:
      | { readonly min: number; readonly max: number; readonly mean: number }
      | undefined;
    readonly decisions: Record<string, number>;
  };
  readonly sentTotal: number;
  readonly offeredRate: number | undefined;
  readonly drained: boolean;
  /** The load generator's own event-loop delay in the window: if high, its latencies include its own stalls. */
  readonly clientLoopDelayMs: { readonly p50: number; readonly p99: number; readonly max: number };
  /** Window edges on CLOCK_MONOTONIC in µs (the clock of V8 CPU profiles on Linux). */
  readonly windowMonotonicUs: { readonly start: number; readonly end: number };
}
