import { trace } from '@opentelemetry/api';
import type { Logger } from 'pino';
import { ChainMemo } from './chain/chain-memo.js';
import type { ChainLimits } from './chain/limits.js';
import type { Config } from './config/config.js';
import { DEFAULT_FETCH_LIMITS } from './keys/fetch-json.js';
import { IssuerKeys } from './keys/issuer-keys.js';
import { OwnKeys } from './keys/own-keys.js';
import { RemoteJwks } from './keys/remote-jwks.js';
import type { CheckDeps } from './pipeline/check.js';
import { buildCheckResponse } from './pipeline/respond.js';
import { MemoryRegistry } from './registry/memory-registry.js';
import { startRedisBackend } from './fleet/redis-backend.js';
import type { RegistryReader } from './registry/registry.js';
import { loadRegistryFile } from './registry/registry-file.js';
import { CheckHandler } from './server/check-handler.js';
import { type CheckRequestMessage, toCheckInput } from './server/check-request.js';
import { type RunningGrpcServer, startGrpcServer } from './server/grpc-server.js';
import { AUTHZ_SERVICE, HealthState } from './server/health.js';
import { type RunningHttpServer, startHttpServer } from './server/http-server.js';
import { auditLogger } from './telemetry/logger.js';
import { AuthzMetrics } from './telemetry/metrics.js';
import { grpcServerCredentials } from './tls/server-credentials.js';

export interface ServiceOverrides {
  /** A registry to use instead of the one the config names (tests, the demo). */
  registry?: RegistryReader;
  ownKeys?: OwnKeys;
  env?: NodeJS.ProcessEnv;
  now?: () => number;
}

export interface RunningService {
  readonly grpcPort: number;
  readonly httpPort: number;
  readonly registry: RegistryReader;
  readonly ownKeys: OwnKeys;
  readonly health: HealthState;
  readonly metrics: AuthzMetrics;
  /** Health turns NOT_SERVING, in-flight checks finish (up to `graceMs`), servers close. */
  close(graceMs?: number): Promise<void>;
}

function embeddedRegistry(config: Config, logger: Logger): RegistryReader {
  if (config.registryFile === undefined) return new MemoryRegistry();
  const registry = new MemoryRegistry(
    loadRegistryFile(config.registryFile, config.allowInsecureIssuers),
  );
  logger.info(
    {
      file: config.registryFile,
      issuers: registry.listIssuers().map((i) => ({ issuer: i.issuer, tenant: i.tenant })),
    },
    'registry loaded',
  );
  return registry;
}

/** Assemble and start the whole service from a Config: registry, keys, pipeline, gRPC and HTTP. */
export async function startService(
  config: Config,
  logger: Logger,
  overrides: ServiceOverrides = {},
): Promise<RunningService> {
  const ownKeys =
    overrides.ownKeys ??
    (config.signingKeysFile !== undefined
      ? await OwnKeys.fromFile(config.signingKeysFile)
      : await OwnKeys.generate());
  // The key cache is built before the registry so that registry changes can drop stale keys.
  const metrics = new AuthzMetrics(process.env['OTEL_SERVICE_NAME'] || 'matryoshka-authz');
  let remote: RemoteJwks | undefined;
  const redis =
    overrides.registry === undefined && config.redisUrl !== undefined
      ? startRedisBackend(config, config.redisUrl, ownKeys, logger, {
          onIssuersChanged: (issuers) => {
            for (const i of issuers) remote?.forget(i);
          },
          onError: (kind) => metrics.recordRedisError(kind),
        })
      : undefined;
  const registry = overrides.registry ?? redis?.registry ?? embeddedRegistry(config, logger);
  remote = new RemoteJwks({
    maxAgeMs: config.jwksMaxAgeSeconds * 1000,
    maxStaleMs: config.jwksMaxStaleSeconds * 1000,
    cooldownMs: config.jwksCooldownMs,
    fetch: {
      ...DEFAULT_FETCH_LIMITS,
      timeoutMs: config.jwksTimeoutMs,
      allowInsecure: config.allowInsecureIssuers,
    },
    onFetch: (issuer, outcome, durationMs) => {
      metrics.recordKeyFetch(outcome);
      logger.info({ issuer, outcome, duration_ms: Math.round(durationMs) }, 'jwks fetch');
    },
    onKeyRefused: (issuer, refusal) => {
      metrics.recordKeyRefused(issuer, refusal.reason);
      logger.warn(
        { issuer, key: refusal.id, reason: refusal.reason, detail: refusal.detail },
        'jwks key refused',
      );
    },
    ...(redis ? { shared: redis.jwksCache } : {}),
  });
  const limits: ChainLimits = {
    maxLevels: config.maxLevels,
    maxContainerBytes: config.maxContainerBytes,
    maxTokenLength: config.maxTokenLength,
    clockSkewSeconds: config.clockSkewSeconds,
  };
  const now = overrides.now ?? (() => Math.floor(Date.now() / 1000));
  const tracer = trace.getTracer('matryoshka-authz');
  const deps: CheckDeps = {
    registry,
    trust: {
      ownIssuer: config.issuer,
      registry,
      keys: new IssuerKeys(ownKeys, remote, overrides.env ?? process.env),
    },
    ownKeys,
    limits,
    mint: {
      issuer: config.issuer,
      ttlSeconds: config.tokenTtlSeconds,
      compression: config.compression,
      compressFromDepth: 3,
      format: config.chainFormat,
      headerBudget: config.headerBudget,
      forwardHeader: config.forwardHeader,
    },
    defaultMaxDepth: config.maxDepth,
    defaultServiceId: config.serviceId,
    shadow: config.shadow,
    now,
    onUnexpected: (error) => logger.error({ err: error }, 'check failed unexpectedly'),
    tracer,
    memo: config.memoEntries > 0 ? new ChainMemo(config.memoEntries) : undefined,
  };
  const settings = { forwardHeader: config.forwardHeader, debugReasons: config.debugReasons };
  const health = new HealthState();
  const checks = new CheckHandler({ pipeline: deps, tracer, metrics, audit: auditLogger(logger) });
  const handleCheck = async (request: CheckRequestMessage, deadline: number | undefined) =>
    buildCheckResponse(await checks.decide(toCheckInput(request), deadline), settings);

  let grpcServer: RunningGrpcServer | undefined;
  let httpServer: RunningHttpServer | undefined;
  try {
    grpcServer = await startGrpcServer({
      host: config.host,
      port: config.grpcPort,
      credentials: grpcServerCredentials({
        cert: config.tlsCert,
        key: config.tlsKey,
        ca: config.tlsCa,
        reloadMs: config.tlsReloadMs,
      }),
      health,
      check: handleCheck,
      limits: { maxTokenLength: config.maxTokenLength, idleTimeoutMs: config.idleTimeoutMs },
    });
    httpServer = await startHttpServer(
      config.host,
      config.httpPort,
      { idleTimeoutMs: config.idleTimeoutMs },
      {
        jwks: () => ownKeys.publicJwks(),
        live: () => true,
        ready: () => health.status(AUTHZ_SERVICE) === 'SERVING',
        metrics: () => metrics.render(),
      },
    );
  } catch (error) {
    await grpcServer?.shutdown(0);
    await redis?.close();
    throw error;
  }
  // Live as soon as the ports are open; ready (Checks decidable) once the registry has answered.
  health.set('', 'SERVING');
  let closingStarted = false;
  const syncReadiness = (): void => {
    if (!closingStarted) health.set(AUTHZ_SERVICE, registry.ready() ? 'SERVING' : 'NOT_SERVING');
  };
  syncReadiness();
  const readinessTimer = setInterval(syncReadiness, 200);
  readinessTimer.unref();
  const grpcPort = grpcServer.port;
  const httpPort = httpServer.port;
  logger.info(
    {
      grpc_port: grpcPort,
      http_port: httpPort,
      host: config.host,
      issuer: config.issuer,
      signing_kid: ownKeys.signing.kid,
      registry: redis ? 'redis' : config.registryFile !== undefined ? 'file' : 'embedded',
      mode: config.shadow ? 'shadow' : 'enforce',
      memo: deps.memo === undefined ? 'off' : { entries: config.memoEntries, hash: deps.memo.hash },
    },
    'matryoshka-authz serving',
  );

  let closing: Promise<void> | undefined;
  return {
    grpcPort,
    httpPort,
    registry,
    ownKeys,
    health,
    metrics,
    close: (graceMs = config.shutdownGraceMs) => {
      closing ??= (async () => {
        // Watchers hear NOT_SERVING first; their streams then end so they do not hold up the drain.
        closingStarted = true;
        clearInterval(readinessTimer);
        health.setAll('NOT_SERVING');
        health.endWatches();
        await grpcServer.shutdown(graceMs);
        await httpServer.close();
        await redis?.close();
        await metrics.shutdown();
        logger.info({ in_flight_at_exit: checks.inFlight }, 'matryoshka-authz stopped');
      })();
      return closing;
    },
  };
}
