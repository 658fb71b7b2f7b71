/** Paths as per-operation rules read them: refused when ambiguous, matched case-sensitively. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parsePathPattern, pathMatches, readRequestPath } from '../../src/request-path.js';

describe('request paths', () => {
  it('drops the query, refuses a fragment, keeps case, allows one trailing slash', () => {
    assert.equal(readRequestPath('/orders/42?x=1#y').ok, false);
    assert.deepEqual(readRequestPath('/orders/42?x=1'), {
      ok: true,
      path: '/orders/42',
      segments: ['orders', '42'],
      decoded: ['orders', '42'],
    });
    assert.deepEqual(readRequestPath('/Orders'), {
      ok: true,
      path: '/Orders',
      segments: ['Orders'],
      decoded: ['Orders'],
    });
    assert.deepEqual(readRequestPath('/orders/'), {
      ok: true,
      path: '/orders/',
      segments: ['orders'],
      decoded: ['orders'],
    });
    assert.deepEqual(readRequestPath('/'), { ok: true, path: '/', segments: [], decoded: [] });
  });

  it('refuses every path two servers could read two ways', () => {
    const refused = [
      '/orders/../admin',
      '/orders/./admin',
      '/orders/%2e%2e/admin',
      '/orders/%2E%2E/admin',
      '/orders%2fadmin',
      '/orders%2Fadmin',
      '/orders%5cadmin',
      '//admin',
      '/orders//admin',
      '/orders\\admin',
      '/orders/1;x',
      '/orders/1;jsessionid=x',
      'orders',
      '',
      '/orders/a b',
      '/orders/\u0000',
      '/orders/\u00e9',
      `/${'a'.repeat(5000)}`,
    ];
    for (const path of refused) assert.equal(readRequestPath(path).ok, false, JSON.stringify(path));
  });

  it('matches * as one segment and a final ** as any rest, literally otherwise', () => {
    const pattern = (text: string) => {
      const p = parsePathPattern(text);
      assert.ok(typeof p !== 'string', String(p));
      return p;
    };
    const segs = (path: string) => {
      const r = readRequestPath(path);
      assert.ok(r.ok);
      return r.segments;
    };
    assert.equal(pathMatches(pattern('/orders/*'), segs('/orders/42')), true);
    assert.equal(pathMatches(pattern('/orders/*'), segs('/orders')), false);
    assert.equal(pathMatches(pattern('/orders/*'), segs('/orders/42/items')), false);
    assert.equal(pathMatches(pattern('/orders/*'), segs('/Orders/42')), false);
    assert.equal(pathMatches(pattern('/orders'), segs('/orders/')), true);
    assert.equal(pathMatches(pattern('/orders/**'), segs('/orders')), true);
    assert.equal(pathMatches(pattern('/orders/**'), segs('/orders/42/items')), true);
    assert.equal(pathMatches(pattern('/shop.Cart/*'), segs('/shop.Cart/Add')), true);
    assert.equal(pathMatches(pattern('/shop.Cart/Add'), segs('/shop.Cart/Remove')), false);
    for (const bad of ['/orders/a*', '/orders/**/x', 'orders', '/a/../b', '/a?x', '//a']) {
      assert.equal(typeof parsePathPattern(bad), 'string', bad);
    }
  });
});
