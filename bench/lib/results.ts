/** What each measured run leaves behind, and the problems the report lists under its table. */
import type { LoadResult } from './load-types.js';
import { log } from './log.js';
import type { HandlerPercentiles } from './metrics.js';
import type { Memory } from './proc.js';
import type { ProfileSummary } from './profile.js';

export interface ScenarioResult {
  readonly name: string;
  readonly kind: 'noop' | 'serve';
  readonly depth: number | undefined;
  readonly logLevel: string | undefined;
  readonly load: LoadResult;
  readonly requestTokenLength: number | undefined;
  readonly forwardedTokenLength: number | undefined;
  readonly poolNote: string;
  /** From the service's authz_check_duration_seconds histogram (warm-up and drain included). */
  readonly handler?: HandlerPercentiles | undefined;
  readonly serverPeak: Memory;
  readonly serverIdle: Memory;
  readonly serverLogProblems: { count: number; first: string[] };
  /** Set once the server has stopped and written its profile. */
  profile?: ProfileSummary | undefined;
  /** The crypto floor measured right before and right after this run's load (mean of the two), µs per pair. */
  readonly floorNear?: number | undefined;
}

/** Busy cores of the machine in the window that were neither the server's nor the load generator's. */
export const otherCores = (load: LoadResult): number =>
  load.machineBusyCores - load.serverCores - load.clientCores;

export class ResultsSink {
  /** In the order they ran: the table's rows. */
  readonly results: ScenarioResult[] = [];
  /** Listed under "problems". */
  readonly problems: string[] = [];
  /** Scenarios measured again because the machine was busy: listed under "notes". */
  readonly retried: string[] = [];

  add(result: ScenarioResult): void {
    this.results.push(result);
  }

  /** Note what makes a run's numbers suspect: answers other than the expected allow, a busy machine, a pool that ran out. */
  recordProblems(result: LoadResult, name: string): void {
    const bad =
      result.denied +
      result.malformed +
      result.transportErrors +
      Object.values(result.grpcErrors).reduce((a, b) => a + b, 0) +
      result.samples.depthMismatches;
    if (bad > 0) {
      this.warn(
        `${name}: ${bad} answers were not the expected allow: ${JSON.stringify({ denied: result.denied, denyReasons: result.denyReasons, grpcErrors: result.grpcErrors, transport: result.transportErrors, malformed: result.malformed, depthMismatches: result.samples.depthMismatches, first: result.firstProblems })}`,
      );
    }
    const other = otherCores(result);
    if (other > 0.3) {
      this.warn(
        `${name}: the machine was busy with other work during the window (${other.toFixed(2)} cores besides the server and the load generator): its numbers are contended`,
      );
    }
    if (result.pool.reused > 0) {
      this.warn(
        `${name}: the pool of ${result.pool.size} ran out; ${result.pool.reused} requests reused a token (whole-token memo hits)`,
      );
    }
  }

  /**
   * Run a scenario; when other work on the machine took more than 0.3 cores during any of its windows,
   * drop what it measured and run it again (fresh server, fresh pool), up to `retries` times.
   */
  async withRetry(label: string, retries: number, attempt: () => Promise<void>): Promise<void> {
    for (let tries = 0; ; tries++) {
      const resultsBefore = this.results.length;
      const problemsBefore = this.problems.length;
      await attempt();
      const worst = Math.max(
        0,
        ...this.results.slice(resultsBefore).map((r) => otherCores(r.load)),
      );
      if (worst <= 0.3 || tries >= retries) return;
      this.results.splice(resultsBefore);
      this.problems.splice(problemsBefore);
      const text = `${label}: measured again — other work took ${worst.toFixed(2)} cores during attempt ${tries + 1}`;
      this.retried.push(text);
      log(text);
    }
  }

  private warn(text: string): void {
    this.problems.push(text);
    log(`WARNING ${text}`);
  }
}
