/**
 * The Check pipeline in-process: `check()` with real parts (a LocalIssuer's JWKS over HTTP, our own
 * keys, an embedded registry) and no transport, assembled by the service's own `assembleService`
 * (test/world/world.ts, level `check`). For decisions; transport, lifecycle and Redis are tested
 * through processes and the gRPC server.
 */
import { loadConfig } from '../../src/config/config.js';
import type { OpenChainDeps } from '../../src/chain/open-chain.js';
import type { LocalIssuer } from '../../src/demo/local-issuer.js';
import type { OwnKeys } from '../../src/keys/own-keys.js';
import type { CheckInput } from '../../src/pipeline/check-input.js';
import { type CheckDeps, check } from '../../src/pipeline/check.js';
import type { DecisionRecord } from '../../src/pipeline/decision.js';
import type { MintSettings } from '../../src/pipeline/mint.js';
import type { MemoryRegistry, RegistryContents } from '../../src/registry/memory-registry.js';
import { parseIssuer } from '../../src/registry/records.js';
import type { AssembledService } from '../../src/service.js';
import { startWorld } from '../world/world.js';

/** The issuer the service names itself by default. */
export const OWN_ISSUER = loadConfig({}).issuer;

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
    /** Settings as the environment spells them. */
    env?: Record<string, string>;
    override?: (deps: CheckDeps) => Partial<CheckDeps>;
  } = {},
): Promise<InProcess> {
  // The service's own assembly from its own defaults; only what a test is about is set here.
  const world = await startWorld('check', {
    ...(options.contents ? { contents: options.contents } : {}),
    ...(options.ownKeys ? { ownKeys: options.ownKeys } : {}),
    env: {
      MATRYOSHKA_JWKS_COOLDOWN_MS: '0',
      ...(options.shadow ? { MATRYOSHKA_MODE: 'shadow' } : {}),
      ...(options.memo === false ? { MATRYOSHKA_MEMO_ENTRIES: '0' } : {}),
      ...options.env,
    },
  });
  const base = (world.assembled as AssembledService).pipeline;
  const deps = { ...base, ...options.override?.(base) };
  return {
    deps,
    registry: world.registry,
    ownKeys: world.ownKeys,
    // onUnexpected is the service's: it logs the failure, and the test reads the log.
    get unexpected() {
      return world.logs
        .filter((l) => l['msg'] === 'check failed unexpectedly')
        .map((l) => (l['err'] as { message?: unknown } | undefined)?.message);
    },
    check: (call) => check(checkInput(call), deps),
  };
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
  const world = await startWorld('check', {
    contents: {
      issuers: [
        parseIssuer(
          { issuer: idp.issuer, tenant: 'acme', jwks_uri: idp.jwksUri, algorithms: ['ES256'] },
          'issuer',
          true,
        ),
      ],
    },
    env: {
      MATRYOSHKA_ISSUER: ownIssuer,
      MATRYOSHKA_MAX_LEVELS: '16',
      MATRYOSHKA_MAX_TOKEN_LENGTH: String(256 * 1024),
      MATRYOSHKA_JWKS_COOLDOWN_MS: '0',
    },
  });
  const { trust, limits } = (world.assembled as AssembledService).pipeline;
  return { trust, limits, ownKeys: world.ownKeys };
}

/**
 * Settings for minting a level by hand (mintExtended in a test): nested, gzip from depth 3, a
 * budget no chain of a test reaches; `issuer` and anything else as the test says.
 */
export const handMint = (issuer: string, overrides: Partial<MintSettings> = {}): MintSettings => ({
  issuer,
  ttlSeconds: 300,
  compression: 'g',
  compressFromDepth: 3,
  format: 'nested',
  headerBudget: 1024 * 1024,
  forwardHeader: 'authorization',
  ...overrides,
});
