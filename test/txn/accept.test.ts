import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { describe, it } from 'node:test';
import { LocalIssuer } from '../../src/demo/local-issuer.js';
import { startHarness } from '../helpers/harness.js';
import { service, tenant } from '../helpers/records.js';
import { suiteParts } from '../helpers/suite-parts.js';
import {
  TRUST_DOMAIN,
  TxnTokenService,
  idpAndTts,
  payloadOf,
  txnServiceIssuer,
} from './txn-service.js';

/**
 * A Txn-Token of a registered Transaction Token Service standing as the chain's origin when the
 * request carries no bearer token; every broken one refused with its own reason, in shadow mode too.
 */
describe('Txn-Tokens accepted from a registered Transaction Token Service', () => {
  const s = suiteParts(async (own) => {
    const idp = own(await LocalIssuer.start());
    const tts = own(await TxnTokenService.start());
    const stranger = own(await TxnTokenService.start());
    const contents = {
      issuers: idpAndTts(idp, tts),
      tenants: [tenant('acme')],
      services: [service('orders'), service('billing', { required_roles: ['buyer'] })],
    };
    const h = own(await startHarness({ env: { MATRYOSHKA_TRUST_DOMAIN: TRUST_DOMAIN }, contents }));
    const shadow = own(
      await startHarness({
        env: { MATRYOSHKA_TRUST_DOMAIN: TRUST_DOMAIN, MATRYOSHKA_MODE: 'shadow' },
        contents,
      }),
    );
    return { idp, tts, stranger, h, shadow };
  });

  const txnToken = (over: Record<string, unknown> = {}, options = {}) =>
    s.tts.issue({ aud: TRUST_DOMAIN, sub: 'alice', txn: randomUUID(), ...over }, options);

  it('stands as the origin without a bearer token, and is passed on unchanged over two hops', async () => {
    const token = await txnToken();
    const first = await s.h.client.check({ sid: 'orders', headers: { 'txn-token': token } });
    assert.equal(first.allowed, true, first.body);
    assert.equal(first.headers['x-user-id'], 'alice');
    assert.equal(first.headers['x-tenant-id'], 'acme');
    assert.equal(first.headers['x-user-roles'], 'buyer', 'roles from tctx.roles');
    assert.equal(
      first.headers['txn-token'],
      token,
      'the upstream sees the service’s own Txn-Token',
    );
    const minted = payloadOf(first.forwardedToken as string);
    assert.equal(minted['txn'], payloadOf(token)['txn'], 'the chain takes the Txn-Token’s txn');
    const second = await s.h.client.check({
      token: first.forwardedToken as string,
      sid: 'billing',
      headers: { 'txn-token': token },
    });
    assert.equal(second.allowed, true, second.body);
    assert.equal(second.headers['txn-token'], token);
    assert.equal(second.headers['x-auth-chain'], 'orders,billing');
    // The chain's origin is the Txn-Token: another of the same service does not match it.
    const other = await s.h.client.check({
      token: first.forwardedToken as string,
      sid: 'billing',
      headers: { 'txn-token': await txnToken() },
    });
    assert.equal(other.metadata['reason'], 'txn_token_mismatch');
  });

  const broken: Array<[string, () => Promise<string>, string]> = [
    [
      'tampered',
      async () => {
        const [head, body, sig] = (await txnToken()).split('.');
        const claims = JSON.parse(Buffer.from(body as string, 'base64url').toString());
        const more = Buffer.from(JSON.stringify({ ...claims, sub: 'root' })).toString('base64url');
        return `${head}.${more}.${sig}`;
      },
      'bad_signature',
    ],
    ['wrong aud', () => txnToken({ aud: 'other.example' }), 'audience_mismatch'],
    [
      'expired',
      () => txnToken({}, { iat: Math.floor(Date.now() / 1000) - 3600, ttl: 60 }),
      'expired',
    ],
    ['typ-less', () => txnToken({}, { typ: undefined }), 'malformed_token'],
    ['typed JWT', () => txnToken({}, { typ: 'JWT' }), 'malformed_token'],
    [
      'unregistered',
      () => s.stranger.issue({ aud: TRUST_DOMAIN, sub: 'alice', txn: randomUUID() }),
      'untrusted_issuer',
    ],
    ['an ordinary token', () => s.idp.mint({ sub: 'alice' }), 'untrusted_issuer'],
    [
      'not-yet-issued',
      () => txnToken({}, { iat: Math.floor(Date.now() / 1000) + 3600 }),
      'not_yet_valid',
    ],
    ['without txn', () => txnToken({ txn: undefined }), 'malformed_token'],
  ];
  for (const [what, make, reason] of broken) {
    it(`refuses a ${what} Txn-Token as ${reason}, in shadow mode too`, async () => {
      const token = await make();
      for (const harness of [s.h, s.shadow]) {
        const result = await harness.client.check({
          sid: 'orders',
          headers: { 'txn-token': token },
        });
        assert.equal(result.allowed, false, `${what}: ${result.body}`);
        assert.equal(result.metadata['reason'], reason, what);
        assert.equal(result.httpStatus, 401);
      }
    });
  }

  it('accepts the media type written in full (application/txntoken+jwt)', async () => {
    const token = await txnToken({}, { typ: 'application/txntoken+jwt' });
    const result = await s.h.client.check({ sid: 'orders', headers: { 'txn-token': token } });
    assert.equal(result.allowed, true, result.body);
  });

  it('never takes a Txn-Token as a bearer token', async () => {
    const result = await s.h.client.check({ token: await txnToken(), sid: 'orders' });
    assert.equal(result.metadata['reason'], 'untrusted_issuer');
  });

  it('accepts none without a trust domain configured', async () => {
    const bare = await startHarness({
      contents: {
        issuers: [txnServiceIssuer(s.tts, 'acme')],
      },
    });
    try {
      const result = await bare.client.check({
        sid: 'orders',
        headers: { 'txn-token': await txnToken() },
      });
      assert.equal(result.metadata['reason'], 'audience_mismatch');
    } finally {
      await bare.stop();
    }
  });
});
