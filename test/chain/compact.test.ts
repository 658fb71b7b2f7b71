/**
 * The compact chain form (docs/token-format.md, "Compact form") in-process through `check()`:
 * what it mints and how big, that every replica reads every form (mixed within one chain), that
 * policy sees hops as levels across forms, auto and the header budget, and the attacks on the
 * form, each with its reason code. Compact levels for attacks are signed with our own keys
 * (compactSignJson) or a registered IdP's, never re-encoded by the code under test.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { randomBytes } from 'node:crypto';
import { compactVerify, importJWK } from 'jose';
import { readAuthStack, unpackContainer } from '../../src/chain/auth-stack.js';
import { openChain } from '../../src/chain/open-chain.js';
import { LocalIssuer } from '../../src/demo/local-issuer.js';
import { compactSignJson } from '../../src/keys/jws-crypto.js';
import { OwnKeys } from '../../src/keys/own-keys.js';
import type { CheckDeps } from '../../src/pipeline/check.js';
import type { DecisionRecord } from '../../src/pipeline/decision.js';
import { type ChainFormat, tenantToRaw } from '../../src/registry/records.js';
import { type InProcess, OWN_ISSUER, inProcess, walk } from '../helpers/in-process.js';
import { localIssuer, service, tenant } from '../helpers/records.js';
import { authStack, claims } from '../helpers/tokens.js';

const SIDS = ['A', 'B', 'C', 'D', 'E', 'F', 'G', 'H'];

const formatted =
  (format: ChainFormat, headerBudget?: number) =>
  (d: CheckDeps): Partial<CheckDeps> => ({
    mint: { ...d.mint, format, ...(headerBudget === undefined ? {} : { headerBudget }) },
  });

/** The token a level nests, unpacked (it is compressed from depth 3 on when that pays). */
function containerOf(token: string): string {
  const stack = readAuthStack(claims(token));
  assert.ok(stack !== undefined);
  return unpackContainer(stack, 1 << 20);
}

function allowedMint(record: DecisionRecord, what: string): NonNullable<DecisionRecord['minted']> {
  assert.equal(record.allowed, true, `${what}: ${record.reason} ${record.detail}`);
  assert.ok(record.minted !== undefined, `${what}: minted`);
  return record.minted;
}

function assertDenied(record: DecisionRecord, reason: string, what: string): void {
  assert.equal(record.allowed, false, `${what}: allowed`);
  assert.equal(record.reason, reason, `${what}: ${record.detail}`);
  assert.equal(record.minted, undefined, `${what}: a denial signs nothing`);
}

describe('compact chain form', () => {
  let idp: LocalIssuer;
  let partner: LocalIssuer;
  let ownKeys: OwnKeys;
  let compact: InProcess;
  let nested: InProcess;
  let auto: InProcess;
  let shadow: InProcess;
  let origin: string;

  const contents = () => ({
    issuers: [localIssuer(idp, 'acme'), localIssuer(partner, 'acme', { mints_for: ['partner-*'] })],
    tenants: [
      tenant('acme', { recursion: 'deny' }),
      tenant('tight', { header_budget: 1024, chain_format: 'nested' }),
    ],
    services: [
      service('vault', { seal: true }),
      service('picky', { allowed_callers: ['B'] }),
      service('admin-only', { required_roles: ['admin'] }),
      service('bound', { bind_source: true }),
    ],
    principals: {
      'spiffe://cluster.local/ns/x/sa/B': 'B',
      'spiffe://cluster.local/ns/x/sa/A': 'A',
    },
  });

  before(async () => {
    idp = await LocalIssuer.start();
    partner = await LocalIssuer.start();
    // One fleet: every replica shares the keys, each has its own memo and its own chain form.
    compact = await inProcess({ contents: contents(), override: formatted('compact') });
    ownKeys = compact.ownKeys;
    // The nested replica's budget is wide: nested chains past depth 3 pass the default (the issue).
    nested = await inProcess({
      contents: contents(),
      ownKeys,
      override: formatted('nested', 65536),
    });
    auto = await inProcess({ contents: contents(), ownKeys, override: formatted('auto') });
    shadow = await inProcess({
      contents: contents(),
      ownKeys,
      shadow: true,
      override: formatted('compact'),
    });
    // A ~1 KB IdP token, as the issue measures with: claims that do not compress, as real ones.
    origin = await idp.mint({
      sub: 'alice',
      roles: ['reader'],
      pad: randomBytes(525).toString('base64url'),
    });
  });
  after(async () => {
    await idp.stop();
    await partner.stop();
  });

  it('mints one level per token whose records stand for every hop, the origin nested verbatim', async () => {
    let token = origin;
    for (const [i, sid] of SIDS.entries()) {
      const minted = allowedMint(await compact.check({ token, sid }), sid);
      assert.equal(minted.form, 'compact');
      const stack = authStack(minted.token);
      assert.equal(stack['form'], 'compact');
      assert.equal(stack['depth'], i + 1);
      assert.equal(stack['sid'], sid);
      assert.deepEqual(
        (stack['hops'] as unknown[][]).map((h) => h[0]),
        SIDS.slice(0, i + 1),
      );
      assert.equal(containerOf(minted.token), origin, 'the origin itself: its signature verifies');
      assert.deepEqual(minted.sids, SIDS.slice(0, i + 1));
      assert.equal(minted.level.depth, i + 1);
      token = minted.token;
    }
    // The issue's target: at depth 8, no more than the origin plus 2 KB.
    assert.ok(
      token.length <= origin.length + 2048,
      `depth 8 is ${token.length} characters, origin ${origin.length}`,
    );
  });

  it('is an ordinary JWS: a JOSE library verifies it with our published JWKS', async () => {
    const token = await walk(compact, origin, ['A', 'B', 'C']);
    const [jwk] = ownKeys.publicJwks().keys;
    assert.ok(jwk !== undefined);
    const { payload } = await compactVerify(token, await importJWK(jwk, 'ES256'));
    const parsed = JSON.parse(new TextDecoder().decode(payload)) as Record<string, unknown>;
    assert.equal(parsed['iss'], OWN_ISSUER);
    assert.equal((parsed['auth_stack'] as Record<string, unknown>)['form'], 'compact');
  });

  it('decides the same on either form: sids, depth, caller, user and roles (x-auth-chain, x-auth-depth)', async () => {
    let viaNested = origin;
    let viaCompact = origin;
    for (const sid of SIDS.slice(0, 6)) {
      const n = await nested.check({ token: viaNested, sid });
      const c = await compact.check({ token: viaCompact, sid });
      const mn = allowedMint(n, `nested ${sid}`);
      const mc = allowedMint(c, `compact ${sid}`);
      assert.deepEqual(c.chain?.sids, n.chain?.sids, sid);
      assert.equal(c.chain?.depth, n.chain?.depth, sid);
      assert.equal(c.chain?.outer.stack?.sid, n.chain?.outer.stack?.sid, `${sid}: the caller`);
      assert.deepEqual([c.user, c.roles, c.tenant], [n.user, n.roles, n.tenant], sid);
      assert.deepEqual(mc.sids, mn.sids, sid);
      assert.equal(mc.level.depth, mn.level.depth, sid);
      viaNested = mn.token;
      viaCompact = mc.token;
    }
    assert.ok(viaCompact.length * 3 < viaNested.length, 'and a third of the size at depth 6');
  });

  it('reads every form on every replica, mixed within one chain: nested levels below collapse', async () => {
    const twoNested = await walk(nested, origin, ['A', 'B']);
    const switched = allowedMint(await compact.check({ token: twoNested, sid: 'C' }), 'switch');
    const stack = authStack(switched.token);
    assert.deepEqual(
      (stack['hops'] as unknown[][]).map((h) => h[0]),
      ['A', 'B', 'C'],
      'the two nested levels of ours became records',
    );
    assert.equal(containerOf(switched.token), origin);
    // A nested replica wraps the compact token; a compact one collapses all of it again.
    const wrapped = allowedMint(await nested.check({ token: switched.token, sid: 'D' }), 'wrap');
    assert.equal(authStack(wrapped.token)['form'], undefined);
    const again = allowedMint(await compact.check({ token: wrapped.token, sid: 'E' }), 'again');
    assert.deepEqual(
      (authStack(again.token)['hops'] as unknown[][]).map((h) => h[0]),
      ['A', 'B', 'C', 'D', 'E'],
    );
    assert.deepEqual(again.sids, ['A', 'B', 'C', 'D', 'E']);
    assert.equal(again.level.depth, 5);
  });

  it('records exactly what verifying the minted token records (memo and fresh walk agree)', async () => {
    const token = await walk(nested, origin, ['A', 'B']);
    const minted = allowedMint(await compact.check({ token, sid: 'C' }), 'C');
    const fresh = await openChain(minted.token, { ...compact.deps, memo: undefined });
    assert.deepEqual(minted.levels, fresh.levels);
    assert.equal(fresh.verifiedHere, 4, 'the origin and three hops, under two signatures');
    assert.deepEqual(
      fresh.levels.map((l) => l.form),
      [undefined, 'compact', 'compact', 'compact'],
    );
    // Another replica (its own memo) verifies the compact level; this one knows its very text.
    const here = await compact.check({ token: minted.token, sid: 'D' });
    assert.equal(here.chain?.verifiedHere, 0);
    const there = await nested.check({ token: minted.token, sid: 'D' });
    assert.equal(there.allowed, true, there.detail);
    assert.deepEqual(there.chain?.levels, here.chain?.levels);
  });

  it('counts a sid in a collapsed record or a nested level as recursion, across a nested→compact switch', async () => {
    const viaNested = await walk(nested, origin, ['A', 'B']);
    const switched = await walk(compact, viaNested, ['C']);
    assertDenied(await compact.check({ token: switched, sid: 'A' }), 'recursion', 'A in a record');
    assertDenied(
      await nested.check({ token: switched, sid: 'B' }),
      'recursion',
      'B, nested reader',
    );
    const wrapped = await walk(nested, switched, ['D']);
    assertDenied(await compact.check({ token: wrapped, sid: 'C' }), 'recursion', 'C below D');
  });

  it('limits depth by hops, not JWS levels, and takes the caller from the last hop', async () => {
    const eight = await walk(compact, origin, SIDS);
    assert.equal(eight.split('.').length, 3);
    assertDenied(await compact.check({ token: eight, sid: 'Z' }), 'depth_exceeded', 'depth 9');
    const viaB = await walk(compact, origin, ['A', 'B']);
    assert.equal((await compact.check({ token: viaB, sid: 'picky' })).allowed, true);
    const viaC = await walk(compact, origin, ['A', 'B', 'C']);
    assertDenied(await compact.check({ token: viaC, sid: 'picky' }), 'caller_not_allowed', 'C');
    assertDenied(await compact.check({ token: viaC, sid: 'admin-only' }), 'role_missing', 'role');
    // bind_source: the workload calling must be the last hop, not an earlier one in a record.
    const asB = { token: viaB, sid: 'bound', sourcePrincipal: 'spiffe://cluster.local/ns/x/sa/B' };
    assert.equal((await compact.check(asB)).allowed, true);
    const asA = { ...asB, sourcePrincipal: 'spiffe://cluster.local/ns/x/sa/A' };
    assertDenied(
      await compact.check(asA),
      'caller_not_allowed',
      'A is in a record, not the caller',
    );
  });

  it('shadow mode mints compact around a would-be denial, and the span records each hop', async () => {
    const viaC = await walk(compact, origin, ['A', 'B', 'C']);
    const record = await shadow.check({ token: viaC, sid: 'A' });
    assert.equal(record.allowed, true);
    assert.equal(record.reason, 'recursion');
    assert.equal(allowedMint(record, 'shadow').form, 'compact');
  });

  it('seals in the nested form, so the hops it seals are never in clear; compact resumes above it', async () => {
    const small = await idp.mint({ sub: 'alice', roles: ['reader'] });
    const viaB = await walk(compact, small, ['A', 'B']);
    const sealed = allowedMint(await compact.check({ token: viaB, sid: 'vault' }), 'vault');
    assert.equal(sealed.form, 'nested');
    const stack = authStack(sealed.token);
    assert.equal(stack['fmt'], 'JWE');
    assert.equal(stack['hops'], undefined);
    assert.ok(!sealed.token.includes(viaB), 'the sealed chain is not in the token');
    const payloadText = Buffer.from(sealed.token.split('.')[1] as string, 'base64url').toString();
    for (const sid of ['"A"', '"B"']) assert.ok(!payloadText.includes(sid), `${sid} in clear`);
    const above = allowedMint(await compact.check({ token: sealed.token, sid: 'C' }), 'C');
    assert.equal(above.form, 'compact');
    assert.deepEqual(
      (authStack(above.token)['hops'] as unknown[][]).map((h) => h[0]),
      ['C'],
      'the sealed level is the anchor, never collapsed',
    );
    assert.equal(containerOf(above.token), sealed.token);
    assert.deepEqual(above.sids, ['A', 'B', 'vault', 'C']);
  });

  describe('auto and the header budget', () => {
    it('stays nested at depths 1–3 with a small origin, and never forwards more than the budget', async () => {
      const small = await idp.mint({ sub: 'alice', roles: ['reader'] });
      let token = small;
      const forms: string[] = [];
      for (const sid of SIDS) {
        const record = await auto.check({ token, sid });
        const minted = allowedMint(record, sid);
        forms.push(minted.form);
        assert.ok((record.headerBytes ?? Infinity) <= 6656, `${sid}: ${record.headerBytes}`);
        token = minted.token;
      }
      assert.deepEqual(forms.slice(0, 3), ['nested', 'nested', 'nested']);
    });

    it('switches to compact exactly when nested would pass the budget (1 KB origin)', async () => {
      let token = origin;
      const forms: string[] = [];
      for (const sid of SIDS) {
        const record = await auto.check({ token, sid });
        const minted = allowedMint(record, sid);
        assert.ok((record.headerBytes ?? Infinity) <= 6656);
        forms.push(minted.form);
        token = minted.token;
      }
      const first = forms.indexOf('compact');
      assert.ok(first >= 1, `nested first: ${forms.join(',')}`);
      assert.ok(
        forms.slice(first).every((f) => f === 'compact'),
        `compact once switched: ${forms.join(',')}`,
      );
    });

    it('counts the forward header, the token and every identity header, names and values', async () => {
      const record = await auto.check({ token: origin, sid: 'A' });
      const minted = allowedMint(record, 'A');
      const expected =
        'authorization'.length +
        `Bearer ${minted.token}`.length +
        'x-tenant-id'.length +
        'acme'.length +
        'x-user-id'.length +
        'alice'.length +
        'x-user-roles'.length +
        'reader'.length +
        'x-auth-depth'.length +
        1 +
        'x-auth-chain'.length +
        1;
      assert.equal(record.headerBytes, expected);
    });

    it('denies header_budget_exceeded when even compact does not fit, or nested is forced past it', async () => {
      const huge = await idp.mint({ sub: 'alice', pad: 'h'.repeat(7000) });
      assertDenied(await compact.check({ token: huge, sid: 'A' }), 'header_budget_exceeded', 'c');
      assertDenied(await auto.check({ token: huge, sid: 'A' }), 'header_budget_exceeded', 'auto');
      // The tenant's override: nested forced with a 1 KiB budget.
      const tight = await inProcess({
        contents: {
          ...contents(),
          issuers: [localIssuer(idp, 'tight')],
        },
        ownKeys,
        override: formatted('compact'),
      });
      const denied = await tight.check({ token: origin, sid: 'A' });
      assertDenied(denied, 'header_budget_exceeded', 'tenant budget');
      assert.match(
        denied.detail ?? '',
        /nested token makes \d+ bytes of headers, over the budget of 1024/,
      );
    });

    it('is never shadowed: dry-run refuses an oversized answer, even on top of a policy denial', async () => {
      const huge = await idp.mint({ sub: 'alice', pad: 'h'.repeat(7000) });
      const plain = await shadow.check({ token: huge, sid: 'A' });
      assertDenied(plain, 'header_budget_exceeded', 'shadow');
      assert.equal(plain.shadow, false);
      const viaA = await walk(
        await inProcess({ contents: contents(), ownKeys, override: formatted('compact', 65536) }),
        huge,
        ['A'],
      );
      assertDenied(await shadow.check({ token: viaA, sid: 'A' }), 'header_budget_exceeded', 'both');
    });
  });

  it('tenant records take chain_format and header_budget, refuse bad values naming the field, and write them back', () => {
    const record = tenant('acme', { chain_format: 'compact', header_budget: '4096' });
    assert.equal(record.chainFormat, 'compact');
    assert.equal(record.headerBudget, 4096);
    assert.deepEqual(tenant('acme', tenantToRaw(record)), record);
    assert.equal(tenant('acme').chainFormat, undefined, 'absent: the service setting applies');
    assert.throws(() => tenant('acme', { chain_format: 'flat' }), /tenants\.acme\.chain_format/);
    assert.throws(() => tenant('acme', { header_budget: 100 }), /tenants\.acme\.header_budget/);
    assert.throws(() => tenant('acme', { header_budget: 1.5e6 }), /header_budget/);
  });

  describe('attacks on the compact form', () => {
    interface Craft {
      hops?: unknown[];
      container?: string;
      depth?: number;
      sid?: string;
      iat?: number;
      exp?: number;
      jti?: string;
      form?: unknown;
      keys?: OwnKeys;
    }
    const now = () => Math.floor(Date.now() / 1000);
    /** A compact level of ours (or of `keys`) around `origin` unless told otherwise. */
    function craft(c: Craft = {}): string {
      const iat = c.iat ?? now();
      const exp = c.exp ?? iat + 60;
      const jti = c.jti ?? 'j-newest';
      const hops = c.hops ?? [
        ['A', iat - 5, exp, 'j-a'],
        ['B', iat, exp, jti],
      ];
      const keys = c.keys ?? ownKeys;
      const payload = {
        iss: OWN_ISSUER,
        sub: 'alice',
        aud: OWN_ISSUER,
        iat,
        exp,
        jti,
        tenant_id: 'acme',
        roles: ['reader'],
        auth_stack: {
          fmt: 'JWT',
          sid: c.sid ?? 'B',
          depth: c.depth ?? hops.length,
          form: c.form ?? 'compact',
          hops,
          container: c.container ?? origin,
        },
      };
      return compactSignJson(
        keys.signing.alg,
        keys.signing.kid,
        keys.signing.privateKey,
        JSON.stringify(payload),
      );
    }

    it('the crafting itself is sound: a well-formed compact level of ours is allowed', async () => {
      const record = await compact.check({ token: craft(), sid: 'C' });
      assert.deepEqual(allowedMint(record, 'control').sids, ['A', 'B', 'C']);
    });

    it('refuses a compact level signed by another key (bad_signature)', async () => {
      const stranger = await OwnKeys.generate();
      assertDenied(
        await compact.check({ token: craft({ keys: stranger }), sid: 'C' }),
        'bad_signature',
        'other key',
      );
    });

    it('refuses a compact level from a registered IdP: untrusted_issuer without mints_for, stack_malformed with', async () => {
      const iat = now();
      const body = (sid: string) => ({
        sub: 'alice',
        auth_stack: {
          fmt: 'JWT',
          sid,
          depth: 1,
          form: 'compact',
          hops: [[sid, iat, iat + 60, 'j1']],
          container: origin,
        },
      });
      const idpLevel = await idp.mint(body('A'), { iat, ttl: 60 });
      assertDenied(await compact.check({ token: idpLevel, sid: 'C' }), 'untrusted_issuer', 'idp');
      const partnerLevel = await partner.mint(body('partner-x'), { iat, ttl: 60 });
      assertDenied(
        await compact.check({ token: partnerLevel, sid: 'C' }),
        'stack_malformed',
        'partner',
      );
    });

    it('refuses hop records that disagree with the chain: depth, times, the newest record', async () => {
      const iat = now();
      const cases: Array<[string, Craft, string]> = [
        ['depth not the hops', { depth: 3 }, 'stack_malformed'],
        ['depth one short', { depth: 1 }, 'stack_malformed'],
        ['sid not the newest hop', { sid: 'A' }, 'stack_malformed'],
        [
          'older hop issued after the newer',
          {
            iat,
            hops: [
              ['A', iat + 120, iat + 60, 'j-a'],
              ['B', iat, iat + 60, 'j-newest'],
            ],
          },
          'stack_malformed',
        ],
        [
          'older hop expired before the next was minted',
          {
            iat,
            hops: [
              ['A', iat - 600, iat - 300, 'j-a'],
              ['B', iat, iat + 60, 'j-newest'],
            ],
          },
          'expired',
        ],
        [
          'a hop outliving the hop it wraps',
          {
            iat,
            hops: [
              ['A', iat - 5, iat + 30, 'j-a'],
              ['B', iat, iat + 60, 'j-newest'],
            ],
          },
          'stack_malformed',
        ],
        [
          'a hop outliving the origin',
          {
            iat,
            exp: iat + 3600,
            hops: [
              ['A', iat - 5, iat + 3600, 'j-a'],
              ['B', iat, iat + 3600, 'j-newest'],
            ],
          },
          'stack_malformed',
        ],
        [
          'newest record not the level (jti)',
          {
            iat,
            hops: [
              ['A', iat - 5, iat + 60, 'j-a'],
              ['B', iat, iat + 60, 'other'],
            ],
          },
          'stack_malformed',
        ],
        [
          'newest record not the level (iat)',
          {
            iat,
            hops: [
              ['A', iat - 5, iat + 60, 'j-a'],
              ['B', iat - 1, iat + 60, 'j-newest'],
            ],
          },
          'stack_malformed',
        ],
        [
          'a sid that forges a hop',
          { hops: [['A,B', iat, iat + 60, 'j-newest']], sid: 'A,B' },
          'stack_malformed',
        ],
        ['an unknown form', { form: 'collapsed' }, 'stack_malformed'],
        ['no records', { hops: [] }, 'stack_malformed'],
        ['a record of the wrong shape', { hops: [{ sid: 'B' }] }, 'stack_malformed'],
      ];
      for (const [what, c, reason] of cases)
        assertDenied(await compact.check({ token: craft({ iat, ...c }), sid: 'C' }), reason, what);
    });

    it('refuses a record list past the level cap (stack_too_large)', async () => {
      const iat = now();
      const hops = Array.from({ length: 40 }, (_, i) => [`s${i}`, iat, iat + 60, `j${i}`]);
      (hops[39] as unknown[])[3] = 'j-newest';
      assertDenied(
        await compact.check({ token: craft({ iat, hops, sid: 's39' }), sid: 'C' }),
        'stack_too_large',
        '40 hops',
      );
    });

    it('refuses a compact level whose container is a level of ours it should have collapsed', async () => {
      const inner = craft();
      const iat = now();
      const outer = craft({
        container: inner,
        iat,
        hops: [['C', iat, iat + 60, 'j-newest']],
        sid: 'C',
        depth: 3,
      });
      assertDenied(await compact.check({ token: outer, sid: 'D' }), 'stack_malformed', 'compact');
      const nestedOfOurs = await walk(nested, origin, ['A']);
      const aroundNested = craft({
        container: nestedOfOurs,
        iat,
        hops: [['B', iat, iat + 60, 'j-newest']],
        sid: 'B',
        depth: 2,
      });
      assertDenied(await nested.check({ token: aroundNested, sid: 'D' }), 'stack_malformed', 'n');
    });

    it('treats an origin extracted from a compact level as the origin it is (entry_only refuses it)', async () => {
      const entryOnly = await inProcess({
        contents: {
          ...contents(),
          tenants: [tenant('acme', { entry_only: true })],
          services: [service('gateway', { entry: true })],
        },
        ownKeys,
        override: formatted('compact'),
      });
      const viaGateway = await walk(entryOnly, origin, ['gateway', 'B']);
      const extracted = containerOf(viaGateway);
      assert.equal(extracted, origin);
      assertDenied(
        await entryOnly.check({ token: extracted, sid: 'C' }),
        'caller_not_allowed',
        'x',
      );
      assert.equal((await entryOnly.check({ token: viaGateway, sid: 'C' })).allowed, true);
      assert.equal(claims(viaGateway)['iss'], OWN_ISSUER);
    });
  });
});
