import { MatryoshkaError } from '../errors.js';
import { parse as parseYaml } from 'yaml';
import { type PathPattern, parsePathPattern } from '../request-path.js';
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
  /**
   * `txn_token_service`: a Transaction Token Service (docs/transaction-tokens.md). Its tokens are
   * accepted only as Txn-Tokens (`typ: txntoken+jwt`, `aud` = MATRYOSHKA_TRUST_DOMAIN): as a
   * chain's origin when a request carries no bearer token, never as a bearer token themselves.
   * Absent: `origin`, an ordinary issuer.
   */
  readonly role?: IssuerRole | undefined;
}

export const ISSUER_ROLES = ['origin', 'txn_token_service'] as const;
export type IssuerRole = (typeof ISSUER_ROLES)[number];

/** Dry-run for one scope; absent: the enclosing scope decides (operation → service → tenant → global). */
export type PolicyMode = 'enforce' | 'shadow' | undefined;

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
  readonly mode: PolicyMode;
  /** Overrides MATRYOSHKA_CHAIN_FORMAT for this tenant's chains; absent: the service's setting. */
  readonly chainFormat: ChainFormat | undefined;
  /** Overrides MATRYOSHKA_HEADER_BUDGET for this tenant; absent: the service's setting. */
  readonly headerBudget: number | undefined;
  /** An allowed Check also answers a Txn-Token (docs/transaction-tokens.md); absent: off. */
  readonly txnTokens?: boolean | undefined;
}

/**
 * One operation of a service: the requests it matches (an HTTP path pattern with optional
 * methods, or a gRPC method) and the rule for them. A rule field left out is the service's.
 */
export interface OperationPolicy {
  readonly name: string;
  readonly path: PathPattern;
  /** Upper-case HTTP methods; empty: any. */
  readonly methods: readonly string[];
  readonly allowedCallers: readonly string[] | undefined;
  readonly requiredRoles: readonly string[] | undefined;
  readonly maxDepth: number | undefined;
  /** Accepts origin tokens in an entry_only tenant (as the service's `entry`). */
  readonly entry: boolean | undefined;
  /** Refuses origin tokens unless an entry: the tenant's entry_only rule, for this operation only. */
  readonly entryOnly: boolean | undefined;
  readonly bindSource: boolean | undefined;
  readonly mode: PolicyMode;
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
  readonly mode: PolicyMode;
  /** Matched in order: the first that matches the request's path and method decides. */
  readonly operations: readonly OperationPolicy[];
  /** A request no operation matches is refused (`operation_not_found`) instead of getting the service's rule. */
  readonly denyUnmatched: boolean;
}

/** A record that cannot be accepted; the message names the field (e.g. `issuers[1].algorithms`). */
export class RecordError extends MatryoshkaError {
  constructor(field: string, problem: string) {
    super('ERR_RECORD_INVALID', `${field}: ${problem}`);
  }
}

/** Defaults for a tenant that has no record: fail closed on everything a tenant can relax. */
export function defaultTenantPolicy(tenant: string): TenantPolicy {
  return {
    tenant,
    maxDepth: undefined,
    recursion: 'deny',
    sealed: 'deny',
    entryOnly: false,
    mode: undefined,
    chainFormat: undefined,
    headerBudget: undefined,
  };
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
    mode: undefined,
    operations: [],
    denyUnmatched: false,
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
 * A literal under any secret-like key is refused with the field's name. `declared` is the already
 * validated `secret_env`; an alias must name the same variable.
 */
function secretReference(
  raw: Raw,
  field: string,
  declared: string | undefined,
): { name: string; field: string } | undefined {
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
  if (declared !== undefined) take(declared, `${field}.secret_env`);
  return found;
}

// ---------------------------------------------------------------------------------------------
// The schema: every field of every record, declared once. Validation (YAML, CLI, Redis), the
// serialised form (YAML output and the JSON stored in Redis), and the CLI's flags and usage text
// are all derived from these entries; adding a field is one entry here plus the code that uses it.
// ---------------------------------------------------------------------------------------------

export interface ParseContext {
  /** Plain http issuer and JWKS URLs (MATRYOSHKA_ALLOW_INSECURE_ISSUERS). */
  readonly allowInsecure: boolean;
}

export interface FieldSpec<R, K extends keyof R = keyof R> {
  /** The key in the registry file and in the stored JSON (snake_case). */
  readonly key: string;
  /** The record's property. */
  readonly prop: K;
  /** The CLI flag, without `--`. */
  readonly flag: string;
  /** The flag's value placeholder in usage text; absent for a switch (a boolean flag). */
  readonly arg?: string;
  /** The flag is given once per list item (`--audience A --audience B`). */
  readonly repeat?: boolean;
  /** The CLI refuses to run without it. */
  readonly required?: boolean;
  /**
   * An optional property (`prop?:`) whose absence is its default: left out of the record rather
   * than set to undefined, so a record written before the field existed reads the same.
   */
  readonly omitWhenAbsent?: boolean;
  readonly help: string;
  /** A valid value other than the default, as the registry file spells it. */
  readonly example: unknown;
  /** The raw value (undefined when absent) to the record's value, or a RecordError naming `field`. */
  parse(value: unknown, field: string, context: ParseContext): R[K];
  /** The record's value to its raw form; undefined leaves the key out (the default). */
  toRaw(value: R[K]): unknown;
}

/** The record's name when it is the key of a mapping (tenants, services) rather than a field. */
export interface NameSpec<R> {
  readonly prop: keyof R;
  readonly flag: string;
  readonly arg: string;
  readonly help: string;
}

export interface RecordSchema<R> {
  readonly kind: string;
  readonly name?: NameSpec<R>;
  readonly fields: ReadonlyArray<FieldSpec<R>>;
  /** Whether secret-like keys are this record's business (issuers); elsewhere they are refused. */
  readonly takesSecrets?: boolean;
}

/** Binds the record type once so each entry's `parse` and `toRaw` are checked against its property. */
const fieldOf =
  <R>() =>
  <K extends keyof R>(spec: FieldSpec<R, K>): FieldSpec<R> =>
    spec as unknown as FieldSpec<R>;

const GLOB_DESCRIPTION = 'a glob of service ids (letters, digits, . _ : @ / - * ?)';
const absentIfEmpty = (list: readonly string[]): string[] | undefined =>
  list.length > 0 ? [...list] : undefined;
const trueOrAbsent = (value: boolean): true | undefined => (value ? true : undefined);

const issuerField = fieldOf<IssuerRecord>();
export const ISSUER_SCHEMA: RecordSchema<IssuerRecord> = {
  kind: 'issuer',
  takesSecrets: true,
  fields: [
    issuerField({
      key: 'issuer',
      prop: 'issuer',
      flag: 'issuer',
      arg: 'ISS',
      required: true,
      help: "the exact iss; an https URL unless --jwks-uri is given (keys by OIDC discovery) or it's HMAC",
      example: 'https://idp.example',
      parse(value, field) {
        if (typeof value !== 'string' || value.length === 0 || value.length > 512)
          throw new RecordError(field, 'must be a non-empty string');
        return value;
      },
      toRaw: (value) => value,
    }),
    issuerField({
      key: 'tenant',
      prop: 'tenant',
      flag: 'tenant',
      arg: 'T',
      required: true,
      help: "the tenant of this issuer's tokens",
      example: 'acme',
      parse: (value, field) => identifier(value, field),
      toRaw: (value) => value,
    }),
    issuerField({
      key: 'jwks_uri',
      prop: 'jwksUri',
      flag: 'jwks-uri',
      arg: 'URL',
      help: "the issuer's JWKS (https; http only with MATRYOSHKA_ALLOW_INSECURE_ISSUERS=true)",
      example: 'https://idp.example/jwks',
      parse: (value, field, context) =>
        value === undefined || value === null
          ? undefined
          : httpUrl(value, field, context.allowInsecure),
      toRaw: (value) => value,
    }),
    issuerField({
      key: 'audiences',
      prop: 'audiences',
      flag: 'audience',
      arg: 'A',
      repeat: true,
      help: "a token's aud must name one of them (default: not checked)",
      example: ['orders-api', 'cart-api'],
      parse: (value, field) =>
        value === undefined
          ? undefined
          : stringList(value, field, /^[^\s,]{1,256}$/, 'an audience'),
      toRaw: (value) => (value === undefined ? undefined : [...value]),
    }),
    issuerField({
      key: 'algorithms',
      prop: 'algorithms',
      flag: 'algorithms',
      arg: 'ALG,...',
      help: `allowed algorithms (default ${DEFAULT_ALGORITHMS.join(',')}); never HMAC and public-key together`,
      example: ['HS256', 'HS512'],
      parse(value, field) {
        if (value === undefined) return [...DEFAULT_ALGORITHMS];
        const algorithms = stringList(value, field, /^[A-Za-z0-9]+$/, 'an algorithm name');
        for (const [i, alg] of algorithms.entries()) {
          if (!(SUPPORTED_ALGORITHMS as readonly string[]).includes(alg)) {
            throw new RecordError(
              `${field}[${i}]`,
              `unsupported algorithm ${alg} (supported: ${SUPPORTED_ALGORITHMS.join(', ')})`,
            );
          }
        }
        if (algorithms.length === 0)
          throw new RecordError(field, 'must name at least one algorithm');
        return algorithms as Algorithm[];
      },
      toRaw: (value) => [...value],
    }),
    issuerField({
      key: 'roles_claim',
      prop: 'rolesClaim',
      flag: 'roles-claim',
      arg: 'PATH',
      help: 'claim name or dotted path of the roles (default roles)',
      example: 'realm_access.roles',
      parse(value, field) {
        const claim = optionalString(value, field) ?? 'roles';
        if (!CLAIM_PATH.test(claim))
          throw new RecordError(field, 'must be a claim name or dotted path');
        return claim;
      },
      toRaw: (value) => (value === 'roles' ? undefined : value),
    }),
    issuerField({
      key: 'secret_env',
      prop: 'secretEnv',
      flag: 'secret-env',
      arg: 'NAME',
      help: "HMAC only (required then): the service's environment variable holding the secret",
      example: 'IDP_HMAC_SECRET',
      parse(value, field) {
        if (value === undefined) return undefined;
        if (typeof value !== 'string' || !ENV_NAME.test(value))
          throw new RecordError(
            field,
            'must be the name of an environment variable, not the secret',
          );
        return value;
      },
      toRaw: (value) => value,
    }),
    issuerField({
      key: 'mints_for',
      prop: 'mintsFor',
      flag: 'mints-for',
      arg: 'GLOB,...',
      help: 'service ids this issuer may wrap chains for (default: origin tokens only)',
      example: ['partner-*'],
      parse: (value, field) => stringList(value, field, GLOB, GLOB_DESCRIPTION),
      toRaw: absentIfEmpty,
    }),
    issuerField({
      key: 'role',
      prop: 'role',
      omitWhenAbsent: true,
      flag: 'role',
      arg: 'origin|txn_token_service',
      help: 'txn_token_service: a Transaction Token Service, its tokens accepted only as Txn-Tokens (default origin)',
      example: 'txn_token_service',
      parse: (value, field) =>
        value === undefined || value === null
          ? undefined
          : oneOf(value, field, ISSUER_ROLES, 'origin'),
      toRaw: (value) => (value === 'origin' ? undefined : value),
    }),
  ],
};

const MODES = ['enforce', 'shadow'] as const;
function optionalMode(value: unknown, field: string): PolicyMode {
  if (value === undefined || value === null) return undefined;
  return oneOf(value, field, MODES, 'enforce');
}

/** Like optionalBool, but absent stays absent (an operation inherits the service's value). */
function inheritedBool(value: unknown, field: string): boolean | undefined {
  return value === undefined || value === null ? undefined : optionalBool(value, field);
}

const HTTP_METHOD = /^[A-Z]{1,16}$/;

const tenantField = fieldOf<TenantPolicy>();
export const TENANT_SCHEMA: RecordSchema<TenantPolicy> = {
  kind: 'tenant',
  name: { prop: 'tenant', flag: 'tenant', arg: 'T', help: 'the tenant' },
  fields: [
    tenantField({
      key: 'recursion',
      prop: 'recursion',
      flag: 'recursion',
      arg: 'deny|audit',
      help: 'a service already in the chain is refused, or allowed and marked (default deny)',
      example: 'audit',
      parse: (value, field) => oneOf(value, field, ['deny', 'audit'], 'deny'),
      toRaw: (value) => value,
    }),
    tenantField({
      key: 'sealed',
      prop: 'sealed',
      flag: 'sealed',
      arg: 'allow|deny',
      help: 'whether a chain with a container this service cannot open is accepted (default deny)',
      example: 'allow',
      parse: (value, field) => oneOf(value, field, ['allow', 'deny'], 'deny'),
      toRaw: (value) => value,
    }),
    tenantField({
      key: 'entry_only',
      prop: 'entryOnly',
      flag: 'entry-only',
      help: 'an origin token is accepted only by services marked --entry',
      example: true,
      parse: optionalBool,
      toRaw: (value) => value,
    }),
    tenantField({
      key: 'max_depth',
      prop: 'maxDepth',
      flag: 'max-depth',
      arg: 'N',
      help: "deepest token the tenant's services may receive, 0 to 64 (default no tenant limit)",
      example: 3,
      parse: optionalDepth,
      toRaw: (value) => value,
    }),
    tenantField({
      key: 'mode',
      prop: 'mode',
      flag: 'mode',
      arg: 'enforce|shadow',
      help: "dry-run for the tenant's policy denials (default: MATRYOSHKA_MODE)",
      example: 'shadow',
      parse: optionalMode,
      toRaw: (value) => value,
    }),
    tenantField({
      key: 'chain_format',
      prop: 'chainFormat',
      flag: 'chain-format',
      arg: 'nested|compact|auto',
      help: "how this tenant's chains are minted (default: MATRYOSHKA_CHAIN_FORMAT)",
      example: 'compact',
      parse: (value, field) =>
        value === undefined || value === null
          ? undefined
          : oneOf(value, field, CHAIN_FORMATS, 'auto'),
      toRaw: (value) => value,
    }),
    tenantField({
      key: 'header_budget',
      prop: 'headerBudget',
      flag: 'header-budget',
      arg: 'BYTES',
      help: `bytes the service may add upstream for this tenant, ${HEADER_BUDGET_MIN} to ${HEADER_BUDGET_MAX} (default: MATRYOSHKA_HEADER_BUDGET)`,
      example: 4096,
      parse: (value, field) => optionalBudget(value, field).headerBudget,
      toRaw: (value) => value,
    }),
    tenantField({
      key: 'txn_tokens',
      prop: 'txnTokens',
      omitWhenAbsent: true,
      flag: 'txn-tokens',
      help: 'an allowed Check also answers a Txn-Token (needs MATRYOSHKA_TRUST_DOMAIN; default off)',
      example: true,
      parse: (value, field) => optionalBool(value, field) || undefined,
      toRaw: (value) => (value === true ? true : undefined),
    }),
  ],
};

const operationField = fieldOf<OperationPolicy>();
/** One entry of a service's `operations`; its name is a field of its own (the entries form a list). */
export const OPERATION_SCHEMA: RecordSchema<OperationPolicy> = {
  kind: 'operation',
  fields: [
    operationField({
      key: 'name',
      prop: 'name',
      flag: 'name',
      arg: 'NAME',
      required: true,
      help: 'names the operation in spans, audit lines and the metric label',
      example: 'read',
      parse: (value, field) => identifier(value, field),
      toRaw: (value) => value,
    }),
    operationField({
      key: 'path',
      prop: 'path',
      flag: 'path',
      arg: 'PATTERN',
      help: 'HTTP path pattern: literal segments, * for one segment, a final ** for any rest',
      example: '/orders/*',
      parse(value, field) {
        if (typeof value !== 'string') throw new RecordError(field, 'must be a path pattern');
        const pattern = parsePathPattern(value);
        if (typeof pattern === 'string') throw new RecordError(field, pattern);
        return pattern;
      },
      toRaw: (value) => value.text,
    }),
    operationField({
      key: 'methods',
      prop: 'methods',
      flag: 'methods',
      arg: 'M,...',
      help: 'HTTP methods it matches, upper case (default any)',
      example: ['GET', 'HEAD'],
      parse: (value, field) => stringList(value, field, HTTP_METHOD, 'an upper-case HTTP method'),
      toRaw: absentIfEmpty,
    }),
    operationField({
      key: 'allowed_callers',
      prop: 'allowedCallers',
      flag: 'allowed-callers',
      arg: 'GLOB,...',
      help: "the immediate caller must match one (default: the service's)",
      example: ['cart'],
      parse: (value, field) =>
        value === undefined || value === null
          ? undefined
          : stringList(value, field, GLOB, GLOB_DESCRIPTION),
      toRaw: (value) => (value === undefined ? undefined : [...value]),
    }),
    operationField({
      key: 'required_roles',
      prop: 'requiredRoles',
      flag: 'required-roles',
      arg: 'R,...',
      help: "the user must hold every one (default: the service's)",
      example: ['admin'],
      parse: (value, field) =>
        value === undefined || value === null
          ? undefined
          : stringList(value, field, ROLE, `a role name (at most ${MAX_ROLE_LENGTH} characters)`),
      toRaw: (value) => (value === undefined ? undefined : [...value]),
    }),
    operationField({
      key: 'max_depth',
      prop: 'maxDepth',
      flag: 'max-depth',
      arg: 'N',
      help: "deepest token this operation may receive, 0 to 64 (the service's applies too)",
      example: 2,
      parse: optionalDepth,
      toRaw: (value) => value,
    }),
    operationField({
      key: 'entry',
      prop: 'entry',
      flag: 'entry',
      help: "accepts origin tokens in an entry_only tenant (default: the service's)",
      example: true,
      parse: inheritedBool,
      toRaw: (value) => value,
    }),
    operationField({
      key: 'entry_only',
      prop: 'entryOnly',
      flag: 'entry-only',
      help: 'refuses origin tokens unless it is an entry (the tenant rule, for this operation)',
      example: true,
      parse: inheritedBool,
      toRaw: (value) => value,
    }),
    operationField({
      key: 'bind_source',
      prop: 'bindSource',
      flag: 'bind-source',
      help: "the request's source workload must map to the chain's caller (default: the service's)",
      example: true,
      parse: inheritedBool,
      toRaw: (value) => value,
    }),
    operationField({
      key: 'mode',
      prop: 'mode',
      flag: 'mode',
      arg: 'enforce|shadow',
      help: "dry-run for this operation's denials (default: the service's)",
      example: 'shadow',
      parse: optionalMode,
      toRaw: (value) => value,
    }),
  ],
};

/**
 * One operation from the registry file (a mapping), from Redis (the same), or from the CLI, where
 * `--operation` carries it as a JSON or YAML flow mapping. `grpc: /pkg.Service/Method` is the path
 * of a gRPC method (Envoy forwards gRPC as POST to that path).
 */
function parseOperation(value: unknown, field: string): OperationPolicy {
  let raw = value;
  if (typeof value === 'string') {
    try {
      raw = parseYaml(value);
    } catch {
      throw new RecordError(field, 'must be a mapping (JSON or YAML flow: {name: read, path: /x})');
    }
  }
  const object = { ...asObject(raw, field) };
  if (object['grpc'] !== undefined) {
    if (object['path'] !== undefined) throw new RecordError(field, 'takes path or grpc, not both');
    const method = object['grpc'];
    if (typeof method !== 'string' || !/^\/[A-Za-z0-9_.]+\/(\*|[A-Za-z0-9_]+)$/.test(method))
      throw new RecordError(
        `${field}.grpc`,
        'must be /package.Service/Method or /package.Service/*',
      );
    object['path'] = method;
    delete object['grpc'];
  }
  if (object['path'] === undefined) throw new RecordError(`${field}.path`, 'is required (or grpc)');
  return readRecord(OPERATION_SCHEMA, object, field, { allowInsecure: false }, {});
}

function parseOperations(value: unknown, field: string): OperationPolicy[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) throw new RecordError(field, 'must be a list');
  const operations = value.map((item, i) => parseOperation(item, `${field}[${i}]`));
  const names = new Set<string>();
  for (const [i, op] of operations.entries()) {
    if (names.has(op.name))
      throw new RecordError(`${field}[${i}].name`, `duplicate operation ${op.name}`);
    names.add(op.name);
  }
  return operations;
}

const serviceField = fieldOf<ServicePolicy>();
export const SERVICE_SCHEMA: RecordSchema<ServicePolicy> = {
  kind: 'service',
  name: { prop: 'sid', flag: 'sid', arg: 'S', help: "the destination's service id" },
  fields: [
    serviceField({
      key: 'tenant',
      prop: 'tenant',
      flag: 'tenant',
      arg: 'T',
      help: 'the tenant the service belongs to (another tenant is tenant_mismatch)',
      example: 'acme',
      parse: (value, field) => (value === undefined ? undefined : identifier(value, field)),
      toRaw: (value) => value,
    }),
    serviceField({
      key: 'allowed_callers',
      prop: 'allowedCallers',
      flag: 'allowed-callers',
      arg: 'GLOB,...',
      help: 'the immediate caller must match one (default any caller)',
      example: ['gateway', 'cart-*'],
      parse: (value, field) => stringList(value, field, GLOB, GLOB_DESCRIPTION),
      toRaw: absentIfEmpty,
    }),
    serviceField({
      key: 'required_roles',
      prop: 'requiredRoles',
      flag: 'required-roles',
      arg: 'R,...',
      help: 'the user must hold every one',
      example: ['reader'],
      // A role outside the role grammar is dropped from every token, so requiring one could never be met.
      parse: (value, field) =>
        stringList(
          value,
          field,
          ROLE,
          `a role name (printable ASCII without comma or space, at most ${MAX_ROLE_LENGTH})`,
        ),
      toRaw: absentIfEmpty,
    }),
    serviceField({
      key: 'max_depth',
      prop: 'maxDepth',
      flag: 'max-depth',
      arg: 'N',
      help: 'deepest token this service may receive, 0 to 64',
      example: 4,
      parse: optionalDepth,
      toRaw: (value) => value,
    }),
    serviceField({
      key: 'seal',
      prop: 'seal',
      flag: 'seal',
      help: "tokens minted for this service encrypt their container to this service's key",
      example: true,
      parse: optionalBool,
      toRaw: trueOrAbsent,
    }),
    serviceField({
      key: 'entry',
      prop: 'entry',
      flag: 'entry',
      help: 'an entry service of an entry_only tenant',
      example: true,
      parse: optionalBool,
      toRaw: trueOrAbsent,
    }),
    serviceField({
      key: 'bind_source',
      prop: 'bindSource',
      flag: 'bind-source',
      help: "the request's source workload must map to the chain's caller",
      example: true,
      parse: optionalBool,
      toRaw: trueOrAbsent,
    }),
    serviceField({
      key: 'mode',
      prop: 'mode',
      flag: 'mode',
      arg: 'enforce|shadow',
      help: "dry-run for this service's policy denials (default: the tenant's)",
      example: 'shadow',
      parse: optionalMode,
      toRaw: (value) => value,
    }),
    serviceField({
      key: 'operations',
      prop: 'operations',
      flag: 'operation',
      arg: 'JSON',
      repeat: true,
      help: 'an operation with its own rule, e.g. {"name":"read","path":"/orders/*","methods":["GET"]}; first match wins',
      example: [
        { name: 'read', path: '/orders/*', methods: ['GET'], required_roles: ['reader'] },
        {
          name: 'charge',
          path: '/shop.Payments/Charge',
          allowed_callers: ['checkout'],
          mode: 'shadow',
        },
      ],
      parse: parseOperations,
      toRaw: (value) =>
        value.length === 0 ? undefined : value.map((op) => recordToRaw(OPERATION_SCHEMA, op)),
    }),
    serviceField({
      key: 'deny_unmatched',
      prop: 'denyUnmatched',
      flag: 'deny-unmatched',
      help: 'a request no operation matches is refused instead of getting the service rule',
      example: true,
      parse: optionalBool,
      toRaw: trueOrAbsent,
    }),
  ],
};

/** Every field of `schema` read from `raw` (unknown keys refused) on top of `base` (the name). */
function readRecord<R>(
  schema: RecordSchema<R>,
  raw: Raw,
  field: string,
  context: ParseContext,
  base: Partial<R>,
): R {
  refuseUnknown(
    raw,
    schema.fields.map((f) => f.key),
    field,
    schema.takesSecrets === true,
  );
  const record: Partial<R> = { ...base };
  for (const spec of schema.fields) {
    const value = spec.parse(raw[spec.key], `${field}.${spec.key}`, context);
    if (value === undefined && spec.omitWhenAbsent === true) continue;
    record[spec.prop] = value;
  }
  // Every property is set: the base holds the name, the loop every field the schema declares
  // (an optional property left absent when its field is, see FieldSpec.omitWhenAbsent).
  return record as R;
}

/** Inverse of the parsers, for YAML/JSON output and storage: snake_case, defaults left out. */
export function recordToRaw<R>(schema: RecordSchema<R>, record: R): Raw {
  const raw: Raw = {};
  for (const spec of schema.fields) {
    const value = spec.toRaw(record[spec.prop]);
    if (value !== undefined) raw[spec.key] = value;
  }
  return raw;
}

export function parseIssuer(value: unknown, field: string, allowInsecure: boolean): IssuerRecord {
  const raw = asObject(value, field);
  const record = readRecord(ISSUER_SCHEMA, raw, field, { allowInsecure }, {});
  // Rules between fields, which no single entry can state.
  const secret = secretReference(raw, field, record.secretEnv);
  const hmac = record.algorithms.filter((a) => a.startsWith('HS'));
  if (hmac.length > 0 && hmac.length !== record.algorithms.length) {
    throw new RecordError(
      `${field}.algorithms`,
      'must not mix HMAC and public-key algorithms (algorithm confusion)',
    );
  }
  if (hmac.length > 0 && secret === undefined)
    throw new RecordError(`${field}.secret_env`, 'is required for HMAC algorithms');
  if (hmac.length === 0 && secret !== undefined)
    throw new RecordError(secret.field, 'is only for HMAC algorithms');
  if (hmac.length === 0 && record.jwksUri === undefined)
    httpUrl(record.issuer, `${field}.issuer`, allowInsecure);
  return { ...record, secretEnv: secret?.name };
}

export function parseTenant(tenant: string, value: unknown, field: string): TenantPolicy {
  const name = identifier(tenant, field);
  const raw = value === null || value === undefined ? {} : asObject(value, field);
  return readRecord(TENANT_SCHEMA, raw, field, { allowInsecure: false }, { tenant: name });
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
  const name = identifier(sid, field);
  const raw = value === null || value === undefined ? {} : asObject(value, field);
  return readRecord(SERVICE_SCHEMA, raw, field, { allowInsecure: false }, { sid: name });
}

export const issuerToRaw = (record: IssuerRecord): Raw => recordToRaw(ISSUER_SCHEMA, record);
export const tenantToRaw = (policy: TenantPolicy): Raw => recordToRaw(TENANT_SCHEMA, policy);
export const serviceToRaw = (policy: ServicePolicy): Raw => recordToRaw(SERVICE_SCHEMA, policy);
