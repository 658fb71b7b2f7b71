import type { Tracer } from '@opentelemetry/api';
import type { ChainMemo } from '../chain/chain-memo.js';
import type { ChainLimits } from '../chain/limits.js';
import { type ChainSource, openChain } from '../chain/open-chain.js';
import type { Chain } from '../chain/types.js';
import type { LevelTrust } from '../chain/verify-level.js';
import { isIdentifier, unsafeIdentity } from '../header-grammar.js';
import type { OwnKeys } from '../keys/own-keys.js';
import { decide } from '../policy/decide.js';
import { matchRule, withOperation } from '../policy/operations.js';
import { DenyError, type DenyReason, classOf, deny, denying, isOutage } from '../reasons.js';
import type { RegistryReader } from '../registry/registry.js';
import {
  type OperationPolicy,
  type PolicyMode,
  type ServicePolicy,
  type TenantPolicy,
  defaultServicePolicy,
  defaultTenantPolicy,
} from '../registry/records.js';
import type { CheckInput } from './check-input.js';
import type { DecisionRecord, ShadowScope } from './decision.js';
import { Deadlines } from './deadlines.js';
import { type RouteBindings, resolveDestinationSid, routeBindings } from './destination.js';
import { newRequestId } from './request-id.js';
import { claimsBearer, extractToken } from './extract.js';
import { mintWithinBudget } from './header-budget.js';
import type { MintSettings, Minted } from './mint.js';
import { chainTenant, checkTenantBindings } from './resolve-tenant.js';
import { inChildSpan } from './step-span.js';
import { type CarriedTxnToken, chainTxn, checkCarriedTxnToken } from '../txn/check-txn-token.js';
import { newTxn, signTxnToken } from '../txn/emit-txn-token.js';
import { mintedExpiry } from './mint.js';
import { TXN_TOKEN_HEADER } from './owned-headers.js';

export interface CheckDeps {
  readonly registry: RegistryReader;
  readonly trust: LevelTrust;
  readonly ownKeys: OwnKeys;
  readonly limits: ChainLimits;
  readonly mint: MintSettings;
  /** Decide only: nothing is minted (`explain`); the decision is the one Check would give. */
  readonly decideOnly?: boolean;
  readonly defaultMaxDepth: number;
  readonly defaultServiceId: string | undefined;
  readonly shadow: boolean;
  /** Seconds since the epoch. */
  readonly now: () => number;
  /** A failure that is not a decision (a bug, a dependency exploding): logged, answered 503. */
  readonly onUnexpected: (error: unknown) => void;
  /** Child spans for the pipeline steps (a no-op tracer when tracing is off). */
  readonly tracer: Tracer;
  /** Chains verified before (see ChainMemo); absent: verify every level every time. */
  readonly memo: ChainMemo | undefined;
}

const REQUEST_ID = /^[\x21-\x7e]{1,128}$/;
/** Times a Check is decided again when the registry changed under it, before it answers 503. */
const REGISTRY_ATTEMPTS = 3;

/** Envoy's `x-request-id` when it is sane, else a fresh ULID. */
export function requestIdOf(input: CheckInput): string {
  const given = input.headers.get('x-request-id');
  return given !== undefined && REQUEST_ID.test(given) ? given : newRequestId();
}

/** A denial the pipeline met; whether it stands is decided once, at the end (see `settle`). */
interface Denial {
  readonly reason: DenyReason;
  readonly detail: string;
}

/** Mutable while the pipeline runs; frozen into a DecisionRecord at the end. */
interface Draft {
  requestId: string;
  tenant?: string;
  user?: string;
  roles: readonly string[];
  destination?: string;
  chain?: Chain;
  minted?: Minted;
  headerBytes?: number;
  recursionAudited: boolean;
  txn?: string;
  txnToken?: string;
  txnTokenSource?: 'emitted' | 'carried';
  actors?: readonly string[];
  /** The first policy denial met; later steps still run, so shadow mode can mint. */
  policyDenial?: Denial;
  /** What dry-run is scoped by, as far as the walk got: the tenant's, the service's, the operation's mode. */
  tenantPolicy?: TenantPolicy;
  service?: ServicePolicy;
  operation?: OperationPolicy;
}

const newDraft = (input: CheckInput): Draft => ({
  requestId: requestIdOf(input),
  roles: [],
  recursionAudited: false,
});

/**
 * One Check: extract → open and verify the chain → destination → tenant → decide → mint.
 * Never throws: every path ends in a DecisionRecord, and anything unexpected fails closed (503).
 *
 * A policy denial does not stop the walk: it is recorded and `settle` decides, in one place,
 * whether it stands (enforce) or is let through (dry-run). An authenticity denial, an outage or a
 * bug ends the Check at once, denied whatever the mode.
 */
export async function check(input: CheckInput, deps: CheckDeps): Promise<DecisionRecord> {
  let draft = newDraft(input);
  try {
    for (let attempt = 1; ; attempt++) {
      // The registry this Check starts from. Verifying may wait (an issuer's keys fetched), and the
      // registry may change meanwhile: an allow stands only on the registry it was decided on.
      const started = deps.trust.registry.version();
      await runPipeline(input, deps, draft);
      const record = settle(draft, deps);
      if (!record.allowed || deps.trust.registry.version() === started) return record;
      if (attempt >= REGISTRY_ATTEMPTS)
        return finish({ ...newDraft(input), requestId: draft.requestId }, false, {
          reason: 'unavailable',
          detail: `the registry changed under each of ${attempt} attempts to decide`,
        });
      // Decided again on the registry as it is now (what was minted is filed under the old version).
      draft = { ...newDraft(input), requestId: draft.requestId };
    }
  } catch (error) {
    if (error instanceof DenyError)
      return finish(draft, false, { reason: error.reason, detail: error.message });
    if (isOutage(error))
      return finish(draft, false, { reason: 'unavailable', detail: error.message });
    deps.onUnexpected(error);
    return finish(draft, false, { reason: 'unavailable', detail: 'internal error' });
  }
}

/**
 * Dry-run, decided once: the scope whose mode lets a policy denial through, if any. The global
 * `MATRYOSHKA_MODE=shadow` covers everything; otherwise the most specific scope that says a mode
 * wins (an operation set to `enforce` enforces inside a service in `shadow`).
 */
function dryRunScope(draft: Draft, deps: CheckDeps): ShadowScope | undefined {
  if (deps.shadow) return 'global';
  const scopes: Array<[ShadowScope, PolicyMode]> = [
    ['operation', draft.operation?.mode],
    ['service', draft.service?.mode],
    ['tenant', draft.tenantPolicy?.mode],
  ];
  const decided = scopes.find(([, mode]) => mode !== undefined);
  return decided?.[1] === 'shadow' ? decided[0] : undefined;
}

function settle(draft: Draft, deps: CheckDeps): DecisionRecord {
  const denial = draft.policyDenial;
  if (denial === undefined) return finish(draft, true, undefined);
  // Only a policy denial can be dry-run: authenticity, request and limit denials stand.
  const scope = classOf(denial.reason) === 'policy' ? dryRunScope(draft, deps) : undefined;
  return finish(draft, scope !== undefined, denial, scope);
}

/**
 * `check` bounded by the caller's deadline. Envoy gives up at its timeout and applies its own
 * error policy; answering `unavailable` (fail closed) just before that keeps the decision ours and
 * recorded. The pipeline keeps running in the background (a slow key fetch then warms the cache
 * for the next request) but its result is no longer awaited.
 */
export async function checkWithin(
  input: CheckInput,
  deps: CheckDeps,
  budgetMs: number | undefined,
): Promise<DecisionRecord> {
  if (budgetMs === undefined) return check(input, deps);
  return new Promise<DecisionRecord>((resolve) => {
    const deadline = deadlines.add(budgetMs, () =>
      resolve(
        finish(newDraft(input), false, {
          reason: 'unavailable',
          detail: `no decision within the caller's deadline (${Math.round(budgetMs)} ms)`,
        }),
      ),
    );
    // check() never rejects; whichever settles first answers (a later resolve is a no-op).
    void check(input, deps).then((record) => {
      deadlines.remove(deadline);
      resolve(record);
    });
  });
}

/** One timer for the deadlines of every Check in flight (see deadlines.ts). */
const deadlines = new Deadlines();

/** `denial` present and `allowed`: a denial dry-run let through (`shadow`). */
function finish(
  draft: Draft,
  allowed: boolean,
  denial: Denial | undefined,
  shadowScope?: ShadowScope,
): DecisionRecord {
  if (allowed) {
    // Every value was validated where it entered; should one have slipped through, nothing is
    // emitted and the request is refused, in shadow mode too (the record says so, as the response will).
    const unsafe = unsafeIdentity({
      tenant: draft.tenant,
      user: draft.user,
      roles: draft.roles,
      sids: draft.minted?.sids ?? [],
    });
    if (unsafe !== undefined) {
      return finish(
        { ...draft, tenant: undefined, user: undefined, roles: [], minted: undefined },
        false,
        {
          reason: 'unavailable',
          detail: `refused to emit an unsafe ${unsafe} header value`,
        },
      );
    }
  }
  return {
    requestId: draft.requestId,
    allowed,
    reason: denial?.reason,
    detail: denial?.detail,
    shadow: allowed && denial !== undefined,
    shadowScope: allowed && denial !== undefined ? shadowScope : undefined,
    operation: draft.operation?.name,
    tenant: draft.tenant,
    user: draft.user,
    roles: draft.roles,
    destination: draft.destination,
    chain: draft.chain,
    minted: draft.minted,
    headerBytes: draft.minted === undefined ? undefined : draft.headerBytes,
    recursionAudited: draft.recursionAudited,
    txn: draft.txn,
    txnToken: draft.minted === undefined ? undefined : draft.txnToken,
    txnTokenSource: draft.minted === undefined ? undefined : draft.txnTokenSource,
    actors: draft.actors,
  };
}

/**
 * Run a step whose refusal is a policy decision: the first one is recorded and `fallback` stands
 * in for its result, so the walk goes on; any other failure (authenticity, limit, bug) propagates
 * and ends the Check denied, whatever the mode.
 */
async function policyStep<T>(draft: Draft, step: () => T | Promise<T>, fallback: T): Promise<T> {
  try {
    return await step();
  } catch (error) {
    if (!(error instanceof DenyError) || classOf(error.reason) !== 'policy') throw error;
    draft.policyDenial ??= { reason: error.reason, detail: error.message };
    return fallback;
  }
}

async function runPipeline(input: CheckInput, deps: CheckDeps, draft: Draft): Promise<void> {
  const txnText = input.headers.get(TXN_TOKEN_HEADER);
  // No bearer token at all (no authorization, an empty one, another scheme): a Txn-Token of a
  // registered Transaction Token Service may be the origin. Never read as token-less: a Txn-Token
  // is a token that is present, judged on its authenticity in every mode.
  const source: ChainSource =
    txnText !== undefined && !claimsBearer(input.headers.get('authorization'))
      ? 'txn-token'
      : 'bearer';
  // No token is a policy denial (see DENY_REASONS): dry-run may let it through. A token that is
  // there but cannot be read or trusted is an authenticity denial and ends the Check here.
  const token =
    source === 'txn-token'
      ? (txnText as string)
      : await policyStep(draft, () => extractToken(input), undefined);
  if (token === undefined) return tokenlessScope(input, deps, draft);
  const chain = await inChildSpan(deps.tracer, 'chain open', () =>
    openChain(token, {
      trust: deps.trust,
      ownKeys: deps.ownKeys,
      limits: deps.limits,
      now: deps.now,
      memo: deps.memo,
      source,
    }),
  );
  draft.chain = chain;
  draft.txn = chainTxn(chain);
  const originActors = chain.levels[0]?.actors ?? [];
  if (originActors.length > 0) draft.actors = originActors;
  // Authenticity: a Txn-Token beside the chain is the chain's, or the Check ends here.
  const carried = await carriedTxnToken(source, token, txnText, chain, deps);

  // The user is the origin's; when the chain is sealed, the innermost level we could open
  // (minted levels carry the origin's sub and roles forward for exactly this reason).
  const innermost = chain.levels[0];
  const subject = innermost?.subject;
  if (innermost === undefined || subject === undefined)
    deny('malformed_token', 'the chain names no user');
  draft.user = subject;
  draft.roles = innermost.roles;
  // A chain spanning tenants is refused by policy; dry-run goes on as the outermost level's tenant.
  const tenant = await policyStep(draft, () => chainTenant(chain), chain.outer.tenant);
  draft.tenant = tenant;

  // A record that exists but cannot be read refuses the request (record_unreadable), never a default.
  const resolved = await inChildSpan(deps.tracer, 'registry read', () =>
    denying('malformed_token', () => readRegistry(input, deps, draft, tenant)),
  );
  // No destination: nothing to decide for and no sid to mint for.
  if (resolved === undefined) return;
  const { destination, registeredService, sourceSid } = resolved;

  // The rule for this request: one of the service's operations, or the service's own.
  const service = registeredService ?? defaultServicePolicy(destination.sid);
  let rule = { tenant: resolved.tenantPolicy, service };
  const match = matchRule(service, input);
  if (match.kind === 'operation') {
    draft.operation = match.operation;
    rule = withOperation(resolved.tenantPolicy, service, match.operation);
  } else if (match.kind === 'unmatched') {
    draft.policyDenial ??= {
      reason: 'operation_not_found',
      detail: `no operation of ${destination.sid} matches ${input.method ?? '(no method)'} ${input.path ?? '(no path)'}`,
    };
  }

  const sourcePrincipal = input.sourcePrincipal;
  // An origin's actors acted before the chain began: they count as levels and as callers seen.
  const outcome = decide({
    destination: destination.sid,
    depth: chain.depth + originActors.length,
    sids: originActors.length === 0 ? chain.sids : [...originActors, ...chain.sids],
    sealed: chain.sealed,
    caller: chain.outer.stack?.sid,
    outerMintedHere: chain.outer.own && chain.depth > 0,
    roles: innermost.roles,
    tenant: rule.tenant,
    service: rule.service,
    defaultMaxDepth: deps.defaultMaxDepth,
    routeMaxDepth: destination.routeMaxDepth,
    source:
      sourcePrincipal === undefined ? undefined : { principal: sourcePrincipal, sid: sourceSid },
  });
  if (outcome.allow) draft.recursionAudited = outcome.recursionAudited;
  else draft.policyDenial ??= { reason: outcome.reason, detail: outcome.detail };
  // Only what will be allowed is minted: dry-run extends the chain, so the services behind it
  // keep working during rollout; an enforced denial signs nothing.
  if (draft.policyDenial !== undefined && dryRunScope(draft, deps) === undefined) return;
  if (deps.decideOnly === true) return;

  const answered = answeredTxnToken(carried, draft, deps, {
    tenantPolicy: resolved.tenantPolicy,
    chain,
    subject,
    roles: innermost.roles,
    tenant,
    scope: draft.operation?.name ?? destination.sid,
    requestingWorkload: sourcePrincipal ?? chain.outer.stack?.sid ?? destination.sid,
  });
  draft.txn = answered.txn;
  draft.txnToken = answered.text;
  draft.txnTokenSource = answered.source;

  // Over the header budget is a limit denial: it ends the Check here, in shadow mode too.
  const { minted, headerBytes } = await inChildSpan(deps.tracer, 'token mint', () =>
    mintWithinBudget(
      {
        incoming: token,
        chain,
        destination: destination.sid,
        tenant,
        subject,
        roles: innermost.roles,
        seal: registeredService?.seal ?? false,
        now: deps.now(),
        maxContainerBytes: deps.limits.maxContainerBytes,
        txn: answered.txn,
        originActors,
        txnToken: answered.text,
      },
      deps.ownKeys,
      deps.mint,
      resolved.tenantPolicy,
    ),
  );
  // Filed under the version the chain was verified under: if the registry changed meanwhile, the
  // entry is stale at once and the next hop verifies the whole chain against the registry it has.
  deps.memo?.rememberMinted(
    minted.token,
    minted.jti,
    minted.levels,
    minted.inside,
    chain.sealed,
    chain.trustVersion,
  );
  draft.minted = minted;
  draft.headerBytes = headerBytes;
}

/** The records the decision reads: the tenant's, the destination's, the source workload's mapping. */
async function readRegistry(
  input: CheckInput,
  deps: CheckDeps,
  draft: Draft,
  tenant: string,
): Promise<
  | {
      destination: RouteBindings & { sid: string };
      registeredService: ServicePolicy | undefined;
      tenantPolicy: TenantPolicy;
      sourceSid: string | undefined;
    }
  | undefined
> {
  const tenantPolicy = (await deps.registry.tenant(tenant)) ?? defaultTenantPolicy(tenant);
  draft.tenantPolicy = tenantPolicy;
  const sid = await policyStep(
    draft,
    () => resolveDestinationSid(input, deps.registry, deps.defaultServiceId),
    undefined,
  );
  if (sid === undefined) return undefined;
  draft.destination = sid;
  // An unreadable route binding is refused by policy; dry-run goes on without it.
  const destination = {
    sid,
    ...(await policyStep(draft, () => routeBindings(input), {
      routeTenant: undefined,
      routeMaxDepth: undefined,
    })),
  };
  const registeredService = await deps.registry.service(destination.sid);
  draft.service = registeredService;
  await policyStep(
    draft,
    () => checkTenantBindings(tenant, destination, registeredService),
    undefined,
  );
  const mappedSource =
    input.sourcePrincipal === undefined
      ? undefined
      : await deps.registry.principal(input.sourcePrincipal);
  // A mapping to something that is not a sid is a workload we do not know (bind_source refuses it).
  const sourceSid = isIdentifier(mappedSource) ? mappedSource : undefined;
  return { destination, registeredService, tenantPolicy, sourceSid };
}

/**
 * The Txn-Token that came with the chain, checked: the origin itself when it stood in for the
 * bearer token, else one beside the bearer chain, verified against it (check-txn-token.ts).
 */
async function carriedTxnToken(
  source: ChainSource,
  token: string,
  txnText: string | undefined,
  chain: Chain,
  deps: CheckDeps,
): Promise<CarriedTxnToken | undefined> {
  if (source === 'txn-token') {
    const origin = chain.levels[0];
    if (origin?.txn === undefined || origin.subject === undefined)
      deny('malformed_token', 'the Txn-Token lacks txn or sub');
    return { text: token, txn: origin.txn, sub: origin.subject };
  }
  if (txnText === undefined) return undefined;
  return checkCarriedTxnToken(txnText, chain, deps.trust, deps.now(), deps.limits.clockSkewSeconds);
}

interface TxnContext {
  readonly tenantPolicy: TenantPolicy;
  readonly chain: Chain;
  readonly subject: string;
  readonly roles: readonly string[];
  readonly tenant: string;
  readonly scope: string;
  readonly requestingWorkload: string;
}

/**
 * What goes upstream under Txn-Token, and the txn the new level carries. One that came with the
 * chain is passed on exactly as received (the draft: "as it was received"), never signed again.
 * Otherwise, when the tenant asks for Txn-Tokens, one is signed from what the chain proves.
 */
function answeredTxnToken(
  carried: CarriedTxnToken | undefined,
  draft: Draft,
  deps: CheckDeps,
  context: TxnContext,
): { txn: string | undefined; text: string | undefined; source?: 'emitted' | 'carried' } {
  if (carried !== undefined) return { txn: carried.txn, text: carried.text, source: 'carried' };
  if (context.tenantPolicy.txnTokens !== true) return { txn: draft.txn, text: undefined };
  const aud = deps.trust.trustDomain;
  if (aud === undefined)
    deny(
      'unavailable',
      `tenant ${context.tenant} asks for Txn-Tokens and MATRYOSHKA_TRUST_DOMAIN is not set`,
    );
  const txn = draft.txn ?? newTxn();
  const iat = deps.now();
  const text = signTxnToken(
    {
      iss: deps.mint.issuer,
      aud,
      iat,
      exp: mintedExpiry(context.chain, iat, deps.mint.ttlSeconds),
      txn,
      sub: context.subject,
      scope: context.scope,
      req_wl: context.requestingWorkload,
      tctx: { tenant_id: context.tenant, roles: context.roles },
      rctx: { req_id: draft.requestId, origin_iss: context.chain.levels[0]?.iss ?? '' },
    },
    deps.ownKeys.signing,
  );
  return { txn, text, source: 'emitted' };
}

/**
 * A request without a token: nothing to verify, no user, and no tenant from a chain, so nothing
 * is minted or vouched for whatever the mode. What is known is where the request goes, and that
 * decides which dry-run scope applies: the destination service's mode and its matched
 * operation's; a tenant's only when the destination names one — the tenant the route binds
 * (`context_extensions["tenant"]`), else the one the service record is bound to. A path the
 * operations cannot read is still `invalid_path`, which no mode lets through.
 */
async function tokenlessScope(input: CheckInput, deps: CheckDeps, draft: Draft): Promise<void> {
  // A record that exists but cannot be read refuses the request (record_unreadable), as with a token.
  await inChildSpan(deps.tracer, 'registry read', () =>
    denying('malformed_token', () => readTokenlessScope(input, deps, draft)),
  );
}

async function readTokenlessScope(input: CheckInput, deps: CheckDeps, draft: Draft): Promise<void> {
  const sid = await policyStep(
    draft,
    () => resolveDestinationSid(input, deps.registry, deps.defaultServiceId),
    undefined,
  );
  if (sid === undefined) return;
  draft.destination = sid;
  const bindings = await policyStep(draft, () => routeBindings(input), undefined);
  const registeredService = await deps.registry.service(sid);
  draft.service = registeredService;
  const boundTenant = bindings?.routeTenant ?? registeredService?.tenant;
  if (boundTenant !== undefined) draft.tenantPolicy = await deps.registry.tenant(boundTenant);
  const match = matchRule(registeredService ?? defaultServicePolicy(sid), input);
  if (match.kind === 'operation') draft.operation = match.operation;
}
