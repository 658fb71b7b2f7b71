import { MatryoshkaError } from '../errors.js';
import {
  IDENTIFIER_DESCRIPTION,
  MAX_ROLE_LENGTH,
  isIdentifier,
  isRole,
} from '../header-grammar.js';

/**
 * Registry records and their validation. Every way a record enters the service (YAML file, CLI,
 * Redis) goes through these parsers, so an invalid record is refused with the same one-line error
 * naming the field, wherever it came from.
 */
export const DEFAULT_ALGORITHMS = ['ES256', 'RS256', 'PS256', 'EdDSA'] as const;
export const SUPPORTED_ALGORITHMS = [
  'ES256',
  'ES384',
  'ES512',
  'RS256',
  'RS384',
  'RS512',
  'PS256',
  'PS384',
  'PS512',
  'EdDSA',
  'HS256',
  'HS384',
  'HS512',
] as const;
export type Algorithm = (typeof SUPPORTED_ALGORITHMS)[number];

export interface IssuerRecord {
  readonly issuer: string;
  readonly tenant: string;
  /** Absent: OIDC discovery at `<issuer>/.well-known/openid-configuration`. */
  readonly jwksUri: string | undefined;
  /** Absent: the audience is not checked for this issuer. */
  readonly audiences: readonly string[] | undefined;
  readonly algorithms: readonly Algorithm[];
  readonly rolesClaim: string;
  /** HMAC issuers only: the name of the environment variable that holds the shared secret. */
  readonly secretEnv: string | undefined;
  /**
   * Globs of the service ids this issuer may mint chain levels for (another Matryoshka
   * implementation). Empty: it issues origin tokens only, and a level of it that wraps a chain is
   * refused — otherwise any registered IdP could re-wrap a chain and claim any caller sid.
   */
  readonly mintsFor: readonly string[];
}

/** How minted chains are written (docs/compact-chains.md); `auto`: nested while it fits the budget. */
export const CHAIN_FORMATS = ['nested', 'compact', 'auto'] as const;
export type ChainFormat = (typeof CHAIN_FORMATS)[number];

/** Bounds of a header budget, in bytes: below 1 KiB nothing but an origin fits; above 1 MiB, no proxy. */
export const HEADER_BUDGET_MIN = 1024;
export const HEADER_BUDGET_MAX = 1024 * 1024;

export interface TenantPolicy {
  readonly tenant: string;
  readonly maxDepth: number | undefined;
  readonly recursion: 'deny' | 'audit';
  readonly sealed: 'allow' | 'deny';
  readonly entryOnly: boolean;
  /** Overrides MATRYOSHKA_CHAIN_FORMAT for this tenant's chains; absent: the service's. */
  readonly chainFormat?: ChainFormat | undefined;
  /** Overrides MATRYOSHKA_HEADER_BUDGET for this tenant; absent: the service's. */
  readonly headerBudget?: number | undefined;
}

export interface ServicePolicy {
  readonly sid: string;
  readonly tenant: string | undefined;
  /** Globs on the immediate caller's sid; absent or empty: any caller. */
  readonly allowedCallers: readonly string[];
  readonly requiredRoles: readonly string[];
  readonly maxDepth: number | undefined;
  readonly seal: boolean;
  readonly entry: boolean;
  readonly bindSource: boolean;
}

/** A record that cannot be accepted; the message names the field (e.g. `issuers[1].algorithms`). */
export class RecordError extends MatryoshkaError {
  constructor(field: string, problem: string) {
    super('ERR_RECORD_INVALID', `${field}: ${problem}`);
  }
}

/** Defaults for a tenant that has no record: fail closed on everything a tenant can relax. */
export function defaultTenantPolicy(tenant: string): TenantPolicy {
  return { tenant, maxDepth: undefined, recursion: 'deny', sealed: 'deny', entryOnly: false };
}

/** Defaults for a destination that has no record: tenant policy only. */
export function defaultServicePolicy(sid: string): ServicePolicy {
  return {
    sid,
    tenant: undefined,
    allowedCallers: [],
    requiredRoles: [],
    maxDepth: undefined,
    seal: false,
    entry: false,
    bindSource: false,
  };
}

type Raw = Record<string, unknown>;

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const ENV_REF = /^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$/;
const GLOB = /^[A-Za-z0-9._:@/*?-]{1,128}$/;
const CLAIM_PATH = /^[A-Za-z0-9_:-]+(\.[A-Za-z0-9_:-]+)*$/;
/** Keys that name a secret; a literal value under any of them is refused. */
const SECRET_KEYS = new Set([
  'secret',
  'client_secret',
  'password',
  'key',
  'private_key',
  'hmac_secret',
]);

export function asObject(value: unknown, field: string): Raw {
  if (value === null || typeof value !== 'object' || Array.isArray(value))
    throw new RecordError(field, 'must be a mapping');
  return value as Raw;
}

/**
 * Unknown fields are refused. Secret-like keys get the secret rule first even where no secret
 * belongs, so a literal is reported as a leaked secret, not merely as a typo.
 */
function refuseUnknown(
  raw: Raw,
  known: readonly string[],
  field: string,
  secretsHandled = false,
): void {
  for (const key of Object.keys(raw)) {
    if (SECRET_KEYS.has(key)) {
      if (!secretsHandled) {
        const value = raw[key];
        if (!(typeof value === 'string' && ENV_REF.test(value))) {
          throw new RecordError(
            `${field}.${key}`,
            'a secret must be an environment reference (${NAME}), and this record takes none',
          );
        }
        throw new RecordError(`${field}.${key}`, 'unknown field (this record takes no secret)');
      }
      continue;
    }
    if (!known.includes(key)) throw new RecordError(`${field}.${key}`, 'unknown field');
  }
}

/** Service ids and tenants: the one grammar of src/header-grammar.ts, which the Check path enforces too. */
export function identifier(value: unknown, field: string): string {
  if (!isIdentifier(value)) throw new RecordError(field, `must be ${IDENTIFIER_DESCRIPTION}`);
  return value;
}

function optionalString(value: unknown, field: string): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string' || value.length === 0)
    throw new RecordError(field, 'must be a non-empty string');
  return value;
}

function optionalBool(value: unknown, field: string): boolean {
  if (value === undefined || value === null) return false;
  if (typeof value !== 'boolean') throw new RecordError(field, 'must be true or false');
  return value;
}

export function optionalDepth(value: unknown, field: string): number | undefined {
  if (value === undefined || value === null) return undefined;
  const n = typeof value === 'string' && /^\d+$/.test(value) ? Number(value) : value;
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0 || n > 64)
    throw new RecordError(field, 'must be a whole number from 0 to 64');
  return n;
}

/** The header grammar's role predicate, in the shape stringList takes (one grammar, not a copy of it). */
const ROLE = { test: (value: string): boolean => isRole(value) };

function stringList(
  value: unknown,
  field: string,
  pattern: { test(value: string): boolean },
  what: string,
): string[] {
  if (value === undefined || value === null) return [];
  const list =
    typeof value === 'string'
      ? value
          .split(',')
          .map((s) => s.trim())
          .filter((s) => s.length > 0)
      : value;
  if (!Array.isArray(list)) throw new RecordError(field, 'must be a list');
  return list.map((item, i) => {
    if (typeof item !== 'string' || !pattern.test(item))
      throw new RecordError(`${field}[${i}]`, `must be ${what}`);
    return item;
  });
}

function oneOf<T extends string>(
  value: unknown,
  field: string,
  allowed: readonly T[],
  fallback: T,
): T {
  if (value === undefined || value === null) return fallback;
  if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value)) {
    throw new RecordError(field, `must be one of ${allowed.join(', ')}`);
  }
  return value as T;
}

/** `http(s)` URL check; plain http only when insecure issuers are allowed (tests, local dev). */
export function httpUrl(value: unknown, field: string, allowInsecure: boolean): string {
  if (typeof value !== 'string') throw new RecordError(field, 'must be a URL');
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new RecordError(field, 'must be a URL');
  }
  if (url.protocol !== 'https:' && !(allowInsecure && url.protocol === 'http:')) {
    throw new RecordError(
      field,
      allowInsecure
        ? 'must be an http(s) URL'
        : 'must be an https URL (set MATRYOSHKA_ALLOW_INSECURE_ISSUERS=true for http)',
    );
  }
  if (url.username || url.password) throw new RecordError(field, 'must not carry credentials');
  return value;
}

/**
 * The secret of an HMAC issuer is named, never given: `secret_env: NAME`, or `secret: ${NAME}`.
 * A literal under any secret-like key is refused with the field's name.
 */
function secretReference(raw: Raw, field: string): { name: string; field: string } | undefined {
  let found: { name: string; field: string } | undefined;
  const take = (name: string, at: string): void => {
    if (found !== undefined && found.name !== name)
      throw new RecordError(at, `conflicts with ${found.field}; name the secret once`);
    found = { name, field: at };
  };
  for (const key of Object.keys(raw)) {
    if (!SECRET_KEYS.has(key)) continue;
    const value = raw[key];
    const ref = typeof value === 'string' ? ENV_REF.exec(value) : null;
    if (!ref)
      throw new RecordError(
        `${field}.${key}`,
        'a secret must be an environment reference (${NAME}); use secret_env: NAME',
      );
    take(ref[1] as string, `${field}.${key}`);
  }
  if (raw['secret_env'] !== undefined) {
    const value = raw['secret_env'];
    if (typeof value !== 'string' || !ENV_NAME.test(value)) {
      throw new RecordError(
        `${field}.secret_env`,
        'must be the name of an environment variable, not the secret',
      );
    }
    take(value, `${field}.secret_env`);
  }
  return found;
}

export function parseIssuer(value: unknown, field: string, allowInsecure: boolean): IssuerRecord {
  const raw = asObject(value, field);
  refuseUnknown(
    raw,
    [
      'issuer',
      'tenant',
      'jwks_uri',
      'audiences',
      'algorithms',
      'roles_claim',
      'secret_env',
      'mints_for',
    ],
    field,
    true,
  );
  const issuer = raw['issuer'];
  if (typeof issuer !== 'string' || issuer.length === 0 || issuer.length > 512)
    throw new RecordError(`${field}.issuer`, 'must be a non-empty string');
  const tenant = identifier(raw['tenant'], `${field}.tenant`);
  const algorithms =
    raw['algorithms'] === undefined
      ? [...DEFAULT_ALGORITHMS]
      : stringList(raw['algorithms'], `${field}.algorithms`, /^[A-Za-z0-9]+$/, 'an algorithm name');
  for (const [i, alg] of algorithms.entries()) {
    if (!(SUPPORTED_ALGORITHMS as readonly string[]).includes(alg)) {
      throw new RecordError(
        `${field}.algorithms[${i}]`,
        `unsupported algorithm ${alg} (supported: ${SUPPORTED_ALGORITHMS.join(', ')})`,
      );
    }
  }
  if (algorithms.length === 0)
    throw new RecordError(`${field}.algorithms`, 'must name at least one algorithm');
  const secret = secretReference(raw, field);
  const secretEnv = secret?.name;
  const hmac = algorithms.filter((a) => a.startsWith('HS'));
  if (hmac.length > 0 && hmac.length !== algorithms.length) {
    throw new RecordError(
      `${field}.algorithms`,
      'must not mix HMAC and public-key algorithms (algorithm confusion)',
    );
  }
  if (hmac.length > 0 && secret === undefined)
    throw new RecordError(`${field}.secret_env`, 'is required for HMAC algorithms');
  if (hmac.length === 0 && secret !== undefined)
    throw new RecordError(secret.field, 'is only for HMAC algorithms');
  const jwksRaw = raw['jwks_uri'];
  const jwksUri =
    jwksRaw === undefined || jwksRaw === null
      ? undefined
      : httpUrl(jwksRaw, `${field}.jwks_uri`, allowInsecure);
  if (hmac.length === 0 && jwksUri === undefined) httpUrl(issuer, `${field}.issuer`, allowInsecure);
  const audiences =
    raw['audiences'] === undefined
      ? undefined
      : stringList(raw['audiences'], `${field}.audiences`, /^[^\s,]{1,256}$/, 'an audience');
  const rolesClaim = optionalString(raw['roles_claim'], `${field}.roles_claim`) ?? 'roles';
  if (!CLAIM_PATH.test(rolesClaim))
    throw new RecordError(`${field}.roles_claim`, 'must be a claim name or dotted path');
  const mintsFor = stringList(
    raw['mints_for'],
    `${field}.mints_for`,
    GLOB,
    'a glob of service ids (letters, digits, . _ : @ / - * ?)',
  );
  return {
    issuer,
    tenant,
    jwksUri,
    audiences,
    algorithms: algorithms as Algorithm[],
    rolesClaim,
    secretEnv,
    mintsFor,
  };
}

export function parseTenant(tenant: string, value: unknown, field: string): TenantPolicy {
  const raw = value === null || value === undefined ? {} : asObject(value, field);
  refuseUnknown(
    raw,
    ['max_depth', 'recursion', 'sealed', 'entry_only', 'chain_format', 'header_budget'],
    field,
  );
  const chainFormat =
    raw['chain_format'] === undefined || raw['chain_format'] === null
      ? undefined
      : oneOf(raw['chain_format'], `${field}.chain_format`, CHAIN_FORMATS, 'auto');
  return {
    tenant: identifier(tenant, field),
    maxDepth: optionalDepth(raw['max_depth'], `${field}.max_depth`),
    recursion: oneOf(raw['recursion'], `${field}.recursion`, ['deny', 'audit'], 'deny'),
    sealed: oneOf(raw['sealed'], `${field}.sealed`, ['allow', 'deny'], 'deny'),
    entryOnly: optionalBool(raw['entry_only'], `${field}.entry_only`),
    ...(chainFormat === undefined ? {} : { chainFormat }),
    ...optionalBudget(raw['header_budget'], `${field}.header_budget`),
  };
}

function optionalBudget(value: unknown, field: string): { headerBudget?: number } {
  if (value === undefined || value === null) return {};
  const n = typeof value === 'string' && /^\d+$/.test(value) ? Number(value) : value;
  if (
    typeof n !== 'number' ||
    !Number.isSafeInteger(n) ||
    n < HEADER_BUDGET_MIN ||
    n > HEADER_BUDGET_MAX
  )
    throw new RecordError(
      field,
      `must be a whole number of bytes from ${HEADER_BUDGET_MIN} to ${HEADER_BUDGET_MAX}`,
    );
  return { headerBudget: n };
}

export function parseService(sid: string, value: unknown, field: string): ServicePolicy {
  const raw = value === null || value === undefined ? {} : asObject(value, field);
  refuseUnknown(
    raw,
    ['tenant', 'allowed_callers', 'required_roles', 'max_depth', 'seal', 'entry', 'bind_source'],
    field,
  );
  const tenant =
    raw['tenant'] === undefined ? undefined : identifier(raw['tenant'], `${field}.tenant`);
  return {
    sid: identifier(sid, field),
    tenant,
    allowedCallers: stringList(
      raw['allowed_callers'],
      `${field}.allowed_callers`,
      GLOB,
      'a glob of service ids (letters, digits, . _ : @ / - * ?)',
    ),
    // A role outside the role grammar is dropped from every token, so requiring one could never be met.
    requiredRoles: stringList(
      raw['required_roles'],
      `${field}.required_roles`,
      ROLE,
      `a role name (printable ASCII without comma or space, at most ${MAX_ROLE_LENGTH})`,
    ),
    maxDepth: optionalDepth(raw['max_depth'], `${field}.max_depth`),
    seal: optionalBool(raw['seal'], `${field}.seal`),
    entry: optionalBool(raw['entry'], `${field}.entry`),
    bindSource: optionalBool(raw['bind_source'], `${field}.bind_source`),
  };
}

/** Inverse of the parsers, for YAML/JSON output and storage: snake_case, defaults omitted. */
export function issuerToRaw(record: IssuerRecord): Raw {
  const raw: Raw = { issuer: record.issuer, tenant: record.tenant };
  if (record.jwksUri !== undefined) raw['jwks_uri'] = record.jwksUri;
  if (record.audiences !== undefined) raw['audiences'] = [...record.audiences];
  raw['algorithms'] = [...record.algorithms];
  if (record.rolesClaim !== 'roles') raw['roles_claim'] = record.rolesClaim;
  if (record.secretEnv !== undefined) raw['secret_env'] = record.secretEnv;
  if (record.mintsFor.length > 0) raw['mints_for'] = [...record.mintsFor];
  return raw;
}

export function tenantToRaw(policy: TenantPolicy): Raw {
  const raw: Raw = {
    recursion: policy.recursion,
    sealed: policy.sealed,
    entry_only: policy.entryOnly,
  };
  if (policy.maxDepth !== undefined) raw['max_depth'] = policy.maxDepth;
  if (policy.chainFormat !== undefined) raw['chain_format'] = policy.chainFormat;
  if (policy.headerBudget !== undefined) raw['header_budget'] = policy.headerBudget;
  return raw;
}

export function serviceToRaw(policy: ServicePolicy): Raw {
  const raw: Raw = {};
  if (policy.tenant !== undefined) raw['tenant'] = policy.tenant;
  if (policy.allowedCallers.length > 0) raw['allowed_callers'] = [...policy.allowedCallers];
  if (policy.requiredRoles.length > 0) raw['required_roles'] = [...policy.requiredRoles];
  if (policy.maxDepth !== undefined) raw['max_depth'] = policy.maxDepth;
  if (policy.seal) raw['seal'] = true;
  if (policy.entry) raw['entry'] = true;
  if (policy.bindSource) raw['bind_source'] = true;
  return raw;
}
