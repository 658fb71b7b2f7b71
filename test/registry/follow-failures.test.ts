/**
 * A replica that cannot follow the registry stops vouching for it. An undecodable change-log entry
 * (ops not JSON, an unknown record kind, the wrong shape) makes it load in full from the records,
 * so later changes — an `issuer remove` — still reach it; a replica that reaches Redis but cannot
 * apply what it reads goes not-ready and answers 503; a Redis outage keeps the last state serving.
 * Real redis-server, a real `serve` process, the CLI, a real JWKS endpoint.
 */
import assert from 'node:assert/strict';
import { runProgramWithEnv } from '../helpers/program.js';
import { after, before, describe, it } from 'node:test';
import type { Redis } from 'ioredis';
import { EnvoyLikeClient } from '../../src/demo/envoy-client.js';
import { LocalIssuer } from '../../src/demo/local-issuer.js';
import { RedisLayout } from '../../src/redis/layout.js';
import { type Served, eventually, spawnServe } from '../helpers/processes.js';
import { issuerAddArgs } from '../helpers/records.js';
import { RedisServer } from '../helpers/redis-server.js';
import { writeAsAnotherWriter } from './another-writer.js';

/** A generous bound for "within a second" on a loaded machine; the time taken is asserted apart. */
const BOUND_MS = 10_000;

const BAD_ENTRIES = {
  'ops that are not JSON': '[["issuer","https://x.example",nul',
  'an unknown record kind': JSON.stringify([['route', '/orders', '{"sid":"orders"}']]),
  'the wrong shape': JSON.stringify([['tenant', 'acme']]),
} as const;

describe('a replica that cannot follow the registry', () => {
  let redis: RedisServer;
  let idp: LocalIssuer;
  let served: Served;
  let client: EnvoyLikeClient;
  let raw: Redis;
  const layout = new RedisLayout('matryoshka');
  const env = (): Record<string, string> => ({
    REDIS_URL: redis.url,
    MATRYOSHKA_ALLOW_INSECURE_ISSUERS: 'true',
  });
  const cli = (...args: string[]) => runProgramWithEnv(args, env());

  before(async () => {
    redis = await RedisServer.start();
    idp = await LocalIssuer.start();
    raw = redis.client();
    served = await spawnServe({
      ...env(),
      MATRYOSHKA_REGISTRY_POLL_MS: '500',
      MATRYOSHKA_JWKS_COOLDOWN_MS: '0',
      LOG_LEVEL: 'info',
    });
    client = new EnvoyLikeClient(`127.0.0.1:${served.grpcPort}`);
    await eventually(async () => (await readyz()) === 200, 5000, 'replica ready');
  });
  after(async () => {
    client?.close();
    await served?.stop();
    raw?.disconnect();
    await idp?.stop();
    await redis?.dispose();
  });

  const readyz = async (): Promise<number> =>
    (await fetch(`http://127.0.0.1:${served.httpPort}/readyz`)).status;
  const status = async (): Promise<number> =>
    (await client.check({ token: await idp.mint({ sub: 'alice' }), sid: 'A' })).httpStatus;
  const logged = (msg: string) => served.lines.filter((l) => l['msg'] === msg);

  for (const [what, ops] of Object.entries(BAD_ENTRIES)) {
    it(`after a log entry with ${what}, an issuer removed with the CLI is refused within a second`, async (t) => {
      const added = await cli(...issuerAddArgs(idp, 'acme'));
      assert.equal(added.code, 0, added.stderr);
      await eventually(async () => (await status()) === 200, BOUND_MS, 'the issuer is honoured');
      const reloadsBefore = logged('registry loaded in full').length;

      await writeAsAnotherWriter(raw, layout, ops);
      const removed = await cli('issuer', 'remove', '--issuer', idp.issuer);
      assert.equal(removed.code, 0, removed.stderr);
      const took = await eventually(
        async () => (await status()) === 401,
        BOUND_MS,
        'the removed issuer is refused',
      );
      assert.ok(took < BOUND_MS);
      t.diagnostic(`the removed issuer was refused ${took} ms after \`issuer remove\` returned`);
      assert.ok(
        logged('registry log entry undecodable; loading the registry in full').length > 0,
        'the undecodable entry is logged',
      );
      assert.ok(logged('registry loaded in full').length > reloadsBefore, 'a full load followed');
      assert.equal(await readyz(), 200, 'a replica that followed stays ready');
    });
  }

  it('reaches Redis but cannot apply what it reads: not ready, Checks 503, a metric and a log line; ready again once it can', async () => {
    const added = await cli(...issuerAddArgs(idp, 'acme'));
    assert.equal(added.code, 0, added.stderr);
    await eventually(async () => (await status()) === 200, BOUND_MS, 'the issuer is honoured');

    // The tenant index is no set (WRONGTYPE for the full load), and an entry only a full load gets past.
    await raw.del(layout.tenants);
    await raw.set(layout.tenants, 'not a set');
    await writeAsAnotherWriter(raw, layout, BAD_ENTRIES['ops that are not JSON']);
    await eventually(async () => (await readyz()) === 503, BOUND_MS, 'the replica goes not-ready');
    assert.equal(await status(), 503, 'what it cannot confirm is answered 503');
    const line = logged(
      'registry cannot be followed although Redis answers; not ready, Checks answered 503',
    ).at(-1);
    assert.match(String(line?.['err']), /WRONGTYPE/);
    const metrics = await (await fetch(`http://127.0.0.1:${served.httpPort}/metrics`)).text();
    assert.match(metrics, /authz_registry_following\{[^}]*\} 0/);

    await raw.del(layout.tenants);
    await eventually(async () => (await readyz()) === 200, BOUND_MS, 'ready again');
    assert.equal(await status(), 200);
    assert.ok(logged('registry followed again; ready').length > 0);
  });

  it('with Redis stopped, keeps serving the last state and stays ready', async () => {
    assert.equal(await status(), 200);
    const notFollowing = logged(
      'registry cannot be followed although Redis answers; not ready, Checks answered 503',
    ).length;
    await redis.stop();
    try {
      // Well past the staleness window (three polls): known issuers are still served, ready stays up.
      for (let i = 0; i < 8; i++) {
        assert.equal(await status(), 200, 'a known issuer is still served');
        assert.equal(await readyz(), 200, 'an outage does not take the replica out');
        await new Promise((r) => setTimeout(r, 250));
      }
      assert.equal(
        logged('registry cannot be followed although Redis answers; not ready, Checks answered 503')
          .length,
        notFollowing,
        'the outage is not taken for a failure to follow',
      );
    } finally {
      await redis.start();
    }
  });
});
