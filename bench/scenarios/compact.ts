/**
 * `nested d` / `compact d` (and `… peer`): the chain forms side by side at BENCH_COMPACT_DEPTHS,
 * each request's outer level minted by the measured server, then by another replica with the same
 * key file. Nested rows stop at depth 8: past it a nested token passes Envoy's own 60 KiB header
 * limit (and at 16 it would be ~100 KB), so there is nothing to compare that a deployment could run.
 */
import type { ServeContext } from '../lib/context.js';
import { measureDepth } from '../lib/depth-run.js';
import type { ScenarioResult } from '../lib/results.js';

export const NESTED_DEPTH_LIMIT = 8;

export async function runCompact(ctx: ServeContext): Promise<ScenarioResult[]> {
  const { knobs, sink } = ctx;
  const results: ScenarioResult[] = [];
  for (const peer of [false, true])
    for (const format of ['nested', 'compact'] as const)
      for (const depth of knobs.compactDepths) {
        if (format === 'nested' && depth > NESTED_DEPTH_LIMIT) continue;
        const name = `${format} ${depth}${peer ? ' peer' : ''}`;
        await sink.withRetry(name, knobs.retries, async () => {
          const { result } = await measureDepth(ctx, {
            depth,
            logLevel: 'warn',
            name,
            peer,
            keepPool: false,
            format,
          });
          results.push(result);
        });
      }
  return results;
}
