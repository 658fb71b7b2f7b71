import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { decodeJwt, decodeProtectedHeader } from 'jose';
import type { CheckResult } from '../../src/demo/envoy-client.js';
import { type Harness, startHarness } from '../helpers/harness.js';
import { BILLING_RESOURCE, TestOidcProvider } from '../helpers/oidc-provider.js';
import { RedisServer } from '../helpers/redis-server.js';
import { runProgramWithEnv } from '../helpers/program.js';

/** Run the CLI as an operator would (`node dist/src/cli/main.js …`), without blocking the in-process IdP. */
const cli = runProgramWithEnv;

/** Flip one character in the middle of the signature (never the last one: its low bits are padding). */
function breakSignature(token: string): string {
  const [header, payload, signature] = token.split('.') as [string, string, string];
  const at = Math.floor(signature.length / 2);
  const flipped = signature[at] === 'A' ? 'B' : 'A';
  return `${header}.${payload}.${signature.slice(0, at)}${flipped}${signature.slice(at + 1)}`;
}

describe('an issuer registered through the CLI with OIDC discovery (issue 3)', () => {
  let redis: RedisServer;
  let idp: TestOidcProvider;
  let harness: Harness | undefined;
  let token: string;

  before(async () => {
    redis = await RedisServer.start();
    idp = await TestOidcProvider.start();
    const added = await cli(
      ['issuer', 'add', '--tenant', 'acme', '--issuer', idp.issuer, '--audience', 'orders-api'],
      {
        REDIS_URL: redis.url,
        MATRYOSHKA_ALLOW_INSECURE_ISSUERS: 'true',
      },
    );
    assert.equal(added.code, 0, `issuer add failed: ${added.stderr}`);
    assert.match(added.stdout, /registered for tenant acme/);
    // The CLI only writes the registry: no discovery and no key fetch happen before the first Check.
    assert.equal(idp.discoveryHits, 0);
    assert.equal(idp.jwksHits, 0);
    token = await idp.clientCredentialsToken();
    harness = await startHarness({
      env: { REDIS_URL: redis.url, MATRYOSHKA_DEBUG_REASONS: 'true' },
    });
  });

  after(async () => {
    await harness?.stop();
    await idp?.stop();
    await redis?.dispose();
  });

  it('the IdP issues a real ES256 JWT access token for the client', () => {
    const header = decodeProtectedHeader(token);
    const claims = decodeJwt(token);
    assert.equal(header.alg, 'ES256');
    assert.equal(typeof header.kid, 'string');
    assert.equal(claims.iss, idp.issuer);
    assert.equal(claims.sub, idp.clientId, 'a client-credentials token names the client as sub');
    assert.equal(claims.aud, 'orders-api');
    assert.ok(typeof claims.exp === 'number' && claims.exp > Date.now() / 1000);
  });

  it('allows 200 Checks with the token, fetching discovery and the JWKS exactly once', async () => {
    const client = harness!.client;
    // The registry change reaches the service through Redis; poll (bounded) until it is in effect.
    const deadline = Date.now() + 2000;
    let first: CheckResult;
    for (;;) {
      first = await client.check({ token, sid: 'orders' });
      if (first.allowed || Date.now() > deadline) break;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    assert.equal(
      first.allowed,
      true,
      `not allowed within 2 s: ${first.httpStatus} ${first.headers['x-authz-reason'] ?? ''}`,
    );

    const results: CheckResult[] = [first];
    const batch = 20;
    while (results.length < 200) {
      const size = Math.min(batch, 200 - results.length);
      results.push(
        ...(await Promise.all(
          Array.from({ length: size }, () => client.check({ token, sid: 'orders' })),
        )),
      );
    }
    assert.equal(results.length, 200);
    for (const [i, result] of results.entries()) {
      assert.equal(
        result.allowed,
        true,
        `check ${i} denied: ${result.httpStatus} ${result.headers['x-authz-reason'] ?? ''}`,
      );
      assert.equal(result.headers['x-user-id'], idp.clientId);
      assert.equal(result.headers['x-tenant-id'], 'acme');
      assert.equal(result.headers['x-auth-chain'], 'orders');
      assert.ok(
        result.forwardedToken !== undefined && result.forwardedToken !== token,
        'a freshly minted token goes upstream',
      );
    }
    assert.equal(idp.discoveryHits, 1, 'discovery fetched once');
    assert.equal(idp.jwksHits, 1, 'JWKS fetched once for 200 checks');
  });

  it('denies a token from the same IdP whose signature was broken (401), without refetching keys', async () => {
    const forged = breakSignature(token);
    assert.notEqual(forged, token);
    const result = await harness!.client.check({ token: forged, sid: 'orders' });
    assert.equal(result.allowed, false);
    assert.equal(result.httpStatus, 401);
    assert.equal(result.headers['x-authz-reason'], 'bad_signature');
    assert.match(result.headers['www-authenticate'] ?? '', /invalid_token/);
    assert.equal(result.headers['x-user-id'], undefined);
    assert.equal(idp.jwksHits, 1, 'a known kid with a bad signature is no reason to refetch');
  });

  it('checks the audience registered with --audience: a token for another API is denied 401', async () => {
    const billing = await idp.clientCredentialsToken({ resource: BILLING_RESOURCE });
    assert.equal(decodeJwt(billing).aud, 'billing-api');
    const result = await harness!.client.check({ token: billing, sid: 'orders' });
    assert.equal(result.allowed, false);
    assert.equal(result.httpStatus, 401);
    assert.equal(result.headers['x-authz-reason'], 'audience_mismatch');
  });
});
