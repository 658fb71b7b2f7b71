/**
 * Every header value the service emits is a valid, unambiguous header value (src/header-grammar.ts):
 * hostile subjects, roles, sids and tenants — from tokens (origin, a registered minter's level, our
 * own level), routes, principal mappings, the registry (file, Redis, CLI) and the configuration —
 * are refused or dropped where they enter, never copied upstream; and the response builder fails
 * closed should one slip through. Driven through the real gRPC server where a request can carry the
 * value, in-process for what no request can reach.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Redis } from 'ioredis';
import { ConfigError, loadConfig } from '../../src/config/config.js';
import type { CheckResult } from '../../src/demo/envoy-client.js';
import { LocalIssuer } from '../../src/demo/local-issuer.js';
import { isIdentifier, isRole, isSubject } from '../../src/header-grammar.js';
import { compactSign } from '../../src/keys/jws-crypto.js';
import { OwnKeys } from '../../src/keys/own-keys.js';
import type { DecisionRecord } from '../../src/pipeline/decision.js';
import { buildCheckResponse } from '../../src/pipeline/respond.js';
import { globMatches } from '../../src/policy/glob.js';
import type { DenyReason } from '../../src/reasons.js';
import { RecordError, parseIssuer, parseService, parseTenant } from '../../src/registry/records.js';
import { RedisLayout } from '../../src/redis/layout.js';
import { parseRegistryDocument } from '../../src/registry/registry-file.js';
import { RegistryStore } from '../../src/registry/registry-store.js';
import { type World, startWorld } from '../world/world.js';
import { runProgramWithEnv } from '../helpers/program.js';
import { localIssuer, service, tenant } from '../helpers/records.js';
import { RedisServer } from '../helpers/redis-server.js';
import { suiteParts } from '../helpers/suite-parts.js';

const now = (): number => Math.floor(Date.now() / 1000);

/** What an HTTP parser reads one way only: visible ASCII, inner spaces, nothing at the edges. */
const SAFE_VALUE = /^[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?$/;
const IDENTITY = ['x-tenant-id', 'x-user-id', 'x-user-roles', 'x-auth-depth', 'x-auth-chain'];

/** The characters the attack named, each inside an otherwise ordinary value. */
const HOSTILE_INFIXES: ReadonlyArray<[string, string]> = [
  ['CR LF', '\r\nx-tenant-id: globex'],
  ['LF', '\nx'],
  ['CR', '\rx'],
  ['NUL', '\u0000'],
  ['DEL', '\u007f'],
  ['NEL', '\u0085'],
  ['U+2028', '\u2028'],
  ['tab', '\tx'],
  ['non-ASCII', 'é'],
];

/** Sid variants: everything that is not exactly one element of x-auth-chain. */
const HOSTILE_SIDS: ReadonlyArray<[string, string]> = [
  ['comma', 'partner-x,gateway'],
  ['comma and space', 'partner-x, gateway'],
  ['space', 'partner-x gateway'],
  ['CR LF', 'partner-x\r\ngateway'],
  ['NUL', 'partner-x\u0000'],
  ['DEL', 'partner-x\u007f'],
  ['NEL', 'partner-x\u0085'],
  ['non-ASCII', 'partner-xé'],
  ['129 characters', `partner-${'x'.repeat(121)}`],
];

function assertEverythingEmittedIsSafe(result: CheckResult, what: string): void {
  for (const [name, value] of Object.entries(result.headers)) {
    assert.match(value, SAFE_VALUE, `${what}: header ${name} ${JSON.stringify(value)}`);
  }
  const roles = result.headers['x-user-roles'];
  if (roles !== undefined)
    for (const role of roles.split(','))
      assert.ok(isRole(role), `${what}: role ${JSON.stringify(role)}`);
  const chain = result.headers['x-auth-chain'];
  if (chain !== undefined)
    for (const sid of chain.split(','))
      assert.ok(isIdentifier(sid), `${what}: sid ${JSON.stringify(sid)}`);
}

describe('header grammar through the Check handler', () => {
  const s = suiteParts(async (own) => {
    const idp = own(await LocalIssuer.start());
    const partner = own(await LocalIssuer.start());
    const anyMinter = own(await LocalIssuer.start());
    const ownKeys = await OwnKeys.generate();
    const h = own(
      await startWorld('handler', {
        ownKeys,
        contents: {
          issuers: [
            localIssuer(idp, 'acme', { algorithms: ['ES256'] }),
            localIssuer(partner, 'acme', { algorithms: ['ES256'], mints_for: ['partner-*'] }),
            localIssuer(anyMinter, 'acme', { algorithms: ['ES256'], mints_for: ['*'] }),
          ],
          tenants: [tenant('acme', { max_depth: 8 })],
          services: [
            service('gateway', { tenant: 'acme' }),
            service('B', { tenant: 'acme' }),
            service('bound', { tenant: 'acme', bind_source: true }),
            service('needs-admin', { tenant: 'acme', required_roles: ['admin'] }),
          ],
          principals: { 'spiffe://cluster.local/ns/shop/sa/gateway': 'gateway' },
        },
      }),
    );
    return { idp, partner, anyMinter, ownKeys, h };
  });

  /** An origin token with exactly these claims (no type coercion: `sub` may be anything JSON allows). */
  const origin = (claims: Record<string, unknown>): Promise<string> =>
    s.idp.signCompact(
      { typ: 'JWT' },
      JSON.stringify({ iss: s.idp.issuer, iat: now(), exp: now() + 300, ...claims }),
    );

  /** A level of a registered minter wrapping `container`, for `sid`. */
  const wrapped = (
    minter: LocalIssuer,
    sid: string,
    container: string,
    depth = 1,
  ): Promise<string> =>
    minter.signCompact(
      { typ: 'JWT' },
      JSON.stringify({
        iss: minter.issuer,
        sub: 'alice',
        iat: now(),
        exp: now() + 300,
        auth_stack: { fmt: 'JWT', sid, depth, container },
      }),
    );

  async function expectDenied(
    call: Parameters<World['check']>[0],
    reason: DenyReason,
    what: string,
  ): Promise<void> {
    const result = await s.h.check(call);
    assert.equal(result.allowed, false, `${what}: must be denied`);
    assert.equal(s.h.lastReason(), reason, what);
    for (const name of IDENTITY)
      assert.equal(result.headers[name], undefined, `${what}: ${name} emitted on a denial`);
    assertEverythingEmittedIsSafe(result, what);
  }

  describe('subjects: what the token says or nothing', () => {
    it('a sub with CR LF, NUL, DEL, NEL, other controls or non-ASCII is malformed_token, never x-user-id', async () => {
      for (const [name, infix] of HOSTILE_INFIXES) {
        await expectDenied(
          { token: await origin({ sub: `alice${infix}`, client_id: 'admin' }), sid: 'B' },
          'malformed_token',
          `sub with ${name}`,
        );
      }
      for (const sub of [' alice', 'alice ']) {
        await expectDenied(
          { token: await origin({ sub }), sid: 'B' },
          'malformed_token',
          `sub ${JSON.stringify(sub)} (edge space a parser would strip)`,
        );
      }
    });

    it('an invalid sub never falls back to client_id or azp (not a string, empty, 1,025 characters)', async () => {
      for (const sub of [42, '', 'a'.repeat(1025), null, true, ['alice'], { id: 'alice' }]) {
        const token = await origin({ sub, client_id: 'admin', azp: 'admin' });
        await expectDenied(
          { token, sid: 'B' },
          'malformed_token',
          `sub ${JSON.stringify(sub).slice(0, 20)}`,
        );
      }
    });

    it('client_id, then azp, stand in only when sub is absent, and are held to the same grammar', async () => {
      const byClient = await s.h.check({
        token: await origin({ client_id: 'svc-client', azp: 'other' }),
        sid: 'B',
      });
      assert.equal(byClient.allowed, true);
      assert.equal(byClient.headers['x-user-id'], 'svc-client');
      const byAzp = await s.h.check({ token: await origin({ azp: 'svc-azp' }), sid: 'B' });
      assert.equal(byAzp.headers['x-user-id'], 'svc-azp');
      await expectDenied(
        { token: await origin({ client_id: 'svc\r\nx', azp: 'svc-azp' }), sid: 'B' },
        'malformed_token',
        'client_id with CR LF',
      );
      await expectDenied(
        { token: await origin({ client_id: 7, azp: 'svc-azp' }), sid: 'B' },
        'malformed_token',
        'numeric client_id',
      );
    });

    it('a subject at the bound, or with inner spaces, is copied exactly', async () => {
      for (const sub of [
        'a'.repeat(1024),
        'CN=Alice Smith,O=Acme',
        'auth0|5f7c8ec7c33c6c004bbafe82',
      ]) {
        const result = await s.h.check({ token: await origin({ sub }), sid: 'B' });
        assert.equal(result.allowed, true, sub.slice(0, 20));
        assert.equal(result.headers['x-user-id'], sub);
        assertEverythingEmittedIsSafe(result, sub.slice(0, 20));
      }
    });

    it('an inner level with an invalid sub makes the chain malformed too', async () => {
      const inner = await origin({ sub: 'alice\u0085', client_id: 'admin' });
      await expectDenied(
        { token: await wrapped(s.partner, 'partner-gw', inner), sid: 'B' },
        'malformed_token',
        'wrapped origin with NEL in sub',
      );
    });
  });

  describe('roles', () => {
    it('a role with a control character, DEL, NEL, a comma or non-ASCII is dropped, never emitted', async () => {
      const roles = [
        'reader',
        'ad\u0000min',
        'x\u007f',
        'y\u0085',
        'a,b',
        'café',
        'z\r\nx-tenant-id: globex',
        'r'.repeat(257),
        'writer',
      ];
      const result = await s.h.check({
        token: await origin({ sub: 'alice', roles }),
        sid: 'B',
      });
      assert.equal(result.allowed, true);
      assert.equal(result.headers['x-user-roles'], 'reader,writer');
      assertEverythingEmittedIsSafe(result, 'roles');
      const asString = await s.h.check({
        token: await origin({ sub: 'alice', roles: 'reader admin\u0085x' }),
        sid: 'B',
      });
      assert.equal(asString.headers['x-user-roles'], 'reader');
    });

    it('a dropped role grants nothing: admin followed by NUL is not admin', async () => {
      await expectDenied(
        { token: await origin({ sub: 'alice', roles: ['admin\u0000'] }), sid: 'needs-admin' },
        'role_missing',
        'admin NUL',
      );
      assert.equal(
        (
          await s.h.check({
            token: await origin({ sub: 'alice', roles: ['admin'] }),
            sid: 'needs-admin',
          })
        ).allowed,
        true,
      );
    });
  });

  describe('sids', () => {
    it('a registered minter cannot use a mints_for-matched sid that forges a hop (stack_malformed)', async () => {
      const start = (await s.h.check({ token: await origin({ sub: 'alice' }), sid: 'gateway' }))
        .forwardedToken as string;
      for (const [name, sid] of HOSTILE_SIDS) {
        await expectDenied(
          { token: await wrapped(s.partner, sid, start, 2), sid: 'B' },
          'stack_malformed',
          `partner sid with ${name}`,
        );
      }
      const honest = await s.h.check({
        token: await wrapped(s.partner, 'partner-gw', start, 2),
        sid: 'B',
      });
      assert.equal(honest.allowed, true, 'the same partner, for a sid in the grammar');
      assert.equal(honest.headers['x-auth-chain'], 'gateway,partner-gw,B');
    });

    it('a comma-sid cannot hide a recursion (mints_for *)', async () => {
      const start = (await s.h.check({ token: await origin({ sub: 'alice' }), sid: 'B' }))
        .forwardedToken as string;
      await expectDenied(
        { token: await wrapped(s.anyMinter, 'x,B', start, 2), sid: 'C' },
        'stack_malformed',
        'x,B wrapping a chain through B',
      );
      await expectDenied(
        { token: await wrapped(s.anyMinter, 'C,B', await origin({ sub: 'alice' })), sid: 'B' },
        'stack_malformed',
        'origin wrapped as C,B, calling B',
      );
    });

    it('a minter registered for every sid (mints_for *) is still held to the grammar', async () => {
      const token = await origin({ sub: 'alice' });
      for (const [name, sid] of HOSTILE_SIDS) {
        await expectDenied(
          { token: await wrapped(s.anyMinter, sid, token), sid: 'B' },
          'stack_malformed',
          `any-minter sid with ${name}`,
        );
      }
    });

    it('a route sid outside the grammar is unknown_service', async () => {
      const token = await origin({ sub: 'alice' });
      for (const [name, sid] of [
        ...HOSTILE_SIDS,
        ['leading space', ' B'],
        ['trailing space', 'B '],
        ['leading dash', '-B'],
        ['B comma', 'B,gateway'],
      ] as const) {
        await expectDenied({ token, sid }, 'unknown_service', `route sid with ${name}`);
      }
    });

    it('a route tenant outside the grammar is refused, not ignored', async () => {
      const token = await origin({ sub: 'alice' });
      await expectDenied(
        { token, sid: 'B', contextExtensions: { tenant: 'acme\r\n' } },
        'tenant_mismatch',
        'route tenant with CR LF',
      );
      await expectDenied(
        { token, sid: 'B', contextExtensions: { tenant: 'acme,globex' } },
        'tenant_mismatch',
        'route tenant with comma',
      );
    });

    it('a principal mapped to a non-sid names no destination and no caller', async () => {
      // Straight into the in-memory registry, past the record parsers: the Check path checks on its own.
      s.h.registry.mapPrincipal('spiffe://cluster.local/ns/shop/sa/forged', 'B,gateway');
      s.h.registry.mapPrincipal('spiffe://cluster.local/ns/shop/sa/nel', 'gateway\u0085');
      const token = await origin({ sub: 'alice' });
      await expectDenied(
        { token, destinationPrincipal: 'spiffe://cluster.local/ns/shop/sa/forged' },
        'unknown_service',
        'destination principal → B,gateway',
      );
      const minted = (await s.h.check({ token, sid: 'gateway' })).forwardedToken as string;
      assert.equal(
        (
          await s.h.check({
            token: minted,
            sid: 'bound',
            sourcePrincipal: 'spiffe://cluster.local/ns/shop/sa/gateway',
          })
        ).allowed,
        true,
      );
      await expectDenied(
        { token: minted, sid: 'bound', sourcePrincipal: 'spiffe://cluster.local/ns/shop/sa/nel' },
        'caller_not_allowed',
        'source principal → gateway NEL',
      );
    });
  });

  describe('tenants', () => {
    const ownLevel = (claims: Record<string, unknown>): string =>
      compactSign(s.ownKeys.signing.alg, s.ownKeys.signing.kid, s.ownKeys.signing.privateKey, {
        iss: 'urn:matryoshka:authz',
        aud: 'urn:matryoshka:authz',
        sub: 'alice',
        iat: now(),
        exp: now() + 300,
        ...claims,
      });

    it('a tenant_id outside the grammar, even under our own signature, is malformed', async () => {
      // C has no record, so no tenant binding stands between the claim and x-tenant-id.
      assert.equal(
        (await s.h.check({ token: ownLevel({ tenant_id: 'acme' }), sid: 'C' })).allowed,
        true,
        'the control',
      );
      for (const [name, infix] of [...HOSTILE_INFIXES, ['comma', ',globex']] as const) {
        await expectDenied(
          { token: ownLevel({ tenant_id: `acme${infix}` }), sid: 'C' },
          'malformed_token',
          `tenant_id with ${name}`,
        );
      }
    });

    it('an issuer record put in the registry without validation cannot lend its tenant', async () => {
      const rogue = await LocalIssuer.start();
      try {
        s.h.registry.putIssuer({
          ...localIssuer(rogue, 'acme', { algorithms: ['ES256'] }),
          tenant: 'acme\r\nx-user-id: root',
        });
        await expectDenied(
          { token: await rogue.mint({ sub: 'alice' }), sid: 'C' },
          'untrusted_issuer',
          'registered tenant with CR LF',
        );
      } finally {
        await rogue.stop();
      }
    });
  });
});

describe('header grammar in the registry, the configuration and the response', () => {
  it('the sid grammar accepts what deployments use and refuses every hostile variant', () => {
    for (const sid of [
      'A',
      'gateway',
      'cart-1',
      'partner-gw',
      'Organization.Services.ServiceB',
      'spiffe://cluster.local/ns/shop/sa/orders',
      'svc_a:v2@eu',
      'x'.repeat(128),
    ]) {
      assert.ok(isIdentifier(sid), sid);
    }
    for (const [name, sid] of [
      ...HOSTILE_SIDS,
      ['empty', ''],
      ['leading dot', '.a'],
      ['leading dash', '-a'],
    ] as const) {
      assert.equal(isIdentifier(sid), false, name);
    }
    for (const [name, infix] of HOSTILE_INFIXES)
      assert.equal(isSubject(`alice${infix}`), false, `subject with ${name}`);
    assert.equal(isSubject('a'.repeat(1025)), false);
  });

  it('a glob that matches still accepts only grammar-valid sids', () => {
    for (const [name, sid] of HOSTILE_SIDS.filter(([, s]) => s.length <= 128)) {
      assert.equal(globMatches('partner-*', sid), false, name);
      assert.equal(globMatches('*', sid), false, `* against ${name}`);
      assert.equal(globMatches('partner-?????????', sid), false, `? against ${name}`);
    }
    assert.equal(globMatches('partner-*', 'partner-gw'), true);
  });

  it('records refuse a sid, tenant, binding, principal or required role outside the grammar, naming the field', () => {
    for (const [name, bad] of [...HOSTILE_SIDS, ['empty', '']] as const) {
      assert.throws(
        () => parseService(bad, {}, 'services.x'),
        RecordError,
        `service sid with ${name}`,
      );
      assert.throws(
        () => parseService('orders', { tenant: bad }, 'services.orders'),
        /services\.orders\.tenant/,
        `service tenant with ${name}`,
      );
      assert.throws(() => parseTenant(bad, {}, 'tenants.x'), RecordError, `tenant with ${name}`);
      assert.throws(
        () => parseIssuer({ issuer: 'https://idp.example', tenant: bad }, 'issuers[0]', false),
        /issuers\[0\]\.tenant/,
        `issuer tenant with ${name}`,
      );
    }
    for (const role of ['admin\u0000', 'admin\u007f', 'admin\u0085', 'ad min', 'é']) {
      assert.throws(
        () => parseService('orders', { required_roles: [role] }, 'services.orders'),
        /services\.orders\.required_roles\[0\]/,
        JSON.stringify(role),
      );
    }
    assert.throws(
      () =>
        parseRegistryDocument(
          'principals:\n  "spiffe://cluster.local/ns/shop/sa/x": "partner-x,gateway"\n',
          false,
        ),
      /principals\.spiffe:\/\/cluster\.local\/ns\/shop\/sa\/x/,
    );
    assert.throws(
      () => parseRegistryDocument('principals:\n  "spiffe://x": "gateway\\u0085"\n', false),
      RecordError,
    );
    assert.throws(() => parseRegistryDocument('services:\n  "a,b": {}\n', false), /services\.a,b/);
  });

  it('MATRYOSHKA_SERVICE_ID outside the grammar stops the service with one line naming it', () => {
    for (const [name, bad] of HOSTILE_SIDS.filter(([, s]) => s.trim() === s)) {
      assert.throws(
        () => loadConfig({ MATRYOSHKA_SERVICE_ID: bad }),
        (e: unknown) =>
          e instanceof ConfigError &&
          /^MATRYOSHKA_SERVICE_ID: /.test(e.message) &&
          !e.message.includes('\n'),
        name,
      );
    }
    assert.equal(
      loadConfig({ MATRYOSHKA_SERVICE_ID: 'spiffe://cluster.local/ns/shop/sa/orders' }).serviceId,
      'spiffe://cluster.local/ns/shop/sa/orders',
    );
  });

  describe('Redis', () => {
    let redis: RedisServer;
    let client: Redis;
    before(async () => {
      redis = await RedisServer.start();
      client = redis.client();
    });
    after(async () => {
      client.disconnect();
      await redis.dispose();
    });

    it('a principal mapping written to Redis by hand is skipped and reported; the store and the CLI refuse to write one', async () => {
      const layout = new RedisLayout();
      const store = new RegistryStore(client, layout, true);
      await store.mapPrincipal('spiffe://cluster.local/ns/shop/sa/orders', 'orders');
      await client.hset(
        layout.principals,
        'spiffe://cluster.local/ns/shop/sa/forged',
        'partner-x,gateway',
      );
      await client.hset(
        layout.principals,
        'spiffe://cluster.local/ns/shop/sa/nel',
        'gateway\u0085',
      );
      const snapshot = await store.snapshot();
      assert.deepEqual(snapshot.contents.principals, {
        'spiffe://cluster.local/ns/shop/sa/orders': 'orders',
      });
      assert.equal(snapshot.invalid.length, 2);
      await assert.rejects(store.mapPrincipal('spiffe://x', 'a,b'), RecordError);
      const cli = await runProgramWithEnv(
        [
          'principal',
          'map',
          '--principal',
          'spiffe://cluster.local/ns/shop/sa/cart',
          '--sid',
          'cart,gateway',
        ],
        { REDIS_URL: redis.url },
      );
      assert.equal(cli.code, 2, cli.stderr);
      assert.equal(cli.stderr.trim().split('\n').length, 1);
      assert.equal(
        await client.hget(layout.principals, 'spiffe://cluster.local/ns/shop/sa/cart'),
        null,
        'nothing written',
      );
    });
  });

  describe('the last line at respond', () => {
    const record = (overrides: Partial<DecisionRecord>): DecisionRecord => ({
      requestId: 'req-1',
      allowed: true,
      reason: undefined,
      detail: undefined,
      shadow: false,
      shadowScope: undefined,
      operation: undefined,
      tenant: 'acme',
      user: 'alice',
      roles: ['reader'],
      destination: 'B',
      chain: undefined,
      minted: {
        token: 'eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2ln',
        sids: ['gateway', 'B'],
        jti: 'j',
        level: {
          iss: 'i',
          alg: 'ES256',
          kid: undefined,
          exp: undefined,
          nbf: undefined,
          iat: undefined,
          own: true,
          issuer: undefined,
          tenant: 'acme',
          stack: undefined,
          depth: 2,
          subject: 'alice',
          roles: [],
        },
        levels: [],
        inside: [],
        form: 'nested',
      },
      recursionAudited: false,
      ...overrides,
    });
    const settings = { forwardHeader: 'authorization', debugReasons: false };

    it('an allow carrying an unsafe value becomes a 503 that emits none of it', () => {
      const base = record({});
      assert.ok(buildCheckResponse(base, settings).ok_response, 'the control is allowed');
      const cases: Array<[string, Partial<DecisionRecord>]> = [
        ['user CR LF', { user: 'alice\r\nx-tenant-id: globex' }],
        ['user NEL', { user: 'alice\u0085' }],
        ['tenant NUL', { tenant: 'acme\u0000' }],
        ['role DEL', { roles: ['reader\u007f'] }],
        ['role comma', { roles: ['reader,admin'] }],
        [
          'sid comma',
          {
            minted: {
              ...(base.minted as NonNullable<DecisionRecord['minted']>),
              sids: ['partner-x,gateway', 'B'],
            },
          },
        ],
        [
          'token CR LF',
          {
            minted: {
              ...(base.minted as NonNullable<DecisionRecord['minted']>),
              token: 'a.b.c\r\nx: y',
            },
          },
        ],
        ['request id LF', { requestId: 'r\nx' }],
      ];
      for (const [name, overrides] of cases) {
        const response = buildCheckResponse(record(overrides), settings);
        assert.equal(response.ok_response, undefined, name);
        assert.equal(response.denied_response?.status.code, 503, name);
        assert.equal(response.status.code, 14, name);
        for (const { header } of response.denied_response?.headers ?? [])
          assert.match(header.value, SAFE_VALUE, `${name}: ${header.key}`);
        assert.equal(
          response.dynamic_metadata.fields['tenant_id'],
          undefined,
          `${name}: no tenant in the metadata`,
        );
      }
    });
  });
});
