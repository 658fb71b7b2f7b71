/**
 * A principal mapping in Redis that exists but cannot be read (a value this version does not take
 * for a sid — a newer writer's richer value, a typo'd write) refuses the requests it governs
 * (`record_unreadable`, 503). Left out, the destination principal was unmapped, and the request was
 * decided as MATRYOSHKA_SERVICE_ID's — another service's rules: a reader reached `admin` under the
 * permissive default's. Real redis-server and service (gRPC, Envoy's destination.principal).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Redis } from 'ioredis';
import { LocalIssuer } from '../../src/demo/local-issuer.js';
import { RedisLayout } from '../../src/redis/layout.js';
import { RegistryStore } from '../../src/registry/registry-store.js';
import { type Harness, startHarness } from '../helpers/harness.js';
import { eventually } from '../helpers/processes.js';
import { issuer, service } from '../helpers/records.js';
import { RedisServer } from '../helpers/redis-server.js';
import { writeAsAnotherWriter } from './another-writer.js';

const ADMIN_WORKLOAD = 'spiffe://acme.example/ns/shop/sa/admin';

/** A principal mapping written as another writer would: the hash field with its log entry. */
const writeRawPrincipal = (redis: Redis, layout: RedisLayout, principal: string, stored: string) =>
  writeAsAnotherWriter(redis, layout, JSON.stringify([['principal', principal, stored]]), (multi) =>
    multi.hset(layout.principals, principal, stored),
  );

describe('an unreadable principal mapping in Redis refuses its requests', () => {
  let redis: RedisServer;
  let acme: LocalIssuer;
  let h: Harness;
  let raw: Redis;
  let writer: RegistryStore;
  const layout = new RedisLayout('matryoshka');
  const env = () => ({
    REDIS_URL: redis.url,
    MATRYOSHKA_REGISTRY_POLL_MS: '200',
    MATRYOSHKA_SERVICE_ID: 'public',
    LOG_LEVEL: 'info',
  });

  before(async () => {
    redis = await RedisServer.start();
    acme = await LocalIssuer.start();
    raw = redis.client();
    writer = new RegistryStore(redis.client(), layout, true);
    await writer.putIssuer(issuer({ issuer: acme.issuer, tenant: 'acme', jwks_uri: acme.jwksUri }));
    await writer.putService(service('admin', { tenant: 'acme', required_roles: ['admin'] }));
    await writer.putService(service('public', { tenant: 'acme' }));
    await writer.mapPrincipal(ADMIN_WORKLOAD, 'admin');
    h = await startHarness({ env: env() });
    await eventually(async () => h.service.registry.ready(), 5000, 'replica ready');
  });
  after(async () => {
    await h?.stop();
    raw?.disconnect();
    writer?.redis.disconnect();
    await acme?.stop();
    await redis?.dispose();
  });

  const reader = () => acme.mint({ sub: 'rita', roles: ['reader'] });
  async function decide(on: Harness) {
    const result = await on.client.check({
      token: await reader(),
      destinationPrincipal: ADMIN_WORKLOAD,
    });
    const line = on.logs.findLast((l) => l['msg'] === 'check');
    return { status: result.httpStatus, reason: line?.['reason'], destination: line?.['sid'] };
  }

  it('a running replica refuses (record_unreadable), never decides as MATRYOSHKA_SERVICE_ID, and applies the mapping once readable again', async () => {
    assert.equal((await decide(h)).reason, 'role_missing', 'the readable mapping applies');
    await writeRawPrincipal(raw, layout, ADMIN_WORKLOAD, '{"sid":"admin","tenant":"acme"}');
    await eventually(
      async () => (await decide(h)).reason !== 'role_missing',
      5000,
      'the unreadable mapping reaches the replica',
    );
    const refused = await decide(h);
    assert.equal(refused.status, 503, JSON.stringify(refused));
    assert.equal(refused.reason, 'record_unreadable');
    const line = h.logs.findLast(
      (l) =>
        l['msg'] === 'registry record in Redis unreadable; the requests it governs are refused',
    );
    assert.equal(line?.['record'], `principal ${ADMIN_WORKLOAD}`);

    await writer.mapPrincipal(ADMIN_WORKLOAD, 'admin');
    await eventually(
      async () => (await decide(h)).reason === 'role_missing',
      5000,
      'the repaired mapping applies',
    );
  });

  it('a replica that starts on an unreadable mapping (full load) refuses too', async () => {
    await writeRawPrincipal(raw, layout, ADMIN_WORKLOAD, 'not a sid');
    const fresh = await startHarness({ env: env() });
    try {
      await eventually(async () => fresh.service.registry.ready(), 5000, 'fresh replica ready');
      const refused = await decide(fresh);
      assert.equal(refused.status, 503, JSON.stringify(refused));
      assert.equal(refused.reason, 'record_unreadable');
    } finally {
      await fresh.stop();
    }
  });
});
