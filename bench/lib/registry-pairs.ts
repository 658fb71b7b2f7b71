/**
 * The figures of the registry scenario's paired windows: each pair is one window without changes
 * and one with 10 changes/s, back to back on the same server. On a shared 2-vCPU VM one stall of
 * 100–300 ms that is neither the service's nor the registry's lands in a random window every ten
 * seconds or so and alone sets that window's p99 and max; the median over pairs of (changes ÷
 * quiet) ignores a minority of pairs a stall hit, while an effect of the changes shows in every
 * pair and so in the median. The service's own histogram is pooled per variant: it does not see
 * the VM's scheduling at all.
 */
import type { HandlerPercentiles } from './metrics.js';
import { percentilesOf, sumBuckets } from './metrics.js';
import { median, summarize } from './stats.js';

export type ChangeTarget = 'others' | 'own';

/** One measured window, as the load generator saw it, with the service's histogram delta over it. */
export interface MeasuredWindow {
  readonly latenciesMs: readonly number[];
  readonly p50: number;
  readonly p99: number;
  readonly max: number;
  readonly allowedShare: number;
  readonly handlerBuckets: Map<number, number> | undefined;
  readonly handler: HandlerPercentiles | undefined;
}

export interface WindowFigures {
  readonly p50: number;
  readonly p99: number;
  readonly max: number;
  /** Bucket bound holding the window's handler p99 (ms), from the service's histogram. */
  readonly handlerP99Ms: number | undefined;
}

export interface PairFigures {
  /** Which window of the pair ran first: the order alternates pair by pair. */
  readonly first: 'quiet' | 'changes';
  readonly quiet: WindowFigures;
  readonly changes: WindowFigures;
  readonly ratio: { readonly p99: number; readonly max: number };
}

export interface VariantFigures {
  readonly pairs: readonly PairFigures[];
  /** The target figures: median over pairs of (changes ÷ quiet). */
  readonly medianRatio: { readonly p99: number; readonly max: number };
  /** For information: every window of a kind pooled into one sample. */
  readonly pooled: {
    readonly quiet: WindowFigures;
    readonly changes: WindowFigures;
    readonly ratio: { readonly p99: number; readonly max: number };
  };
  /** Smallest share of allowed answers in any window of the variant: below 0.99 the figures are void. */
  readonly minAllowedShare: number;
  readonly changesWritten: number;
}

const figuresOf = (w: MeasuredWindow): WindowFigures => ({
  p50: w.p50,
  p99: w.p99,
  max: w.max,
  handlerP99Ms: w.handler?.p99Ms,
});

function pooled(windows: readonly MeasuredWindow[]): WindowFigures {
  const all = new Float64Array(windows.reduce((n, w) => n + w.latenciesMs.length, 0));
  let at = 0;
  for (const w of windows) {
    all.set(w.latenciesMs, at);
    at += w.latenciesMs.length;
  }
  const s = summarize(all);
  return {
    p50: s.p50,
    p99: s.p99,
    max: s.max,
    handlerP99Ms: percentilesOf(sumBuckets(windows.map((w) => w.handlerBuckets)))?.p99Ms,
  };
}

export function variantFigures(
  pairs: ReadonlyArray<{
    readonly first: 'quiet' | 'changes';
    readonly quiet: MeasuredWindow;
    readonly changes: MeasuredWindow;
  }>,
  changesWritten: number,
): VariantFigures {
  const perPair = pairs.map((p) => ({
    first: p.first,
    quiet: figuresOf(p.quiet),
    changes: figuresOf(p.changes),
    ratio: { p99: p.changes.p99 / p.quiet.p99, max: p.changes.max / p.quiet.max },
  }));
  const quiet = pooled(pairs.map((p) => p.quiet));
  const changes = pooled(pairs.map((p) => p.changes));
  return {
    pairs: perPair,
    medianRatio: {
      p99: median(perPair.map((p) => p.ratio.p99)),
      max: median(perPair.map((p) => p.ratio.max)),
    },
    pooled: {
      quiet,
      changes,
      ratio: { p99: changes.p99 / quiet.p99, max: changes.max / quiet.max },
    },
    minAllowedShare: Math.min(
      ...pairs.flatMap((p) => [p.quiet.allowedShare, p.changes.allowedShare]),
    ),
    changesWritten,
  };
}
