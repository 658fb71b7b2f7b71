import type { Attributes, Counter, Histogram } from '@opentelemetry/api';
import { PrometheusExporter, PrometheusSerializer } from '@opentelemetry/exporter-prometheus';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { AggregationType, MeterProvider } from '@opentelemetry/sdk-metrics';
import type { DecisionRecord } from '../pipeline/decision.js';

/** Buckets for Check latency: tens of microseconds (warm) to the 200 ms Envoy waits by default. */
const DURATION_BUCKETS = [
  0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1,
];
const DEPTH_BUCKETS = [0, 1, 2, 3, 4, 5, 6, 8, 10, 12, 16, 24, 32];

/** One attribute object per label value, made once. */
const DECISION_ATTRIBUTES = {
  allow: Object.freeze({ decision: 'allow' }),
  deny: Object.freeze({ decision: 'deny' }),
  shadow_allow: Object.freeze({ decision: 'shadow_allow' }),
} as const;

/** Around the limits that matter: 8 KB (Tomcat, nginx, grpc-java), the default budget, 16 KB, 60 KiB. */
const HEADER_BYTES_BUCKETS = [1024, 2048, 4096, 6656, 8192, 16384, 32768, 61440];
const FORM_ATTRIBUTES = {
  nested: { form: 'nested' },
  compact: { form: 'compact' },
} as const satisfies Record<string, Attributes>;

export function decisionLabel(record: DecisionRecord): 'allow' | 'deny' | 'shadow_allow' {
  if (!record.allowed) return 'deny';
  return record.reason === undefined ? 'allow' : 'shadow_allow';
}

/**
 * Instrument names are already Prometheus names (the exporter adds `_total` to counters and
 * `_bucket`/`_sum`/`_count` to histograms), so dashboards read the conventional `_seconds`.
 *
 * The service's metrics, through the OpenTelemetry metrics SDK, read as Prometheus text on
 * `/metrics`. Each service instance owns its MeterProvider (no global state), so several can run
 * in one process (tests) without mixing counts.
 */
export class AuthzMetrics {
  private readonly exporter: PrometheusExporter;
  private readonly provider: MeterProvider;
  private readonly serializer = new PrometheusSerializer();
  private readonly duration: Histogram;
  private readonly depth: Histogram;
  private readonly headerBytes: Histogram;
  private readonly keyFetches: Counter;
  private readonly redisErrors: Counter;
  private readonly registryReloadFailures: Counter;
  /**
   * The two per-check counters are counted here and read by observable instruments at scrape
   * time: a synchronous OTel counter hashes its attribute set on every add (≈ 5 µs each).
   */
  private readonly decisionCounts = new Map<
    string,
    { readonly attributes: Attributes; count: number }
  >();
  private lookups = { hit: 0, miss: 0 };
  /** Unreadable stored records found, by kind (see recordUnreadable). */
  private readonly unreadableRecords = new Map<string, number>();
  /** What the Redis registry says about itself at scrape time (absent: no Redis registry). */
  private registryState: (() => { following: boolean; unreadable: number }) | undefined;
  /** Published keys refused at import, by issuer and reason (each key counted once while published). */
  private readonly refusedKeys = new Map<
    string,
    { readonly attributes: Attributes; count: number }
  >();

  constructor(serviceName: string) {
    this.exporter = new PrometheusExporter({ preventServerStart: true });
    this.provider = new MeterProvider({
      resource: resourceFromAttributes({ 'service.name': serviceName }),
      readers: [this.exporter],
      views: [
        {
          instrumentName: 'authz_check_duration_seconds',
          aggregation: {
            type: AggregationType.EXPLICIT_BUCKET_HISTOGRAM,
            options: { boundaries: DURATION_BUCKETS },
          },
        },
        {
          instrumentName: 'authz_minted_header_bytes',
          aggregation: {
            type: AggregationType.EXPLICIT_BUCKET_HISTOGRAM,
            options: { boundaries: HEADER_BYTES_BUCKETS },
          },
        },
        {
          instrumentName: 'authz_chain_depth',
          aggregation: {
            type: AggregationType.EXPLICIT_BUCKET_HISTOGRAM,
            options: { boundaries: DEPTH_BUCKETS },
          },
        },
      ],
    });
    const meter = this.provider.getMeter('matryoshka-authz');
    meter
      .createObservableCounter('authz_decisions', {
        description: 'Check decisions by decision, reason and tenant',
      })
      .addCallback((result) => {
        for (const { attributes, count } of this.decisionCounts.values())
          result.observe(count, attributes);
      });
    this.duration = meter.createHistogram('authz_check_duration_seconds', {
      unit: 's',
      description: 'Check latency inside the service',
    });
    this.depth = meter.createHistogram('authz_chain_depth', {
      description: 'Depth of the incoming chain',
    });
    this.headerBytes = meter.createHistogram('authz_minted_header_bytes', {
      description:
        'Bytes an allowed Check adds upstream (minted token + identity headers), by form',
    });
    this.keyFetches = meter.createCounter('authz_key_fetches', {
      description: 'Issuer key fetches (discovery + JWKS) by outcome',
    });
    meter
      .createObservableCounter('authz_key_cache_lookups', {
        description: 'Checks whose issuer keys were in memory (hit) or not (miss)',
      })
      .addCallback((result) => {
        for (const outcome of ['hit', 'miss'] as const)
          if (this.lookups[outcome] > 0) result.observe(this.lookups[outcome], { result: outcome });
      });
    meter
      .createObservableCounter('authz_jwks_keys_refused', {
        description:
          'Keys of issuer JWK Sets refused at import (size, exponent, curve, type), by issuer and reason',
      })
      .addCallback((result) => {
        for (const { attributes, count } of this.refusedKeys.values())
          result.observe(count, attributes);
      });
    this.redisErrors = meter.createCounter('authz_redis_errors', {
      description: 'Redis connection and command failures',
    });
    this.registryReloadFailures = meter.createCounter('authz_registry_reload_failures', {
      description: 'Registry changes refused as invalid; the last good registry stays in force',
    });
    meter
      .createObservableCounter('authz_registry_records_unreadable', {
        description:
          'Stored registry records found unreadable (unknown field, wrong type, not JSON), by kind; tenant and service records refuse their requests',
      })
      .addCallback((result) => {
        for (const [kind, count] of this.unreadableRecords) result.observe(count, { kind });
      });
    meter
      .createObservableGauge('authz_registry_following', {
        description:
          '1 while this replica follows the registry in Redis (or Redis is merely unreachable), 0 while Redis answers but it cannot apply what it reads (not ready, Checks 503)',
      })
      .addCallback((result) => {
        const state = this.registryState?.();
        if (state !== undefined) result.observe(state.following ? 1 : 0);
      });
    meter
      .createObservableGauge('authz_registry_unreadable_records_held', {
        description:
          'Tenant and service records this replica holds as unreadable (their requests are refused)',
      })
      .addCallback((result) => {
        const state = this.registryState?.();
        if (state !== undefined) result.observe(state.unreadable);
      });
    meter
      .createObservableGauge('authz_key_cache_hit_ratio', {
        description: 'Share of checks served from in-memory keys since start',
      })
      .addCallback((result) => {
        const total = this.lookups.hit + this.lookups.miss;
        if (total > 0) result.observe(this.lookups.hit / total);
      });
  }

  recordDecision(record: DecisionRecord, durationSeconds: number, keyCacheMiss: boolean): void {
    const decision = decisionLabel(record);
    const reason = record.reason ?? 'none';
    const tenant = record.tenant ?? 'unknown';
    // Only registered operation names reach the label (the record names one only when it matched).
    const operation = record.operation ?? '';
    const key = `${decision}\u0000${reason}\u0000${tenant}\u0000${operation}`;
    const counted = this.decisionCounts.get(key);
    if (counted === undefined)
      this.decisionCounts.set(key, {
        attributes: { decision, reason, tenant, operation },
        count: 1,
      });
    else counted.count++;
    this.duration.record(durationSeconds, DECISION_ATTRIBUTES[decision]);
    if (record.chain !== undefined) {
      this.depth.record(record.chain.depth);
      this.lookups[keyCacheMiss ? 'miss' : 'hit']++;
    }
    if (record.minted !== undefined && record.headerBytes !== undefined)
      this.headerBytes.record(record.headerBytes, FORM_ATTRIBUTES[record.minted.form]);
  }

  recordKeyFetch(outcome: 'ok' | 'error'): void {
    this.keyFetches.add(1, { outcome });
  }

  recordKeyRefused(issuer: string, reason: string): void {
    const key = `${issuer}\u0000${reason}`;
    const counted = this.refusedKeys.get(key);
    if (counted === undefined)
      this.refusedKeys.set(key, { attributes: { issuer, reason }, count: 1 });
    else counted.count++;
  }

  recordRedisError(kind: string): void {
    this.redisErrors.add(1, { kind });
  }

  recordUnreadable(kind: string): void {
    this.unreadableRecords.set(kind, (this.unreadableRecords.get(kind) ?? 0) + 1);
  }

  /** Read the Redis registry's own state at every scrape. */
  observeRegistry(read: () => { following: boolean; unreadable: number }): void {
    this.registryState = read;
  }

  recordRegistryReloadFailure(source: 'file'): void {
    this.registryReloadFailures.add(1, { source });
  }

  async render(): Promise<string> {
    const { resourceMetrics } = await this.exporter.collect();
    return this.serializer.serialize(resourceMetrics);
  }

  async shutdown(): Promise<void> {
    await this.provider.shutdown();
  }
}
