/**
 * Registry records and the embedded-mode registry file (src/registry/records.ts,
 * src/registry/registry-file.ts). Every refusal is one line that names the field at fault.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
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
import { perSuite } from '../helpers/suite-parts.js';

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
    for (const doc of ['', '# nothing here\n']) {
      assert.deepEqual(parseRegistryDocument(doc, false), {
        issuers: [],
        tenants: [],
        services: [],
        principals: {},
      });
    }
  });
});

/** `doc` is refused with a one-line RecordError naming `field` (secure mode unless `insecure`). */
const assertRefused = (doc: string, field: string, insecure = false): void =>
  assertNamesField(() => parseRegistryDocument(doc, insecure), RecordError, field);

/** Documents refused, each with the field its refusal names. */
type Refusals = ReadonlyArray<readonly [doc: string, field: string]>;

/** A test that every document of `refusals` is refused naming its field. */
const itRefuses = (name: string, refusals: Refusals): void => {
  it(name, () => {
    for (const [doc, field] of refusals) assertRefused(doc, field);
  });
};

/** A one-issuer document for https://idp.example in tenant acme, with further lines. */
const idpDoc = (...lines: string[]): string =>
  issuerDoc('issuer: https://idp.example', 'tenant: acme', ...lines);

/** A one-issuer document for the HS256 issuer `legacy` in tenant acme, with further lines. */
const hmacDoc = (...lines: string[]): string =>
  issuerDoc('issuer: legacy', 'tenant: acme', 'algorithms: [HS256]', ...lines);

describe('registry file: secrets', () => {
  it('refuses a literal secret, naming the field, without echoing the secret', () => {
    const doc = PRODUCT_EXAMPLE.replace('secret_env: LEGACY_HS_SECRET', 'secret: hunter2-literal');
    assertRefused(doc, 'issuers[1].secret');
    assert.throws(
      () => parseRegistryDocument(doc, false),
      (e: unknown) => e instanceof Error && !e.message.includes('hunter2-literal'),
    );
  });

  it('refuses a literal under any secret-like key of an issuer', () => {
    for (const key of ['client_secret', 'password', 'hmac_secret']) {
      assertRefused(hmacDoc(`${key}: abc`), `issuers[0].${key}`);
    }
  });

  it('accepts secret: ${NAME} as the name of the environment variable', () => {
    const contents = parseRegistryDocument(hmacDoc('secret: ${LEGACY_SECRET}'), false);
    assert.equal(contents.issuers[0]?.secretEnv, 'LEGACY_SECRET');
  });

  it('refuses a secret_env that is not a variable name (a pasted secret)', () => {
    assertRefused(hmacDoc('secret_env: "s3cr3t value!"'), 'issuers[0].secret_env');
  });

  itRefuses('an HMAC issuer must name its secret; a public-key issuer must not', [
    [hmacDoc(), 'issuers[0].secret_env'],
    [idpDoc('algorithms: [ES256]', 'secret_env: SOME_SECRET'), 'issuers[0].secret_env'],
  ]);

  // product.md: "a config value for a secret must be an environment reference (${NAME}); a literal
  // is a startup error that names the field" — records.ts exempts secret-like keys from the
  // unknown-field check for tenants and services too, but only issuers check them, so these
  // literals are silently accepted.
  it('refuses a literal secret placed on a tenant or a service record', () => {
    for (const doc of [
      'tenants:\n  acme: { max_depth: 6, secret: hunter2 }\n',
      'services:\n  orders: { tenant: acme, password: hunter2 }\n',
    ]) {
      assert.throws(() => parseRegistryDocument(doc, false), RecordError);
    }
  });
});

describe('registry file: issuers', () => {
  it('refuses mixing HMAC and public-key algorithms', () => {
    const mixed = ['algorithms: [HS256, ES256]', 'secret_env: LEGACY'];
    assertRefused(issuerDoc('issuer: legacy', 'tenant: acme', ...mixed), 'issuers[0].algorithms');
  });

  it('refuses an unknown algorithm, naming its position', () => {
    for (const alg of ['ES999', 'none', 'RSA1_5']) {
      assertRefused(idpDoc(`algorithms: [ES256, ${alg}]`), 'issuers[0].algorithms[1]');
    }
  });

  it('refuses an empty algorithm list', () => {
    assertRefused(idpDoc('algorithms: []'), 'issuers[0].algorithms');
  });

  it('defaults algorithms to ES256, RS256, PS256, EdDSA and roles_claim to roles', () => {
    const contents = parseRegistryDocument(idpDoc(), false);
    assert.deepEqual(contents.issuers[0]?.algorithms, [...DEFAULT_ALGORITHMS]);
    assert.deepEqual([...DEFAULT_ALGORITHMS], ['ES256', 'RS256', 'PS256', 'EdDSA']);
    assert.equal(contents.issuers[0]?.rolesClaim, 'roles');
    assert.equal(contents.issuers[0]?.audiences, undefined);
    assert.equal(contents.issuers[0]?.jwksUri, undefined);
  });

  it('refuses an http jwks_uri unless insecure issuers are allowed', () => {
    const doc = idpDoc('jwks_uri: http://idp.example/jwks');
    assertRefused(doc, 'issuers[0].jwks_uri');
    assert.equal(parseRegistryDocument(doc, true).issuers[0]?.jwksUri, 'http://idp.example/jwks');
  });

  it('refuses an http issuer that relies on discovery unless insecure issuers are allowed', () => {
    const doc = issuerDoc('issuer: http://idp.example', 'tenant: acme');
    assertRefused(doc, 'issuers[0].issuer');
    assert.equal(parseRegistryDocument(doc, true).issuers[0]?.issuer, 'http://idp.example');
  });

  it('refuses non-http URLs and URLs with credentials even in insecure mode', () => {
    for (const uri of [
      'ftp://idp.example/jwks',
      'file:///etc/jwks.json',
      'not a url',
      'https://user:pw@idp.example/jwks',
    ]) {
      assertRefused(idpDoc(`jwks_uri: "${uri}"`), 'issuers[0].jwks_uri', true);
    }
  });

  it('refuses an unknown field, naming it', () => {
    assertRefused(idpDoc('jwks_url: https://idp.example/jwks'), 'issuers[0].jwks_url');
  });

  it('refuses a duplicate issuer, naming the second', () => {
    const doc = `issuers:
  - { issuer: https://idp.example, tenant: acme }
  - { issuer: https://other.example, tenant: acme }
  - { issuer: https://idp.example, tenant: beta }
`;
    assertRefused(doc, 'issuers[2].issuer');
  });

  itRefuses('refuses a missing issuer or tenant and an invalid roles_claim', [
    ['issuers:\n  - { tenant: acme }\n', 'issuers[0].issuer'],
    ['issuers:\n  - { issuer: https://idp.example }\n', 'issuers[0].tenant'],
    [idpDoc('roles_claim: "realm access..roles"'), 'issuers[0].roles_claim'],
  ]);

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

  const refusals: Record<string, Refusals> = {
    'refuses an unknown field on a tenant or service, naming it': [
      ['tenants:\n  acme: { max_dept: 3 }\n', 'tenants.acme.max_dept'],
      ['services:\n  orders: { allowed_caller: [gateway] }\n', 'services.orders.allowed_caller'],
    ],
    'refuses invalid tenant values, naming the field': [
      ['tenants:\n  acme: { recursion: allow }\n', 'tenants.acme.recursion'],
      ['tenants:\n  acme: { sealed: maybe }\n', 'tenants.acme.sealed'],
      ['tenants:\n  acme: { max_depth: 65 }\n', 'tenants.acme.max_depth'],
      ['tenants:\n  acme: { max_depth: -1 }\n', 'tenants.acme.max_depth'],
      ['tenants:\n  acme: { entry_only: "yes" }\n', 'tenants.acme.entry_only'],
    ],
    'refuses an invalid caller glob or role, naming its position': [
      [
        'services:\n  orders: { allowed_callers: [gateway, "cart *"] }\n',
        'services.orders.allowed_callers[1]',
      ],
      ['services:\n  orders: { required_roles: ["a,b"] }\n', 'services.orders.required_roles[0]'],
    ],
    'refuses a principal mapped to something that is not a service id': [
      ['principals:\n  "spiffe://x": [orders]\n', 'principals.spiffe://x'],
    ],
    'refuses an unknown top-level section and a section of the wrong shape': [
      ['issuer:\n  - { issuer: https://idp.example, tenant: acme }\n', 'issuer'],
      ['issuers: { issuer: https://idp.example }\n', 'issuers'],
      ['tenants: [acme]\n', 'tenants'],
      ['- just a list\n', 'registry file'],
    ],
  };
  for (const [name, rows] of Object.entries(refusals)) itRefuses(name, rows);
});

describe('registry file: YAML and files', () => {
  itRefuses('bad YAML is a one-line RecordError', [
    ['issuers: [\n', 'registry file'],
    ['issuers:\n  - issuer: x\n    tenant: a\n  a: b\n', 'registry file'],
    ['tenants:\n  acme: {}\n  acme: {}\n', 'registry file'],
  ]);

  describe('loadRegistryFile', () => {
    const dir = perSuite(
      () => mkdtempSync(join(tmpdir(), 'matryoshka-registry-')),
      (made) => rmSync(made, { recursive: true, force: true }),
    );

    it('loads a file from disk', () => {
      const path = join(dir(), 'registry.yaml');
      writeFileSync(path, PRODUCT_EXAMPLE);
      const contents = loadRegistryFile(path, false);
      assert.equal(contents.issuers.length, 2);
      assert.equal(contents.services.length, 2);
    });

    it('a missing file is a RecordError naming MATRYOSHKA_REGISTRY_FILE', () => {
      assertNamesField(
        () => loadRegistryFile(join(dir(), 'absent.yaml'), false),
        RecordError,
        'MATRYOSHKA_REGISTRY_FILE',
      );
    });
  });
});
