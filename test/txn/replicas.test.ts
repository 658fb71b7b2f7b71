import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { LocalIssuer } from '../../src/demo/local-issuer.js';
import { compactSign } from '../../src/keys/jws-crypto.js';
import { OwnKeys, generateKeyFile } from '../../src/keys/own-keys.js';
import { type Harness, startHarness } from '../helpers/harness.js';
import { issuer, tenant } from '../helpers/records.js';
import { payloadOf } from './txn-service.js';

/**
 * Two replicas with one key file, compact chains: the transaction id lives in the levels, so a hop
 * answered by the other replica (which never saw the first) carries the same txn and accepts the
 * Txn-Token its peer signed.
 */
describe('Txn-Tokens across replicas sharing keys (compact chains)', () => {
  let idp: LocalIssuer;
  let a: Harness;
  let b: Harness;
  let keys: OwnKeys;
  before(async () => {
    idp = await LocalIssuer.start();
    keys = await OwnKeys.fromJwkSet(await generateKeyFile());
    const options = {
      env: { MATRYOSHKA_TRUST_DOMAIN: 'td.example', MATRYOSHKA_CHAIN_FORMAT: 'compact' },
      ownKeys: keys,
      contents: {
        issuers: [issuer({ issuer: idp.issuer, tenant: 'acme', jwks_uri: idp.jwksUri })],
        tenants: [tenant('acme', { txn_tokens: true })],
      },
    };
    a = await startHarness(options);
    b = await startHarness(options);
  });
  after(async () => {
    await a?.stop();
    await b?.stop();
    await idp?.stop();
  });

  it('keeps txn and passes the peer’s Txn-Token on, hop after hop, alternating replicas', async () => {
    const first = await a.client.check({ token: await idp.mint({ sub: 'alice' }), sid: 'gateway' });
    const txnToken = first.headers['txn-token'] as string;
    const txn = payloadOf(txnToken)['txn'];
    let token = first.forwardedToken as string;
    for (const [h, sid] of [
      [b, 'orders'],
      [a, 'billing'],
      [b, 'ledger'],
    ] as const) {
      const hop = await h.client.check({ token, sid, headers: { 'txn-token': txnToken } });
      assert.equal(hop.allowed, true, `${sid}: ${hop.body}`);
      assert.equal(hop.headers['txn-token'], txnToken, sid);
      token = hop.forwardedToken as string;
      assert.equal(payloadOf(token)['txn'], txn, sid);
      assert.equal((payloadOf(token)['auth_stack'] as { form?: string }).form, 'compact');
    }
  });

  it('refuses a chain whose levels name two transactions, even under our own signature', async () => {
    const now = Math.floor(Date.now() / 1000);
    const level = (txn: string, sid: string, depth: number, container: string): string =>
      compactSign(keys.signing.alg, keys.signing.kid, keys.signing.privateKey, {
        iss: 'urn:matryoshka:authz',
        sub: 'alice',
        aud: 'urn:matryoshka:authz',
        iat: now,
        exp: now + 60,
        tenant_id: 'acme',
        txn,
        auth_stack: { fmt: 'JWT', sid, depth, container },
      });
    const origin = await idp.mint({ sub: 'alice' });
    const same = level('t-1', 'orders', 2, level('t-1', 'gateway', 1, origin));
    assert.equal((await a.client.check({ token: same, sid: 'billing' })).allowed, true);
    const two = level('t-2', 'orders', 2, level('t-1', 'gateway', 1, origin));
    const result = await a.client.check({ token: two, sid: 'billing' });
    assert.equal(result.metadata['reason'], 'stack_malformed');
  });
});
