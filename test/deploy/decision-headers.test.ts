/**
 * Every shipped proxy config that sends the authorizer an allow-list of request headers lists every
 * header the per-operation matcher reads (DECISION_REQUEST_HEADERS: the method-override headers and
 * Content-Type). Without them the service never sees `X-HTTP-Method-Override: DELETE` on a GET, or
 * the form body of a POST that may carry `_method`, and decides for the request line's method while
 * the upstream runs another.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parseAllDocuments } from 'yaml';
import { IDENTITY_HEADERS } from '../../src/pipeline/owned-headers.js';
import { DECISION_REQUEST_HEADERS, METHOD_OVERRIDE_HEADERS } from '../../src/request-path.js';
import { ROOT } from '../helpers/processes.js';

const docsOf = (path: string): Array<Record<string, unknown>> =>
  parseAllDocuments(readFileSync(join(ROOT, path), 'utf8')).map(
    (d) => d.toJS() as Record<string, unknown>,
  );

/** Every value under a key named `key`, anywhere in `node`. */
function under(node: unknown, key: string): unknown[] {
  if (node === null || typeof node !== 'object') return [];
  const out: unknown[] = [];
  for (const [k, v] of Object.entries(node as Record<string, unknown>)) {
    if (k === key) out.push(v);
    out.push(...under(v, key));
  }
  return out;
}

function missing(sent: readonly string[]): string[] {
  const lower = sent.map((name) => name.toLowerCase());
  return DECISION_REQUEST_HEADERS.filter((name) => !lower.includes(name));
}

describe('shipped configs send the authorizer every request header its matcher reads', () => {
  it('the matcher reads the method-override headers and Content-Type', () => {
    assert.deepEqual([...DECISION_REQUEST_HEADERS].sort(), [
      'content-type',
      'x-http-method',
      'x-http-method-override',
      'x-method-override',
    ]);
  });

  for (const path of ['envoy/envoy.yaml', 'envoy/envoy-http.yaml']) {
    it(`${path}: ext_authz allowed_headers`, () => {
      const lists = docsOf(path).flatMap((d) => under(d, 'allowed_headers'));
      assert.ok(lists.length > 0, 'an ext_authz filter with allowed_headers');
      for (const list of lists) {
        const exact = under(list, 'exact').filter((v): v is string => typeof v === 'string');
        assert.deepEqual(missing(exact), [], `${path} does not send them`);
      }
    });
  }

  it('Istio envoyExtAuthzHttp includeRequestHeadersInCheck', () => {
    const lists = docsOf('deploy/istio/mesh-config-http.yaml').flatMap((d) =>
      under(d, 'includeRequestHeadersInCheck'),
    );
    assert.ok(lists.length > 0);
    for (const list of lists) assert.deepEqual(missing(list as string[]), []);
  });

  it('Traefik forwardAuth authRequestHeaders', () => {
    const lists = docsOf('deploy/traefik/forward-auth.yaml').flatMap((d) =>
      under(d, 'authRequestHeaders'),
    );
    assert.ok(lists.length > 0);
    for (const list of lists) assert.deepEqual(missing(list as string[]), []);
  });
});

describe('Traefik removes the _ spellings of the headers the service owns and of the method overrides', () => {
  it('a headers middleware on the route removes each (an empty customRequestHeaders value)', () => {
    const docs = docsOf('deploy/traefik/forward-auth.yaml');
    const strip = docs.find(
      (d) => d['kind'] === 'Middleware' && under(d, 'customRequestHeaders').length > 0,
    );
    assert.ok(strip !== undefined, 'a headers middleware');
    const removed = Object.entries(
      under(strip, 'customRequestHeaders')[0] as Record<string, string>,
    )
      .filter(([, value]) => value === '')
      .map(([name]) => name.toLowerCase());
    for (const name of [...IDENTITY_HEADERS, ...METHOD_OVERRIDE_HEADERS])
      assert.ok(removed.includes(name.replace(/-/g, '_')), `${name.replace(/-/g, '_')} is removed`);
    const route = docs.find((d) => d['kind'] === 'IngressRoute');
    const used = under(route, 'middlewares').flatMap((list) =>
      (list as Array<{ name: string }>).map((m) => m.name),
    );
    assert.ok(used.includes(String((strip['metadata'] as { name: string }).name)));
  });
});
