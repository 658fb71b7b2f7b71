import { setGlobalErrorHandler } from '@opentelemetry/core';
import { connect } from 'node:net';
import { messageOf } from '../errors.js';
import type { Env } from '../env.js';

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
export async function startTracing(
  env: Env = process.env,
  warn: (detail: string) => void = () => undefined,
): Promise<Tracing> {
  // Off means off: no SDK, so no async-context manager either (its hooks cost every promise), and
  // the SDK's modules are not even loaded.
  if (!tracingConfigured(env)) return { enabled: false, shutdown: async () => undefined };
  const { NodeSDK } = await import('@opentelemetry/sdk-node');
  const sdk = new NodeSDK({
    ...(set(env, 'OTEL_SERVICE_NAME') ? {} : { serviceName: 'matryoshka-authz' }),
    metricReaders: [],
    logRecordProcessors: [],
    instrumentations: [],
  });
  // An unreachable collector fails every export: said once, not once per batch (and not never).
  // The exporter retries for its whole timeout before it reports anything, so the endpoint is
  // also tried once at start: a collector that is not there is said at once.
  let warned = false;
  const warnOnce = (detail: string): void => {
    if (warned) return;
    warned = true;
    warn(detail);
  };
  setGlobalErrorHandler((error) => warnOnce(messageOf(error)));
  probeEndpoint(env, warnOnce);
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

/** How long the start-up probe of the OTLP endpoint may take before it counts as unreachable. */
const PROBE_TIMEOUT_MS = 2000;

/** One TCP connection to the configured OTLP endpoint; `unreachable` when it cannot be made. */
function probeEndpoint(env: Env, unreachable: (detail: string) => void): void {
  const endpoint =
    (env['OTEL_EXPORTER_OTLP_TRACES_ENDPOINT'] ?? '').trim() ||
    (env['OTEL_EXPORTER_OTLP_ENDPOINT'] ?? '').trim();
  if (endpoint === '') return;
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch {
    unreachable(`${endpoint} is not a URL`);
    return;
  }
  const port = Number(url.port || (url.protocol === 'https:' ? 443 : 80));
  const host = url.hostname.replace(/^\[|\]$/g, '');
  const socket = connect({ host, port, timeout: PROBE_TIMEOUT_MS });
  socket.unref();
  socket.once('connect', () => socket.destroy());
  socket.once('timeout', () => {
    socket.destroy();
    unreachable(`${url.host}: no answer within ${PROBE_TIMEOUT_MS} ms`);
  });
  socket.once('error', (error) => unreachable(`${url.host}: ${messageOf(error)}`));
}
