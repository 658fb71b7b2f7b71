/** deploy/istio/register-principals.sh: its syntax, the CLI commands it calls, and what it writes to Redis. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { statSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { RedisLayout } from '../../src/redis/layout.js';
import { MAIN } from '../helpers/processes.js';
import { RedisServer } from '../helpers/redis-server.js';
import {
  SCRIPT,
  usageCommands,
  scriptProblems,
  cliCallProblems,
  usage,
  script,
} from './manifest-checks.js';

describe('deploy/istio/register-principals.sh', () => {
  let redis: RedisServer;
  before(async () => {
    redis = await RedisServer.start();
  });
  after(async () => {
    await redis.dispose();
  });

  const run = (input: string, env: Record<string, string>) =>
    spawnSync('sh', [SCRIPT], {
      input,
      encoding: 'utf8',
      env: { PATH: process.env['PATH'] ?? '', ...env },
      timeout: 60_000,
    });
  const cli = `${process.execPath} ${MAIN}`;

  it('passes sh -n and calls only CLI commands and flags that `--help` lists', () => {
    assert.ok(usageCommands(usage).get('principal map')?.has('--sid'), 'the usage text was read');
    assert.deepEqual(scriptProblems(script, usage), []);
    assert.ok((statSync(SCRIPT).mode & 0o111) !== 0, 'executable');
  });

  it('catches a command the CLI does not have, a wrong flag, and a syntax error', () => {
    assert.match(
      scriptProblems(script.replace('$cli principal map', '$cli principal add'), usage).join('\n'),
      /the CLI has no command `principal add`/,
    );
    assert.match(
      scriptProblems(script.replace('--sid "$sid"', '--service "$sid"'), usage).join('\n'),
      /`principal map` has no flag --service/,
    );
    assert.match(scriptProblems(script.replace(/\ndone\n?$/, '\n'), usage).join('\n'), /sh -n/);
  });

  it('maps namespace/serviceaccount and SPIFFE ids to sids in Redis, through the real CLI', async () => {
    const list =
      '# principals\nshop/orders   orders\n\nspiffe://cluster.local/ns/edge/sa/gateway gateway # the entry\nshop/cart cart';
    const dry = run(list, { DRY_RUN: '1', MATRYOSHKA_CLI: cli, TRUST_DOMAIN: 'mesh.example' });
    assert.equal(dry.status, 0, dry.stderr);
    const printed = dry.stdout.trim().split('\n');
    assert.equal(printed.length, 3);
    for (const line of printed) {
      assert.ok(line.startsWith(`${cli} `), line);
      const [command, verb, ...rest] = line.slice(cli.length + 1).split(' ');
      assert.deepEqual(
        cliCallProblems(`${command} ${verb}`, rest.join(' '), usageCommands(usage)),
        [],
        line,
      );
    }
    assert.match(
      dry.stdout,
      /--principal spiffe:\/\/mesh\.example\/ns\/shop\/sa\/orders --sid orders/,
    );

    const result = run(list, { REDIS_URL: redis.url, MATRYOSHKA_CLI: cli });
    assert.equal(result.status, 0, result.stderr);
    const client = redis.client();
    try {
      assert.deepEqual(await client.hgetall(new RedisLayout().principals), {
        'spiffe://cluster.local/ns/shop/sa/orders': 'orders',
        'spiffe://cluster.local/ns/edge/sa/gateway': 'gateway',
        'spiffe://cluster.local/ns/shop/sa/cart': 'cart',
      });
      // A bad line anywhere: exit 2, one line naming it, and nothing written.
      const bad = run('shop/payments payments\nshop orders-v2\n', {
        REDIS_URL: redis.url,
        MATRYOSHKA_CLI: cli,
      });
      assert.equal(bad.status, 2);
      assert.match(
        bad.stderr,
        /^register-principals: stdin:2: 'shop' is not <namespace>\/<serviceaccount>/,
      );
      const badSid = run('shop/payments -x\n', { REDIS_URL: redis.url, MATRYOSHKA_CLI: cli });
      assert.equal(badSid.status, 2);
      assert.equal(
        await client.hget(
          new RedisLayout().principals,
          'spiffe://cluster.local/ns/shop/sa/payments',
        ),
        null,
      );
      // The CLI's own failure (no Redis) stops the script with its exit code.
      const noRedis = run('shop/payments payments\n', { MATRYOSHKA_CLI: cli });
      assert.equal(noRedis.status, 2);
      assert.match(noRedis.stderr, /REDIS_URL/);
    } finally {
      client.disconnect();
    }
  });
});
