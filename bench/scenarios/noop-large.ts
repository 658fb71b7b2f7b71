/**
 * `noop@d<d>-size`: the no-op fed the deepest run's requests and answering a forwarded token as long
 * as ours: a size-matched baseline. Then, when there was a half-load run, the same open loop against
 * it: what the transport and the load generator (sharing the cores) put into a p99 by themselves.
 */
import type { ServeContext } from '../lib/context.js';
import { generatorConfig, runLoadBesideFloor } from '../lib/load-runner.js';
import { log } from '../lib/log.js';
import { processMemory } from '../lib/proc.js';
import type { ScenarioResult } from '../lib/results.js';
import { startNoop, stopServer } from '../lib/servers.js';
import type { DeepestRun } from './depth.js';

export async function runNoopLarge(
  ctx: ServeContext,
  deepest: DeepestRun,
  halfRate: number | undefined,
): Promise<ScenarioResult[]> {
  const { sink } = ctx;
  const { file } = deepest.pool;
  const d = deepest.result;
  let results: ScenarioResult[] = [];
  await sink.withRetry('noop-large', ctx.knobs.retries, async () => {
    results = [];
    const fwd = Math.round(d.forwardedTokenLength ?? 2048);
    const server = await startNoop(ctx, 'noop-large', fwd, (d.depth ?? 0) + 1);
    log(
      `noop@d${d.depth}-size: the no-op with the depth-${d.depth} requests and a ${fwd}-character forwarded token`,
    );
    const { load, floorNear } = await runLoadBesideFloor(
      ctx,
      generatorConfig(ctx, `noop@d${d.depth}-size`, server, { kind: 'pool', file: file }),
    );
    const peak = processMemory(server.pid);
    // It cycles its pool on purpose: reuse is no problem here.
    sink.recordProblems({ ...load, pool: { ...load.pool, reused: 0 } }, 'noop-large');
    const sized: ScenarioResult = {
      name: `noop@d${d.depth}-size`,
      kind: 'noop',
      depth: undefined,
      logLevel: undefined,
      load,
      requestTokenLength: d.requestTokenLength,
      forwardedTokenLength: load.samples.forwardedTokenLength?.mean,
      poolNote: 'depth pool, cycled (no cache)',
      serverPeak: peak,
      serverIdle: server.idleMemory,
      serverLogProblems: { count: 0, first: [] },
      floorNear,
    };
    results.push(sized);
    sink.add(sized);
    if (halfRate !== undefined) {
      const { load: open, floorNear: openFloor } = await runLoadBesideFloor(
        ctx,
        generatorConfig(
          ctx,
          `noop@d${d.depth}-size@50%`,
          server,
          { kind: 'pool', file: file },
          { rate: halfRate, maxInFlight: 1024 },
        ),
      );
      sink.recordProblems({ ...open, pool: { ...open.pool, reused: 0 } }, 'noop-large@50%');
      const openResult: ScenarioResult = {
        name: `noop@d${d.depth}-size@50%`,
        kind: 'noop',
        depth: undefined,
        logLevel: undefined,
        load: open,
        requestTokenLength: d.requestTokenLength,
        forwardedTokenLength: open.samples.forwardedTokenLength?.mean,
        poolNote: 'depth pool, cycled, open loop at the half-load rate',
        serverPeak: processMemory(server.pid),
        serverIdle: server.idleMemory,
        serverLogProblems: { count: 0, first: [] },
        floorNear: openFloor,
      };
      results.push(openResult);
      sink.add(openResult);
    }
    await stopServer(server, []);
  });
  return results;
}
