import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { LocalIssuer } from '../../src/demo/local-issuer.js';
import type { IssuerRecord, ServicePolicy, TenantPolicy } from '../../src/registry/records.js';
import { parseIssuer, parseService, parseTenant } from '../../src/registry/records.js';

/** Records built through the same parsers the registry file and CLI use. */
export const issuer = (raw: Record<string, unknown>): IssuerRecord =>
  parseIssuer(raw, 'test', true);
export const tenant = (name: string, raw: Record<string, unknown> = {}): TenantPolicy =>
  parseTenant(name, raw, `tenants.${name}`);
export const service = (sid: string, raw: Record<string, unknown> = {}): ServicePolicy =>
  parseService(sid, raw, `services.${sid}`);

/** A registry file (embedded mode) registering one local issuer for tenant acme; returns its path. */
export function registryFile(idp: LocalIssuer): string {
  const dir = mkdtempSync(join(tmpdir(), 'matryoshka-registry-'));
  writeFileSync(
    join(dir, 'registry.yaml'),
    `issuers:\n  - issuer: ${idp.issuer}\n    tenant: acme\n    jwks_uri: ${idp.jwksUri}\n`,
  );
  return join(dir, 'registry.yaml');
}

/** `issuer add` for a local IdP (ES256, its JWKS), as the CLI spells it. */
export const issuerAddArgs = (idp: LocalIssuer, tenant: string): string[] => [
  'issuer',
  'add',
  '--tenant',
  tenant,
  '--issuer',
  idp.issuer,
  '--jwks-uri',
  idp.jwksUri,
  '--algorithms',
  'ES256',
];

/**
 * `orders` in tenant acme with a stricter operation listed before a looser one on the same paths:
 * `export` (admin) before `read` (GET, reader), and `remove` (DELETE, admin). A reader reaching the
 * export or remove rules by another spelling of the request is what the request-view tests look for.
 */
export const ordersWithOperations = (): ServicePolicy =>
  service('orders', {
    tenant: 'acme',
    operations: [
      { name: 'export', path: '/orders/export', required_roles: ['admin'] },
      { name: 'read', path: '/orders/*', methods: ['GET'], required_roles: ['reader'] },
      { name: 'remove', path: '/orders/*', methods: ['DELETE'], required_roles: ['admin'] },
    ],
  });

/** The issuer record of a LocalIssuer (its `iss` and JWKS) for `tenant`, with further raw fields. */
export const localIssuer = (
  idp: Pick<LocalIssuer, 'issuer' | 'jwksUri'>,
  tenant: string,
  raw: Record<string, unknown> = {},
): IssuerRecord => issuer({ issuer: idp.issuer, tenant, jwks_uri: idp.jwksUri, ...raw });

/** An HS256 issuer (the seed's style) whose secret is in the environment variable `secretEnv`. */
export const hmacIssuer = (
  iss: string,
  tenant: string,
  secretEnv: string,
  raw: Record<string, unknown> = {},
): IssuerRecord =>
  issuer({ issuer: iss, tenant, algorithms: ['HS256'], secret_env: secretEnv, ...raw });
