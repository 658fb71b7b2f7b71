import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { attribute } from '../helpers/otlp-receiver.js';
import { tenant } from '../helpers/records.js';
import { tracedServe } from '../helpers/traced-serve.js';
import { payloadOf } from './txn-service.js';

/** The Check span of a real `serve` process records the Txn-Token's txn and whether it was signed here. */
describe('Txn-Tokens in the trace', () => {
  const app = tracedServe({
    tenants: [tenant('acme', { txn_tokens: true })],
    env: { MATRYOSHKA_TRUST_DOMAIN: 'td.example' },
  });
  const traced = () => {
    const traceId = randomBytes(16).toString('hex');
    return { traceId, traceparent: `00-${traceId}-${randomBytes(8).toString('hex')}-01` };
  };

  it('sets authz.txn and authz.txn_token (emitted, then carried)', async () => {
    const one = traced();
    const first = await app.client.check({
      token: await app.idp.mint({ sub: 'alice' }),
      sid: 'orders',
      headers: { traceparent: one.traceparent },
    });
    const txnToken = first.headers['txn-token'] as string;
    const txn = payloadOf(txnToken)['txn'];
    const span = await app.spanOf(one.traceId);
    assert.equal(attribute(span, 'authz.txn'), txn);
    assert.equal(attribute(span, 'authz.txn_token'), 'emitted');
    const two = traced();
    await app.client.check({
      token: first.forwardedToken as string,
      sid: 'billing',
      headers: { traceparent: two.traceparent, 'txn-token': txnToken },
    });
    const next = await app.spanOf(two.traceId);
    assert.equal(attribute(next, 'authz.txn'), txn);
    assert.equal(attribute(next, 'authz.txn_token'), 'carried');
  });
});
