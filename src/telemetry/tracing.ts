import { setGlobalErrorHandler } from '@opentelemetry/core';
import { NodeSDK } from '@opentelemetry/sdk-node';
import { messageOf } from '../errors.js';

type Env = Readonly<Record<string, string | undefined>>;

const set = (env: Env, name: string): boolean => (env[name] ?? '').trim() !== '';

/**
 * Tracing is on when the standard variables say where spans go: an OTLP endpoint, or an explicit
 * OTEL_TRACES_EXPORTER other than `none`. Otherwise the SDK would export to localhost:4318 by
 * default and log a failure for every batch — "telemetry off" must be silent.
 */
export function tracingConfigured(env: Env): boolean {
  if ((env['OTEL_SDK_DISABLED'] ?? '').toLowerCase() === 'true') return false;
  const exporters = (env['OTEL_TRACES_EXPORTER'] ?? '')
    .split(',')
    .map((e) => e.trim())
    .filter(Boolean);
  if (exporters.length > 0) return !exporters.includes('none');
  return set(env, 'OTEL_EXPORTER_OTLP_ENDPOINT') || set(env, 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT');
}

export interface Tracing {
  readonly enabled: boolean;
  /** Flush and stop, giving up after `withinMs`: a collector that does not answer must not hold the exit. */
  shutdown(withinMs?: number): Promise<void>;
}

/** How long a shutdown waits for the last spans to reach the collector, by default. */
export const TRACING_FLUSH_MS = 2000;

/**
 * Start the OpenTelemetry Node SDK for traces, configured entirely by the standard OTEL_*
 * variables (exporter, endpoint, protocol, headers, service name, sampler, resource attributes).
 * Metrics are not the SDK's job here: the service owns its MeterProvider and serves `/metrics`.
 */
export function startTracing(
  env: Env = process.env,
  warn: (detail: string) => void = () => undefined,
): Tracing {
  // Off means off: no SDK, so no async-context manager either (its hooks cost every promise).
  if (!tracingConfigured(env)) return { enabled: false, shutdown: async () => undefined };
  const sdk = new NodeSDK({
    ...(set(env, 'OTEL_SERVICE_NAME') ? {} : { serviceName: 'matryoshka-authz' }),
    metricReaders: [],
    logRecordProcessors: [],
    instrumentations: [],
  });
  // An unreachable collector fails every export: said once, not once per batch (and not never).
  let warned = false;
  setGlobalErrorHandler((error) => {
    if (warned) return;
    warned = true;
    warn(messageOf(error));
  });
  sdk.start();
  return {
    enabled: true,
    shutdown: (withinMs = TRACING_FLUSH_MS) =>
      new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, withinMs);
        sdk
          .shutdown()
          .catch(() => undefined)
          .finally(() => {
            clearTimeout(timer);
            resolve();
          });
      }),
  };
}
