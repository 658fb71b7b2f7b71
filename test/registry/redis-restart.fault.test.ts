/** Fault: Redis killed and restarted under a steady load of checks (see test/helpers/fault-load.ts). */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { EnvoyLikeClient } from '../../src/demo/envoy-client.js';
import { LocalIssuer } from '../../src/demo/local-issuer.js';
import { type Served, eventually, spawnServe } from '../helpers/processes.js';
import { issuerAddArgs } from '../helpers/records.js';
import { RedisServer } from '../helpers/redis-server.js';
import {
  sleep,
  percentile,
  type Job,
  loadLoop,
  tally,
  tamperings,
  cliAsync,
} from '../helpers/fault-load.js';

describe('fault: Redis killed and restarted under a steady load of checks', () => {
  let redis: RedisServer;
  let idp: LocalIssuer;
  let stranger: LocalIssuer;
  let newcomer: LocalIssuer;
  let served: Served | undefined;
  let client: EnvoyLikeClient | undefined;
  const env = (): Record<string, string> => ({
    REDIS_URL: redis.url,
    MATRYOSHKA_ALLOW_INSECURE_ISSUERS: 'true',
  });

  before(async () => {
    redis = await RedisServer.start();
    [idp, stranger, newcomer] = await Promise.all([
      LocalIssuer.start(),
      LocalIssuer.start(),
      LocalIssuer.start(),
    ]);
    served = await spawnServe({ ...env(), LOG_LEVEL: 'info', MATRYOSHKA_REGISTRY_POLL_MS: '200' });
    client = new EnvoyLikeClient(`127.0.0.1:${served.grpcPort}`);
    const httpPort = served.httpPort;
    await eventually(
      async () => (await fetch(`http://127.0.0.1:${httpPort}/readyz`)).status === 200,
      5000,
      'replica ready',
    );
  });
  after(async () => {
    client?.close();
    await served?.stop();
    for (const i of [idp, stranger, newcomer]) await i?.stop();
    await redis?.dispose();
  });

  it('never allows what it must refuse, keeps allowing known issuers, answers every request, and takes changes again after the restart', async () => {
    const c = client as EnvoyLikeClient;
    const replica = served as Served;
    const added = await cliAsync(issuerAddArgs(idp, 'acme'), env());
    assert.equal(added.code, 0, added.stderr);

    const valid = await Promise.all(
      Array.from({ length: 16 }, (_, i) => idp.mint({ sub: `user-${i}` })),
    );
    await eventually(
      async () => (await c.check({ token: valid[0], sid: 'A' })).allowed,
      5000,
      'the issuer reaches the replica',
    );
    const unregistered = await Promise.all(
      Array.from({ length: 8 }, (_, i) => stranger.mint({ sub: `eve-${i}` })),
    );
    const tampered = (await Promise.all(valid.slice(0, 4).map(tamperings))).flat();
    // Sanity before the fault: the three populations are what the test says they are.
    assert.equal((await c.check({ token: unregistered[0], sid: 'A' })).httpStatus, 401);
    for (const t of tampered)
      assert.equal((await c.check({ token: t.token, sid: 'A' })).allowed, false, t.tag);

    const jobs: Job[] = [
      ...valid.map((token): Job => ({ kind: 'valid', expect: 'allow', token })),
      ...unregistered.map((token): Job => ({ kind: 'unregistered', expect: 'deny', token })),
      ...tampered.map(
        (t): Job => ({ kind: 'tampered', expect: 'deny', token: t.token, tag: t.tag }),
      ),
    ];
    const marks: Record<string, number> = {};
    const outage = (async () => {
      await sleep(800);
      marks['kill'] = Date.now();
      await redis.stop();
      marks['killed'] = Date.now();
      await sleep(1000);
      marks['restart'] = Date.now();
      await redis.start();
      marks['restarted'] = Date.now();
      // A registry change under load, through the CLI, once Redis takes writes again.
      await eventually(
        async () =>
          (
            await cliAsync(
              [
                'issuer',
                'add',
                '--tenant',
                'acme',
                '--issuer',
                newcomer.issuer,
                '--jwks-uri',
                newcomer.jwksUri,
              ],
              env(),
            )
          ).code === 0,
        5000,
        'the CLI reaches Redis again',
      );
      marks['newcomerAdded'] = Date.now();
    })();
    const samples = await loadLoop({
      client: c,
      workers: 20,
      durationMs: 4000,
      maxRequests: 60_000,
      next: (n) => jobs[n % jobs.length] as Job,
    });
    await outage;
    const newcomerToken = await newcomer.mint({ sub: 'nina' });
    const tookMs = await eventually(
      async () => (await c.check({ token: newcomerToken, sid: 'A' })).allowed,
      5000,
      'an issuer added after the restart reaches the replica',
    );
    marks['newcomerSeen'] = Date.now();

    // When the replica itself saw Redis go and come back (its own log), for the phase-strict checks.
    const logTime = (msg: string, since: number): number | undefined =>
      replica.lines.find(
        (l) => l['msg'] === msg && l['connection'] === 'commands' && (l['time'] as number) >= since,
      )?.['time'] as number | undefined;
    const unreachable = logTime('redis unreachable; serving from memory', marks['kill'] as number);
    const reachable = logTime('redis reachable again', marks['restart'] as number);
    assert.ok(
      unreachable !== undefined && reachable !== undefined,
      'the replica logged the outage and the recovery',
    );

    const t = tally(samples);
    const unreg = samples.filter((s) => s.job.kind === 'unregistered' && s.result !== undefined);
    const before = unreg.filter((s) => s.answeredAt < (marks['kill'] as number));
    const down = unreg.filter((s) => s.sentAt > unreachable + 20 && s.answeredAt < reachable);
    const upAgain = unreg.filter((s) => s.sentAt > reachable + 300);
    const validDuringOutage = samples.filter(
      (s) =>
        s.job.kind === 'valid' &&
        s.sentAt > (marks['killed'] as number) &&
        s.answeredAt < reachable,
    );
    const latencies = samples.map((s) => s.answeredAt - s.sentAt);
    console.log(
      '[faults] redis outage:',
      JSON.stringify({
        ...t,
        wrongAllowsByKind: {
          unregistered: unreg.filter((s) => s.result?.allowed).length,
          tampered: samples.filter((s) => s.job.kind === 'tampered' && s.result?.allowed).length,
        },
        unregistered: {
          beforeKill: before.length,
          whileDown: down.length,
          afterRecovery: upAgain.length,
        },
        validWhileRedisDown: validDuringOutage.length,
        redisSeenDownForMs: reachable - unreachable,
        newcomerVisibleAfterMs:
          (marks['newcomerSeen'] as number) - (marks['newcomerAdded'] as number),
        newcomerProbeMs: tookMs,
        p50Ms: percentile(latencies, 0.5),
        p99Ms: percentile(latencies, 0.99),
      }),
    );

    assert.ok(t.total > 300, `a steady load (${t.total} checks)`);
    assert.equal(t.rpcErrors, 0, 'every request got an answer');
    assert.equal(t.wrongAllows, 0, 'ZERO wrong allows');
    assert.equal(
      t.wrongDenials,
      0,
      'valid tokens of a known issuer were allowed throughout (in-process registry snapshot and keys)',
    );
    assert.ok(
      validDuringOutage.length > 30,
      `valid tokens were checked while Redis was down (${validDuringOutage.length})`,
    );
    for (const s of unreg)
      assert.ok(
        [401, 503].includes(s.result?.httpStatus as number),
        `an unregistered issuer is 401 or 503, got ${s.result?.httpStatus}`,
      );
    assert.ok(
      before.length > 0 && down.length > 0,
      'unregistered tokens were sent before and during the outage',
    );
    assert.ok(
      before.every((s) => s.result?.httpStatus === 401),
      'unregistered issuer: 401 while Redis is up',
    );
    assert.ok(
      down.every((s) => s.result?.httpStatus === 503 && s.result.grpcCode === 14),
      'unregistered issuer: 503 while Redis is down (it may have been added meanwhile)',
    );
    assert.ok(
      upAgain.every((s) => s.result?.httpStatus === 401),
      'unregistered issuer: 401 again once Redis is back',
    );
    for (const s of samples.filter((x) => x.job.kind === 'tampered'))
      assert.equal(s.result?.httpStatus, 401, `tampered (${s.job.tag}) is a clean 401`);
    // After the load: the unregistered issuer is plainly untrusted again, the known one still allowed.
    assert.equal((await c.check({ token: unregistered[1], sid: 'A' })).httpStatus, 401);
    assert.equal((await c.check({ token: valid[1], sid: 'A' })).allowed, true);
    assert.equal(replica.child.exitCode, null, 'the replica never exited');
  });
});
