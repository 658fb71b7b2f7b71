/** `depth 1 info`: depth 1 at LOG_LEVEL=info, one audit line per check — the cost of the audit log. */
import type { ServeContext } from '../lib/context.js';
import { measureDepth } from '../lib/depth-run.js';
import type { ScenarioResult } from '../lib/results.js';

export async function runInfo(ctx: ServeContext): Promise<ScenarioResult | undefined> {
  let result: ScenarioResult | undefined;
  await ctx.sink.withRetry('depth 1 info', ctx.knobs.retries, async () => {
    result = (
      await measureDepth(ctx, {
        depth: 1,
        logLevel: 'info',
        name: 'depth 1 info',
        peer: false,
        keepPool: false,
      })
    ).result;
  });
  return result;
}
