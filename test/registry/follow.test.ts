import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Redis } from 'ioredis';
import pino from 'pino';
import { parseIssuer } from '../../src/registry/records.js';
import { RedisLayout } from '../../src/redis/layout.js';
import { RedisRegistry } from '../../src/registry/redis-registry.js';
import { RegistryStore } from '../../src/registry/registry-store.js';
import { eventually } from '../helpers/processes.js';
import { RedisServer } from '../helpers/redis-server.js';
import { perSuite } from '../helpers/suite-parts.js';

/**
 * How a replica follows registry changes, against a real redis-server: a change must never fall
 * between the snapshot a replica loads and the moment its change subscription takes effect (it
 * would then wait for the safety-net poll — here ten minutes away).
 */
describe('registry change following', () => {
  const redis = perSuite(() => RedisServer.start());

  it('a change written while the subscription is still being set up reaches the snapshot without the poll', async () => {
    const commands = redis().client();
    const subscriber = redis().client();
    const layout = new RedisLayout('follow');
    const store = new RegistryStore(commands, layout, true);
    // A slow subscription: SUBSCRIBE takes effect only after a change has been written (and its
    // notice published to nobody).
    let written: () => void = () => undefined;
    const changeWritten = new Promise<void>((resolve) => {
      written = resolve;
    });
    const subscribe = subscriber.subscribe.bind(subscriber) as (
      channel: string,
    ) => Promise<unknown>;
    (subscriber as unknown as { subscribe: (channel: string) => Promise<unknown> }).subscribe =
      async (channel: string) => {
        await changeWritten;
        return subscribe(channel);
      };
    const registry = new RedisRegistry(store, subscriber as Redis, pino({ level: 'silent' }), {
      pollIntervalMs: 600_000,
    });
    try {
      registry.start();
      await eventually(async () => registry.ready(), 5000, 'first snapshot loaded');
      await registry.settled();
      assert.equal(await registry.issuer('https://idp.example'), undefined);

      const writer = new RegistryStore(redis().client(), layout, true);
      await writer.putIssuer(
        parseIssuer(
          { issuer: 'https://idp.example', tenant: 'acme', jwks_uri: 'https://idp.example/jwks' },
          'issuer',
          true,
        ),
      );
      writer.redis.disconnect();
      written();

      await eventually(
        async () => (await registry.issuer('https://idp.example'))?.tenant === 'acme',
        2000,
        'the change reaches the snapshot',
      );
    } finally {
      await registry.close();
      commands.disconnect();
      subscriber.disconnect();
    }
  });
});
