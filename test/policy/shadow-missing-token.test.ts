/**
 * Dry-run before callers send tokens: `missing_token` is a policy reason, so shadow mode lets a
 * token-less request through, vouching for nothing (no identity header, client copies of every
 * owned header removed, nothing minted) and recording the would-be denial in the span, the audit
 * line and the metric. A token that is present but forged, expired, unregistered or unreadable is
 * never let through. Scoped dry-run applies by the destination: its service's and operation's mode,
 * a tenant's only when the route or the service record names that tenant.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { before, describe, it } from 'node:test';
import { LocalIssuer } from '../../src/demo/local-issuer.js';
import type { DecisionRecord } from '../../src/pipeline/decision.js';
import { type InProcess, inProcess } from '../helpers/in-process.js';
import { attribute } from '../helpers/otlp-receiver.js';
import { eventually } from '../helpers/processes.js';
import { service, tenant } from '../helpers/records.js';
import { suiteParts } from '../helpers/suite-parts.js';
import { tracedServe } from '../helpers/traced-serve.js';

const OWNED = ['x-tenant-id', 'x-user-id', 'x-user-roles', 'x-auth-depth', 'x-auth-chain'];
const SPOOFED: Record<string, string> = {
  'x-tenant-id': 'evil',
  'x-user-id': 'root',
  'x-user-roles': 'admin',
  'x-auth-depth': '0',
  'x-auth-chain': 'forged',
};

describe('MATRYOSHKA_MODE=shadow and a request without a token', () => {
  const app = tracedServe({ env: { MATRYOSHKA_MODE: 'shadow' } });
  const stranger = suiteParts(async (own) => ({ idp: own(await LocalIssuer.start()) }));

  it('passes it with no identity header, every client copy of an owned header removed, nothing minted, and the would-be denial in span, audit line and metric', async () => {
    const traceId = randomBytes(16).toString('hex');
    for (const [what, headers] of [
      ['no authorization header', {}],
      ['another scheme', { authorization: 'Basic YWxpY2U6c2VjcmV0' }],
    ] as const) {
      const requestId = `tokenless-${what.replace(/ /g, '-')}`;
      const result = await app.client.check({
        sid: 'A',
        headers: {
          ...SPOOFED,
          ...headers,
          'x-request-id': requestId,
          traceparent: `00-${traceId}-${randomBytes(8).toString('hex')}-01`,
        },
      });
      assert.equal(result.allowed, true, `${what}: shadow lets it through`);
      assert.equal(result.metadata['decision'], 'shadow_allow', what);
      assert.equal(result.metadata['reason'], 'missing_token', what);
      assert.deepEqual(
        Object.keys(result.headers),
        ['x-request-id'],
        `${what}: only the request id`,
      );
      for (const name of [...OWNED, 'authorization'])
        assert.ok(result.headersToRemove.includes(name), `${what}: ${name} removed`);
      assert.equal(result.forwardedToken, undefined, `${what}: nothing minted`);

      const line = await app.auditLine(requestId, 5000);
      assert.equal(line?.['reason'], 'missing_token', what);
      assert.equal(line?.['shadow'], true, what);
      assert.equal(line?.['shadow_scope'], 'global', what);
    }
    await eventually(
      async () =>
        app.receiver.spans.filter((s) => s.traceId === traceId && s.kind === 2).length === 2,
      10_000,
      'spans exported',
    );
    for (const span of app.receiver.spans.filter((s) => s.traceId === traceId && s.kind === 2)) {
      assert.equal(attribute(span, 'authz.decision'), 'shadow_allow');
      assert.equal(attribute(span, 'authz.reason'), 'missing_token');
      assert.equal(attribute(span, 'authz.shadow'), true);
    }
    const metrics = await (await fetch(`http://127.0.0.1:${app.served.httpPort}/metrics`)).text();
    assert.match(
      metrics,
      /authz_decisions_total\{decision="shadow_allow",reason="missing_token"[^}]*\} 2/,
    );
  });

  it('never lets a forged, expired, unregistered or malformed token through', async () => {
    const genuine = await app.idp.mint({ sub: 'alice' });
    const [header, , signature] = genuine.split('.');
    const forgedPayload = Buffer.from(
      JSON.stringify({ iss: app.idp.issuer, sub: 'root', exp: 2e9 }),
    ).toString('base64url');
    const cases: Array<[string, string, string]> = [
      ['forged', `${header}.${forgedPayload}.${signature}`, 'bad_signature'],
      [
        'expired',
        await app.idp.mint(
          { sub: 'alice' },
          { iat: Math.floor(Date.now() / 1000) - 7200, ttl: 60 },
        ),
        'expired',
      ],
      ['unregistered', await stranger.idp.mint({ sub: 'eve' }), 'untrusted_issuer'],
      ['malformed', 'not.a.token', 'malformed_token'],
    ];
    for (const [what, token, reason] of cases) {
      const result = await app.client.check({ token, sid: 'A', headers: SPOOFED });
      assert.equal(result.allowed, false, what);
      assert.equal(result.httpStatus, 401, what);
      assert.equal(result.metadata['decision'], 'deny', what);
      assert.equal(result.metadata['reason'], reason, what);
      assert.equal(result.raw.ok_response, undefined, `${what}: nothing goes upstream`);
    }
    // An empty Bearer value is a token that cannot be read, not a missing one.
    const empty = await app.client.check({ sid: 'A', headers: { authorization: 'Bearer ' } });
    assert.equal(empty.allowed, false);
    assert.equal(empty.metadata['reason'], 'malformed_token');
  });
});

describe('scoped dry-run and a request without a token', () => {
  let enforce: InProcess;
  const contents = {
    tenants: [tenant('rollout', { mode: 'shadow' }), tenant('strict')],
    services: [
      service('dry', { mode: 'shadow' }),
      service('live'),
      service('rollout-svc', { tenant: 'rollout' }),
      service('mixed', {
        mode: 'shadow',
        operations: [
          { name: 'strict', path: '/strict', mode: 'enforce' },
          { name: 'loose', path: '/loose' },
        ],
      }),
      service('partly', { operations: [{ name: 'open', path: '/open', mode: 'shadow' }] }),
    ],
  };
  before(async () => {
    enforce = await inProcess({ contents });
  });

  const passes = (record: DecisionRecord, scope: string, what: string): void => {
    assert.equal(record.allowed, true, `${what}: ${record.reason} ${record.detail}`);
    assert.equal(record.shadow, true, what);
    assert.equal(record.reason, 'missing_token', what);
    assert.equal(record.shadowScope, scope, what);
    assert.equal(record.minted, undefined, `${what}: nothing minted`);
    assert.equal(record.tenant, undefined, `${what}: no tenant vouched for`);
    assert.equal(record.user, undefined, what);
  };
  const denied = (record: DecisionRecord, what: string): void => {
    assert.equal(record.allowed, false, what);
    assert.equal(record.reason, 'missing_token', what);
    assert.equal(record.shadow, false, what);
  };

  it("follows the destination service's and operation's mode", async () => {
    passes(await enforce.check({ sid: 'dry' }), 'service', 'service in shadow');
    denied(await enforce.check({ sid: 'live' }), 'service without a mode');
    passes(
      await enforce.check({ sid: 'mixed', path: '/loose', method: 'GET' }),
      'service',
      'operation inheriting its shadow service',
    );
    denied(
      await enforce.check({ sid: 'mixed', path: '/strict', method: 'GET' }),
      'operation set to enforce inside a shadow service',
    );
    passes(
      await enforce.check({ sid: 'partly', path: '/open', method: 'GET' }),
      'operation',
      'operation in shadow inside an enforcing service',
    );
    denied(
      await enforce.check({ sid: 'partly', path: '/closed', method: 'GET' }),
      'other operation of that service',
    );
    denied(await enforce.check({}), 'no destination: no scope to read');
  });

  it('applies a tenant mode only when the route or the service record names the tenant', async () => {
    passes(
      await enforce.check({ sid: 'live', contextExtensions: { tenant: 'rollout' } }),
      'tenant',
      'route bound to a tenant in shadow',
    );
    passes(await enforce.check({ sid: 'rollout-svc' }), 'tenant', 'service bound to it');
    denied(
      await enforce.check({ sid: 'live', contextExtensions: { tenant: 'strict' } }),
      'route bound to an enforcing tenant',
    );
    denied(
      await enforce.check({ sid: 'rollout-svc', contextExtensions: { tenant: 'strict' } }),
      "the route's tenant is the one that applies",
    );
  });

  it('stays invalid_path when an operation-listing destination cannot read the path', async () => {
    const record = await enforce.check({ sid: 'mixed', path: '/loose/../strict', method: 'GET' });
    assert.equal(record.allowed, false);
    assert.equal(record.reason, 'invalid_path');
  });
});
