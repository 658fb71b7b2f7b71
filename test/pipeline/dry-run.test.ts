/**
 * Dry-run, applied in one place (`settle` in src/pipeline/check.ts), by the class of the reason
 * (src/reasons.ts): every policy denial is let through in shadow mode with the extended token
 * minted and the would-be denial recorded; every authenticity denial stands. In-process through
 * `check()` with real keys, a real JWKS over HTTP and an embedded registry.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { CompactEncrypt, generateKeyPair } from 'jose';
import { LocalIssuer } from '../../src/demo/local-issuer.js';
import type { DecisionRecord } from '../../src/pipeline/decision.js';
import { DENY_REASONS, type DenyReason, classOf } from '../../src/reasons.js';
import { type CheckCall, type InProcess, inProcess, walk } from '../helpers/in-process.js';
import { localIssuer, service, tenant } from '../helpers/records.js';

interface Scenario {
  readonly reason: DenyReason;
  readonly how: string;
  /** A request that is denied with `reason` in enforce mode. */
  readonly call: (world: World) => Promise<CheckCall>;
  /** Whether the would-be denial still has a destination to mint for. */
  readonly mints: boolean;
}

interface World {
  readonly acme: LocalIssuer;
  readonly partner: LocalIssuer;
  readonly stranger: LocalIssuer;
  readonly enforce: InProcess;
}

const POLICY: readonly Scenario[] = [
  {
    reason: 'tenant_mismatch',
    how: 'route bound to another tenant',
    mints: true,
    call: async (w) => ({
      token: await w.acme.mint({ sub: 'alice' }),
      sid: 'A',
      contextExtensions: { tenant: 'globex' },
    }),
  },
  {
    reason: 'tenant_mismatch',
    how: 'route tenant that is not a tenant id',
    mints: true,
    call: async (w) => ({
      token: await w.acme.mint({ sub: 'alice' }),
      sid: 'A',
      contextExtensions: { tenant: 'not a tenant' },
    }),
  },
  {
    reason: 'tenant_mismatch',
    how: 'service bound to another tenant',
    mints: true,
    call: async (w) => ({ token: await w.acme.mint({ sub: 'alice' }), sid: 'globex-only' }),
  },
  {
    reason: 'tenant_mismatch',
    how: 'a chain spanning two tenants',
    mints: true,
    call: async (w) => {
      const acmeChain = await walk(w.enforce, await w.acme.mint({ sub: 'alice' }), ['gateway']);
      return {
        token: await w.partner.mint({
          sub: 'alice',
          auth_stack: { fmt: 'JWT', sid: 'partner-gw', depth: 2, container: acmeChain },
        }),
        sid: 'A',
      };
    },
  },
  {
    reason: 'recursion',
    how: 'a sid already in the path',
    mints: true,
    call: async (w) => ({
      token: await walk(w.enforce, await w.acme.mint({ sub: 'alice' }), ['A', 'B']),
      sid: 'A',
    }),
  },
  {
    reason: 'depth_exceeded',
    how: 'route max_depth',
    mints: true,
    call: async (w) => ({
      token: await walk(w.enforce, await w.acme.mint({ sub: 'alice' }), ['A']),
      sid: 'B',
      contextExtensions: { max_depth: '1' },
    }),
  },
  {
    reason: 'depth_exceeded',
    how: 'route max_depth that is not a number',
    mints: true,
    call: async (w) => ({
      token: await w.acme.mint({ sub: 'alice' }),
      sid: 'B',
      contextExtensions: { max_depth: 'lots' },
    }),
  },
  {
    reason: 'caller_not_allowed',
    how: 'allowed_callers',
    mints: true,
    call: async (w) => ({
      token: await walk(w.enforce, await w.acme.mint({ sub: 'alice' }), ['A']),
      sid: 'picky',
    }),
  },
  {
    reason: 'caller_not_allowed',
    how: 'entry_only tenant, origin token at a non-entry service',
    mints: true,
    call: async (w) => ({ token: await w.partner.mint({ sub: 'bob' }), sid: 'globex-only' }),
  },
  {
    reason: 'caller_not_allowed',
    how: 'bind_source with another workload',
    mints: true,
    call: async (w) => ({
      token: await walk(w.enforce, await w.acme.mint({ sub: 'alice' }), ['A']),
      sid: 'bound',
      sourcePrincipal: 'spiffe://cluster.local/ns/x/sa/B',
    }),
  },
  {
    reason: 'role_missing',
    how: 'required_roles',
    mints: true,
    call: async (w) => ({ token: await w.acme.mint({ sub: 'alice' }), sid: 'admin-only' }),
  },
  {
    reason: 'sealed_chain',
    how: 'a chain sealed to a key we do not hold, tenant refuses sealed chains',
    mints: true,
    call: async (w) => {
      const partnerKey = await generateKeyPair('ECDH-ES+A256KW', { crv: 'P-256' });
      const hidden = await new CompactEncrypt(
        new TextEncoder().encode(await w.partner.mint({ sub: 'bob' })),
      )
        .setProtectedHeader({ alg: 'ECDH-ES+A256KW', enc: 'A256GCM', kid: 'partner-key' })
        .encrypt(partnerKey.publicKey);
      return {
        token: await w.partner.mint({
          sub: 'bob',
          auth_stack: { fmt: 'JWE', sid: 'partner-gw', depth: 2, container: hidden },
        }),
        sid: 'globex-entry',
      };
    },
  },
  {
    reason: 'operation_not_found',
    how: 'a request no operation matches, deny_unmatched',
    mints: true,
    call: async (w) => ({
      token: await w.acme.mint({ sub: 'alice' }),
      sid: 'ops',
      path: '/other',
      method: 'GET',
    }),
  },
  {
    reason: 'missing_token',
    how: 'no token: nothing vouched for, nothing to extend',
    mints: false,
    call: async () => ({ sid: 'A' }),
  },
  {
    reason: 'unknown_service',
    how: 'no destination at all',
    mints: false,
    call: async (w) => ({ token: await w.acme.mint({ sub: 'alice' }) }),
  },
  {
    reason: 'unknown_service',
    how: 'a destination that is not a sid',
    mints: false,
    call: async (w) => ({ token: await w.acme.mint({ sub: 'alice' }), sid: 'a,b' }),
  },
];

const AUTHENTICITY: ReadonlyArray<{ reason: DenyReason; call: (w: World) => Promise<CheckCall> }> =
  [
    { reason: 'malformed_token', call: async () => ({ token: 'not.a.token', sid: 'A' }) },
    {
      reason: 'untrusted_issuer',
      call: async (w) => ({ token: await w.stranger.mint({ sub: 'eve' }), sid: 'A' }),
    },
    {
      reason: 'bad_signature',
      call: async (w) => {
        const [h, , sig] = (await w.acme.mint({ sub: 'alice' })).split('.');
        return {
          token: `${h}.${Buffer.from(JSON.stringify({ iss: w.acme.issuer, sub: 'root', exp: 2e9 })).toString('base64url')}.${sig}`,
          sid: 'A',
        };
      },
    },
    {
      reason: 'expired',
      call: async (w) => ({
        token: await w.acme.mint(
          { sub: 'alice' },
          { iat: Math.floor(Date.now() / 1000) - 7200, ttl: 60 },
        ),
        sid: 'A',
      }),
    },
  ];

describe('dry-run by reason class', () => {
  let world: World;
  let shadow: InProcess;
  const contents = (w: { acme: LocalIssuer; partner: LocalIssuer }) => ({
    issuers: [
      localIssuer(w.acme, 'acme'),
      localIssuer(w.partner, 'globex', { mints_for: ['partner-*'] }),
    ],
    tenants: [
      tenant('acme', { recursion: 'deny' }),
      tenant('globex', { entry_only: true, sealed: 'deny' }),
    ],
    services: [
      service('globex-only', { tenant: 'globex' }),
      service('globex-entry', { tenant: 'globex', entry: true }),
      service('picky', { allowed_callers: ['gateway'] }),
      service('bound', { bind_source: true }),
      service('admin-only', { required_roles: ['admin'] }),
      service('ops', { deny_unmatched: true, operations: [{ name: 'read', path: '/orders/*' }] }),
    ],
    principals: { 'spiffe://cluster.local/ns/x/sa/B': 'B' },
  });

  before(async () => {
    const acme = await LocalIssuer.start();
    const partner = await LocalIssuer.start();
    const stranger = await LocalIssuer.start();
    const enforce = await inProcess({ contents: contents({ acme, partner }) });
    world = { acme, partner, stranger, enforce };
    shadow = await inProcess({
      contents: contents({ acme, partner }),
      shadow: true,
      ownKeys: enforce.ownKeys,
    });
  });
  after(async () => {
    await world.acme.stop();
    await world.partner.stop();
    await world.stranger.stop();
  });

  it('classes every reason once: policy 403 (and missing_token), limit 431, request 400, registry 503 (record_unreadable), authenticity 401 or 503', () => {
    for (const reason of Object.keys(DENY_REASONS) as DenyReason[]) {
      const status = DENY_REASONS[reason].status;
      const expected =
        status === 403 || reason === 'missing_token'
          ? 'policy'
          : status === 431
            ? 'limit'
            : status === 400
              ? 'request'
              : reason === 'record_unreadable'
                ? 'registry'
                : 'authenticity';
      assert.equal(classOf(reason), expected, `${reason} (${status}) is ${classOf(reason)}`);
    }
  });

  it('covers every policy reason below', () => {
    const policyReasons = (Object.keys(DENY_REASONS) as DenyReason[]).filter(
      (r) => classOf(r) === 'policy',
    );
    assert.deepEqual([...new Set(POLICY.map((s) => s.reason))].sort(), policyReasons.sort());
  });

  const assertDenied = (record: DecisionRecord, reason: DenyReason, what: string) => {
    assert.equal(record.allowed, false, what);
    assert.equal(record.reason, reason, `${what}: ${record.detail}`);
    assert.equal(record.shadow, false, what);
    assert.equal(record.minted, undefined, `${what}: an enforced denial signs nothing`);
  };

  for (const scenario of POLICY) {
    it(`${scenario.reason} (${scenario.how}): enforced in enforce mode; allowed, minted and recorded in shadow mode`, async () => {
      const call = await scenario.call(world);
      assertDenied(await world.enforce.check(call), scenario.reason, 'enforce');
      const record = await shadow.check(call);
      assert.equal(record.allowed, true, `shadow: ${record.reason} ${record.detail}`);
      assert.equal(record.shadow, true);
      assert.equal(record.reason, scenario.reason, 'the would-be denial is recorded');
      if (scenario.mints) {
        assert.ok(record.minted !== undefined, 'dry-run extends the chain');
        assert.equal(record.minted.level.depth, (record.chain?.depth ?? -1) + 1);
        assert.equal(record.minted.sids.at(-1), record.destination);
      } else {
        assert.equal(record.minted, undefined, 'no destination, nothing to mint for');
      }
      assert.deepEqual(shadow.unexpected, []);
    });
  }

  for (const { reason, call } of AUTHENTICITY) {
    it(`${reason} is never shadowed`, async () => {
      const request = await call(world);
      assertDenied(await world.enforce.check(request), reason, 'enforce');
      assertDenied(await shadow.check(request), reason, 'shadow');
    });
  }
});
