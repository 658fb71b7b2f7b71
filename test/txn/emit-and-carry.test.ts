import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import type { CheckResult } from '../../src/demo/envoy-client.js';
import { startHarness } from '../helpers/harness.js';
import { localIssuer, service, tenant } from '../helpers/records.js';
import { TRUST_DOMAIN, payloadOf, txnSuite } from './txn-service.js';

/**
 * Emitting a Txn-Token beside the chain (gRPC, Envoy's messages): signed with the service's own
 * keys, claims from what the chain proves, passed on unchanged at the next hop and checked there
 * against the chain.
 */
describe('Txn-Tokens emitted beside the chain', () => {
  const s = txnSuite((idp) => ({
    contents: {
      issuers: [
        localIssuer(idp, 'acme'),
        // The same IdP under another name, for tenant quiet.
        localIssuer(
          { issuer: idp.issuer.replace('127.0.0.1', 'localhost'), jwksUri: idp.jwksUri },
          'quiet',
        ),
      ],
      tenants: [tenant('acme', { txn_tokens: true }), tenant('quiet')],
      services: [
        service('orders', {
          operations: [{ name: 'orders.read', path: '/orders/*', methods: ['GET'] }],
        }),
        service('billing'),
        service('ledger'),
      ],
    },
  }));

  const origin = () => s.idp.mint({ sub: 'alice', roles: ['buyer', 'reader'] });
  /** The hop after `previous`, to `sid`, with the token it forwarded and the Txn-Token given. */
  const nextHop = (previous: CheckResult, sid: string, txnToken?: string) =>
    s.h.client.check({
      token: previous.forwardedToken as string,
      sid,
      ...(txnToken === undefined ? {} : { headers: { 'txn-token': txnToken } }),
    });
  /** A new chain's first hop, to orders: it answers a new Txn-Token. */
  const firstHop = async () =>
    s.h.client.check({ token: await origin(), sid: 'orders', path: '/orders/1', method: 'GET' });

  it('answers a Txn-Token signed with the keys of its JWKS, claims filled from the chain', async () => {
    const first = await s.h.client.check({
      token: await origin(),
      sid: 'orders',
      path: '/orders/7',
      method: 'GET',
      sourcePrincipal: 'spiffe://td.example/ns/edge/sa/gateway',
    });
    assert.equal(first.allowed, true, first.body);
    const txnToken = first.headers['txn-token'];
    assert.ok(txnToken, 'a Txn-Token is answered');
    const jwks = createRemoteJWKSet(
      new URL(`http://127.0.0.1:${s.h.service.httpPort}/.well-known/jwks.json`),
    );
    const { payload, protectedHeader } = await jwtVerify(txnToken, jwks, {
      typ: 'txntoken+jwt',
      audience: TRUST_DOMAIN,
    });
    assert.equal(protectedHeader.typ, 'txntoken+jwt');
    assert.equal(payload.sub, 'alice');
    assert.match(String(payload['txn']), /^[0-9a-f-]{36}$/);
    assert.equal(payload['scope'], 'orders.read', 'scope: the matched operation');
    assert.equal(payload['req_wl'], 'spiffe://td.example/ns/edge/sa/gateway');
    assert.deepEqual(payload['tctx'], { tenant_id: 'acme', roles: ['buyer', 'reader'] });
    const minted = payloadOf(first.forwardedToken as string);
    assert.equal(minted['txn'], payload['txn'], 'the minted level carries the same txn');
    assert.ok((payload.exp as number) <= (minted['exp'] as number), 'within the chain lifetime');
    assert.ok((payload.iat as number) <= (payload.exp as number));
    const audit = s.h.logs.findLast((l) => l['msg'] === 'check');
    assert.equal(audit?.['txn'], payload['txn'], 'the audit line records the txn');
    assert.equal(audit?.['txn_token'], 'emitted');
  });

  it('passes the same Txn-Token on, byte for byte, on two more hops: never signed again', async () => {
    const first = await firstHop();
    const txnToken = first.headers['txn-token'] as string;
    const second = await nextHop(first, 'billing', txnToken);
    assert.equal(second.allowed, true, second.body);
    assert.equal(second.headers['txn-token'], txnToken);
    assert.equal(s.h.logs.findLast((l) => l['msg'] === 'check')?.['txn_token'], 'carried');
    const third = await nextHop(second, 'ledger', txnToken);
    assert.equal(third.allowed, true, third.body);
    assert.equal(third.headers['txn-token'], txnToken);
    const txn = payloadOf(txnToken)['txn'];
    for (const hop of [second, third])
      assert.equal(payloadOf(hop.forwardedToken as string)['txn'], txn, 'txn stable on every hop');
  });

  it('a hop whose caller dropped the Txn-Token gets one for the same transaction', async () => {
    const first = await firstHop();
    const second = await nextHop(first, 'billing');
    assert.equal(second.allowed, true, second.body);
    const again = second.headers['txn-token'] as string;
    assert.notEqual(again, first.headers['txn-token']);
    assert.equal(payloadOf(again)['txn'], payloadOf(first.headers['txn-token'] as string)['txn']);
    assert.equal(payloadOf(again)['req_wl'], 'orders', 'requested by the calling workload');
  });

  it('refuses a Txn-Token of another transaction, or of another subject, beside a chain (never shadowed)', async () => {
    const one = await firstHop();
    const other = await firstHop();
    const swapped = await nextHop(one, 'billing', other.headers['txn-token'] as string);
    assert.equal(swapped.allowed, false);
    assert.equal(swapped.httpStatus, 401);
    assert.equal(swapped.metadata['reason'], 'txn_token_mismatch');
    const bob = await s.h.client.check({
      token: await s.idp.mint({ sub: 'bob', roles: [] }),
      sid: 'orders',
      path: '/orders/1',
      method: 'GET',
    });
    const wrongSubject = await nextHop(bob, 'billing', one.headers['txn-token'] as string);
    assert.equal(wrongSubject.metadata['reason'], 'txn_token_mismatch');
  });

  it('refuses a tampered, or a forged, Txn-Token beside a genuine chain', async () => {
    const one = await firstHop();
    const [head, body, sig] = (one.headers['txn-token'] as string).split('.');
    const claims = JSON.parse(Buffer.from(body as string, 'base64url').toString());
    const widened = Buffer.from(JSON.stringify({ ...claims, scope: 'admin' })).toString(
      'base64url',
    );
    const tampered = await nextHop(one, 'billing', `${head}.${widened}.${sig}`);
    assert.equal(tampered.metadata['reason'], 'bad_signature');
    // A Txn-Token from an outside service that is not registered at all.
    const forged = await s.h.client.check({
      token: one.forwardedToken as string,
      sid: 'billing',
      headers: {
        'txn-token': await s.tts.issue({ aud: TRUST_DOMAIN, sub: 'alice', txn: claims.txn }),
      },
    });
    assert.equal(forged.metadata['reason'], 'untrusted_issuer');
    const garbage = await nextHop(one, 'billing', 'not-a-token');
    assert.equal(garbage.metadata['reason'], 'malformed_token');
  });

  it('a tenant without txn_tokens gets none, and a client copy is removed, never passed', async () => {
    const quiet = await s.h.client.check({
      token: await s.idp.mint({ sub: 'carol', roles: [] }, {}).then(() =>
        // the same IdP registered under another name, for tenant quiet
        s.idp.signCompact(
          { typ: 'JWT' },
          JSON.stringify({
            iss: s.idp.issuer.replace('127.0.0.1', 'localhost'),
            sub: 'carol',
            iat: Math.floor(Date.now() / 1000),
            exp: Math.floor(Date.now() / 1000) + 300,
          }),
        ),
      ),
      sid: 'billing',
    });
    assert.equal(quiet.allowed, true, quiet.body);
    assert.equal(quiet.headers['txn-token'], undefined);
    assert.ok(quiet.headersToRemove.includes('txn-token'), 'a client copy is removed');
    assert.equal(
      payloadOf(quiet.forwardedToken as string)['txn'],
      undefined,
      'no txn without Txn-Tokens',
    );
  });

  it('answers unavailable for a tenant with txn_tokens when no trust domain is configured', async () => {
    const bare = await startHarness({
      contents: {
        issuers: [localIssuer(s.idp, 'acme')],
        tenants: [tenant('acme', { txn_tokens: true })],
      },
    });
    try {
      const result = await bare.client.check({ token: await origin(), sid: 'orders' });
      assert.equal(result.allowed, false);
      assert.equal(result.metadata['reason'], 'unavailable');
    } finally {
      await bare.stop();
    }
  });

  it('counts the Txn-Token in the header budget', async () => {
    const token = await s.idp.signCompact(
      { typ: 'JWT' },
      JSON.stringify({
        iss: s.idp.issuer.replace('127.0.0.1', 'localhost'),
        sub: 'alice',
        roles: ['buyer', 'reader'],
        iat: Math.floor(Date.now() / 1000),
        exp: Math.floor(Date.now() / 1000) + 300,
      }),
    );
    const off = await s.h.client.check({ token, sid: 'billing' });
    const offBytes = s.h.logs.findLast((l) => l['msg'] === 'check')?.['header_bytes'] as number;
    const on = await s.h.client.check({ token: await origin(), sid: 'billing' });
    const onBytes = s.h.logs.findLast((l) => l['msg'] === 'check')?.['header_bytes'] as number;
    assert.equal(off.allowed && on.allowed, true);
    const txnToken = on.headers['txn-token'] as string;
    const tokenDelta = (on.forwardedToken as string).length - (off.forwardedToken as string).length;
    const tenantDelta = 'acme'.length - 'quiet'.length;
    assert.equal(
      onBytes - offBytes,
      'txn-token'.length + txnToken.length + tokenDelta + tenantDelta,
    );
  });
});
