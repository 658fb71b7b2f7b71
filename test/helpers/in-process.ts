/**
 * The Check pipeline in-process: `check()` with real parts (a LocalIssuer's JWKS over HTTP, our own
 * keys, an embedded registry) and no transport. For decisions; transport, lifecycle and Redis are
 * tested through processes and the gRPC server.
 */
import { trace } from '@opentelemetry/api';
import { ChainMemo } from '../../src/chain/chain-memo.js';
import type { OpenChainDeps } from '../../src/chain/open-chain.js';
import type { LocalIssuer } from '../../src/demo/local-issuer.js';
import { DEFAULT_FETCH_LIMITS } from '../../src/keys/fetch-json.js';
import { IssuerKeys } from '../../src/keys/issuer-keys.js';
import { OwnKeys } from '../../src/keys/own-keys.js';
import { RemoteJwks } from '../../src/keys/remote-jwks.js';
import type { CheckInput } from '../../src/pipeline/check-input.js';
import { type CheckDeps, check } from '../../src/pipeline/check.js';
import type { DecisionRecord } from '../../src/pipeline/decision.js';
import {
  MemoryRegistry,
  type RegistryContents,
  emptyContents,
} from '../../src/registry/memory-registry.js';
import { parseIssuer } from '../../src/registry/records.js';

export const OWN_ISSUER = 'urn:matryoshka:authz';

export interface InProcess {
  readonly deps: CheckDeps;
  readonly registry: MemoryRegistry;
  readonly ownKeys: OwnKeys;
  /** Failures handed to `onUnexpected`, in order. */
  readonly unexpected: unknown[];
  check(call: CheckCall): Promise<DecisionRecord>;
}

export interface CheckCall {
  token?: string;
  sid?: string;
  contextExtensions?: Record<string, string>;
  headers?: Record<string, string>;
  sourcePrincipal?: string;
  destinationPrincipal?: string;
  path?: string;
  method?: string;
}

export function checkInput(call: CheckCall): CheckInput {
  const headers = new Map(Object.entries(call.headers ?? {}).map(([k, v]) => [k.toLowerCase(), v]));
  if (call.token !== undefined) headers.set('authorization', `Bearer ${call.token}`);
  return {
    headers,
    contextExtensions: {
      ...(call.sid === undefined ? {} : { sid: call.sid }),
      ...call.contextExtensions,
    },
    sourcePrincipal: call.sourcePrincipal,
    destinationPrincipal: call.destinationPrincipal,
    path: call.path,
    method: call.method,
  };
}

export async function inProcess(
  options: {
    contents?: Partial<RegistryContents>;
    shadow?: boolean;
    memo?: boolean;
    ownKeys?: OwnKeys;
    override?: (deps: CheckDeps) => Partial<CheckDeps>;
  } = {},
): Promise<InProcess> {
  const registry = new MemoryRegistry({ ...emptyContents(), ...options.contents });
  // Replicas of one fleet share their keys: pass one instance's `ownKeys` to another.
  const ownKeys = options.ownKeys ?? (await OwnKeys.generate());
  const remote = new RemoteJwks({
    fetch: { ...DEFAULT_FETCH_LIMITS, allowInsecure: true },
    maxAgeMs: 60_000,
    maxStaleMs: 60_000,
    cooldownMs: 0,
  });
  const unexpected: unknown[] = [];
  const base: CheckDeps = {
    registry,
    trust: { ownIssuer: OWN_ISSUER, registry, keys: new IssuerKeys(ownKeys, remote) },
    ownKeys,
    limits: {
      maxLevels: 32,
      maxContainerBytes: 256 * 1024,
      maxTokenLength: 64 * 1024,
      clockSkewSeconds: 30,
    },
    mint: {
      issuer: OWN_ISSUER,
      ttlSeconds: 120,
      compression: 'g',
      compressFromDepth: 3,
      format: 'auto',
      headerBudget: 6656,
      forwardHeader: 'authorization',
    },
    defaultMaxDepth: 8,
    defaultServiceId: undefined,
    shadow: options.shadow ?? false,
    now: () => Math.floor(Date.now() / 1000),
    onUnexpected: (error) => unexpected.push(error),
    tracer: trace.getTracer('test'),
    memo: options.memo === false ? undefined : new ChainMemo(1000),
  };
  const deps = { ...base, ...options.override?.(base) };
  return { deps, registry, ownKeys, unexpected, check: (call) => check(checkInput(call), deps) };
}

/** Walk `sids` from an origin of `idp`; the forwarded token after the last hop. */
export async function walk(p: InProcess, origin: string, sids: readonly string[]): Promise<string> {
  let token = origin;
  for (const sid of sids) {
    const record = await p.check({ token, sid });
    if (!record.allowed || record.minted === undefined)
      throw new Error(`hop ${sid}: ${record.reason} ${record.detail}`);
    token = record.minted.token;
  }
  return token;
}

export type { LocalIssuer };

/**
 * What `openChain` needs to walk chains of `idp` (tenant acme, ES256) and of our own keys: the
 * chain walk alone, no policy, no mint. `now` is the caller's (the time rules are tested exactly).
 */
export async function chainWalkDeps(
  idp: LocalIssuer,
  ownIssuer = 'https://authz.test',
): Promise<Omit<OpenChainDeps, 'now'> & { ownKeys: OwnKeys }> {
  const registry = new MemoryRegistry({
    ...emptyContents(),
    issuers: [
      parseIssuer(
        { issuer: idp.issuer, tenant: 'acme', jwks_uri: idp.jwksUri, algorithms: ['ES256'] },
        'issuer',
        true,
      ),
    ],
  });
  const ownKeys = await OwnKeys.generate();
  const remote = new RemoteJwks({
    fetch: { ...DEFAULT_FETCH_LIMITS, allowInsecure: true },
    maxAgeMs: 60_000,
    maxStaleMs: 60_000,
    cooldownMs: 0,
  });
  return {
    trust: { ownIssuer, registry, keys: new IssuerKeys(ownKeys, remote) },
    ownKeys,
    limits: {
      maxLevels: 16,
      maxContainerBytes: 256 * 1024,
      maxTokenLength: 256 * 1024,
      clockSkewSeconds: 30,
    },
  };
}
