/** `depth d peer`: each request's outer level minted by another replica with the same key file. */
import type { ServeContext } from '../lib/context.js';
import { measureDepth } from '../lib/depth-run.js';
import { peerDepths } from '../lib/knobs.js';
import type { ScenarioResult } from '../lib/results.js';

export async function runPeer(ctx: ServeContext): Promise<ScenarioResult[]> {
  const { knobs, sink } = ctx;
  const results: ScenarioResult[] = [];
  for (const depth of peerDepths(knobs)) {
    let result: ScenarioResult | undefined;
    await sink.withRetry(`depth ${depth} peer`, knobs.retries, async () => {
      result = (
        await measureDepth(ctx, {
          depth,
          logLevel: 'warn',
          name: `depth ${depth} peer`,
          peer: true,
          keepPool: false,
        })
      ).result;
    });
    if (result !== undefined) results.push(result);
  }
  return results;
}
