/**
 * The registry scenario's lines in the report: its targets (judged on the median over pairs of
 * changes ÷ quiet) and a note with every pair, the pooled figures and the service's own histogram.
 */
import type { ChecksUnderChanges } from './registry-checks.js';
import type { ChangeTarget, VariantFigures, WindowFigures } from './registry-pairs.js';

const VARIANTS: ReadonlyArray<[ChangeTarget, string]> = [
  ['others', 'other tenants'],
  ['own', "the measured tenant's own records"],
];

/** p99 ≤ 1.2× and max ≤ 2× for each variant; void when a window measured anything but allows. */
export function registryTargets(checks: ChecksUnderChanges | undefined) {
  return VARIANTS.flatMap(([variant, what]) => {
    const v = checks?.variants[variant];
    const ok = v !== undefined && v.minAllowedShare >= 0.99;
    return [
      {
        target: `registry: Check p99 with 10 changes/s (${what}) ≤ 1.2× without (median of ${checks?.pairs ?? '?'} pairs)`,
        corrected: undefined,
        value: v?.medianRatio.p99,
        limit: 1.2,
        unit: '×',
        better: 'lower' as const,
        ok,
      },
      {
        target: `registry: Check max with 10 changes/s (${what}) ≤ 2× without (median of ${checks?.pairs ?? '?'} pairs)`,
        corrected: undefined,
        value: v?.medianRatio.max,
        limit: 2,
        unit: '×',
        better: 'lower' as const,
        ok,
      },
    ];
  });
}

const ms = (n: number): string => n.toFixed(2);
const handler = (w: WindowFigures): string =>
  w.handlerP99Ms === undefined ? '?' : `≤ ${w.handlerP99Ms} ms`;

function variantNote(what: string, v: VariantFigures): string {
  const pairs = v.pairs
    .map(
      (p, i) =>
        `${i + 1} (${p.first === 'quiet' ? 'Q C' : 'C Q'}) quiet ${ms(p.quiet.p50)}/${ms(p.quiet.p99)}/${ms(p.quiet.max)}, changes ${ms(p.changes.p50)}/${ms(p.changes.p99)}/${ms(p.changes.max)} → p99 ${p.ratio.p99.toFixed(2)}×, max ${p.ratio.max.toFixed(2)}×`,
    )
    .join('; ');
  const { quiet, changes, ratio } = v.pooled;
  return `10 changes/s on ${what} (${v.changesWritten} written): pairs, p50/p99/max ms: ${pairs}. Median over pairs: p99 ${v.medianRatio.p99.toFixed(2)}×, max ${v.medianRatio.max.toFixed(2)}× (the target figures). Pooled, for information: quiet ${ms(quiet.p50)}/${ms(quiet.p99)}/${ms(quiet.max)}, changes ${ms(changes.p50)}/${ms(changes.p99)}/${ms(changes.max)} (p99 ${ratio.p99.toFixed(2)}×, max ${ratio.max.toFixed(2)}×). Inside the service (its histogram, bucket bound holding p99): quiet ${handler(quiet)}, changes ${handler(changes)}`;
}

export function registryChecksNote(checks: ChecksUnderChanges | undefined): string | undefined {
  if (checks === undefined) return undefined;
  return `registry checks (a Redis-backed serve following the registry scenario's registry, open loop at ${checks.rate.toFixed(0)} req/s, distinct depth-1 tokens; per variant ${checks.pairs} pairs of ${checks.windowSeconds} s windows (${checks.warmupSeconds} s warm-up each), one quiet and one under changes, the order alternating pair by pair; targets on the median over pairs of changes ÷ quiet: p99 ≤ 1.2×, max ≤ 2×): ${VARIANTS.map(([variant, what]) => variantNote(what, checks.variants[variant])).join(' — ')}`;
}
