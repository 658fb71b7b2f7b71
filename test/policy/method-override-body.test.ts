/**
 * A method the upstream may run that the request line does not name: Rails, Laravel, Symfony and
 * Spring's HiddenHttpMethodFilter run the method a POST's `_method` form field names (Laravel reads
 * a JSON body too), and query parsers read `_method` however its name is spelled (`%5Fmethod`, PHP's
 * `.method` and `[method`, after a `#` for Go). We never see the body, so a POST that carries one is
 * decided for every method it could become; a spelling of `_method` in the query is refused.
 *
 * Service `orders`: `export: /orders/export` (admin), `read: GET /orders/*` (reader), `remove:
 * DELETE /orders/*` (admin), no deny_unmatched: a POST to /orders/42 falls to the service's rule.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { localIssuer, ordersWithOperations } from '../helpers/records.js';
import { worldSuiteWith } from '../world/suite.js';

describe('method overrides the service cannot see are decided for every method they may name', () => {
  const h = worldSuiteWith('handler', { idp: {} }, ({ idp }) => ({
    contents: {
      issuers: [localIssuer(idp, 'acme')],
      services: [ordersWithOperations()],
    },
  }));
  const line = () => h.w.logs.findLast((l) => l['msg'] === 'check') as Record<string, unknown>;
  async function post(path: string, roles: string[], headers: Record<string, string> = {}) {
    const token = await h.of('idp').mint({ sub: 'alice', roles });
    const result = await h.w.check({ token, sid: 'orders', method: 'POST', path, headers });
    return { status: result.httpStatus, reason: line()['reason'], operation: line()['operation'] };
  }

  it('a reader POSTing a form, a multipart or a JSON body to /orders/42 is refused (the body may say DELETE)', async () => {
    for (const type of [
      'application/x-www-form-urlencoded',
      'application/x-www-form-urlencoded; charset=utf-8',
      'Multipart/Form-Data; boundary=x',
      'application/json',
      'application/vnd.api+json',
      'text/plain,application/x-www-form-urlencoded',
    ]) {
      const r = await post('/orders/42', ['reader'], { 'content-type': type });
      assert.equal(r.status, 400, type);
      assert.equal(r.reason, 'invalid_path', type);
    }
  });

  it('a spelling of _method in the query is refused, however a framework would decode its name', async () => {
    for (const query of [
      '%5Fmethod=DELETE',
      '%5fMETHOD=DELETE',
      '.method=DELETE',
      '[method=DELETE',
      '_method[]=DELETE',
      'a=1#&_method=DELETE',
      '+_method=DELETE',
    ]) {
      const r = await post(`/orders/42?${query}`, ['reader']);
      assert.equal(r.status, 400, query);
      assert.equal(r.reason, 'invalid_path', query);
    }
  });

  it('a POST whose body cannot name a method, or whose every method reads alike, is decided as before', async () => {
    // No body type, a gRPC body, plain text: decided as the POST it is (the service's rule).
    for (const headers of [
      {} as Record<string, string>,
      { 'content-type': 'application/grpc' },
      { 'content-type': 'text/plain' },
    ]) {
      const r = await post('/orders/42', ['reader'], headers);
      assert.equal(r.status, 200, JSON.stringify(headers));
      assert.equal(r.operation, undefined);
    }
    // Every method of /orders/export is the export operation: a form POST there is export's.
    const form = { 'content-type': 'application/x-www-form-urlencoded' };
    const admin = await post('/orders/export', ['admin'], form);
    assert.equal(admin.status, 200);
    assert.equal(admin.operation, 'export');
    const reader = await post('/orders/export', ['reader'], form);
    assert.equal(reader.status, 403);
    assert.equal(reader.reason, 'role_missing');
  });
});
