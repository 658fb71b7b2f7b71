/**
 * A token that is present is never read as an absent one. In dry-run a token-less request passes
 * (missing_token is a policy reason), so whatever decides "token-less" decides what shadow mode
 * lets through unverified: a Txn-Token beside an `authorization` that is empty or of another scheme
 * (`Basic …`), a Bearer credential beside another in one joined header (`Basic …,Bearer …`, how
 * Envoy joins two), and a Bearer scheme with its value trimmed away (`Bearer`).
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { describe, it } from 'node:test';
import { service, tenant } from '../helpers/records.js';
import { TRUST_DOMAIN, idpAndTts, txnSuite } from './txn-service.js';

const BASIC = 'Basic YWxpY2U6c2VjcmV0';

describe('MATRYOSHKA_MODE=shadow: a credential beside or inside another is never token-less', () => {
  const s = txnSuite((idp, tts) => ({
    env: { MATRYOSHKA_MODE: 'shadow' },
    contents: {
      issuers: idpAndTts(idp, tts),
      tenants: [tenant('acme')],
      services: [service('orders')],
    },
  }));

  const txnToken = () => s.tts.issue({ aud: TRUST_DOMAIN, sub: 'alice', txn: randomUUID() });
  async function tampered(): Promise<string> {
    const [head, body, sig] = (await txnToken()).split('.');
    const claims = JSON.parse(Buffer.from(body as string, 'base64url').toString());
    const forged = Buffer.from(JSON.stringify({ ...claims, sub: 'root' })).toString('base64url');
    return `${head}.${forged}.${sig}`;
  }

  it('a tampered Txn-Token beside an empty or a Basic authorization is refused (bad_signature), not let through as token-less', async () => {
    const forged = await tampered();
    for (const authorization of ['', ' ', BASIC]) {
      const result = await s.h.client.check({
        sid: 'orders',
        headers: { authorization, 'txn-token': forged },
      });
      assert.equal(result.allowed, false, `${JSON.stringify(authorization)}: ${result.body}`);
      assert.equal(result.metadata['reason'], 'bad_signature');
    }
  });

  it('a genuine Txn-Token beside a Basic authorization stands as the origin, as without one', async () => {
    const token = await txnToken();
    const result = await s.h.client.check({
      sid: 'orders',
      headers: { authorization: BASIC, 'txn-token': token },
    });
    assert.equal(result.allowed, true, result.body);
    assert.equal(result.headers['x-user-id'], 'alice');
    assert.equal(result.headers['txn-token'], token);
    assert.equal(result.metadata['reason'], undefined);
  });

  it('a Bearer credential joined to another, or a Bearer scheme without a value, is malformed_token', async () => {
    const genuine = await s.idp.mint({ sub: 'alice' });
    for (const authorization of [
      `${BASIC},Bearer forged.token.here`,
      `${BASIC}, bearer ${genuine}`,
      'Bearer',
      'bearer\t',
    ]) {
      const result = await s.h.client.check({ sid: 'orders', headers: { authorization } });
      assert.equal(result.allowed, false, `${authorization.slice(0, 40)}: ${result.body}`);
      assert.equal(result.metadata['reason'], 'malformed_token', authorization.slice(0, 40));
    }
    // One credential of another scheme is still no token: dry-run lets it through, vouching for nothing.
    const basic = await s.h.client.check({ sid: 'orders', headers: { authorization: BASIC } });
    assert.equal(basic.allowed, true, basic.body);
    assert.equal(basic.metadata['reason'], 'missing_token');
    assert.equal(basic.headers['x-user-id'], undefined);
  });
});
