import assert from 'node:assert/strict';
import { runProgramWithEnv } from '../helpers/program.js';
import { describe, it } from 'node:test';
import { Cluster } from 'ioredis';
import { EnvoyLikeClient } from '../../src/demo/envoy-client.js';
import { LocalIssuer } from '../../src/demo/local-issuer.js';
import { type Harness, startHarness } from '../helpers/harness.js';
import { type Served, eventually, runCliAsync, spawnServe } from '../helpers/processes.js';
import { issuerAddArgs } from '../helpers/records.js';
import {
  RedisClusterServers,
  RedisSentinelServers,
  RedisTlsServer,
} from '../helpers/redis-topologies.js';
import { perSuite } from '../helpers/suite-parts.js';

/**
 * The registry on every Redis topology the product names besides a plain standalone server:
 * Cluster (`redis+cluster://`), Sentinel (`redis+sentinel://`) and TLS (`rediss://`). Each runs
 * against real redis-server processes this file starts on free loopback ports, with the same
 * operator story: the CLI registers an issuer, a running service honours it promptly
 * (through the change notice: the version poll is set far beyond the window), `issuer list` shows
 * it, and a removal reaches the service just as fast.
 */

/**
 * Far beyond the window: a change must arrive by pub/sub, not by the safety-net poll. The window
 * leaves room for a loaded machine; how fast a change lands is measured by the bench.
 */
const NO_POLL = { MATRYOSHKA_REGISTRY_POLL_MS: '600000' };
const WINDOW_MS = 10_000;

interface Running {
  readonly client: EnvoyLikeClient;
  readonly httpPort: number;
  stop(): Promise<void>;
}

async function inProcess(env: Record<string, string>): Promise<Running> {
  const harness: Harness = await startHarness({ env: { ...env, ...NO_POLL } });
  return { client: harness.client, httpPort: harness.service.httpPort, stop: () => harness.stop() };
}

async function spawned(env: Record<string, string>): Promise<Running> {
  const served: Served = await spawnServe({ ...env, ...NO_POLL, LOG_LEVEL: 'info' });
  const client = new EnvoyLikeClient(`127.0.0.1:${served.grpcPort}`);
  return {
    client,
    httpPort: served.httpPort,
    stop: async () => {
      client.close();
      await served.stop();
    },
  };
}

/**
 * The shared story. `env` is what both the CLI and the service get (REDIS_URL and friends);
 * `between` runs after the issuer is registered and honoured, for mode-specific assertions.
 */
async function registerHonourListRemove(
  env: Record<string, string>,
  start: (env: Record<string, string>) => Promise<Running>,
  between: (idp: LocalIssuer) => Promise<void> = async () => undefined,
): Promise<void> {
  const idp = await LocalIssuer.start();
  const fullEnv = { ...env, MATRYOSHKA_ALLOW_INSECURE_ISSUERS: 'true' };
  // NODE_EXTRA_CA_CERTS is read by node as it starts: only a CLI process of its own honours it.
  const cli = (...args: string[]) =>
    env['NODE_EXTRA_CA_CERTS'] === undefined
      ? runProgramWithEnv(args, fullEnv)
      : runCliAsync(args, { env: fullEnv });
  let service: Running | undefined;
  try {
    service = await start(fullEnv);
    const { client, httpPort } = service;
    await eventually(
      async () => (await fetch(`http://127.0.0.1:${httpPort}/readyz`)).status === 200,
      10_000,
      'service ready (registry loaded from Redis)',
    );

    const token = await idp.mint({ sub: 'alice' });
    const before = await client.check({ token, sid: 'A' });
    assert.equal(
      before.httpStatus,
      401,
      'not registered yet: untrusted (401), and not 503 — the registry is live',
    );

    const added = await cli(...issuerAddArgs(idp, 'acme'));
    assert.equal(added.code, 0, `issuer add: ${added.stderr}`);
    assert.match(added.stdout, /registered for tenant acme/);
    const took = await eventually(
      async () => (await client.check({ token, sid: 'A' })).allowed,
      WINDOW_MS,
      'added issuer reaches the service',
    );
    assert.ok(took < WINDOW_MS);
    const allowed = await client.check({ token, sid: 'A' });
    assert.equal(allowed.headers['x-tenant-id'], 'acme');
    assert.equal(allowed.headers['x-user-id'], 'alice');
    assert.ok(allowed.forwardedToken, 'a token was minted for the upstream');
    assert.ok(idp.hits.jwks >= 1, "the IdP's keys were fetched");

    const listed = await cli('issuer', 'list', '--json');
    assert.equal(listed.code, 0, `issuer list: ${listed.stderr}`);
    assert.deepEqual(JSON.parse(listed.stdout), [
      { issuer: idp.issuer, tenant: 'acme', jwks_uri: idp.jwksUri, algorithms: ['ES256'] },
    ]);

    await between(idp);

    const removed = await cli('issuer', 'remove', '--issuer', idp.issuer);
    assert.equal(removed.code, 0, `issuer remove: ${removed.stderr}`);
    await eventually(
      async () => (await client.check({ token, sid: 'A' })).httpStatus === 401,
      WINDOW_MS,
      'removal reaches the service',
    );
    const emptied = await cli('issuer', 'list', '--json');
    assert.equal(emptied.code, 0, emptied.stderr);
    assert.deepEqual(JSON.parse(emptied.stdout), []);
  } finally {
    await service?.stop();
    await idp.stop();
  }
}

describe('Redis Cluster (redis+cluster://, 3 masters)', () => {
  const cluster = perSuite(() => RedisClusterServers.start(3));

  it('the CLI writes, a service follows changes, and the whole registry lives in one hash slot', async () => {
    const own = new Cluster(cluster().ports.map((port) => ({ host: '127.0.0.1', port })));
    own.on('error', () => undefined);
    try {
      if (own.status !== 'ready') await new Promise((resolve) => own.once('ready', resolve));
      await registerHonourListRemove({ REDIS_URL: cluster().url }, inProcess, async (idp) => {
        // Every key, wherever it landed: ask each master for its own keys.
        const masters = own.nodes('master');
        assert.equal(masters.length, 3);
        const perNode = await Promise.all(masters.map((node) => node.keys('*')));
        const keys = perNode.flat().sort();
        for (const expected of [
          '{matryoshka}:version',
          '{matryoshka}:issuers',
          `{matryoshka}:issuer:${idp.issuer}`,
          '{matryoshka}:tenant:acme:issuers',
        ]) {
          assert.ok(keys.includes(expected), `${expected} written (have ${keys.join(', ')})`);
        }
        assert.ok(
          keys.every((k) => k.startsWith('{matryoshka}:')),
          `nothing outside the namespace: ${keys.join(', ')}`,
        );
        assert.equal(perNode.filter((k) => k.length > 0).length, 1, 'all keys on one master');
        const slots = await Promise.all(
          keys.map((k) => own.cluster('KEYSLOT', k) as Promise<number>),
        );
        const tagSlot = (await own.cluster('KEYSLOT', 'matryoshka')) as number;
        assert.deepEqual(
          new Set(slots),
          new Set([tagSlot]),
          'every key hashes to the slot of the tag {matryoshka}',
        );
        // The service's own shared state (JWKS cache, published signing keys) sits there too.
        assert.ok(
          keys.includes(`{matryoshka}:tenant:acme:jwks:${idp.issuer}`),
          'shared JWKS cache written',
        );
        assert.ok(keys.includes('{matryoshka}:signing-keys'), 'signing keys published');
      });
    } finally {
      own.disconnect();
    }
  });
});

describe('Redis Sentinel (redis+sentinel://, one master, one sentinel)', () => {
  const sentinel = perSuite(() => RedisSentinelServers.start());

  it('the CLI and the service find the master through the sentinel, and changes flow', async () => {
    const master = sentinel().master();
    try {
      await registerHonourListRemove({ REDIS_URL: sentinel().url }, inProcess, async (idp) => {
        // The writes landed on the master the sentinel names (not merely somewhere).
        assert.ok(await master.sismember('{matryoshka}:issuers', idp.issuer));
        assert.ok((await master.get(`{matryoshka}:issuer:${idp.issuer}`)) !== null);
      });
      assert.equal(await master.sismember('{matryoshka}:issuers', 'never'), 0);
    } finally {
      master.disconnect();
    }
  });

  it('a Sentinel URL without a master name is refused by the CLI', async () => {
    const result = await runProgramWithEnv(['issuer', 'list'], {
      REDIS_URL: `redis+sentinel://127.0.0.1:${sentinel().sentinelPort}`,
    });
    assert.notEqual(result.code, 0);
    assert.match(result.stderr, /master/);
  });
});

describe('Redis over TLS (rediss://, trusted through NODE_EXTRA_CA_CERTS)', () => {
  const server = perSuite(() => RedisTlsServer.start());

  it('the CLI and a spawned service reach a TLS-only Redis once Node trusts the CA', async () => {
    const client = server().client();
    try {
      await registerHonourListRemove(
        { REDIS_URL: server().url, NODE_EXTRA_CA_CERTS: server().caFile },
        spawned,
        async (idp) => {
          assert.ok(
            await client.sismember('{matryoshka}:issuers', idp.issuer),
            'the write landed on the TLS server',
          );
        },
      );
    } finally {
      client.disconnect();
    }
  });

  it('without the CA the CLI refuses the untrusted server certificate (exit ≠ 0, nothing written)', async () => {
    const result = await runProgramWithEnv(
      [
        'issuer',
        'add',
        '--tenant',
        'acme',
        '--issuer',
        'http://127.0.0.1:1',
        '--jwks-uri',
        'http://127.0.0.1:1/jwks',
      ],
      { REDIS_URL: server().url, MATRYOSHKA_ALLOW_INSECURE_ISSUERS: 'true' },
    );
    assert.notEqual(result.code, 0);
    assert.match(
      result.stderr,
      /cannot reach Redis|certificate|self[- ]signed|issuer certificate/i,
    );
    const client = server().client();
    try {
      assert.equal(await client.sismember('{matryoshka}:issuers', 'http://127.0.0.1:1'), 0);
    } finally {
      client.disconnect();
    }
  });
});
