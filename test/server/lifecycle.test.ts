import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { X509Certificate } from 'node:crypto';
import { copyFileSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { EnvoyLikeClient } from '../../src/demo/envoy-client.js';
import { LocalIssuer } from '../../src/demo/local-issuer.js';
import { loadProtos } from '../../src/server/protos.js';
import { OtlpReceiver, attribute } from '../helpers/otlp-receiver.js';
import { eventually, runCli, spawnServe } from '../helpers/processes.js';
import { devCerts, presented } from '../helpers/tls-client.js';
import { registryFile } from '../helpers/records.js';

describe('mTLS on the gRPC port', () => {
  it('refuses clients without a certificate, serves CA-signed ones, and picks up replaced certificate files', async () => {
    const first = await devCerts();
    const live = mkdtempSync(join(tmpdir(), 'matryoshka-live-'));
    for (const f of ['ca.pem', 'server.pem', 'server-key.pem'])
      copyFileSync(join(first, f), join(live, f));
    const served = await spawnServe({
      MATRYOSHKA_TLS_CERT: join(live, 'server.pem'),
      MATRYOSHKA_TLS_KEY: join(live, 'server-key.pem'),
      MATRYOSHKA_TLS_CA: join(live, 'ca.pem'),
      MATRYOSHKA_TLS_RELOAD_MS: '200',
    });
    const address = `localhost:${served.grpcPort}`;
    try {
      const anonymous = new EnvoyLikeClient(
        address,
        grpc.credentials.createSsl(readFileSync(join(first, 'ca.pem'))),
      );
      await assert.rejects(
        anonymous.check({ sid: 'A', deadlineMs: 3000 }),
        (error: grpc.ServiceError) => error.code === grpc.status.UNAVAILABLE,
      );
      anonymous.close();

      const credentials = (dir: string) =>
        grpc.credentials.createSsl(
          readFileSync(join(dir, 'ca.pem')),
          readFileSync(join(dir, 'client-key.pem')),
          readFileSync(join(dir, 'client.pem')),
        );
      const trusted = new EnvoyLikeClient(address, credentials(first));
      const answer = await trusted.check({ sid: 'A' });
      assert.equal(answer.httpStatus, 401, 'served: a real (denied, no token) answer over mTLS');
      trusted.close();
      const firstServer = new X509Certificate(readFileSync(join(first, 'server.pem')))
        .fingerprint256;
      assert.equal(await presented(served.grpcPort, first, first), firstServer);

      // Rotate: a new CA and new certificates replace the files on disk, the process keeps running.
      const second = await devCerts();
      for (const f of ['ca.pem', 'server.pem', 'server-key.pem'])
        copyFileSync(join(second, f), join(live, f));
      const secondServer = new X509Certificate(readFileSync(join(second, 'server.pem')))
        .fingerprint256;
      await eventually(
        async () =>
          (await presented(served.grpcPort, second, second).catch(() => '')) === secondServer,
        5000,
        'new certificate served',
      );
      const rotated = new EnvoyLikeClient(address, credentials(second));
      assert.equal(
        (await rotated.check({ sid: 'A' })).httpStatus,
        401,
        'a client of the new CA is served',
      );
      rotated.close();
      const stale = new EnvoyLikeClient(address, credentials(first));
      await assert.rejects(
        stale.check({ sid: 'A', deadlineMs: 3000 }),
        'a client of the replaced CA is refused',
      );
      stale.close();
    } finally {
      await served.stop();
    }
  });

  it('refuses to start on certificate files that do not parse, naming the variable', () => {
    const dir = mkdtempSync(join(tmpdir(), 'matryoshka-badtls-'));
    writeFileSync(join(dir, 'cert.pem'), 'not a certificate');
    writeFileSync(join(dir, 'key.pem'), 'not a key');
    const result = runCli(['serve'], {
      env: {
        MATRYOSHKA_TLS_CERT: join(dir, 'cert.pem'),
        MATRYOSHKA_TLS_KEY: join(dir, 'key.pem'),
        MATRYOSHKA_GRPC_PORT: '0',
        MATRYOSHKA_HTTP_PORT: '0',
      },
    });
    assert.equal(result.code, 2);
    assert.match(
      result.stderr.trim(),
      /^matryoshka-authz: MATRYOSHKA_TLS_CERT: .* is not a PEM certificate$/,
    );
  });
});

describe('graceful shutdown', () => {
  it('on SIGTERM reports NOT_SERVING first, answers all 100 in-flight checks, then exits', async () => {
    const idp = await LocalIssuer.start({ jwksDelayMs: 1500 });
    const served = await spawnServe({
      MATRYOSHKA_REGISTRY_FILE: registryFile(idp),
      MATRYOSHKA_ALLOW_INSECURE_ISSUERS: 'true',
    });
    const address = `127.0.0.1:${served.grpcPort}`;
    const { HealthClient } = loadProtos();
    // Its own connection, as Envoy's and kubelet's health checks have: with the Watch on the checks'
    // connection, 100 checks would be one stream past the server's per-connection limit.
    const health = new HealthClient(address, grpc.credentials.createInsecure(), {
      'grpc.use_local_subchannel_pool': 1,
    }) as grpc.Client &
      Record<string, (...args: unknown[]) => grpc.ClientReadableStream<{ status: string }>>;
    const seen: Array<{ status: string; at: number }> = [];
    const watch = health['Watch']!.call(health, { service: 'envoy.service.auth.v3.Authorization' });
    watch.on('data', (m: { status: string }) => seen.push({ status: m.status, at: Date.now() }));
    watch.on('error', () => undefined);
    const client = new EnvoyLikeClient(address);
    try {
      await eventually(
        async () => seen.some((s) => s.status === 'SERVING'),
        2000,
        'watch sees SERVING',
      );
      const token = await idp.mint({ sub: 'alice' });
      const answeredAt: number[] = [];
      // Every check waits on the one (slow) JWKS fetch: 100 checks in flight.
      const checks = Array.from({ length: 100 }, (_, i) =>
        client.check({ token, sid: `svc-${i % 5}`, deadlineMs: 15_000 }).then((r) => {
          answeredAt.push(Date.now());
          return r;
        }),
      );
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(answeredAt.length, 0, 'still in flight when SIGTERM arrives');
      const exited = new Promise<number | null>((resolve) =>
        served.child.once('exit', (code) => resolve(code)),
      );
      const signalledAt = Date.now();
      served.child.kill('SIGTERM');
      const results = await Promise.all(checks);
      assert.equal(results.length, 100);
      assert.ok(
        results.every((r) => r.allowed),
        'every in-flight check got its real answer',
      );
      const notServing = seen.find((s) => s.status === 'NOT_SERVING');
      assert.ok(notServing, 'health reported NOT_SERVING');
      assert.ok(
        notServing.at < Math.min(...answeredAt),
        'NOT_SERVING before the drained checks were answered',
      );
      assert.equal(await exited, 0);
      assert.ok(Date.now() - signalledAt < 10_000, 'exited within the grace period');
      assert.ok(served.lines.some((l) => l['msg'] === 'matryoshka-authz stopped'));
    } finally {
      client.close();
      health.close();
      await served.stop();
      await idp.stop();
    }
  });
});

describe('shadow mode', () => {
  it('allows a recursion and records reason recursion in the span, the log line and the metric', async () => {
    const idp = await LocalIssuer.start();
    const receiver = await OtlpReceiver.start();
    const served = await spawnServe({
      MATRYOSHKA_MODE: 'shadow',
      MATRYOSHKA_REGISTRY_FILE: registryFile(idp),
      MATRYOSHKA_ALLOW_INSECURE_ISSUERS: 'true',
      ...receiver.env,
    });
    const client = new EnvoyLikeClient(`127.0.0.1:${served.grpcPort}`);
    try {
      assert.ok(
        served.lines.some((l) => l['msg'] === 'matryoshka-authz serving' && l['mode'] === 'shadow'),
      );
      let token = await idp.mint({ sub: 'alice' });
      for (const sid of ['A', 'B'])
        token = (await client.check({ token, sid })).forwardedToken as string;
      const traceId = randomBytes(16).toString('hex');
      const result = await client.check({
        token,
        sid: 'A',
        headers: {
          'x-request-id': 'shadow-1',
          traceparent: `00-${traceId}-${randomBytes(8).toString('hex')}-01`,
        },
      });
      assert.equal(result.allowed, true, 'shadow mode allows what it would deny');
      assert.equal(result.headers['x-auth-chain'], 'A,B,A', 'and still extends the chain');
      assert.equal(result.metadata['decision'], 'shadow_allow');

      await eventually(
        async () => served.lines.some((l) => l['request_id'] === 'shadow-1'),
        2000,
        'audit line',
      );
      const line = served.lines.find((l) => l['request_id'] === 'shadow-1');
      assert.equal(line?.['reason'], 'recursion');
      assert.equal(line?.['shadow'], true);
      await eventually(
        async () => receiver.spans.some((s) => s.traceId === traceId && s.kind === 2),
        5000,
        'span exported',
      );
      const span = receiver.spans.find((s) => s.traceId === traceId && s.kind === 2);
      assert.equal(span && attribute(span, 'authz.decision'), 'shadow_allow');
      assert.equal(span && attribute(span, 'authz.reason'), 'recursion');
      assert.equal(span && attribute(span, 'authz.shadow'), true);
      const metrics = await (await fetch(`http://127.0.0.1:${served.httpPort}/metrics`)).text();
      assert.match(
        metrics,
        /authz_decisions_total\{decision="shadow_allow",reason="recursion",tenant="acme"[^}]*\} 1/,
      );
    } finally {
      client.close();
      await served.stop();
      await receiver.stop();
      await idp.stop();
    }
  });

  it('is refused unless spelt exactly', () => {
    const result = runCli(['serve'], {
      env: { MATRYOSHKA_MODE: 'shadowy', MATRYOSHKA_GRPC_PORT: '0', MATRYOSHKA_HTTP_PORT: '0' },
    });
    assert.equal(result.code, 2);
    assert.match(result.stderr, /MATRYOSHKA_MODE: must be one of enforce, shadow/);
  });
});
