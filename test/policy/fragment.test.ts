/**
 * A `#` in the request target. HTTP has no fragment there (RFC 9112 §3.2), but nginx passes one on
 * as written (its `$request_uri`, and the raw target to an upstream behind `proxy_pass` without a
 * URI), and a server that takes the target as given (Go's net/http) reads `/orders/read#/../export`
 * as a path that cleans to /orders/export. Cutting at `#`, the matcher read /orders/read and let a
 * reader through as `read`: refused now, wherever the `#` stands.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { readRequestPath } from '../../src/request-path.js';
import { localIssuer, service } from '../helpers/records.js';
import { worldSuiteWith } from '../world/suite.js';

describe('a # in the request target is refused, never cut off', () => {
  const h = worldSuiteWith('handler', { idp: {} }, ({ idp }) => ({
    contents: {
      issuers: [localIssuer(idp, 'acme')],
      services: [
        service('orders', {
          tenant: 'acme',
          operations: [
            { name: 'export', path: '/orders/export', required_roles: ['admin'] },
            { name: 'read', path: '/orders/*', methods: ['GET'], required_roles: ['reader'] },
          ],
        }),
      ],
    },
  }));

  it('a reader is refused (invalid_path) for every placement of #', async () => {
    const token = await h.of('idp').mint({ sub: 'rita', roles: ['reader'] });
    for (const path of [
      '/orders/read#/../export',
      '/orders/read#',
      '/orders/42?a=1#/../export',
      '/orders/42#?x',
    ]) {
      const result = await h.w.check({ token, sid: 'orders', method: 'GET', path });
      assert.equal(result.httpStatus, 400, path);
      assert.equal(h.w.lastReason(), 'invalid_path', path);
    }
    const plain = await h.w.check({ token, sid: 'orders', method: 'GET', path: '/orders/42?a=1' });
    assert.equal(plain.httpStatus, 200, 'the same request without a # is read as before');
  });

  it('the canonical view says why', () => {
    const read = readRequestPath('/orders/read#/../export');
    assert.equal(read.ok, false);
    assert.match(read.ok ? '' : read.problem, /#/);
  });
});
