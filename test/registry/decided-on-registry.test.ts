/**
 * No decision on a registry that changed under it. A Check that waits for an issuer's keys (a
 * slow JWKS endpoint) while that issuer is removed is not allowed on the registry it started from:
 * it is decided again on the registry as it now is (the issuer is untrusted). The JWKS endpoint is
 * a gate the test opens only once the removal is in force, so the order of events is fixed, not
 * timed. File registry (the service's FileRegistry) and Redis (a real service on a real Redis).
 */
import assert from 'node:assert/strict';
import { type Server, createServer } from 'node:http';
import { mkdtempSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { LocalIssuer } from '../../src/demo/local-issuer.js';
import { RedisLayout } from '../../src/redis/layout.js';
import { FileRegistry } from '../../src/registry/file-registry.js';
import { RegistryStore } from '../../src/registry/registry-store.js';
import { startHarness } from '../helpers/harness.js';
import { inProcess } from '../helpers/in-process.js';
import { eventually } from '../helpers/processes.js';
import { issuer } from '../helpers/records.js';
import { RedisServer } from '../helpers/redis-server.js';

/** A JWKS endpoint that holds each request until `open()`, then answers with the IdP's keys. */
class JwksGate {
  hits = 0;
  private opened = false;
  private waiting: Array<() => void> = [];

  private constructor(
    private readonly server: Server,
    readonly url: string,
  ) {}

  static async start(idp: LocalIssuer): Promise<JwksGate> {
    let self: JwksGate | undefined;
    const server = createServer((_req, res) => {
      const gate = self as JwksGate;
      gate.hits++;
      const answer = async (): Promise<void> => {
        const body = await (await fetch(idp.jwksUri)).text();
        res.writeHead(200, { 'content-type': 'application/json' }).end(body);
      };
      if (gate.opened) void answer();
      else gate.waiting.push(() => void answer());
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    self = new JwksGate(server, `http://127.0.0.1:${port}/jwks`);
    return self;
  }

  open(): void {
    this.opened = true;
    for (const answer of this.waiting.splice(0)) answer();
  }

  async stop(): Promise<void> {
    this.open();
    this.server.closeAllConnections();
    await new Promise((resolve) => this.server.close(resolve));
  }
}

describe('a Check whose issuer is removed while it waits for keys', () => {
  let idp: LocalIssuer;
  let other: LocalIssuer;
  let gate: JwksGate;
  before(async () => {
    idp = await LocalIssuer.start();
    other = await LocalIssuer.start();
  });
  after(async () => {
    await idp?.stop();
    await other?.stop();
  });

  it('file registry: not allowed on the registry it started from (untrusted once decided again)', async () => {
    gate = await JwksGate.start(idp);
    const dir = mkdtempSync(join(tmpdir(), 'matryoshka-midcheck-'));
    const path = join(dir, 'registry.yaml');
    const record = (i: LocalIssuer, jwks: string) =>
      `  - issuer: ${i.issuer}\n    tenant: acme\n    jwks_uri: ${jwks}\n`;
    writeFileSync(path, `issuers:\n${record(idp, gate.url)}${record(other, other.jwksUri)}`);
    const file = new FileRegistry(path, {
      allowInsecureIssuers: true,
      pollMs: 100,
      settleMs: 10,
    });
    file.start();
    try {
      const p = await inProcess({
        override: (base) => ({ registry: file, trust: { ...base.trust, registry: file } }),
      });
      const pending = p.check({ token: await idp.mint({ sub: 'alice' }), sid: 'A' });
      await eventually(async () => gate.hits > 0, 5000, 'the Check waits for the keys');

      writeFileSync(path, `issuers:\n${record(other, other.jwksUri)}`);
      await eventually(
        async () => {
          file.reload('signal');
          return (await file.issuer(idp.issuer)) === undefined;
        },
        5000,
        'the removal is in force',
      );
      gate.open();
      const decision = await pending;
      assert.equal(decision.allowed, false, 'no allow on the registry the Check started from');
      assert.equal(decision.reason, 'untrusted_issuer');
      // A Check that starts now is refused the same way.
      const after = await p.check({ token: await idp.mint({ sub: 'bob' }), sid: 'A' });
      assert.equal(after.reason, 'untrusted_issuer');
      assert.equal(
        (await p.check({ token: await other.mint({ sub: 'carol' }), sid: 'A' })).allowed,
        true,
      );
    } finally {
      file.stop();
      await gate.stop();
    }
  });

  it('Redis registry: not allowed on the registry it started from (untrusted once decided again)', async () => {
    gate = await JwksGate.start(idp);
    const redis = await RedisServer.start();
    const writer = new RegistryStore(redis.client(), new RedisLayout('matryoshka'), true);
    const h = await startHarness({
      env: { REDIS_URL: redis.url, MATRYOSHKA_REGISTRY_POLL_MS: '200', LOG_LEVEL: 'info' },
    });
    try {
      await eventually(async () => h.service.registry.ready(), 5000, 'replica ready');
      await writer.putIssuer(issuer({ issuer: idp.issuer, tenant: 'acme', jwks_uri: gate.url }));
      await eventually(
        async () => (await h.service.registry.issuer(idp.issuer)) !== undefined,
        5000,
        'the issuer reaches the replica',
      );
      const pending = h.client.check({
        token: await idp.mint({ sub: 'alice' }),
        sid: 'A',
        deadlineMs: 20_000,
      });
      await eventually(async () => gate.hits > 0, 5000, 'the Check waits for the keys');

      assert.equal(await writer.removeIssuer(idp.issuer), true);
      await eventually(
        async () => (await h.service.registry.issuer(idp.issuer)) === undefined,
        5000,
        'the removal is in force on the replica',
      );
      gate.open();
      const result = await pending;
      assert.equal(result.httpStatus, 401, 'no allow on the registry the Check started from');
      assert.equal(h.logs.findLast((l) => l['msg'] === 'check')?.['reason'], 'untrusted_issuer');
    } finally {
      await h.stop();
      writer.redis.disconnect();
      await gate.stop();
      await redis.dispose();
    }
  });
});
