/**
 * tenant remove, service remove and principal unmap against a real redis-server: the record goes,
 * the version moves by exactly one (one MULTI with the change notice), a running service follows,
 * and removing what is not there is exit 2 with nothing written. Registry commands read only the
 * settings they use: a bad MATRYOSHKA_GRPC_PORT does not stop them.
 */
import assert from 'node:assert/strict';
import { runProgramWithEnv } from '../helpers/program.js';
import { after, before, describe, it } from 'node:test';
import type { Redis } from 'ioredis';
import { LocalIssuer } from '../../src/demo/local-issuer.js';
import { RedisLayout } from '../../src/redis/layout.js';
import { type Harness, startHarness } from '../helpers/harness.js';
import { eventually, runCli } from '../helpers/processes.js';
import { RedisServer } from '../helpers/redis-server.js';
import { issuerAddArgs } from '../helpers/records.js';

describe('registry removals against a real Redis', () => {
  let redis: RedisServer;
  let client: Redis;
  let idp: LocalIssuer;
  let h: Harness;
  const layout = new RedisLayout('removals');
  const env = () => ({
    REDIS_URL: redis.url,
    MATRYOSHKA_REDIS_PREFIX: 'removals',
    MATRYOSHKA_ALLOW_INSECURE_ISSUERS: 'true',
  });
  const cli = (...args: string[]) => runProgramWithEnv(args, env());
  const version = async (): Promise<number> => Number((await client.get(layout.version)) ?? 0);
  const allowed = async (call: { sid?: string; destinationPrincipal?: string }) =>
    (await h.client.check({ token: await idp.mint({ sub: 'alice' }), ...call })).allowed;

  before(async () => {
    redis = await RedisServer.start();
    client = redis.client();
    idp = await LocalIssuer.start();
    const added = await cli(...issuerAddArgs(idp, 'acme'));
    assert.equal(added.code, 0, added.stderr);
    h = await startHarness({ env: env() });
    await eventually(() => allowed({ sid: 'A' }), 5000, 'the service reads the issuer from Redis');
  });
  after(async () => {
    await h?.stop();
    await idp?.stop();
    client?.disconnect();
    await redis?.dispose();
  });

  /** Run a removal: exit 0, the version up by exactly one. */
  async function removal(args: string[]): Promise<void> {
    const before = await version();
    const result = await cli(...args);
    assert.equal(result.code, 0, `${args.join(' ')}: ${result.stderr}`);
    assert.equal(await version(), before + 1, `${args.join(' ')}: one version bump`);
  }

  it('service remove: the record goes and the service gets its tenant policy again', async () => {
    assert.equal(
      (await cli('service', 'set', '--sid', 'B', '--allowed-callers', 'gateway')).code,
      0,
    );
    await eventually(async () => !(await allowed({ sid: 'B' })), 5000, 'B refuses an origin token');
    await removal(['service', 'remove', '--sid', 'B']);
    assert.equal(await client.exists(layout.service('B')), 0);
    assert.equal(await client.sismember(layout.services, 'B'), 0);
    await eventually(() => allowed({ sid: 'B' }), 5000, 'the running service follows');
  });

  it('tenant remove: the record goes and the tenant falls back to the defaults', async () => {
    assert.equal((await cli('tenant', 'set', '--tenant', 'acme', '--entry-only')).code, 0);
    await eventually(async () => !(await allowed({ sid: 'C' })), 5000, 'entry-only refuses C');
    await removal(['tenant', 'remove', '--tenant', 'acme']);
    assert.equal(await client.exists(layout.tenant('acme')), 0);
    assert.equal(await client.sismember(layout.tenants, 'acme'), 0);
    assert.equal(await client.sismember(layout.issuers, idp.issuer), 1, 'its issuers stay');
    await eventually(() => allowed({ sid: 'C' }), 5000, 'the running service follows');
  });

  it('principal unmap: the mapping goes and the principal names no destination any more', async () => {
    const principal = 'spiffe://cluster.local/ns/shop/sa/orders';
    assert.equal(
      (await cli('principal', 'map', '--principal', principal, '--sid', 'orders')).code,
      0,
    );
    await eventually(() => allowed({ destinationPrincipal: principal }), 5000, 'mapped');
    await removal(['principal', 'unmap', '--principal', principal]);
    assert.equal(await client.hexists(layout.principals, principal), 0);
    await eventually(
      async () => !(await allowed({ destinationPrincipal: principal })),
      5000,
      'the running service follows',
    );
  });

  it('removing what is not there is exit 2, one line, and writes nothing', async () => {
    const before = await version();
    for (const args of [
      ['tenant', 'remove', '--tenant', 'nobody'],
      ['service', 'remove', '--sid', 'nothing'],
      ['principal', 'unmap', '--principal', 'spiffe://nowhere'],
    ]) {
      const result = await cli(...args);
      assert.equal(result.code, 2, args.join(' '));
      assert.equal(result.stderr.trim().split('\n').length, 1, args.join(' '));
    }
    assert.equal(await version(), before);
  });

  it('a bad MATRYOSHKA_GRPC_PORT does not stop a registry command, only serve', async () => {
    const bad = { ...env(), MATRYOSHKA_GRPC_PORT: 'ninety', MATRYOSHKA_TLS_CA: '/nowhere.pem' };
    const added = await runProgramWithEnv(
      ['issuer', 'add', '--tenant', 'beta', '--issuer', 'https://idp.beta.example'],
      bad,
    );
    assert.equal(added.code, 0, added.stderr);
    assert.equal(await client.exists(layout.issuer('https://idp.beta.example')), 1);
    const served = runCli(['serve'], { env: bad });
    assert.equal(served.code, 2);
    assert.match(served.stderr, /MATRYOSHKA_GRPC_PORT: must be a whole number/);
    const badPrefix = await runProgramWithEnv(['tenant', 'show'], {
      ...bad,
      MATRYOSHKA_REDIS_PREFIX: 'a b',
    });
    assert.equal(badPrefix.code, 2, 'a setting the command does use is still checked');
    assert.match(badPrefix.stderr, /MATRYOSHKA_REDIS_PREFIX/);
  });
});
