/**
 * `depth d http` (d = 1 and the deepest): the HTTP authorization port beside the gRPC one. Each is
 * measured on the server of the gRPC `depth d` row, on its own share of that pool (see
 * bench/lib/http-run.ts): with `depths` selected, that row's run carries it; without, this runs the
 * gRPC row too, since the ratio needs it.
 */
import type { ServeContext } from '../lib/context.js';
import { measureDepth } from '../lib/depth-run.js';
import { httpDepths, type Knobs, wants } from '../lib/knobs.js';

/** Whether the `depth d` gRPC run also measures the HTTP row. */
export const pairsHttp = (knobs: Knobs, depth: number): boolean =>
  wants(knobs, 'http') && httpDepths(knobs).includes(depth);

/** The pairs the `depths` scenario did not measure (all of them when it did not run). */
export async function runHttp(ctx: ServeContext, measured: readonly number[]): Promise<void> {
  const { knobs, sink } = ctx;
  for (const depth of httpDepths(knobs).filter((d) => !measured.includes(d))) {
    await sink.withRetry(`depth ${depth} + http`, knobs.retries, async () => {
      await measureDepth(ctx, {
        depth,
        logLevel: 'warn',
        name: `depth ${depth}`,
        peer: false,
        keepPool: false,
        http: true,
      });
    });
  }
}
