/** The service's own view of its checks, read from its Prometheus endpoint around a run. */
import { get as httpGet } from 'node:http';

export interface HandlerPercentiles {
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly count: number;
}

function httpText(port: number, path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = httpGet({ host: '127.0.0.1', port, path, timeout: 5000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve(body));
    });
    req.on('error', reject);
    req.on('timeout', () => req.destroy(new Error('timeout')));
  });
}

/** Cumulative counts of `authz_check_duration_seconds` by bucket (`le`, seconds), all label sets summed. */
export async function durationBuckets(
  httpPort: number | undefined,
): Promise<Map<number, number> | undefined> {
  if (httpPort === undefined) return undefined;
  try {
    const text = await httpText(httpPort, '/metrics');
    const buckets = new Map<number, number>();
    for (const m of text.matchAll(
      /^authz_check_duration_seconds_bucket\{[^}]*le="([^"]+)"[^}]*\} (\d+(?:\.\d+)?)/gm,
    )) {
      const le = m[1] === '+Inf' ? Infinity : Number(m[1]);
      buckets.set(le, (buckets.get(le) ?? 0) + Number(m[2]));
    }
    return buckets;
  } catch {
    return undefined;
  }
}

/** Checks per bucket bound (cumulative, as scraped) between two scrapes. */
export function bucketDelta(
  before: Map<number, number> | undefined,
  after: Map<number, number> | undefined,
): Map<number, number> | undefined {
  if (before === undefined || after === undefined) return undefined;
  return new Map([...after].map(([le, n]) => [le, n - (before.get(le) ?? 0)]));
}

/** Several windows' deltas as one: cumulative counts add up bucket by bucket. */
export function sumBuckets(
  deltas: ReadonlyArray<Map<number, number> | undefined>,
): Map<number, number> | undefined {
  if (deltas.length === 0 || deltas.some((d) => d === undefined)) return undefined;
  const sum = new Map<number, number>();
  for (const d of deltas as Array<Map<number, number>>)
    for (const [le, n] of d) sum.set(le, (sum.get(le) ?? 0) + n);
  return sum;
}

/** The bucket bounds holding p50 and p99 of a delta (the histogram cannot say more). */
export function percentilesOf(
  delta: Map<number, number> | undefined,
): HandlerPercentiles | undefined {
  if (delta === undefined) return undefined;
  const bounds = [...delta.keys()].sort((a, b) => a - b);
  const counts = bounds.map((b) => delta.get(b) ?? 0);
  const total = counts[counts.length - 1] ?? 0;
  if (total <= 0) return undefined;
  const at = (q: number): number => bounds[counts.findIndex((c) => c >= q * total)] ?? Infinity;
  return { p50Ms: at(0.5) * 1000, p99Ms: at(0.99) * 1000, count: total };
}

/** Handler start → response built: the bucket bounds holding p50 and p99 of the checks between two scrapes. */
export function handlerPercentiles(
  before: Map<number, number> | undefined,
  after: Map<number, number> | undefined,
): HandlerPercentiles | undefined {
  return percentilesOf(bucketDelta(before, after));
}
