export interface LatencySummary {
  readonly count: number;
  readonly mean: number;
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
  readonly p999: number;
  readonly max: number;
}

/** Exact percentiles (nearest rank) of latencies in milliseconds. */
export function summarize(values: Float64Array): LatencySummary {
  const sorted = Float64Array.from(values).sort();
  const n = sorted.length;
  const at = (q: number): number =>
    n === 0 ? NaN : (sorted[Math.min(n - 1, Math.max(0, Math.ceil(q * n) - 1))] as number);
  let sum = 0;
  for (const v of sorted) sum += v;
  return {
    count: n,
    mean: n === 0 ? NaN : sum / n,
    p50: at(0.5),
    p90: at(0.9),
    p99: at(0.99),
    p999: at(0.999),
    max: n === 0 ? NaN : (sorted[n - 1] as number),
  };
}

/** A growable Float64Array. */
export class Samples {
  private data = new Float64Array(1 << 16);
  private n = 0;

  push(value: number): void {
    if (this.n === this.data.length) {
      const bigger = new Float64Array(this.data.length * 2);
      bigger.set(this.data);
      this.data = bigger;
    }
    this.data[this.n++] = value;
  }

  get length(): number {
    return this.n;
  }

  values(): Float64Array {
    return this.data.subarray(0, this.n);
  }
}

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}
