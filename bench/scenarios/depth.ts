/**
 * `depth d`: our server at each BENCH_DEPTHS depth, the measured server having minted each request's
 * outer level; with `http`, depths 1 and the deepest also measure `depth d http` on the same server.
 */
import type { ServeContext } from '../lib/context.js';
import { type DepthBaseline, type DepthRun, measureDepth } from '../lib/depth-run.js';
import { deepestDepth } from '../lib/knobs.js';
import { pairsHttp } from './http.js';

/** The deepest run and its kept pool: the half-load rate, the size-matched no-op and the compression figures come from it. */
export type DeepestRun = DepthRun & { readonly pool: NonNullable<DepthRun['pool']> };

export async function runDepths(
  ctx: ServeContext,
  baseline: DepthBaseline,
): Promise<DeepestRun | undefined> {
  const { knobs, sink } = ctx;
  const maxDepth = deepestDepth(knobs);
  let deepest: DeepestRun | undefined;
  for (const depth of knobs.depths) {
    await sink.withRetry(`depth ${depth}`, knobs.retries, async () => {
      const run = await measureDepth(
        ctx,
        {
          depth,
          logLevel: 'warn',
          name: `depth ${depth}`,
          peer: false,
          keepPool: depth === maxDepth,
          http: pairsHttp(knobs, depth),
        },
        baseline,
      );
      if (run.pool !== undefined) deepest = { ...run, pool: run.pool };
    });
  }
  return deepest;
}
