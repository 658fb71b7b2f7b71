import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { loadConfig } from '../../src/config/config.js';
import { cliWith } from '../helpers/program.js';
import { RedisServer } from '../helpers/redis-server.js';

/** The two registry fields and the setting, through the one schema: CLI flags, stored JSON, YAML. */
describe('Txn-Token registry fields and setting', () => {
  let redis: RedisServer;
  const cli = (...args: string[]) => cliWith({ REDIS_URL: redis.url })(...args);
  before(async () => {
    redis = await RedisServer.start();
  });
  after(async () => {
    await redis.dispose();
  });

  it('tenant set --txn-tokens turns emission on for the tenant; without it, it is off', async () => {
    assert.equal((await cli('tenant', 'set', '--tenant', 'acme', '--txn-tokens')).code, 0);
    const on = JSON.parse((await cli('tenant', 'show', '--tenant', 'acme', '--json')).stdout);
    assert.equal(on.acme.txn_tokens, true);
    assert.equal((await cli('tenant', 'set', '--tenant', 'acme')).code, 0);
    const off = JSON.parse((await cli('tenant', 'show', '--tenant', 'acme', '--json')).stdout);
    assert.equal(off.acme.txn_tokens, undefined, 'default off, left out');
  });

  it('issuer add --role txn_token_service registers a Transaction Token Service; a bad role is exit 2', async () => {
    const add = await cli(
      'issuer',
      'add',
      '--tenant',
      'acme',
      '--issuer',
      'https://tts.acme.example',
      '--jwks-uri',
      'https://tts.acme.example/jwks',
      '--role',
      'txn_token_service',
    );
    assert.equal(add.code, 0, add.stderr);
    const listed = JSON.parse((await cli('issuer', 'list', '--json')).stdout) as Array<
      Record<string, unknown>
    >;
    assert.equal(
      listed.find((i) => i['issuer'] === 'https://tts.acme.example')?.['role'],
      'txn_token_service',
    );
    const bad = await cli(
      'issuer',
      'add',
      '--tenant',
      'acme',
      '--issuer',
      'https://x.example',
      '--role',
      'tts',
    );
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /role: must be one of origin, txn_token_service/);
  });

  it('MATRYOSHKA_TRUST_DOMAIN: unset is off; a value with a space is refused by name', () => {
    assert.equal(loadConfig({}).trustDomain, undefined);
    assert.equal(loadConfig({ MATRYOSHKA_TRUST_DOMAIN: 'td.example' }).trustDomain, 'td.example');
    assert.throws(
      () => loadConfig({ MATRYOSHKA_TRUST_DOMAIN: 'td example' }),
      /MATRYOSHKA_TRUST_DOMAIN/,
    );
  });
});
