/**
 * Property (fast-check): random mutations of valid chains — byte and character flips in any
 * segment of any level (inner levels and compressed containers re-encoded, never re-signed),
 * truncation, garbage, other spellings of the same bytes, levels extracted, reordered, skipped or
 * spliced from another chain, fields changed, removed or repeated — are never allowed; denials
 * are 401/403, never 503, never a failure. The same mutations re-signed by a registered partner
 * (so that the walk gets past the outer signature into the stack checks) likewise.
 * Seeds and run counts: test/helpers/fast-check-runs.ts.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { CompactSign } from 'jose';
import type { CheckResult } from '../../src/demo/envoy-client.js';
import { LocalIssuer } from '../../src/demo/local-issuer.js';
import { openLevel, peel } from '../helpers/chain-surgery.js';
import { type World, startWorld } from '../world/world.js';
import {
  type Mutation,
  type MutationContext,
  applyMutations,
  describeMutations,
  mutationsArb,
} from '../helpers/mutations.js';
import { hmacIssuer, localIssuer, service, tenant } from '../helpers/records.js';

import { MUTATION_RUNS, RESIGN_RUNS, coverageChecked, params } from '../helpers/fast-check-runs.js';
import {
  nowSeconds,
  LIFETIME,
  HS_SECRET,
  HS_ISSUER,
  PARTNER_SECRET,
  partnerKey,
  PARTNER,
  SEED_SVC,
  principalOf,
  ACME_DEST,
  LEGACY_DEST,
  ALL_SIDS,
  type PoolEntry,
  seedLevel,
  seedWrap,
  PROPERTY_ENV,
} from '../helpers/property-chains.js';

describe('property: mutations of valid chains are never allowed', () => {
  let idp: LocalIssuer;
  let h: World;
  const pool: PoolEntry[] = [];
  let ctx: MutationContext;

  before(async () => {
    idp = await LocalIssuer.start();
    h = await startWorld('handler', {
      env: PROPERTY_ENV,
      contents: {
        issuers: [
          localIssuer(idp, 'acme', { algorithms: ['ES256'] }),
          hmacIssuer(HS_ISSUER, 'legacy', 'PROPS_HS', { mints_for: ['Organization.Services.*'] }),
          hmacIssuer(PARTNER.acme, 'acme', 'PROPS_PARTNER', { mints_for: ['partner-*'] }),
          hmacIssuer(PARTNER.legacy, 'legacy', 'PROPS_PARTNER', { mints_for: ['partner-*'] }),
        ],
        // entry_only + bind_source close the pattern's own hole (an inner level is a valid token):
        // without them "extract a level" would be a legitimate allow, not a mutation that must fail.
        tenants: [tenant('acme', { entry_only: true }), tenant('legacy')],
        services: [
          service('A', { tenant: 'acme', entry: true }),
          service(ACME_DEST, { tenant: 'acme', bind_source: true }),
          service(LEGACY_DEST, { tenant: 'legacy', bind_source: true }),
        ],
        principals: Object.fromEntries(ALL_SIDS.map((sid) => [principalOf(sid), sid])),
      },
      processEnv: { PROPS_HS: HS_SECRET, PROPS_PARTNER: PARTNER_SECRET },
    });

    // Two ES256-origin chains walked A → B → C → D through Check: one with a large origin
    // (gzip containers from depth 3), one small.
    for (const [label, claims] of [
      [
        'es-large',
        { sub: 'alice', roles: ['reader', 'writer'], tenant_id: 'acme', pad: 'x'.repeat(700) },
      ],
      ['es-small', { sub: 'bob', roles: ['admin'] }],
    ] as const) {
      let token = await idp.mint(claims, { ttl: LIFETIME });
      for (const [i, sid] of ['A', 'B', 'C', 'D'].entries()) {
        const result = await h.check({ token, sid });
        assert.equal(
          result.allowed,
          true,
          `building ${label}: hop to ${sid}: ${JSON.stringify(result.metadata)}`,
        );
        token = result.forwardedToken as string;
        pool.push({ label: `${label}@${i + 1}`, token, caller: sid, dest: ACME_DEST });
      }
    }
    assert.ok(
      pool.some((e) => peel(e.token)[0]?.level?.stack?.cmp === 'g'),
      'some chain carries a gzip container',
    );

    // A chain in the seed's style (HS256, lowercase fmt, gzip padded standard base64, brotli
    // URL-safe), and one of our levels wrapped around it.
    const now = nowSeconds();
    let hs = await seedLevel({ sub: '1234567890', roles: ['user'] }, now - 30, now + LIFETIME);
    const hsPath = ['A', 'B', 'C', 'D'];
    for (const [i, s] of hsPath.entries()) {
      hs = await seedLevel(
        seedWrap(hs, SEED_SVC(s), i + 1, i === 2 ? 'g' : i === 3 ? 'b' : undefined),
        now - 20 + i,
        now + LIFETIME,
      );
      pool.push({ label: `hs256@${i + 1}`, token: hs, caller: SEED_SVC(s), dest: LEGACY_DEST });
    }
    const mixed = await h.check({ token: hs, sid: SEED_SVC('E') });
    assert.equal(mixed.allowed, true, `wrapping the seed chain: ${JSON.stringify(mixed.metadata)}`);
    pool.push({
      label: 'mixed@5',
      token: mixed.forwardedToken as string,
      caller: SEED_SVC('E'),
      dest: LEGACY_DEST,
    });

    ctx = {
      donors: pool.map((e) => e.token),
      ownIssuer: 'urn:matryoshka:authz',
      otherIssuers: [idp.issuer, HS_ISSUER],
      sids: ALL_SIDS,
    };
  });

  after(async () => {
    await h?.stop();
    await idp?.stop();
  });

  const send = (entry: PoolEntry, token: string) =>
    h.check({ token, sid: entry.dest, sourcePrincipal: principalOf(entry.caller) });

  it('control: every valid token is allowed from its own caller, and its inner levels are not', async () => {
    assert.equal(pool.length, 13);
    for (const entry of pool) {
      const result = await send(entry, entry.token);
      assert.equal(result.allowed, true, `${entry.label}: ${JSON.stringify(result.metadata)}`);
      const levels = peel(entry.token);
      assert.ok(
        levels.length >= 2 && levels.every((l) => l.level !== undefined),
        `${entry.label} opens fully`,
      );
      // The pattern's own hole, closed by policy: each inner level is a validly signed token.
      for (const inner of levels.slice(1)) {
        const extracted = await send(entry, inner.compact);
        assert.equal(
          extracted.allowed,
          false,
          `${entry.label}: an extracted inner level is refused`,
        );
        assert.equal(extracted.httpStatus, 403);
      }
    }
  });

  it('never allows a mutated token; denials are 401/403, never 503 or a failure', async () => {
    const reasons = new Map<string, number>();
    let tried = 0;
    const started = performance.now();
    // Cases worth running every time, whatever the seed (another spelling of the signature's
    // bytes; the origin pulled out; a level skipped; the container of another chain).
    const examples: Array<[number, Mutation[]]> = [
      [0, [{ kind: 'reencode-segment', level: 0, seg: 2, variant: 'loose-bits' }]],
      [11, [{ kind: 'reencode-segment', level: 0, seg: 2, variant: 'loose-bits' }]],
      [3, [{ kind: 'extract', level: 4 }]],
      [3, [{ kind: 'reorder', order: [0, 2, 3, 4] }]],
      [2, [{ kind: 'splice', level: 0, donor: 10, donorLevel: 1 }]],
      [
        12,
        [
          {
            kind: 'field',
            level: 1,
            field: 'sid',
            inStack: true,
            edit: 'duplicate',
            value: { derived: 'other-sid' },
          },
        ],
      ],
    ];
    await fc.assert(
      fc.asyncProperty(fc.nat(), mutationsArb, async (which, mutations) => {
        const entry = pool[which % pool.length] as PoolEntry;
        const mutated = applyMutations(entry.token, mutations, ctx);
        fc.pre(mutated !== entry.token);
        tried++;
        const what = `${entry.label} ${describeMutations(mutations)}\n  ${whereChanged(entry.token, mutated)}`;
        let result: CheckResult;
        try {
          result = await send(entry, mutated);
        } catch (error) {
          assert.fail(`the check failed (${(error as Error).message}) for ${what}`);
        }
        const reason = String(result.metadata['reason'] ?? 'none');
        reasons.set(reason, (reasons.get(reason) ?? 0) + 1);
        assert.equal(result.allowed, false, `ALLOWED: ${what}`);
        assert.ok(
          result.httpStatus === 401 || result.httpStatus === 403,
          `denied with ${result.httpStatus} (${reason}): ${what}`,
        );
        assert.ok(
          result.grpcCode === 16 || result.grpcCode === 7,
          `gRPC status ${result.grpcCode}: ${what}`,
        );
      }),
      params(MUTATION_RUNS, { examples }),
    );
    const unexpected = h.logs.filter((l) => l['msg'] === 'check failed unexpectedly');
    assert.equal(
      unexpected.length,
      0,
      `internal errors logged: ${JSON.stringify(unexpected.slice(0, 3))}`,
    );
    console.log(
      `# mutations: ${tried} sent in ${Math.round(performance.now() - started)} ms; reasons ${JSON.stringify(Object.fromEntries(reasons))}`,
    );
    // The generator reaches past the outer signature too (policy, not only bad_signature).
    if (coverageChecked(MUTATION_RUNS)) {
      assert.ok(
        (reasons.get('bad_signature') ?? 0) > 0 && (reasons.get('caller_not_allowed') ?? 0) > 0,
        'mutations reach both signature and policy checks',
      );
    }
  });

  it('mutated chains re-signed by a registered partner (a minter for partner-* only) are never allowed, never 503', async () => {
    // Past the outer signature: the mutated outer level is signed again by an insider's key, so
    // the walk reaches the stack checks (minting rights, containers, inner levels, depth, tenant,
    // time) with every mutation. Denial is the only outcome: the partner may not wrap for the
    // chain's sids, and where it may (sid renamed partner-*) the caller is not the source workload.
    const reasons = new Map<string, number>();
    const started = performance.now();
    let tried = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.nat(),
        mutationsArb,
        fc.boolean(),
        async (which, mutations, renameSid) => {
          const entry = pool[which % pool.length] as PoolEntry;
          const mutated = applyMutations(entry.token, mutations, ctx);
          const outer = openLevel(mutated);
          fc.pre(outer !== undefined);
          const claims: Record<string, unknown> = {
            ...outer.claims,
            iss: PARTNER[entry.dest === ACME_DEST ? 'acme' : 'legacy'],
          };
          const stack = claims['auth_stack'];
          if (renameSid && stack !== null && typeof stack === 'object' && !Array.isArray(stack)) {
            const sid = (stack as Record<string, unknown>)['sid'];
            claims['auth_stack'] = {
              ...stack,
              sid: `partner-${typeof sid === 'string' ? sid : 'x'}`,
            };
          }
          const token = await new CompactSign(new TextEncoder().encode(JSON.stringify(claims)))
            .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
            .sign(partnerKey);
          tried++;
          const what = `${entry.label} ${describeMutations(mutations)} re-signed by the partner${renameSid ? ', sid renamed' : ''}`;
          let result: CheckResult;
          try {
            result = await send(entry, token);
          } catch (error) {
            assert.fail(`the check failed (${(error as Error).message}) for ${what}`);
          }
          const reason = String(result.metadata['reason'] ?? 'none');
          reasons.set(reason, (reasons.get(reason) ?? 0) + 1);
          assert.equal(result.allowed, false, `ALLOWED: ${what}`);
          assert.ok(
            result.httpStatus === 401 || result.httpStatus === 403,
            `denied with ${result.httpStatus} (${reason}): ${what}`,
          );
        },
      ),
      params(RESIGN_RUNS),
    );
    const unexpected = h.logs.filter((l) => l['msg'] === 'check failed unexpectedly');
    assert.equal(
      unexpected.length,
      0,
      `internal errors logged: ${JSON.stringify(unexpected.slice(0, 3))}`,
    );
    console.log(
      `# re-signed mutations: ${tried} sent in ${Math.round(performance.now() - started)} ms; reasons ${JSON.stringify(Object.fromEntries(reasons))}`,
    );
    if (coverageChecked(RESIGN_RUNS)) {
      for (const deep of ['untrusted_issuer', 'caller_not_allowed', 'stack_malformed'])
        assert.ok((reasons.get(deep) ?? 0) > 0, `some re-signed mutation ends in ${deep}`);
    }
  });
});

/** Where two tokens differ: offset and a window of each, for assertion messages. */
function whereChanged(original: string, mutated: string): string {
  let p = 0;
  while (p < original.length && p < mutated.length && original[p] === mutated[p]) p++;
  let q = 0;
  while (
    q < original.length - p &&
    q < mutated.length - p &&
    original[original.length - 1 - q] === mutated[mutated.length - 1 - q]
  )
    q++;
  const from = Math.max(0, p - 12);
  const window = (t: string): string =>
    `${from > 0 ? '…' : ''}${t.slice(from, Math.min(t.length - q + 12, p + 60))}${t.length - q + 12 < t.length ? '…' : ''}`;
  return `length ${original.length} → ${mutated.length}, first change at ${p}: ${window(original)} → ${window(mutated)}`;
}

// ---------------------------------------------------------------------------------------------
// Property 3: the codec, pure
// ---------------------------------------------------------------------------------------------
