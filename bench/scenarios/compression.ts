/** Compression: in the coordinator, with no server running, what each setting costs on a real minted deepest-depth token. */
import type { BenchContext } from '../lib/context.js';
import { type CompressionCost, compressionCosts } from '../lib/compression-costs.js';
import { deepestDepth } from '../lib/knobs.js';
import { log } from '../lib/log.js';

export interface CompressionFigures {
  /** The token they were measured on (its length goes into the notes). */
  readonly sample: string;
  readonly costs: CompressionCost[];
}

export function runCompression(ctx: BenchContext, sample: string): CompressionFigures {
  const costs = compressionCosts(sample);
  log(
    `compression of one depth-${deepestDepth(ctx.knobs)} token: ${costs.map((c) => `${c.name} ${c.micros.toFixed(0)} µs → ${c.base64Length}`).join('; ')}`,
  );
  return { sample, costs };
}
