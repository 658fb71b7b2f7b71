import { trace } from '@opentelemetry/api';
import type { Logger } from 'pino';
import { checkDeps } from './check-deps.js';
import type { Config } from './config/config.js';
import type { Env } from './env.js';
import { DEFAULT_FETCH_LIMITS } from './keys/fetch-json.js';
import { OwnKeys } from './keys/own-keys.js';
import { RemoteJwks } from './keys/remote-jwks.js';
import {
  type CheckResponseMessage,
  type ResponseSettings,
  buildCheckResponse,
} from './pipeline/respond.js';
import type { CheckDeps } from './pipeline/check.js';
import { MemoryRegistry } from './registry/memory-registry.js';
import type { RegistryReader } from './registry/registry.js';
import { FileRegistry } from './registry/file-registry.js';
import { CheckHandler } from './server/check-handler.js';
import { type CheckRequestMessage, toCheckInput } from './server/check-request.js';
import { type RunningGrpcServer, startGrpcServer } from './server/grpc-server.js';
import { AUTHZ_SERVICE, HealthState } from './server/health.js';
import { type RunningHttpServer, startHttpServer } from './server/http-server.js';
import { type RunningAuthzHttp, startAuthzHttp } from './server/authz-http.js';
import { auditLogger } from './telemetry/logger.js';
import { AuthzMetrics } from './telemetry/metrics.js';
import { grpcServerCredentials, httpsTls } from './tls/server-credentials.js';

export interface ServiceOverrides {
  /** A registry to use instead of the one the config names (tests, the demo). */
  registry?: RegistryReader;
  ownKeys?: OwnKeys;
  /** The environment HMAC issuers' secrets and OTEL_SERVICE_NAME are read from; the process's by default. */
  env?: Env;
  now?: () => number;
}

export interface RunningService {
  readonly grpcPort: number;
  readonly httpPort: number;
  /** `MATRYOSHKA_AUTHZ_HTTP_PORT` as bound; undefined when the HTTP authorizer is off. */
  readonly authzHttpPort: number | undefined;
  readonly registry: RegistryReader;
  readonly ownKeys: OwnKeys;
  readonly health: HealthState;
  readonly metrics: AuthzMetrics;
  /** Read the registry file again now (SIGHUP); no-op without one. */
  reloadRegistry(): void;
  /** Health turns NOT_SERVING, in-flight checks finish (up to `graceMs`), servers close. */
  close(graceMs?: number): Promise<void>;
}

/** The embedded registry: the file named by MATRYOSHKA_REGISTRY_FILE (followed), else empty. */
function embeddedRegistry(
  config: Config,
  logger: Logger,
  metrics: AuthzMetrics,
  forget: (issuers: string[]) => void,
): MemoryRegistry | FileRegistry {
  if (config.registryFile === undefined) return new MemoryRegistry();
  const registry = new FileRegistry(config.registryFile, {
    allowInsecureIssuers: config.allowInsecureIssuers,
    pollMs: config.registryPollMs,
    onReloaded: (issuers, why) => {
      forget(issuers);
      logger.info(
        { file: config.registryFile, why, changed_issuers: issuers.length },
        'registry reloaded',
      );
    },
    onInvalid: (problem, why) => {
      metrics.recordRegistryReloadFailure('file');
      logger.error(
        { file: config.registryFile, why, problem },
        'registry file invalid; keeping the last good registry',
      );
    },
  });
  logger.info(
    {
      file: config.registryFile,
      issuers: registry.listIssuers().map((i) => ({ issuer: i.issuer, tenant: i.tenant })),
    },
    'registry loaded',
  );
  registry.start();
  return registry;
}

/**
 * The service without its listeners: registry, keys, the Check pipeline and its handler (span,
 * metrics, audit), assembled from a Config. `startService` puts transports in front of this; tests
 * call it directly so that they decide with exactly the parts and defaults `serve` uses.
 */
export interface AssembledService {
  readonly registry: RegistryReader;
  readonly ownKeys: OwnKeys;
  readonly remote: RemoteJwks;
  readonly metrics: AuthzMetrics;
  readonly pipeline: CheckDeps;
  readonly checks: CheckHandler;
  readonly settings: ResponseSettings;
  /** Which registry backs it, for the startup line. */
  readonly backend: 'redis' | 'file' | 'embedded';
  /** The Envoy answer to one CheckRequest, as the gRPC listener serves it. */
  handleCheck(
    request: CheckRequestMessage,
    deadline: number | undefined,
  ): Promise<CheckResponseMessage>;
  /** Read the registry file again now (SIGHUP); no-op without one. */
  reloadRegistry(): void;
  /** Stop following the registry (Redis, file) and flush metrics. */
  close(): Promise<void>;
}

export async function assembleService(
  config: Config,
  logger: Logger,
  overrides: ServiceOverrides = {},
): Promise<AssembledService> {
  const ownKeys =
    overrides.ownKeys ??
    (config.signingKeysFile !== undefined
      ? await OwnKeys.fromFile(config.signingKeysFile)
      : await OwnKeys.generate());
  // The key cache is built before the registry so that registry changes can drop stale keys.
  const metrics = new AuthzMetrics(
    (overrides.env ?? process.env)['OTEL_SERVICE_NAME'] || 'matryoshka-authz',
  );
  let remote: RemoteJwks | undefined;
  const forget = (issuers: string[]): void => {
    for (const i of issuers) remote?.forget(i);
  };
  // The Redis client (and its modules) is loaded only by a service that uses Redis.
  const redis =
    overrides.registry === undefined && config.redisUrl !== undefined
      ? (await import('./fleet/redis-backend.js')).startRedisBackend(
          config,
          config.redisUrl,
          ownKeys,
          logger,
          {
            onIssuersChanged: (issuers) => forget(issuers),
            onError: (kind) => metrics.recordRedisError(kind),
            onInvalidRecords: (records) => {
              for (const { record } of records)
                metrics.recordUnreadable(record.split(' ')[0] ?? '');
            },
          },
        )
      : undefined;
  if (redis !== undefined)
    metrics.observeRegistry(() => {
      const stats = redis.registry.stats();
      return { following: stats.cannotFollow === undefined, unreadable: stats.records.unreadable };
    });
  const file =
    overrides.registry === undefined && redis === undefined
      ? embeddedRegistry(config, logger, metrics, forget)
      : undefined;
  const registry = overrides.registry ?? redis?.registry ?? (file as RegistryReader);
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
  const tracer = trace.getTracer('matryoshka-authz');
  const deps = checkDeps(config, {
    registry,
    ownKeys,
    remote,
    tracer,
    ...(overrides.env ? { env: overrides.env } : {}),
    ...(overrides.now ? { now: overrides.now } : {}),
    onUnexpected: (error) => logger.error({ err: error }, 'check failed unexpectedly'),
  });
  const settings = { forwardHeader: config.forwardHeader, debugReasons: config.debugReasons };
  const checks = new CheckHandler({ pipeline: deps, tracer, metrics, audit: auditLogger(logger) });
  const handleCheck = async (request: CheckRequestMessage, deadline: number | undefined) =>
    buildCheckResponse(await checks.decide(toCheckInput(request), deadline), settings);

  return {
    registry,
    ownKeys,
    remote,
    metrics,
    pipeline: deps,
    checks,
    settings,
    backend: redis ? 'redis' : config.registryFile !== undefined ? 'file' : 'embedded',
    handleCheck,
    reloadRegistry: () => {
      if (file instanceof FileRegistry) file.reload('signal');
    },
    close: async () => {
      await redis?.close();
      if (file instanceof FileRegistry) file.stop();
      await metrics.shutdown();
    },
  };
}

/** Assemble and start the whole service from a Config: registry, keys, pipeline, gRPC and HTTP. */
export async function startService(
  config: Config,
  logger: Logger,
  overrides: ServiceOverrides = {},
): Promise<RunningService> {
  const assembled = await assembleService(config, logger, overrides);
  const { registry, ownKeys, metrics, pipeline: deps, checks, settings, handleCheck } = assembled;
  const health = new HealthState();
  let grpcServer: RunningGrpcServer | undefined;
  let httpServer: RunningHttpServer | undefined;
  let authzHttp: RunningAuthzHttp | undefined;
  try {
    const grpcTls = grpcServerCredentials({
      cert: config.tlsCert,
      key: config.tlsKey,
      ca: config.tlsCa,
      reloadMs: config.tlsReloadMs,
    });
    grpcServer = await startGrpcServer({
      host: config.host,
      port: config.grpcPort,
      credentials: grpcTls.credentials,
      health,
      check: handleCheck,
      limits: { maxTokenLength: config.maxTokenLength, idleTimeoutMs: config.idleTimeoutMs },
    });
    // Not serving, nor ready, before the port can finish a TLS handshake.
    await grpcTls.loaded;
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
    if (config.authzHttpPort !== undefined) {
      authzHttp = await startAuthzHttp({
        host: config.host,
        port: config.authzHttpPort,
        tls: httpsTls({
          cert: config.tlsCert,
          key: config.tlsKey,
          ca: config.tlsCa,
          reloadMs: config.tlsReloadMs,
        }),
        tlsReloadMs: config.tlsReloadMs,
        maxTokenLength: config.maxTokenLength,
        idleTimeoutMs: config.idleTimeoutMs,
        settings,
        decide: (input, deadline) => checks.decide(input, deadline),
        onRefused: (refusal) =>
          logger.warn({ status: refusal.status, problem: refusal.problem }, 'authz http refused'),
      });
    }
  } catch (error) {
    await httpServer?.close();
    await grpcServer?.shutdown(0);
    await assembled.close();
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
      ...(authzHttp !== undefined ? { authz_http_port: authzHttp.port } : {}),
      host: config.host,
      issuer: config.issuer,
      signing_kid: ownKeys.signing.kid,
      registry: assembled.backend,
      mode: config.shadow ? 'shadow' : 'enforce',
      memo: deps.memo === undefined ? 'off' : { entries: config.memoEntries, hash: deps.memo.hash },
    },
    'matryoshka-authz serving',
  );

  let closing: Promise<void> | undefined;
  return {
    grpcPort,
    httpPort,
    authzHttpPort: authzHttp?.port,
    registry,
    ownKeys,
    health,
    metrics,
    reloadRegistry: assembled.reloadRegistry,
    close: (graceMs = config.shutdownGraceMs) => {
      closing ??= (async () => {
        // Watchers hear NOT_SERVING first; their streams then end so they do not hold up the drain.
        closingStarted = true;
        clearInterval(readinessTimer);
        health.setAll('NOT_SERVING');
        health.endWatches();
        await Promise.all([grpcServer.shutdown(graceMs), authzHttp?.close(graceMs)]);
        await httpServer.close();
        await assembled.close();
        logger.info({ in_flight_at_exit: checks.inFlight }, 'matryoshka-authz stopped');
      })();
      return closing;
    },
  };
}
