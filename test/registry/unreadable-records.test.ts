/**
 * A tenant or service record that exists but cannot be read (a field this version does not know,
 * a wrong type, not JSON) refuses the requests it governs: `record_unreadable` (503), never the
 * permissive defaults of a name without a record. Real redis-server, real service (gRPC), real
 * JWKS; the file cases run the registry file through the service's own FileRegistry and Check.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Redis } from 'ioredis';
import { LocalIssuer } from '../../src/demo/local-issuer.js';
import { RedisLayout } from '../../src/redis/layout.js';
import { FileRegistry } from '../../src/registry/file-registry.js';
import { RegistryStore } from '../../src/registry/registry-store.js';
import { type Harness, startHarness } from '../helpers/harness.js';
import { inProcess } from '../helpers/in-process.js';
import { eventually } from '../helpers/processes.js';
import { issuer, service, tenant } from '../helpers/records.js';
import { RedisServer } from '../helpers/redis-server.js';
import { perSuite } from '../helpers/suite-parts.js';
import { writeAsAnotherWriter } from './another-writer.js';

/** The three ways a stored record cannot be read, each applied to a record that is readable first. */
const CORRUPTIONS = {
  'an unknown field': (valid: Record<string, unknown>) =>
    JSON.stringify({ ...valid, required_mfa: true }),
  'a wrong type': (valid: Record<string, unknown>) =>
    JSON.stringify({ ...valid, max_depth: 'deep' }),
  'invalid JSON': (valid: Record<string, unknown>) => JSON.stringify(valid).slice(0, -1),
} as const;

/** One record written as another writer would: the key and its index with the log entry. */
async function writeRaw(
  redis: Redis,
  layout: RedisLayout,
  kind: 'tenant' | 'service',
  name: string,
  stored: string,
): Promise<void> {
  const key = kind === 'tenant' ? layout.tenant(name) : layout.service(name);
  const index = kind === 'tenant' ? layout.tenants : layout.services;
  await writeAsAnotherWriter(redis, layout, JSON.stringify([[kind, name, stored]]), (multi) =>
    multi.set(key, stored).sadd(index, name),
  );
}

describe('unreadable registry records in Redis refuse the requests they govern', () => {
  let redis: RedisServer;
  let acme: LocalIssuer;
  let globex: LocalIssuer;
  let h: Harness;
  let raw: Redis;
  let writer: RegistryStore;
  const layout = new RedisLayout('matryoshka');
  const ADMIN = { tenant: 'acme', required_roles: ['admin'] };
  const ACME = { max_depth: 4 };

  before(async () => {
    redis = await RedisServer.start();
    acme = await LocalIssuer.start();
    globex = await LocalIssuer.start();
    raw = redis.client();
    writer = new RegistryStore(redis.client(), layout, true);
    await writer.putIssuer(issuer({ issuer: acme.issuer, tenant: 'acme', jwks_uri: acme.jwksUri }));
    await writer.putIssuer(
      issuer({ issuer: globex.issuer, tenant: 'globex', jwks_uri: globex.jwksUri }),
    );
    h = await startHarness({
      env: { REDIS_URL: redis.url, MATRYOSHKA_REGISTRY_POLL_MS: '200', LOG_LEVEL: 'info' },
    });
    await eventually(async () => h.service.registry.ready(), 5000, 'replica ready');
  });
  after(async () => {
    await h?.stop();
    raw?.disconnect();
    writer?.redis.disconnect();
    await acme?.stop();
    await globex?.stop();
    await redis?.dispose();
  });

  const reader = () => acme.mint({ sub: 'rita', roles: ['reader'] });
  const foreignAdmin = () => globex.mint({ sub: 'gus', roles: ['admin'] });
  const decide = async (token: string, sid: string) => {
    const result = await h.client.check({ token, sid });
    const line = h.logs.findLast((l) => l['msg'] === 'check');
    return { status: result.httpStatus, reason: line?.['reason'] };
  };

  for (const [what, corrupt] of Object.entries(CORRUPTIONS)) {
    it(`a service record with ${what} refuses its requests (record_unreadable), a reader and another tenant's admin alike`, async () => {
      await writer.putService(service('admin', ADMIN));
      await eventually(
        async () => (await decide(await reader(), 'admin')).reason === 'role_missing',
        5000,
        'the readable record applies',
      );
      assert.equal((await decide(await foreignAdmin(), 'admin')).reason, 'tenant_mismatch');

      await writeRaw(raw, layout, 'service', 'admin', corrupt(ADMIN));
      await eventually(
        async () => (await decide(await reader(), 'admin')).reason !== 'role_missing',
        5000,
        'the unreadable record reaches the replica',
      );
      assert.deepEqual(await decide(await reader(), 'admin'), {
        status: 503,
        reason: 'record_unreadable',
      });
      assert.deepEqual(await decide(await foreignAdmin(), 'admin'), {
        status: 503,
        reason: 'record_unreadable',
      });
      // Other services are decided as before.
      assert.equal((await decide(await reader(), 'orders')).status, 200);
      const line = h.logs.findLast(
        (l) =>
          l['msg'] === 'registry record in Redis unreadable; the requests it governs are refused',
      );
      assert.equal(line?.['record'], 'service admin');
      const metrics = await (await fetch(`http://127.0.0.1:${h.service.httpPort}/metrics`)).text();
      assert.match(
        metrics,
        /authz_registry_records_unreadable_total\{[^}]*kind="service"[^}]*\} [1-9]/,
      );
      assert.match(metrics, /authz_registry_unreadable_records_held\{[^}]*\} [1-9]/);
    });
  }

  for (const [what, corrupt] of Object.entries(CORRUPTIONS)) {
    it(`a tenant record with ${what} refuses every request of the tenant (record_unreadable)`, async () => {
      await writer.removeService('admin');
      await writer.putTenant(tenant('acme', ACME));
      await eventually(
        async () => (await decide(await reader(), 'orders')).status === 200,
        5000,
        'the readable tenant record applies',
      );
      await writeRaw(raw, layout, 'tenant', 'acme', corrupt(ACME));
      await eventually(
        async () => (await decide(await reader(), 'orders')).status !== 200,
        5000,
        'the unreadable tenant record reaches the replica',
      );
      assert.deepEqual(await decide(await reader(), 'orders'), {
        status: 503,
        reason: 'record_unreadable',
      });
      assert.equal((await decide(await foreignAdmin(), 'orders')).status, 200, 'globex unaffected');
      const line = h.logs.findLast(
        (l) =>
          l['msg'] === 'registry record in Redis unreadable; the requests it governs are refused',
      );
      assert.equal(line?.['record'], 'tenant acme');
      // Written readable again, it governs again.
      await writer.putTenant(tenant('acme', ACME));
      await eventually(
        async () => (await decide(await reader(), 'orders')).status === 200,
        5000,
        'the repaired record applies',
      );
    });
  }

  it('a replica that starts on an unreadable record (full load) refuses its requests too', async () => {
    await writeRaw(raw, layout, 'service', 'admin', CORRUPTIONS['an unknown field'](ADMIN));
    const fresh = await startHarness({
      env: { REDIS_URL: redis.url, MATRYOSHKA_REGISTRY_POLL_MS: '200', LOG_LEVEL: 'info' },
    });
    try {
      await eventually(async () => fresh.service.registry.ready(), 5000, 'fresh replica ready');
      const result = await fresh.client.check({ token: await reader(), sid: 'admin' });
      assert.equal(result.httpStatus, 503);
      assert.equal(
        fresh.logs.findLast((l) => l['msg'] === 'check')?.['reason'],
        'record_unreadable',
      );
    } finally {
      await fresh.stop();
    }
  });
});

/**
 * In the registry file a record that cannot be read makes the whole file unreadable: it is never
 * applied, and the last good registry (with the record's last readable rules) stays in force — a
 * record's restrictions never vanish into the defaults there either.
 */
describe('unreadable records in the registry file', () => {
  const idp = perSuite(() => LocalIssuer.start());

  const head = (): string =>
    `issuers:\n  - issuer: ${idp().issuer}\n    tenant: acme\n    jwks_uri: ${idp().jwksUri}\n`;
  const FILE_CORRUPTIONS = {
    'an unknown field':
      '  admin:\n    tenant: acme\n    required_roles: [admin]\n    required_mfa: true\n',
    'a wrong type':
      '  admin:\n    tenant: acme\n    required_roles: [admin]\n    max_depth: deep\n',
    'invalid JSON': '  admin: {"tenant": "acme", "required_roles": ["admin"]\n',
  } as const;

  for (const [what, admin] of Object.entries(FILE_CORRUPTIONS)) {
    it(`a service record with ${what} is refused with the file; its last readable rules keep governing`, async () => {
      const dir = mkdtempSync(join(tmpdir(), 'matryoshka-unreadable-'));
      const path = join(dir, 'registry.yaml');
      writeFileSync(
        path,
        `${head()}services:\n  admin:\n    tenant: acme\n    required_roles: [admin]\n`,
      );
      const problems: string[] = [];
      const file = new FileRegistry(path, {
        allowInsecureIssuers: true,
        pollMs: 600_000,
        settleMs: 10,
        onInvalid: (problem) => problems.push(problem),
      });
      const p = await inProcess({
        override: (base) => ({ registry: file, trust: { ...base.trust, registry: file } }),
      });
      const reader = await idp().mint({ sub: 'rita', roles: ['reader'] });
      assert.equal((await p.check({ token: reader, sid: 'admin' })).reason, 'role_missing');

      writeFileSync(path, `${head()}services:\n${admin}`);
      await eventually(
        async () => {
          file.reload('signal');
          return problems.length > 0;
        },
        3000,
        'the unreadable file is reported',
      );
      assert.match(problems[0] ?? '', /services\.admin|YAML/);
      const decision = await p.check({ token: reader, sid: 'admin' });
      assert.equal(decision.allowed, false);
      assert.equal(decision.reason, 'role_missing', 'the last readable rules, not the defaults');
      file.stop();
    });
  }
});
