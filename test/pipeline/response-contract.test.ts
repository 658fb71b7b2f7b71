import assert from 'node:assert/strict';
import { gunzipSync } from 'node:zlib';
import { describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import { EnvoyLikeClient } from '../../src/demo/envoy-client.js';
import { LocalIssuer } from '../../src/demo/local-issuer.js';
import { loadProtos } from '../../src/server/protos.js';
import { suiteParts } from '../helpers/suite-parts.js';
import { lastReason, startHarness } from '../helpers/harness.js';
import { localIssuer } from '../helpers/records.js';
import { authStack } from '../helpers/tokens.js';

/** A grpc-js unary method called with (request, callback). */
type UnaryMethod = (
  this: grpc.Client,
  request: object,
  callback: (error: grpc.ServiceError | null, response: { status: string }) => void,
) => void;

describe('what Envoy gets back', () => {
  const s = suiteParts(async (own) => {
    const idp = own(await LocalIssuer.start());
    const contents = { issuers: [localIssuer(idp, 'acme')] };
    const h = own(await startHarness({ contents }));
    const debug = own(await startHarness({ contents, env: { MATRYOSHKA_DEBUG_REASONS: 'true' } }));
    return { idp, h, debug };
  });
  it('overwrites or removes every client-sent identity header', async () => {
    const token = await s.idp.mint({ sub: 'alice' }); // no roles: x-user-roles is not set by us
    const result = await s.h.client.check({
      token,
      sid: 'A',
      headers: {
        'x-tenant-id': 'evil',
        'x-user-id': 'root',
        'x-user-roles': 'admin',
        'x-auth-chain': 'forged',
        'x-auth-depth': '0',
      },
    });
    assert.equal(result.allowed, true);
    assert.equal(result.headers['x-tenant-id'], 'acme');
    assert.equal(result.headers['x-user-id'], 'alice');
    assert.equal(result.headers['x-auth-chain'], 'A');
    assert.equal(result.headers['x-auth-depth'], '1');
    assert.equal(result.headers['x-user-roles'], undefined);
    assert.ok(result.headersToRemove.includes('x-user-roles'), 'a spoofed x-user-roles is removed');
    for (const option of result.raw.ok_response?.headers ?? []) {
      assert.deepEqual(option.append, { value: false }, `${option.header.key} overwrites`);
    }
    assert.equal(result.metadata['tenant_id'], 'acme');
    assert.equal(result.metadata['depth'], 1);
    assert.equal(result.metadata['decision'], 'allow');
  });

  it('keeps denial bodies generic: no reason, issuer or tenant', async () => {
    const stranger = await LocalIssuer.start();
    try {
      const denials = [
        await s.h.client.check({ token: await stranger.mint({ sub: 'eve' }), sid: 'A' }),
        await s.h.client.check({ token: 'not.a.token', sid: 'A' }),
        await s.h.client.check({ token: await s.idp.mint({ sub: 'alice' }) }),
      ];
      for (const denial of denials) {
        assert.equal(denial.allowed, false);
        assert.doesNotMatch(
          denial.body,
          /untrusted|malformed|unknown_service|acme|127\.0\.0\.1|issuer|tenant/i,
        );
        assert.deepEqual(Object.keys(JSON.parse(denial.body) as object).sort(), [
          'error',
          'request_id',
        ]);
        assert.equal(denial.headers['x-authz-reason'], undefined);
      }
      assert.deepEqual(
        denials.map((d) => d.httpStatus),
        [401, 401, 403],
      );
      assert.deepEqual(
        denials.map((d) => d.grpcCode),
        [16, 16, 7],
      );
    } finally {
      await stranger.stop();
    }
  });

  it('names the reason in x-authz-reason only in debug mode', async () => {
    const denial = await s.debug.client.check({ token: 'not.a.token', sid: 'A' });
    assert.equal(denial.headers['x-authz-reason'], 'malformed_token');
  });

  it("uses a new ULID as request id when Envoy sent none, and keeps Envoy's otherwise", async () => {
    const token = await s.idp.mint({ sub: 'alice' });
    const generated = await s.h.client.check({ token, sid: 'A' });
    assert.match(generated.headers['x-request-id'] ?? '', /^[0-9A-HJKMNP-TV-Z]{26}$/);
    const kept = await s.h.client.check({
      token,
      sid: 'A',
      headers: { 'x-request-id': 'eed3400a-64fc-450b-9315-d30a080f244e' },
    });
    assert.equal(kept.headers['x-request-id'], 'eed3400a-64fc-450b-9315-d30a080f244e');
  });

  it('reads header_map with raw_value bytes (encode_raw_headers)', async () => {
    const token = await s.idp.mint({ sub: 'alice' });
    const request = EnvoyLikeClient.request({ sid: 'A' });
    const http = (
      (request['attributes'] as Record<string, unknown>)['request'] as Record<
        string,
        Record<string, unknown>
      >
    )['http'] as Record<string, unknown>;
    delete http['headers'];
    http['header_map'] = {
      headers: [
        { key: 'authorization', raw_value: Buffer.from(`Bearer ${token}`) },
        { key: ':path', raw_value: Buffer.from('/') },
      ],
    };
    const result = await s.h.client.send(request);
    assert.equal(result.allowed, true);
  });

  it('denies with unknown_service when no destination can be resolved', async () => {
    const result = await s.h.client.check({ token: await s.idp.mint({ sub: 'alice' }) });
    assert.equal(result.httpStatus, 403);
    assert.equal(lastReason(s.h), 'unknown_service');
  });

  it('resolves the destination from the destination principal mapping', async () => {
    s.h.registry.mapPrincipal('spiffe://cluster.local/ns/shop/sa/orders', 'orders');
    const result = await s.h.client.check({
      token: await s.idp.mint({ sub: 'alice' }),
      destinationPrincipal: 'spiffe://cluster.local/ns/shop/sa/orders',
    });
    assert.equal(result.allowed, true);
    assert.equal(result.headers['x-auth-chain'], 'orders');
  });

  it('mints tokens any JOSE library verifies with the published JWKS', async () => {
    let token = await s.idp.mint({ sub: 'alice', blob: 'y'.repeat(600) });
    for (const sid of ['A', 'B', 'C'])
      token = (await s.h.client.check({ token, sid })).forwardedToken as string;
    const jwks = createRemoteJWKSet(
      new URL(`http://127.0.0.1:${s.h.service.httpPort}/.well-known/jwks.json`),
    );
    const { payload, protectedHeader } = await jwtVerify(token, jwks, {
      issuer: 'urn:matryoshka:authz',
      audience: 'urn:matryoshka:authz',
    });
    assert.equal(protectedHeader.alg, 'ES256');
    assert.equal(payload.sub, 'alice');
    // depth 3 with gzip: plain zlib + base64 is all it takes to open the container.
    const stack = authStack(token);
    assert.equal(stack['cmp'], 'g');
    const inner = gunzipSync(Buffer.from(stack['container'] as string, 'base64')).toString();
    const { payload: innerPayload } = await jwtVerify(inner, jwks, {
      currentDate: new Date((payload.iat as number) * 1000),
    });
    assert.equal((innerPayload['auth_stack'] as { sid: string }).sid, 'B');
  });

  it('serves liveness, readiness and JWKS over HTTP, and grpc.health.v1', async () => {
    const base = `http://127.0.0.1:${s.h.service.httpPort}`;
    assert.equal((await fetch(`${base}/healthz`)).status, 200);
    assert.equal((await fetch(`${base}/readyz`)).status, 200);
    const jwks = (await (await fetch(`${base}/.well-known/jwks.json`)).json()) as {
      keys: Array<Record<string, unknown>>;
    };
    assert.ok(jwks.keys.some((k) => k['use'] === 'sig' && k['alg'] === 'ES256'));
    assert.ok(
      jwks.keys.every((k) => k['d'] === undefined),
      'public halves only',
    );
    assert.equal((await fetch(`${base}/nope`)).status, 404);

    const { HealthClient } = loadProtos();
    const health = new HealthClient(
      `127.0.0.1:${s.h.service.grpcPort}`,
      grpc.credentials.createInsecure(),
    ) as grpc.Client & Record<string, UnaryMethod>;
    const status = await new Promise<string>((resolve, reject) =>
      (health['Check'] as UnaryMethod).call(
        health,
        { service: 'envoy.service.auth.v3.Authorization' },
        (e: Error | null, r: { status: string }) => (e ? reject(e) : resolve(r.status)),
      ),
    );
    assert.equal(status, 'SERVING');
    const unknown = await new Promise<number>((resolve) =>
      (health['Check'] as UnaryMethod).call(
        health,
        { service: 'nope' },
        (e: grpc.ServiceError | null) => resolve(e?.code ?? 0),
      ),
    );
    assert.equal(unknown, grpc.status.NOT_FOUND);
    health.close();
  });
});
