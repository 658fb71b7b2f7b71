import assert from 'node:assert/strict';
import { runProgramWithEnv } from '../helpers/program.js';
import { after, before, describe, it } from 'node:test';
import { EnvoyLikeClient } from '../../src/demo/envoy-client.js';
import { LocalIssuer } from '../../src/demo/local-issuer.js';
import { type Served, eventually, spawnServe } from '../helpers/processes.js';
import { issuerAddArgs } from '../helpers/records.js';
import { RedisServer } from '../helpers/redis-server.js';
import * as grpc from '@grpc/grpc-js';
import { loadProtos } from '../../src/server/protos.js';

/** A grpc-js unary method called with (request, callback). */
type UnaryMethod = (
  this: grpc.Client,
  request: object,
  callback: (error: grpc.ServiceError | null, response: { status: string }) => void,
) => void;

function grpcHealth(port: number, service: string): Promise<string> {
  const { HealthClient } = loadProtos();
  const client = new HealthClient(
    `127.0.0.1:${port}`,
    grpc.credentials.createInsecure(),
  ) as grpc.Client & Record<string, UnaryMethod>;
  return new Promise((resolve, reject) =>
    (client['Check'] as UnaryMethod).call(
      client,
      { service },
      (error: Error | null, response: { status: string }) => {
        client.close();
        if (error) reject(error);
        else resolve(response.status);
      },
    ),
  );
}

/**
 * A fleet of two replica processes sharing one Redis, managed through the CLI — the way
 * operators run it. Everything is real: redis-server, the service processes, gRPC, HTTP JWKS.
 */
describe('a fleet of replicas on one Redis', () => {
  let redis: RedisServer;
  let idp: LocalIssuer;
  let replicas: Served[] = [];
  let clients: EnvoyLikeClient[] = [];
  const env = (): Record<string, string> => ({
    REDIS_URL: redis.url,
    MATRYOSHKA_ALLOW_INSECURE_ISSUERS: 'true',
  });
  const cli = (...args: string[]) => runProgramWithEnv(args, env());

  before(async () => {
    redis = await RedisServer.start();
    idp = await LocalIssuer.start();
    const serveEnv = { ...env(), MATRYOSHKA_JWKS_COOLDOWN_MS: '0', LOG_LEVEL: 'info' };
    replicas = await Promise.all([spawnServe(serveEnv), spawnServe(serveEnv)]);
    clients = replicas.map((r) => new EnvoyLikeClient(`127.0.0.1:${r.grpcPort}`));
    await eventually(
      async () =>
        (
          await Promise.all(
            replicas.map(
              async (r) => (await fetch(`http://127.0.0.1:${r.httpPort}/readyz`)).status === 200,
            ),
          )
        ).every(Boolean),
      5000,
      'replicas ready',
    );
  });
  after(async () => {
    for (const client of clients) client.close();
    await Promise.all(replicas.map((r) => r.stop()));
    await idp.stop();
    await redis.dispose();
  });

  const jwksFetches = (r: Served): number =>
    r.lines.filter((l) => l['msg'] === 'jwks fetch' && l['outcome'] === 'ok').length;

  it('honours an issuer added through the CLI on every replica, shares its keys, and drops it when removed', async () => {
    const token = await idp.mint({ sub: 'alice' });
    for (const client of clients)
      assert.equal((await client.check({ token, sid: 'A' })).httpStatus, 401, 'not registered yet');

    const added = await cli(...issuerAddArgs(idp, 'acme'));
    assert.equal(added.code, 0, added.stderr);
    for (const client of clients) {
      // How fast (within a second, docs/redis.md) is the bench's figure (BENCH_SCENARIOS=registry);
      // that it comes by the change notice, not the poll, is test/registry/redis-modes.test.ts's.
      await eventually(
        async () => (await client.check({ token, sid: 'A' })).allowed,
        10_000,
        'issuer reaches the replica',
      );
    }
    // 200 checks spread over both replicas: the IdP's JWKS was fetched once for the whole fleet.
    for (let i = 0; i < 200; i += 20) {
      const batch = await Promise.all(
        Array.from({ length: 20 }, (_, j) => clients[(i + j) % 2]!.check({ token, sid: 'A' })),
      );
      assert.ok(batch.every((r) => r.allowed));
    }
    assert.equal(idp.hits.jwks, 1, 'one JWKS fetch for the fleet');
    assert.equal(jwksFetches(replicas[0]!) + jwksFetches(replicas[1]!), 1);

    const listed = await cli('issuer', 'list', '--json');
    assert.equal(listed.code, 0, listed.stderr);
    assert.deepEqual(JSON.parse(listed.stdout), [
      { issuer: idp.issuer, tenant: 'acme', jwks_uri: idp.jwksUri, algorithms: ['ES256'] },
    ]);

    const removed = await cli('issuer', 'remove', '--issuer', idp.issuer);
    assert.equal(removed.code, 0, removed.stderr);
    for (const client of clients) {
      await eventually(
        async () => (await client.check({ token, sid: 'A' })).httpStatus === 401,
        10_000,
        'removal reaches the replica',
      );
    }
    assert.equal((await cli(...issuerAddArgs(idp, 'acme'))).code, 0);
    for (const client of clients)
      await eventually(
        async () => (await client.check({ token, sid: 'A' })).allowed,
        10_000,
        're-added',
      );
  });

  it('accepts on one replica a token minted by the other', async () => {
    const origin = await idp.mint({ sub: 'alice' });
    const first = await clients[0]!.check({ token: origin, sid: 'A' });
    assert.equal(first.allowed, true);
    const second = await clients[1]!.check({ token: first.forwardedToken as string, sid: 'B' });
    assert.equal(second.allowed, true, 'replica 2 trusts the key replica 1 published');
    assert.equal(second.headers['x-auth-chain'], 'A,B');
    const back = await clients[0]!.check({ token: second.forwardedToken as string, sid: 'C' });
    assert.equal(back.allowed, true);
    const jwks = (await (
      await fetch(`http://127.0.0.1:${replicas[0]!.httpPort}/.well-known/jwks.json`)
    ).json()) as { keys: Array<{ use: string }> };
    assert.ok(
      jwks.keys.filter((k) => k.use === 'sig').length >= 2,
      "each replica's JWKS serves the fleet's published keys",
    );
  });

  it('makes no Redis round trip per check once warm', async () => {
    const admin = redis.client();
    try {
      const commandsSoFar = async (): Promise<number> =>
        Number(/total_commands_processed:(\d+)/.exec(await admin.info('stats'))?.[1]);
      assert.equal(
        (await clients[0]!.check({ token: await idp.mint({ sub: 'warm' }), sid: 'A' })).allowed,
        true,
      );
      const tokens = await Promise.all(
        Array.from({ length: 200 }, (_, i) => idp.mint({ sub: `user-${i}` })),
      );
      const before = await commandsSoFar();
      for (const token of tokens)
        assert.equal((await clients[0]!.check({ token, sid: 'A' })).allowed, true);
      // Minus our own second INFO; what is left is the replicas' background work (version polls).
      const used = (await commandsSoFar()) - before - 1;
      assert.ok(used < 20, `${used} Redis commands during 200 checks with distinct tokens`);
    } finally {
      admin.disconnect();
    }
  });

  it('picks up a key rotated at the IdP with one refetch, even for 50 concurrent checks across replicas', async () => {
    const before = idp.hits.jwks;
    await idp.rotate();
    const token = await idp.mint({ sub: 'alice' });
    const results = await Promise.all(
      Array.from({ length: 50 }, (_, i) => clients[i % 2]!.check({ token, sid: 'A' })),
    );
    assert.ok(
      results.every((r) => r.allowed),
      'the new kid is accepted',
    );
    assert.equal(idp.hits.jwks - before, 1, 'one fetch for 50 checks on two replicas');
  });

  it('keeps serving known keys while the IdP is down', async () => {
    const token = await idp.mint({ sub: 'alice' });
    await idp.stop();
    try {
      for (const client of clients)
        assert.equal((await client.check({ token, sid: 'A' })).allowed, true);
      const unknownKid = await idp.mint({ sub: 'alice' }, { kid: 'rotated-while-down' });
      assert.equal(
        (await clients[0]!.check({ token: unknownKid, sid: 'A' })).httpStatus,
        401,
        'an unknown kid cannot be fetched: refused, the known ones keep working',
      );
      assert.equal((await clients[1]!.check({ token, sid: 'A' })).allowed, true);
    } finally {
      await idp.resume();
    }
  });

  it('rides out a Redis outage: known issuers keep working, unknown ones get 503, changes flow again after restart', async () => {
    const known = await idp.mint({ sub: 'alice' });
    const stranger = await LocalIssuer.start();
    try {
      const unseen = await stranger.mint({ sub: 'eve' });
      await redis.stop();
      for (const client of clients) {
        assert.equal(
          (await client.check({ token: known, sid: 'A' })).allowed,
          true,
          'served from the in-process registry and keys',
        );
        const result = await client.check({ token: unseen, sid: 'A' });
        assert.equal(
          result.httpStatus,
          503,
          'an issuer we never saw may have been added meanwhile: unavailable, not 401',
        );
        assert.equal(result.grpcCode, 14);
      }
      for (const r of replicas)
        assert.equal(
          (await fetch(`http://127.0.0.1:${r.httpPort}/readyz`)).status,
          200,
          'still ready on a warm cache',
        );

      await redis.start();
      const added = await eventually(
        async () =>
          (
            await runProgramWithEnv(
              [
                'issuer',
                'add',
                '--tenant',
                'acme',
                '--issuer',
                stranger.issuer,
                '--jwks-uri',
                stranger.jwksUri,
              ],
              env(),
            )
          ).code === 0,
        5000,
        'CLI reaches Redis',
      );
      assert.ok(added >= 0);
      for (const client of clients) {
        await eventually(
          async () => (await client.check({ token: unseen, sid: 'A' })).allowed,
          5000,
          'a change after the restart reaches the replica',
        );
      }
      for (const client of clients)
        assert.equal((await client.check({ token: known, sid: 'A' })).allowed, true);
    } finally {
      await stranger.stop();
    }
  });
});

describe('startup with Redis', () => {
  it('never waits for Redis or an IdP, and turns ready once Redis answered', async () => {
    const redis = await RedisServer.start();
    await redis.stop();
    const replica = await spawnServe({ REDIS_URL: redis.url, MATRYOSHKA_REGISTRY_POLL_MS: '200' });
    const client = new EnvoyLikeClient(`127.0.0.1:${replica.grpcPort}`);
    const idp = await LocalIssuer.start();
    try {
      assert.equal(
        (await fetch(`http://127.0.0.1:${replica.httpPort}/readyz`)).status,
        503,
        'not ready before Redis answered',
      );
      assert.equal(
        (await fetch(`http://127.0.0.1:${replica.httpPort}/healthz`)).status,
        200,
        'but alive',
      );
      assert.equal(
        await grpcHealth(replica.grpcPort, 'envoy.service.auth.v3.Authorization'),
        'NOT_SERVING',
        'gRPC readiness agrees',
      );
      assert.equal(await grpcHealth(replica.grpcPort, ''), 'SERVING', 'gRPC liveness agrees');
      const result = await client.check({ token: await idp.mint({ sub: 'alice' }), sid: 'A' });
      assert.equal(
        result.httpStatus,
        503,
        'no registry yet: unavailable, never allow and never 401',
      );
      await redis.start();
      await eventually(
        async () => (await fetch(`http://127.0.0.1:${replica.httpPort}/readyz`)).status === 200,
        5000,
        'ready after Redis came up',
      );
      await eventually(
        async () =>
          (await grpcHealth(replica.grpcPort, 'envoy.service.auth.v3.Authorization')) === 'SERVING',
        2000,
        'gRPC readiness follows',
      );
      assert.equal(
        (await client.check({ token: await idp.mint({ sub: 'alice' }), sid: 'A' })).httpStatus,
        401,
        'now an unknown issuer is simply untrusted',
      );
      assert.equal(
        idp.hits.jwks + idp.hits.discovery,
        0,
        'no IdP was asked for an unregistered issuer',
      );
    } finally {
      client.close();
      await replica.stop();
      await idp.stop();
      await redis.dispose();
    }
  });
});
