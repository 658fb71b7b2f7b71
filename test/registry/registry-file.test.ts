/**
 * Registry records and the embedded-mode registry file (src/registry/records.ts,
 * src/registry/registry-file.ts). Every refusal is one line that names the field at fault.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  DEFAULT_ALGORITHMS,
  RecordError,
  issuerToRaw,
  parseIssuer,
  parseService,
  parseTenant,
} from '../../src/registry/records.js';
import { loadRegistryFile, parseRegistryDocument } from '../../src/registry/registry-file.js';
import { assertNamesField } from '../helpers/names-field.js';

/** The "Registry file" example of product.md, verbatim. */
const PRODUCT_EXAMPLE = `
issuers:
  - issuer: https://idp.acme.example        # exact \`iss\`
    tenant: acme
    jwks_uri: https://idp.acme.example/jwks # omit to use OIDC discovery
    audiences: [orders-api]                 # omit: audience not checked for this issuer
    algorithms: [ES256, RS256]              # allow-list; default [ES256, RS256, PS256, EdDSA]
    roles_claim: realm_access.roles         # default: roles
  - issuer: legacy-hs
    tenant: acme
    algorithms: [HS256]
    secret_env: LEGACY_HS_SECRET            # the secret itself lives only in the environment
tenants:
  acme: { max_depth: 6, recursion: deny, sealed: allow, entry_only: false }
services:
  gateway: { tenant: acme, entry: true }
  orders: { tenant: acme, allowed_callers: ["gateway", "cart-*"], required_roles: [], max_depth: 4, seal: false, bind_source: true }
principals:
  "spiffe://cluster.local/ns/shop/sa/orders": orders
`;

/** A one-issuer document with the given YAML lines for the issuer (indented under `- `). */
const issuerDoc = (...lines: string[]): string => `issuers:\n  - ${lines.join('\n    ')}\n`;

describe('registry file: the product.md example', () => {
  it('parses in secure mode into the records it describes', () => {
    const contents = parseRegistryDocument(PRODUCT_EXAMPLE, false);
    assert.deepEqual(contents.issuers, [
      {
        issuer: 'https://idp.acme.example',
        tenant: 'acme',
        jwksUri: 'https://idp.acme.example/jwks',
        audiences: ['orders-api'],
        algorithms: ['ES256', 'RS256'],
        rolesClaim: 'realm_access.roles',
        secretEnv: undefined,
        mintsFor: [],
      },
      {
        issuer: 'legacy-hs',
        tenant: 'acme',
        jwksUri: undefined,
        audiences: undefined,
        algorithms: ['HS256'],
        rolesClaim: 'roles',
        secretEnv: 'LEGACY_HS_SECRET',
        mintsFor: [],
      },
    ]);
    assert.deepEqual(contents.tenants, [
      {
        tenant: 'acme',
        maxDepth: 6,
        recursion: 'deny',
        sealed: 'allow',
        entryOnly: false,
        mode: undefined,
        chainFormat: undefined,
        headerBudget: undefined,
      },
    ]);
    assert.deepEqual(contents.services, [
      {
        sid: 'gateway',
        tenant: 'acme',
        allowedCallers: [],
        requiredRoles: [],
        maxDepth: undefined,
        seal: false,
        entry: true,
        bindSource: false,
        mode: undefined,
        operations: [],
        denyUnmatched: false,
      },
      {
        sid: 'orders',
        tenant: 'acme',
        allowedCallers: ['gateway', 'cart-*'],
        requiredRoles: [],
        maxDepth: 4,
        seal: false,
        entry: false,
        bindSource: true,
        mode: undefined,
        operations: [],
        denyUnmatched: false,
      },
    ]);
    assert.deepEqual(contents.principals, { 'spiffe://cluster.local/ns/shop/sa/orders': 'orders' });
  });

  it('an empty document is an empty registry', () => {
    assert.deepEqual(parseRegistryDocument('', false), {
      issuers: [],
      tenants: [],
      services: [],
      principals: {},
    });
    assert.deepEqual(parseRegistryDocument('# nothing here\n', false), {
      issuers: [],
      tenants: [],
      services: [],
      principals: {},
    });
  });
});

describe('registry file: secrets', () => {
  it('refuses a literal secret, naming the field, without echoing the secret', () => {
    const doc = PRODUCT_EXAMPLE.replace('secret_env: LEGACY_HS_SECRET', 'secret: hunter2-literal');
    assertNamesField(() => parseRegistryDocument(doc, false), RecordError, 'issuers[1].secret');
    assert.throws(
      () => parseRegistryDocument(doc, false),
      (e: unknown) => e instanceof Error && !e.message.includes('hunter2-literal'),
    );
  });

  it('refuses a literal under any secret-like key of an issuer', () => {
    for (const key of ['client_secret', 'password', 'hmac_secret']) {
      const doc = issuerDoc('issuer: legacy', 'tenant: acme', 'algorithms: [HS256]', `${key}: abc`);
      assertNamesField(() => parseRegistryDocument(doc, false), RecordError, `issuers[0].${key}`);
    }
  });

  it('accepts secret: ${NAME} as the name of the environment variable', () => {
    const contents = parseRegistryDocument(
      issuerDoc(
        'issuer: legacy',
        'tenant: acme',
        'algorithms: [HS256]',
        'secret: ${LEGACY_SECRET}',
      ),
      false,
    );
    assert.equal(contents.issuers[0]?.secretEnv, 'LEGACY_SECRET');
  });

  it('refuses a secret_env that is not a variable name (a pasted secret)', () => {
    const doc = issuerDoc(
      'issuer: legacy',
      'tenant: acme',
      'algorithms: [HS256]',
      'secret_env: "s3cr3t value!"',
    );
    assertNamesField(() => parseRegistryDocument(doc, false), RecordError, 'issuers[0].secret_env');
  });

  it('an HMAC issuer must name its secret; a public-key issuer must not', () => {
    assertNamesField(
      () =>
        parseRegistryDocument(
          issuerDoc('issuer: legacy', 'tenant: acme', 'algorithms: [HS256]'),
          false,
        ),
      RecordError,
      'issuers[0].secret_env',
    );
    const doc = issuerDoc(
      'issuer: https://idp.example',
      'tenant: acme',
      'algorithms: [ES256]',
      'secret_env: SOME_SECRET',
    );
    assertNamesField(() => parseRegistryDocument(doc, false), RecordError, 'issuers[0].secret_env');
  });

  // product.md: "a config value for a secret must be an environment reference (${NAME}); a literal
  // is a startup error that names the field" — records.ts exempts secret-like keys from the
  // unknown-field check for tenants and services too, but only issuers check them, so these
  // literals are silently accepted.
  it('refuses a literal secret placed on a tenant or a service record', () => {
    assert.throws(
      () => parseRegistryDocument('tenants:\n  acme: { max_depth: 6, secret: hunter2 }\n', false),
      RecordError,
    );
    assert.throws(
      () =>
        parseRegistryDocument('services:\n  orders: { tenant: acme, password: hunter2 }\n', false),
      RecordError,
    );
  });
});

describe('registry file: issuers', () => {
  it('refuses mixing HMAC and public-key algorithms', () => {
    const doc = issuerDoc(
      'issuer: legacy',
      'tenant: acme',
      'algorithms: [HS256, ES256]',
      'secret_env: LEGACY',
    );
    assertNamesField(() => parseRegistryDocument(doc, false), RecordError, 'issuers[0].algorithms');
  });

  it('refuses an unknown algorithm, naming its position', () => {
    for (const alg of ['ES999', 'none', 'RSA1_5']) {
      const doc = issuerDoc(
        'issuer: https://idp.example',
        'tenant: acme',
        `algorithms: [ES256, ${alg}]`,
      );
      assertNamesField(
        () => parseRegistryDocument(doc, false),
        RecordError,
        'issuers[0].algorithms[1]',
      );
    }
  });

  it('refuses an empty algorithm list', () => {
    assertNamesField(
      () =>
        parseRegistryDocument(
          issuerDoc('issuer: https://idp.example', 'tenant: acme', 'algorithms: []'),
          false,
        ),
      RecordError,
      'issuers[0].algorithms',
    );
  });

  it('defaults algorithms to ES256, RS256, PS256, EdDSA and roles_claim to roles', () => {
    const contents = parseRegistryDocument(
      issuerDoc('issuer: https://idp.example', 'tenant: acme'),
      false,
    );
    assert.deepEqual(contents.issuers[0]?.algorithms, [...DEFAULT_ALGORITHMS]);
    assert.deepEqual([...DEFAULT_ALGORITHMS], ['ES256', 'RS256', 'PS256', 'EdDSA']);
    assert.equal(contents.issuers[0]?.rolesClaim, 'roles');
    assert.equal(contents.issuers[0]?.audiences, undefined);
    assert.equal(contents.issuers[0]?.jwksUri, undefined);
  });

  it('refuses an http jwks_uri unless insecure issuers are allowed', () => {
    const doc = issuerDoc(
      'issuer: https://idp.example',
      'tenant: acme',
      'jwks_uri: http://idp.example/jwks',
    );
    assertNamesField(() => parseRegistryDocument(doc, false), RecordError, 'issuers[0].jwks_uri');
    assert.equal(parseRegistryDocument(doc, true).issuers[0]?.jwksUri, 'http://idp.example/jwks');
  });

  it('refuses an http issuer that relies on discovery unless insecure issuers are allowed', () => {
    const doc = issuerDoc('issuer: http://idp.example', 'tenant: acme');
    assertNamesField(() => parseRegistryDocument(doc, false), RecordError, 'issuers[0].issuer');
    assert.equal(parseRegistryDocument(doc, true).issuers[0]?.issuer, 'http://idp.example');
  });

  it('refuses non-http URLs and URLs with credentials even in insecure mode', () => {
    for (const uri of [
      'ftp://idp.example/jwks',
      'file:///etc/jwks.json',
      'not a url',
      'https://user:pw@idp.example/jwks',
    ]) {
      const doc = issuerDoc('issuer: https://idp.example', 'tenant: acme', `jwks_uri: "${uri}"`);
      assertNamesField(() => parseRegistryDocument(doc, true), RecordError, 'issuers[0].jwks_uri');
    }
  });

  it('refuses an unknown field, naming it', () => {
    const doc = issuerDoc(
      'issuer: https://idp.example',
      'tenant: acme',
      'jwks_url: https://idp.example/jwks',
    );
    assertNamesField(() => parseRegistryDocument(doc, false), RecordError, 'issuers[0].jwks_url');
  });

  it('refuses a duplicate issuer, naming the second', () => {
    const doc = `issuers:
  - { issuer: https://idp.example, tenant: acme }
  - { issuer: https://other.example, tenant: acme }
  - { issuer: https://idp.example, tenant: beta }
`;
    assertNamesField(() => parseRegistryDocument(doc, false), RecordError, 'issuers[2].issuer');
  });

  it('refuses a missing issuer or tenant and an invalid roles_claim', () => {
    assertNamesField(
      () => parseRegistryDocument('issuers:\n  - { tenant: acme }\n', false),
      RecordError,
      'issuers[0].issuer',
    );
    assertNamesField(
      () => parseRegistryDocument('issuers:\n  - { issuer: https://idp.example }\n', false),
      RecordError,
      'issuers[0].tenant',
    );
    const doc = issuerDoc(
      'issuer: https://idp.example',
      'tenant: acme',
      'roles_claim: "realm access..roles"',
    );
    assertNamesField(
      () => parseRegistryDocument(doc, false),
      RecordError,
      'issuers[0].roles_claim',
    );
  });

  it('issuerToRaw is the inverse of parseIssuer', () => {
    for (const record of parseRegistryDocument(PRODUCT_EXAMPLE, false).issuers) {
      assert.deepEqual(parseIssuer(issuerToRaw(record), 'x', false), record);
    }
  });
});

describe('registry file: tenants, services, principals', () => {
  it('a tenant without settings gets the fail-closed defaults', () => {
    assert.deepEqual(parseTenant('beta', null, 'tenants.beta'), {
      tenant: 'beta',
      maxDepth: undefined,
      recursion: 'deny',
      sealed: 'deny',
      entryOnly: false,
      mode: undefined,
      chainFormat: undefined,
      headerBudget: undefined,
    });
  });

  it('a service without settings has no restrictions of its own', () => {
    assert.deepEqual(parseService('cart', {}, 'services.cart'), {
      sid: 'cart',
      tenant: undefined,
      allowedCallers: [],
      requiredRoles: [],
      maxDepth: undefined,
      seal: false,
      entry: false,
      bindSource: false,
      mode: undefined,
      operations: [],
      denyUnmatched: false,
    });
  });

  it('refuses an unknown field on a tenant or service, naming it', () => {
    assertNamesField(
      () => parseRegistryDocument('tenants:\n  acme: { max_dept: 3 }\n', false),
      RecordError,
      'tenants.acme.max_dept',
    );
    assertNamesField(
      () => parseRegistryDocument('services:\n  orders: { allowed_caller: [gateway] }\n', false),
      RecordError,
      'services.orders.allowed_caller',
    );
  });

  it('refuses invalid tenant values, naming the field', () => {
    assertNamesField(
      () => parseRegistryDocument('tenants:\n  acme: { recursion: allow }\n', false),
      RecordError,
      'tenants.acme.recursion',
    );
    assertNamesField(
      () => parseRegistryDocument('tenants:\n  acme: { sealed: maybe }\n', false),
      RecordError,
      'tenants.acme.sealed',
    );
    assertNamesField(
      () => parseRegistryDocument('tenants:\n  acme: { max_depth: 65 }\n', false),
      RecordError,
      'tenants.acme.max_depth',
    );
    assertNamesField(
      () => parseRegistryDocument('tenants:\n  acme: { max_depth: -1 }\n', false),
      RecordError,
      'tenants.acme.max_depth',
    );
    assertNamesField(
      () => parseRegistryDocument('tenants:\n  acme: { entry_only: "yes" }\n', false),
      RecordError,
      'tenants.acme.entry_only',
    );
  });

  it('refuses an invalid caller glob or role, naming its position', () => {
    assertNamesField(
      () =>
        parseRegistryDocument(
          'services:\n  orders: { allowed_callers: [gateway, "cart *"] }\n',
          false,
        ),
      RecordError,
      'services.orders.allowed_callers[1]',
    );
    assertNamesField(
      () => parseRegistryDocument('services:\n  orders: { required_roles: ["a,b"] }\n', false),
      RecordError,
      'services.orders.required_roles[0]',
    );
  });

  it('refuses a principal mapped to something that is not a service id', () => {
    assertNamesField(
      () => parseRegistryDocument('principals:\n  "spiffe://x": [orders]\n', false),
      RecordError,
      'principals.spiffe://x',
    );
  });

  it('refuses an unknown top-level section and a section of the wrong shape', () => {
    assertNamesField(
      () =>
        parseRegistryDocument(
          'issuer:\n  - { issuer: https://idp.example, tenant: acme }\n',
          false,
        ),
      RecordError,
      'issuer',
    );
    assertNamesField(
      () => parseRegistryDocument('issuers: { issuer: https://idp.example }\n', false),
      RecordError,
      'issuers',
    );
    assertNamesField(
      () => parseRegistryDocument('tenants: [acme]\n', false),
      RecordError,
      'tenants',
    );
    assertNamesField(
      () => parseRegistryDocument('- just a list\n', false),
      RecordError,
      'registry file',
    );
  });
});

describe('registry file: YAML and files', () => {
  it('bad YAML is a one-line RecordError', () => {
    for (const text of [
      'issuers: [\n',
      'issuers:\n  - issuer: x\n    tenant: a\n  a: b\n',
      'tenants:\n  acme: {}\n  acme: {}\n',
    ]) {
      assertNamesField(() => parseRegistryDocument(text, false), RecordError, 'registry file');
    }
  });

  describe('loadRegistryFile', () => {
    let dir: string;
    before(() => {
      dir = mkdtempSync(join(tmpdir(), 'matryoshka-registry-'));
    });
    after(() => {
      rmSync(dir, { recursive: true, force: true });
    });

    it('loads a file from disk', () => {
      const path = join(dir, 'registry.yaml');
      writeFileSync(path, PRODUCT_EXAMPLE);
      const contents = loadRegistryFile(path, false);
      assert.equal(contents.issuers.length, 2);
      assert.equal(contents.services.length, 2);
    });

    it('a missing file is a RecordError naming MATRYOSHKA_REGISTRY_FILE', () => {
      assertNamesField(
        () => loadRegistryFile(join(dir, 'absent.yaml'), false),
        RecordError,
        'MATRYOSHKA_REGISTRY_FILE',
      );
    });
  });
});
