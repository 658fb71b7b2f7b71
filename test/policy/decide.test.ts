/**
 * Policy for one hop (src/policy/decide.ts) and the caller globs it uses (src/policy/glob.ts).
 * Inputs start from the registry's fail-closed defaults and override only what a test is about.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  type PolicyInput,
  type PolicyOutcome,
  decide,
  effectiveMaxDepth,
} from '../../src/policy/decide.js';
import { globMatches } from '../../src/policy/glob.js';
import type { DenyReason } from '../../src/reasons.js';
import {
  type ServicePolicy,
  type TenantPolicy,
  defaultServicePolicy,
  defaultTenantPolicy,
} from '../../src/registry/records.js';

const tenantPolicy = (overrides: Partial<TenantPolicy> = {}): TenantPolicy => ({
  ...defaultTenantPolicy('acme'),
  ...overrides,
});
const servicePolicy = (overrides: Partial<ServicePolicy> = {}): ServicePolicy => ({
  ...defaultServicePolicy('orders'),
  ...overrides,
});

/** A request to `orders` from `gateway` with a depth-1 chain (origin → gateway), allowed by default. */
function input(overrides: Partial<PolicyInput> = {}): PolicyInput {
  return {
    destination: 'orders',
    depth: 1,
    sids: ['gateway'],
    sealed: false,
    caller: 'gateway',
    outerMintedHere: true,
    roles: [],
    tenant: tenantPolicy(),
    service: servicePolicy(),
    defaultMaxDepth: 8,
    routeMaxDepth: undefined,
    source: undefined,
    ...overrides,
  };
}

function assertDenied(outcome: PolicyOutcome, reason: DenyReason): void {
  assert.equal(outcome.allow, false, `expected ${reason}, got allow`);
  if (!outcome.allow) {
    assert.equal(outcome.reason, reason, outcome.detail);
    assert.ok(outcome.detail.length > 0, 'a denial carries a detail for logs');
  }
}

function assertAllowed(outcome: PolicyOutcome): Extract<PolicyOutcome, { allow: true }> {
  assert.ok(
    outcome.allow,
    outcome.allow ? '' : `expected allow, got ${outcome.reason}: ${outcome.detail}`,
  );
  return outcome;
}

describe('decide: the baseline', () => {
  it('allows an ordinary hop under default policies, not as audited recursion', () => {
    const outcome = assertAllowed(decide(input()));
    assert.equal(outcome.recursionAudited, false);
    assert.equal(outcome.maxDepth, 8);
  });

  it('allows an origin token (depth 0, no caller) to a service without caller restrictions', () => {
    assertAllowed(decide(input({ depth: 0, sids: [], caller: undefined })));
  });

  it('is pure: the same input gives the same outcome', () => {
    const i = input({ sids: ['gateway', 'orders'] });
    assert.deepEqual(decide(i), decide(i));
  });
});

describe('decide: sealed_chain', () => {
  it('denies a sealed chain when the tenant refuses sealed chains (the default)', () => {
    assertDenied(decide(input({ sealed: true })), 'sealed_chain');
    assertDenied(
      decide(input({ sealed: true, tenant: tenantPolicy({ sealed: 'deny' }) })),
      'sealed_chain',
    );
  });

  it('allows a sealed chain when the tenant allows sealed chains', () => {
    assertAllowed(decide(input({ sealed: true, tenant: tenantPolicy({ sealed: 'allow' }) })));
  });

  it('an unsealed chain is never refused as sealed', () => {
    assertAllowed(decide(input({ sealed: false, tenant: tenantPolicy({ sealed: 'deny' }) })));
  });
});

describe('decide: entry_only tenants', () => {
  const entryOnly = tenantPolicy({ entryOnly: true });
  const origin = { depth: 0, sids: [], caller: undefined, outerMintedHere: false } as const;

  it('refuses an origin token at a non-entry service as caller_not_allowed', () => {
    assertDenied(decide(input({ ...origin, tenant: entryOnly })), 'caller_not_allowed');
  });

  it('accepts an origin token at an entry service', () => {
    assertAllowed(
      decide(input({ ...origin, tenant: entryOnly, service: servicePolicy({ entry: true }) })),
    );
  });

  it('accepts a chain minted here (depth ≥ 1) at a non-entry service', () => {
    assertAllowed(decide(input({ tenant: entryOnly })));
  });

  it('refuses a chain whose outermost level was minted elsewhere at a non-entry service', () => {
    assertDenied(
      decide(input({ tenant: entryOnly, outerMintedHere: false })),
      'caller_not_allowed',
    );
  });

  it('does not restrict origin tokens when the tenant is not entry_only', () => {
    assertAllowed(decide(input({ ...origin, tenant: tenantPolicy({ entryOnly: false }) })));
  });
});

describe('decide: bind_source', () => {
  const bound = servicePolicy({ bindSource: true });
  const source = (sid: string | undefined) => ({
    principal: 'spiffe://cluster.local/ns/shop/sa/x',
    sid,
  });

  it('refuses when the source workload maps to another sid than the outermost level', () => {
    assertDenied(
      decide(input({ service: bound, caller: 'gateway', source: source('cart') })),
      'caller_not_allowed',
    );
  });

  it('refuses when the source principal maps to no sid but the chain has a caller', () => {
    assertDenied(
      decide(input({ service: bound, caller: 'gateway', source: source(undefined) })),
      'caller_not_allowed',
    );
  });

  it('refuses an origin token from a source principal that maps to no sid', () => {
    assertDenied(
      decide(
        input({ service: bound, depth: 0, sids: [], caller: undefined, source: source(undefined) }),
      ),
      'caller_not_allowed',
    );
  });

  it('allows when the source workload maps to the outermost level sid', () => {
    assertAllowed(decide(input({ service: bound, caller: 'gateway', source: source('gateway') })));
  });

  it('does not apply when the request names no source principal', () => {
    assertAllowed(decide(input({ service: bound, caller: 'gateway', source: undefined })));
  });

  it('does not apply when the service does not bind the source', () => {
    assertAllowed(
      decide(input({ service: servicePolicy({ bindSource: false }), source: source('cart') })),
    );
  });
});

describe('decide: recursion', () => {
  const recursive = { sids: ['gateway', 'orders', 'cart'], caller: 'cart', depth: 3 } as const;

  it('denies a destination already in the call path when the tenant says deny (the default)', () => {
    assertDenied(decide(input(recursive)), 'recursion');
    assertDenied(
      decide(input({ ...recursive, tenant: tenantPolicy({ recursion: 'deny' }) })),
      'recursion',
    );
  });

  it('allows it under audit and flags recursionAudited', () => {
    const outcome = assertAllowed(
      decide(input({ ...recursive, tenant: tenantPolicy({ recursion: 'audit' }) })),
    );
    assert.equal(outcome.recursionAudited, true);
  });

  it('does not flag recursion when the destination is not in the path', () => {
    const outcome = assertAllowed(
      decide(
        input({
          sids: ['gateway', 'cart'],
          caller: 'cart',
          depth: 2,
          tenant: tenantPolicy({ recursion: 'audit' }),
        }),
      ),
    );
    assert.equal(outcome.recursionAudited, false);
  });

  it('matches sids exactly, not by prefix', () => {
    assertAllowed(decide(input({ sids: ['orders-v2'], caller: 'orders-v2' })));
  });
});

describe('decide: depth_exceeded', () => {
  it('checks the depth of the token that would be minted (incoming depth + 1)', () => {
    assertAllowed(decide(input({ depth: 7, defaultMaxDepth: 8 })));
    assertDenied(decide(input({ depth: 8, defaultMaxDepth: 8 })), 'depth_exceeded');
  });

  it('the lowest of default, tenant, service and route limits wins', () => {
    const limits = {
      defaultMaxDepth: 8,
      tenant: tenantPolicy({ maxDepth: 6 }),
      service: servicePolicy({ maxDepth: 4 }),
      routeMaxDepth: 5,
    };
    assert.equal(effectiveMaxDepth(limits), 4);
    assertAllowed(decide(input({ ...limits, depth: 3 })));
    assertDenied(decide(input({ ...limits, depth: 4 })), 'depth_exceeded');
  });

  it('each limit alone can be the one that binds', () => {
    const base = {
      defaultMaxDepth: 8,
      tenant: tenantPolicy(),
      service: servicePolicy(),
      routeMaxDepth: undefined,
    };
    const cases: [string, Partial<PolicyInput>][] = [
      ['default', { defaultMaxDepth: 2 }],
      ['tenant', { tenant: tenantPolicy({ maxDepth: 2 }) }],
      ['service', { service: servicePolicy({ maxDepth: 2 }) }],
      ['route', { routeMaxDepth: 2 }],
    ];
    for (const [which, limit] of cases) {
      assert.equal(effectiveMaxDepth({ ...base, ...limit }), 2, which);
      assertAllowed(decide(input({ ...limit, depth: 1 })));
      assertDenied(decide(input({ ...limit, depth: 2 })), 'depth_exceeded');
    }
  });

  it('a registry limit above the default cannot raise it', () => {
    assert.equal(
      effectiveMaxDepth({
        defaultMaxDepth: 3,
        tenant: tenantPolicy({ maxDepth: 10 }),
        service: servicePolicy({ maxDepth: 20 }),
        routeMaxDepth: 30,
      }),
      3,
    );
    assertDenied(
      decide(input({ depth: 3, defaultMaxDepth: 3, tenant: tenantPolicy({ maxDepth: 10 }) })),
      'depth_exceeded',
    );
  });

  it('reports the effective limit on allow', () => {
    const outcome = assertAllowed(
      decide(input({ tenant: tenantPolicy({ maxDepth: 5 }), routeMaxDepth: 6 })),
    );
    assert.equal(outcome.maxDepth, 5);
  });
});

describe('decide: allowed_callers', () => {
  const callers = (...globs: string[]) => servicePolicy({ allowedCallers: globs });

  it('allows a caller matching an exact entry or a glob', () => {
    const service = callers('gateway', 'cart-*');
    assertAllowed(decide(input({ service, caller: 'gateway', sids: ['gateway'] })));
    assertAllowed(decide(input({ service, caller: 'cart-eu', sids: ['cart-eu'] })));
    assertAllowed(decide(input({ service, caller: 'cart-', sids: ['cart-'] })));
  });

  it('refuses a caller that matches no entry', () => {
    const service = callers('gateway', 'cart-*');
    assertDenied(
      decide(input({ service, caller: 'billing', sids: ['billing'] })),
      'caller_not_allowed',
    );
    assertDenied(decide(input({ service, caller: 'cart', sids: ['cart'] })), 'caller_not_allowed');
    assertDenied(
      decide(input({ service, caller: 'gateway2', sids: ['gateway2'] })),
      'caller_not_allowed',
    );
  });

  it('? matches exactly one character', () => {
    const service = callers('?x');
    assertAllowed(decide(input({ service, caller: 'ax', sids: ['ax'] })));
    assertDenied(decide(input({ service, caller: 'x', sids: ['x'] })), 'caller_not_allowed');
    assertDenied(decide(input({ service, caller: 'abx', sids: ['abx'] })), 'caller_not_allowed');
  });

  it('refuses an origin token (no caller) when allowed_callers is set', () => {
    assertDenied(
      decide(input({ service: callers('*'), depth: 0, sids: [], caller: undefined })),
      'caller_not_allowed',
    );
  });

  it('an empty allowed_callers list allows any caller', () => {
    assertAllowed(decide(input({ service: callers(), caller: 'anything', sids: ['anything'] })));
  });
});

describe('decide: role_missing', () => {
  const needs = servicePolicy({ requiredRoles: ['reader', 'writer'] });

  it('refuses when any required role is missing', () => {
    assertDenied(decide(input({ service: needs, roles: ['reader'] })), 'role_missing');
    assertDenied(decide(input({ service: needs, roles: [] })), 'role_missing');
  });

  it('allows when every required role is present (extra roles are fine)', () => {
    assertAllowed(decide(input({ service: needs, roles: ['writer', 'admin', 'reader'] })));
  });

  it('compares role names exactly', () => {
    assertDenied(decide(input({ service: needs, roles: ['Reader', 'writer'] })), 'role_missing');
  });

  it('names the missing roles in the detail', () => {
    const outcome = decide(input({ service: needs, roles: ['reader'] }));
    assert.ok(!outcome.allow);
    assert.match(outcome.detail, /writer/);
    assert.doesNotMatch(outcome.detail, /reader/);
  });
});

describe('decide: which reason wins when several apply', () => {
  // Every check failing at once, then relaxed one at a time from the top.
  const allWrong: Partial<PolicyInput> = {
    depth: 0,
    sealed: true,
    sids: ['orders'],
    caller: undefined,
    outerMintedHere: false,
    roles: [],
    tenant: tenantPolicy({ sealed: 'deny', entryOnly: true, recursion: 'deny', maxDepth: 0 }),
    service: servicePolicy({
      allowedCallers: ['gateway'],
      requiredRoles: ['admin'],
      bindSource: true,
    }),
    source: { principal: 'spiffe://x', sid: 'cart' },
  };

  it('sealed_chain first', () => {
    assertDenied(decide(input(allWrong)), 'sealed_chain');
  });

  it('then entry_only (caller_not_allowed) before bind_source', () => {
    const i = input({ ...allWrong, sealed: false });
    const outcome = decide(i);
    assertDenied(outcome, 'caller_not_allowed');
    assert.ok(!outcome.allow);
    assert.match(outcome.detail, /entry/);
  });

  it('then bind_source (caller_not_allowed) before recursion', () => {
    const outcome = decide(
      input({
        ...allWrong,
        sealed: false,
        tenant: tenantPolicy({ recursion: 'deny', maxDepth: 0 }),
      }),
    );
    assertDenied(outcome, 'caller_not_allowed');
    assert.ok(!outcome.allow);
    assert.match(outcome.detail, /source/);
  });

  it('then recursion before depth_exceeded', () => {
    assertDenied(
      decide(
        input({
          ...allWrong,
          sealed: false,
          tenant: tenantPolicy({ maxDepth: 0 }),
          source: undefined,
        }),
      ),
      'recursion',
    );
  });

  it('then depth_exceeded before allowed_callers', () => {
    const tenant = tenantPolicy({ maxDepth: 0, recursion: 'audit' });
    assertDenied(
      decide(input({ ...allWrong, sealed: false, tenant, source: undefined })),
      'depth_exceeded',
    );
  });

  it('then allowed_callers before role_missing', () => {
    const tenant = tenantPolicy({ recursion: 'audit' });
    assertDenied(
      decide(input({ ...allWrong, sealed: false, tenant, source: undefined })),
      'caller_not_allowed',
    );
  });

  it('role_missing last', () => {
    const tenant = tenantPolicy({ recursion: 'audit' });
    assertDenied(
      decide(input({ ...allWrong, sealed: false, tenant, source: undefined, caller: 'gateway' })),
      'role_missing',
    );
  });

  it('a sealed chain the tenant allows still goes through the other checks', () => {
    assertDenied(
      decide(input({ sealed: true, tenant: tenantPolicy({ sealed: 'allow' }), sids: ['orders'] })),
      'recursion',
    );
  });

  it('audited recursion still goes through the depth check', () => {
    assertDenied(
      decide(
        input({
          sids: ['orders'],
          depth: 1,
          defaultMaxDepth: 1,
          tenant: tenantPolicy({ recursion: 'audit' }),
        }),
      ),
      'depth_exceeded',
    );
  });
});

describe('glob', () => {
  it('* matches any run of characters, including none', () => {
    assert.equal(globMatches('cart-*', 'cart-eu'), true);
    assert.equal(globMatches('cart-*', 'cart-'), true);
    assert.equal(globMatches('cart-*', 'cart'), false);
    assert.equal(globMatches('*', 'anything/at:all'), true);
    assert.equal(globMatches('*-api', 'orders-api'), true);
    assert.equal(globMatches('a*b*c', 'aXXbYYc'), true);
    assert.equal(globMatches('a*b*c', 'aXXcYYb'), false);
  });

  it('? matches exactly one character', () => {
    assert.equal(globMatches('?x', 'ax'), true);
    assert.equal(globMatches('?x', 'x'), false);
    assert.equal(globMatches('?x', 'abx'), false);
    assert.equal(globMatches('v?', 'v1'), true);
  });

  it('matches the whole value, not a substring', () => {
    assert.equal(globMatches('gateway', 'gateway'), true);
    assert.equal(globMatches('gateway', 'my-gateway'), false);
    assert.equal(globMatches('gateway', 'gateway-2'), false);
  });

  it('treats regex metacharacters in a glob literally', () => {
    assert.equal(globMatches('svc.a', 'svc.a'), true);
    assert.equal(globMatches('svc.a', 'svcXa'), false, '. is a literal dot');
    assert.equal(globMatches('ns/svc', 'ns/svc'), true);
    assert.equal(globMatches('a+', 'aaa'), false, '+ is literal');
    assert.equal(globMatches('(a|b)', 'a'), false, 'groups and alternation are literal');
  });

  it('gives the same answer when a compiled glob is reused', () => {
    assert.equal(globMatches('cache-*', 'cache-1'), true);
    assert.equal(globMatches('cache-*', 'other'), false);
    assert.equal(globMatches('cache-*', 'cache-2'), true);
  });
});
