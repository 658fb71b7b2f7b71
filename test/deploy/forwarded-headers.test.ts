/**
 * Every shipped forward-auth config sets or clears every forwarded header the service reads
 * (FORWARDED_ATTRIBUTES), so a client's copy of one never reaches the decision. nginx and Caddy are
 * also run for real (test/proxies/request-view.test.ts); ingress-nginx and Traefik are not packaged
 * here, so their files are read the way the controllers do.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parseAllDocuments } from 'yaml';
import { FORWARDED_ATTRIBUTES } from '../../src/server/http-authz-request.js';
import { ROOT } from '../helpers/processes.js';

const NAMES: readonly string[] = Object.values(FORWARDED_ATTRIBUTES).flat();
const read = (path: string): string => readFileSync(join(ROOT, path), 'utf8');

/** The text of the `{ … }` block that starts at the first line matching `opening`. */
function block(text: string, opening: RegExp): string {
  const start = text.search(opening);
  assert.ok(start >= 0, `no block ${opening}`);
  let depth = 0;
  for (let i = text.indexOf('{', start); i < text.length; i++) {
    if (text[i] === '{') depth++;
    if (text[i] === '}' && --depth === 0) return text.slice(start, i + 1);
  }
  throw new Error(`unclosed block ${opening}`);
}

describe('shipped forward-auth configs describe the original request from the proxy alone', () => {
  it('the service reads the method and the uri, each under two names', () => {
    assert.deepEqual([...NAMES].sort(), [
      'x-forwarded-method',
      'x-forwarded-uri',
      'x-original-method',
      'x-original-uri',
    ]);
  });

  it('nginx: the authorization subrequest sets or clears each name', () => {
    const location = block(read('deploy/nginx/authz.conf'), /location = \/_matryoshka_authz/);
    const set = [...location.matchAll(/^[ \t]*proxy_set_header[ \t]+(\S+)[ \t]+(\S+);/gm)].map(
      (m) => [(m[1] as string).toLowerCase(), m[2] as string],
    );
    for (const name of NAMES)
      assert.ok(
        set.some(([n]) => n === name),
        `${name} is neither set nor cleared`,
      );
    // The ones it sets come from nginx's own view of the request.
    const values = new Map(set as Array<[string, string]>);
    assert.equal(values.get('x-original-uri'), '$request_uri');
    assert.equal(values.get('x-original-method'), '$request_method');
    assert.equal(values.get('x-forwarded-uri'), '""');
    assert.equal(values.get('x-forwarded-method'), '""');
  });

  it('ingress-nginx: the controller sets X-Original-*, the auth-proxy-set-headers ConfigMap clears the rest', () => {
    const docs = parseAllDocuments(read('deploy/nginx/ingress-nginx.yaml')).map((d) => d.toJS());
    const ingress = docs.find((d) => d.kind === 'Ingress');
    const annotations = ingress.metadata.annotations as Record<string, string>;
    // ingress-nginx sets X-Original-URI only when auth-method is set; X-Original-Method always.
    assert.ok(annotations['nginx.ingress.kubernetes.io/auth-method']);
    const controllerSets = ['x-original-uri', 'x-original-method'];
    const [namespace, name] = String(
      annotations['nginx.ingress.kubernetes.io/auth-proxy-set-headers'],
    ).split('/');
    const map = docs.find(
      (d) =>
        d.kind === 'ConfigMap' && d.metadata.name === name && d.metadata.namespace === namespace,
    );
    assert.ok(map, `ConfigMap ${namespace}/${name} ships with the Ingress`);
    const cleared = Object.entries(map.data as Record<string, string>)
      .filter(([, value]) => value === '')
      .map(([key]) => key.toLowerCase());
    for (const header of NAMES)
      assert.ok(
        controllerSets.includes(header) || cleared.includes(header),
        `${header} is neither set nor cleared`,
      );
  });

  it('Caddy: the check sets X-Forwarded-* and removes X-Original-*', () => {
    const snippet = block(read('deploy/caddy/Caddyfile'), /\(matryoshka_authz\)/);
    const check = block(snippet, /reverse_proxy matryoshka-authz/);
    const ups = [...check.matchAll(/^[ \t]*header_up[ \t]+(-?)(\S+)(?:[ \t]+(\S+))?/gm)].map(
      (m) => ({
        remove: m[1] === '-',
        name: (m[2] as string).toLowerCase(),
        value: m[3],
      }),
    );
    const get = (name: string) => ups.find((u) => u.name === name);
    assert.equal(get('x-forwarded-uri')?.value, '{uri}');
    assert.equal(get('x-forwarded-method')?.value, '{method}');
    assert.equal(get('x-original-uri')?.remove, true);
    assert.equal(get('x-original-method')?.remove, true);
    assert.doesNotMatch(snippet, /copy_headers/, 'copy_headers sends placeholders on Caddy 2.6');
  });

  it('Traefik: sets X-Forwarded-* itself and forwards no client copy of any name', () => {
    const [middleware] = parseAllDocuments(read('deploy/traefik/forward-auth.yaml')).map((d) =>
      d.toJS(),
    );
    const forwardAuth = middleware.spec.forwardAuth;
    assert.equal(forwardAuth.trustForwardHeader, false);
    const passed = (forwardAuth.authRequestHeaders as string[]).map((h) => h.toLowerCase());
    for (const name of NAMES)
      assert.ok(!passed.includes(name), `${name} is passed from the client`);
  });
});
