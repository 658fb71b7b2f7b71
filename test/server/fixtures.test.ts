import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { type Harness, startHarness } from '../helpers/harness.js';
import { checkRaw, encodeCheckRequest, loadWireRoot } from '../helpers/wire.js';

const FIXTURES = fileURLToPath(new URL('../../../test/fixtures/checkrequests/', import.meta.url));
const files = readdirSync(FIXTURES)
  .filter((f) => f.endsWith('.json'))
  .sort();

describe('CheckRequests captured from real Envoy, Istio and OPA deployments', () => {
  let h: Harness;
  const root = loadWireRoot();
  before(async () => {
    h = await startHarness();
  });
  after(() => h.stop());

  it('finds the fixtures', () => {
    assert.ok(files.length >= 6, `fixtures in ${FIXTURES}`);
  });

  for (const file of files) {
    it(`${file} decodes and gets a clean denial`, async () => {
      const json = JSON.parse(readFileSync(`${FIXTURES}${file}`, 'utf8')) as {
        attributes: { request: { http: { headers: Record<string, string> } } };
      };
      const bytes = encodeCheckRequest(root, json);
      const response = await checkRaw(`127.0.0.1:${h.service.grpcPort}`, bytes, root);
      const status = response['status'] as { code?: number };
      assert.ok([16, 7].includes(status.code ?? 0), `gRPC status ${status.code}`);
      const denied = response['deniedResponse'] as {
        status: { code: string };
        body: string;
        headers: Array<{ header: { key: string; value: string } }>;
      };
      assert.ok(denied, 'a denied_response');
      assert.equal(response['okResponse'], undefined);
      assert.ok(['Unauthorized', 'Forbidden'].includes(denied.status.code));
      const body = JSON.parse(denied.body) as Record<string, unknown>;
      assert.deepEqual(Object.keys(body).sort(), ['error', 'request_id']);
      const envoyRequestId = json.attributes.request.http.headers['x-request-id'];
      if (envoyRequestId !== undefined)
        assert.equal(body['request_id'], envoyRequestId, "Envoy's request id is kept");
      const line = h.logs.findLast((l) => l['msg'] === 'check');
      assert.equal(line?.['request_id'], body['request_id']);
      assert.match(String(line?.['reason']), /^(missing_token|malformed_token|untrusted_issuer)$/);
    });
  }
});
