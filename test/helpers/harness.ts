import { Writable } from 'node:stream';
import { loadConfig } from '../../src/config/config.js';
import { EnvoyLikeClient } from '../../src/demo/envoy-client.js';
import type { OwnKeys } from '../../src/keys/own-keys.js';
import {
  MemoryRegistry,
  type RegistryContents,
  emptyContents,
} from '../../src/registry/memory-registry.js';
import { type RunningService, startService } from '../../src/service.js';
import { createLogger } from '../../src/telemetry/logger.js';

export interface Harness {
  readonly service: RunningService;
  readonly client: EnvoyLikeClient;
  /** The embedded registry (with REDIS_URL in `env`, the service reads Redis instead and this is unused). */
  readonly registry: MemoryRegistry;
  /** Every log line the service wrote, parsed. */
  readonly logs: Array<Record<string, unknown>>;
  stop(): Promise<void>;
}

export interface HarnessOptions {
  contents?: Partial<RegistryContents>;
  env?: Record<string, string>;
  ownKeys?: OwnKeys;
  now?: () => number;
  processEnv?: NodeJS.ProcessEnv;
}

/** A real service on loopback (gRPC + HTTP, free ports) with a real gRPC client in front of it. */
export async function startHarness(options: HarnessOptions = {}): Promise<Harness> {
  const config = loadConfig({
    MATRYOSHKA_GRPC_PORT: '0',
    MATRYOSHKA_HTTP_PORT: '0',
    MATRYOSHKA_HOST: '127.0.0.1',
    MATRYOSHKA_ALLOW_INSECURE_ISSUERS: 'true',
    LOG_LEVEL: 'info',
    ...options.env,
  });
  const logs: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      for (const line of chunk.toString('utf8').split('\n'))
        if (line.trim()) logs.push(JSON.parse(line) as Record<string, unknown>);
      callback();
    },
  });
  const registry = new MemoryRegistry({ ...emptyContents(), ...options.contents });
  const service = await startService(config, createLogger(config.logLevel, sink), {
    ...(config.redisUrl === undefined ? { registry } : {}),
    ...(options.ownKeys ? { ownKeys: options.ownKeys } : {}),
    ...(options.now ? { now: options.now } : {}),
    ...(options.processEnv ? { env: options.processEnv } : {}),
  });
  const client = new EnvoyLikeClient(`127.0.0.1:${service.grpcPort}`);
  return {
    service,
    client,
    registry,
    logs,
    stop: async () => {
      client.close();
      await service.close(1000);
    },
  };
}

/** The reason code of the most recent decision the service logged. */
export function lastReason(h: Harness): unknown {
  return h.logs.findLast((l) => l['msg'] === 'check')?.['reason'];
}
