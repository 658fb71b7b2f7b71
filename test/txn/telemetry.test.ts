import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { EnvoyLikeClient } from '../../src/demo/envoy-client.js';
import { LocalIssuer } from '../../src/demo/local-issuer.js';
import { type OtlpSpan, OtlpReceiver, attribute } from '../helpers/otlp-receiver.js';
import { type Served, spawnServe } from '../helpers/processes.js';
import { payloadOf } from './txn-service.js';

/** The Check span of a real `serve` process records the Txn-Token's txn and whether it was signed here. */
describe('Txn-Tokens in the trace', () => {
  let idp: LocalIssuer;
  let receiver: OtlpReceiver;
  let served: Served;
  let client: EnvoyLikeClient;
  before(async () => {
    idp = await LocalIssuer.start();
    receiver = await OtlpReceiver.start();
    const dir = mkdtempSync(join(tmpdir(), 'matryoshka-txn-'));
    const file = join(dir, 'registry.yaml');
    writeFileSync(
      file,
      `issuers:\n  - issuer: ${idp.issuer}\n    tenant: acme\n    jwks_uri: ${idp.jwksUri}\ntenants:\n  acme:\n    txn_tokens: true\n`,
    );
    served = await spawnServe({
      MATRYOSHKA_REGISTRY_FILE: file,
      MATRYOSHKA_ALLOW_INSECURE_ISSUERS: 'true',
      MATRYOSHKA_TRUST_DOMAIN: 'td.example',
      ...receiver.env,
    });
    client = new EnvoyLikeClient(`127.0.0.1:${served.grpcPort}`);
  });
  after(async () => {
    client.close();
    await served.stop();
    await receiver.stop();
    await idp.stop();
  });

  const spanOf = (traceId: string): Promise<OtlpSpan> => receiver.serverSpan(traceId);
  const traced = () => {
    const traceId = randomBytes(16).toString('hex');
    return { traceId, traceparent: `00-${traceId}-${randomBytes(8).toString('hex')}-01` };
  };

  it('sets authz.txn and authz.txn_token (emitted, then carried)', async () => {
    const one = traced();
    const first = await client.check({
      token: await idp.mint({ sub: 'alice' }),
      sid: 'orders',
      headers: { traceparent: one.traceparent },
    });
    const txnToken = first.headers['txn-token'] as string;
    const txn = payloadOf(txnToken)['txn'];
    const span = await spanOf(one.traceId);
    assert.equal(attribute(span, 'authz.txn'), txn);
    assert.equal(attribute(span, 'authz.txn_token'), 'emitted');
    const two = traced();
    await client.check({
      token: first.forwardedToken as string,
      sid: 'billing',
      headers: { traceparent: two.traceparent, 'txn-token': txnToken },
    });
    const next = await spanOf(two.traceId);
    assert.equal(attribute(next, 'authz.txn'), txn);
    assert.equal(attribute(next, 'authz.txn_token'), 'carried');
  });
});
