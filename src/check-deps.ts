import { type Tracer, trace } from '@opentelemetry/api';
import { ChainMemo } from './chain/chain-memo.js';
import type { Config } from './config/config.js';
import type { Env } from './env.js';
import { IssuerKeys } from './keys/issuer-keys.js';
import type { OwnKeys } from './keys/own-keys.js';
import type { RemoteJwks } from './keys/remote-jwks.js';
import type { CheckDeps } from './pipeline/check.js';
import type { RegistryReader } from './registry/registry.js';

export interface CheckParts {
  readonly registry: RegistryReader;
  readonly ownKeys: OwnKeys;
  readonly remote: RemoteJwks;
  readonly onUnexpected: (error: unknown) => void;
  readonly env?: Env;
  readonly now?: () => number;
  readonly tracer?: Tracer;
  /** The memo of verified chains; default: as the config says. `explain` runs without one. */
  readonly memo?: ChainMemo | undefined;
  /** Decide only, mint nothing (`explain`). */
  readonly decideOnly?: boolean;
}

/** The Check pipeline's dependencies from the configuration: one assembly for `serve` and `explain`. */
export function checkDeps(config: Config, parts: CheckParts): CheckDeps {
  return {
    registry: parts.registry,
    trust: {
      ownIssuer: config.issuer,
      registry: parts.registry,
      keys: new IssuerKeys(parts.ownKeys, parts.remote, parts.env ?? process.env),
      trustDomain: config.trustDomain,
    },
    ownKeys: parts.ownKeys,
    limits: {
      maxLevels: config.maxLevels,
      maxContainerBytes: config.maxContainerBytes,
      maxTokenLength: config.maxTokenLength,
      clockSkewSeconds: config.clockSkewSeconds,
    },
    mint: {
      issuer: config.issuer,
      ttlSeconds: config.tokenTtlSeconds,
      compression: config.compression,
      compressFromDepth: 3,
      format: config.chainFormat,
      headerBudget: config.headerBudget,
      forwardHeader: config.forwardHeader,
    },
    decideOnly: parts.decideOnly ?? false,
    defaultMaxDepth: config.maxDepth,
    defaultServiceId: config.serviceId,
    shadow: config.shadow,
    now: parts.now ?? (() => Math.floor(Date.now() / 1000)),
    onUnexpected: parts.onUnexpected,
    tracer: parts.tracer ?? trace.getTracer('matryoshka-authz'),
    memo:
      'memo' in parts
        ? parts.memo
        : config.memoEntries > 0
          ? new ChainMemo(config.memoEntries)
          : undefined,
  };
}
