import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LocalIssuer } from '../../src/demo/local-issuer.js';
import { compactSign } from '../../src/keys/jws-crypto.js';
import { OwnKeys, generateKeyFile } from '../../src/keys/own-keys.js';
import { startHarness } from '../helpers/harness.js';
import { localIssuer, tenant } from '../helpers/records.js';
import { suiteParts } from '../helpers/suite-parts.js';
import { payloadOf } from './txn-service.js';

/**
 * Two replicas with one key file, compact chains: the transaction id lives in the levels, so a hop
 * answered by the other replica (which never saw the first) carries the same txn and accepts the
 * Txn-Token its peer signed.
 */
describe('Txn-Tokens across replicas sharing keys (compact chains)', () => {
  const s = suiteParts(async (own) => {
    const idp = own(await LocalIssuer.start());
    const keys = await OwnKeys.fromJwkSet(await generateKeyFile());
    const options = {
      env: { MATRYOSHKA_TRUST_DOMAIN: 'td.example', MATRYOSHKA_CHAIN_FORMAT: 'compact' },
      ownKeys: keys,
      contents: {
        issuers: [localIssuer(idp, 'acme')],
        tenants: [tenant('acme', { txn_tokens: true })],
      },
    };
    const a = own(await startHarness(options));
    const b = own(await startHarness(options));
    return { idp, keys, a, b };
  });

  it('keeps txn and passes the peer’s Txn-Token on, hop after hop, alternating replicas', async () => {
    const first = await s.a.client.check({
      token: await s.idp.mint({ sub: 'alice' }),
      sid: 'gateway',
    });
    const txnToken = first.headers['txn-token'] as string;
    const txn = payloadOf(txnToken)['txn'];
    let token = first.forwardedToken as string;
    for (const [h, sid] of [
      [s.b, 'orders'],
      [s.a, 'billing'],
      [s.b, 'ledger'],
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
      compactSign(s.keys.signing.alg, s.keys.signing.kid, s.keys.signing.privateKey, {
        iss: 'urn:matryoshka:authz',
        sub: 'alice',
        aud: 'urn:matryoshka:authz',
        iat: now,
        exp: now + 60,
        tenant_id: 'acme',
        txn,
        auth_stack: { fmt: 'JWT', sid, depth, container },
      });
    const origin = await s.idp.mint({ sub: 'alice' });
    const same = level('t-1', 'orders', 2, level('t-1', 'gateway', 1, origin));
    assert.equal((await s.a.client.check({ token: same, sid: 'billing' })).allowed, true);
    const two = level('t-2', 'orders', 2, level('t-1', 'gateway', 1, origin));
    const result = await s.a.client.check({ token: two, sid: 'billing' });
    assert.equal(result.metadata['reason'], 'stack_malformed');
  });
});
