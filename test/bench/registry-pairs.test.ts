/**
 * The registry bench's verdict (bench/lib/registry-pairs.ts): the median over paired windows, so
 * one stall of the machine in one window does not decide it, while a slowdown in every pair does.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type MeasuredWindow, variantFigures } from '../../bench/lib/registry-pairs.js';

function window(latenciesMs: number[]): MeasuredWindow {
  const sorted = [...latenciesMs].sort((a, b) => a - b);
  const at = (q: number) =>
    sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] as number;
  return {
    latenciesMs,
    p50: at(0.5),
    p99: at(0.99),
    max: sorted[sorted.length - 1] as number,
    allowedShare: 1,
    handlerBuckets: undefined,
    handler: undefined,
  };
}

/** 1,000 latencies: 0.8 ms with a 1.5% tail at 5 ms, times `scale`. */
const latencies = (scale: number): number[] =>
  Array.from({ length: 1000 }, (_, i) => (i < 985 ? 0.8 : 5) * scale);

/** The same, with the machine stalled for 250 ms under the last 2% of requests (p99 and max hit). */
const stalled = (): number[] => latencies(1).map((v, i) => (i >= 980 ? v + 250 : v));

describe('registry bench: paired windows', () => {
  it('one stalled window moves the pooled ratio but not the median over pairs', () => {
    const pairs = Array.from({ length: 5 }, (_, i) => ({
      first: (i % 2 === 0 ? 'quiet' : 'changes') as 'quiet' | 'changes',
      quiet: window(latencies(1)),
      changes: window(i === 4 ? stalled() : latencies(1)),
    }));
    const figures = variantFigures(pairs, 50);
    assert.ok((figures.pairs[4]?.ratio.p99 ?? 0) > 10, 'the stalled pair itself is far off');
    assert.ok(
      figures.medianRatio.p99 <= 1.0001 && figures.medianRatio.max <= 1.0001,
      JSON.stringify(figures.medianRatio),
    );
    assert.ok(figures.pooled.ratio.max > 10, 'pooled, the stall shows');
  });

  it('a slowdown in every pair moves the median', () => {
    const pairs = Array.from({ length: 5 }, (_, i) => ({
      first: (i % 2 === 0 ? 'quiet' : 'changes') as 'quiet' | 'changes',
      quiet: window(latencies(1)),
      changes: window(latencies(1.5)),
    }));
    const figures = variantFigures(pairs, 50);
    assert.ok(Math.abs(figures.medianRatio.p99 - 1.5) < 0.01, String(figures.medianRatio.p99));
    assert.ok(Math.abs(figures.medianRatio.max - 1.5) < 0.01, String(figures.medianRatio.max));
  });
});
