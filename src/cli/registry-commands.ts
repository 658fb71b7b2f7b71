import { type ParseArgsConfig, parseArgs } from 'node:util';
import { stringify } from 'yaml';
import { ConfigError, loadConfig } from '../config/config.js';
import { environmentWithConfigFile } from '../config/config-file.js';
import { connectRedis } from '../redis/connection.js';
import { RedisLayout } from '../redis/layout.js';
import { RegistryStore } from '../registry/registry-store.js';
import { loadRegistryFile } from '../registry/registry-file.js';
import {
  RecordError,
  identifier,
  issuerToRaw,
  parseIssuer,
  parseService,
  parseTenant,
  serviceToRaw,
  tenantToRaw,
} from '../registry/records.js';
import { UsageError } from './usage-error.js';

type Out = (text: string) => void;

/** Parse flags strictly; every problem is a UsageError (exit 2) before Redis is touched. */
function flags(
  args: string[],
  options: NonNullable<ParseArgsConfig['options']>,
): Record<string, unknown> {
  try {
    return parseArgs({ args, options, allowPositionals: false, strict: true }).values as Record<
      string,
      unknown
    >;
  } catch (error) {
    throw new UsageError((error as Error).message.split('\n')[0] ?? 'bad arguments');
  }
}

function required(value: unknown, flag: string): string {
  if (typeof value !== 'string' || value.length === 0)
    throw new UsageError(`--${flag} is required`);
  return value;
}

/** Validation errors of records are usage errors here: the input is the operator's. */
function validated<T>(build: () => T): T {
  try {
    return build();
  } catch (error) {
    if (error instanceof RecordError) throw new UsageError(error.message);
    throw error;
  }
}

async function withStore<T>(task: (store: RegistryStore) => Promise<T>): Promise<T> {
  const env = environmentWithConfigFile(process.env);
  const config = loadConfig({ ...env, MATRYOSHKA_REGISTRY_FILE: undefined });
  if (config.redisUrl === undefined)
    throw new ConfigError(
      'REDIS_URL',
      'registry commands need REDIS_URL (the embedded registry lives in the service process)',
    );
  // The CLI may wait for a connection (unlike a Check), but not forever and not retrying.
  const redis = connectRedis(config.redisUrl, {
    enableOfflineQueue: true,
    retryStrategy: () => null,
    lazyConnect: true,
  });
  // The connect() rejection only says "Connection is closed"; the 'error' event says why (TLS, auth, refused).
  let cause: string | undefined;
  redis.on('error', (error: Error) => {
    cause ??= error.message;
  });
  try {
    await redis.connect().catch((error: Error) => {
      throw new Error(`cannot reach Redis: ${cause ?? error.message}`);
    });
    return await task(
      new RegistryStore(redis, new RedisLayout(config.redisPrefix), config.allowInsecureIssuers),
    );
  } finally {
    redis.disconnect();
  }
}

const allowInsecure = (): boolean =>
  loadConfig({
    ...environmentWithConfigFile(process.env),
    MATRYOSHKA_REGISTRY_FILE: undefined,
    REDIS_URL: undefined,
  }).allowInsecureIssuers;

export async function issuerCommand(args: string[], out: Out): Promise<void> {
  const [verb, ...rest] = args;
  switch (verb) {
    case 'add': {
      const f = flags(rest, {
        tenant: { type: 'string' },
        issuer: { type: 'string' },
        'jwks-uri': { type: 'string' },
        audience: { type: 'string', multiple: true },
        algorithms: { type: 'string' },
        'secret-env': { type: 'string' },
        'roles-claim': { type: 'string' },
        'mints-for': { type: 'string' },
      });
      const record = validated(() =>
        parseIssuer(
          {
            issuer: required(f.issuer, 'issuer'),
            tenant: required(f.tenant, 'tenant'),
            ...(f['jwks-uri'] !== undefined ? { jwks_uri: f['jwks-uri'] } : {}),
            ...(f.audience !== undefined ? { audiences: f.audience } : {}),
            ...(f.algorithms !== undefined ? { algorithms: f.algorithms } : {}),
            ...(f['secret-env'] !== undefined ? { secret_env: f['secret-env'] } : {}),
            ...(f['roles-claim'] !== undefined ? { roles_claim: f['roles-claim'] } : {}),
            ...(f['mints-for'] !== undefined ? { mints_for: f['mints-for'] } : {}),
          },
          'issuer',
          allowInsecure(),
        ),
      );
      await withStore((store) => store.putIssuer(record));
      out(`issuer ${record.issuer} registered for tenant ${record.tenant}`);
      return;
    }
    case 'list': {
      const f = flags(rest, {
        tenant: { type: 'string' },
        json: { type: 'boolean', default: false },
      });
      const issuers = (await withStore((store) => store.snapshot())).contents.issuers
        .filter((i) => f.tenant === undefined || i.tenant === f.tenant)
        .sort((a, b) => a.issuer.localeCompare(b.issuer))
        .map(issuerToRaw);
      out(
        f.json
          ? JSON.stringify(issuers, null, 2)
          : issuers.length === 0
            ? '(no issuers)'
            : stringify(issuers).trimEnd(),
      );
      return;
    }
    case 'remove': {
      const f = flags(rest, { issuer: { type: 'string' } });
      const iss = required(f.issuer, 'issuer');
      if (!(await withStore((store) => store.removeIssuer(iss))))
        throw new UsageError(`no issuer ${iss} is registered`);
      out(`issuer ${iss} removed`);
      return;
    }
    default:
      throw new UsageError('usage: issuer add|list|remove …');
  }
}

export async function tenantCommand(args: string[], out: Out): Promise<void> {
  const [verb, ...rest] = args;
  if (verb === 'set') {
    const f = flags(rest, {
      tenant: { type: 'string' },
      'max-depth': { type: 'string' },
      recursion: { type: 'string' },
      sealed: { type: 'string' },
      'entry-only': { type: 'boolean' },
      'chain-format': { type: 'string' },
      'header-budget': { type: 'string' },
    });
    const name = required(f.tenant, 'tenant');
    const policy = validated(() =>
      parseTenant(
        name,
        {
          ...(f['max-depth'] !== undefined ? { max_depth: f['max-depth'] } : {}),
          ...(f.recursion !== undefined ? { recursion: f.recursion } : {}),
          ...(f.sealed !== undefined ? { sealed: f.sealed } : {}),
          entry_only: f['entry-only'] === true,
          ...(f['chain-format'] !== undefined ? { chain_format: f['chain-format'] } : {}),
          ...(f['header-budget'] !== undefined ? { header_budget: f['header-budget'] } : {}),
        },
        'tenant',
      ),
    );
    await withStore((store) => store.putTenant(policy));
    out(`tenant ${policy.tenant} set`);
    return;
  }
  if (verb === 'show') {
    const f = flags(rest, {
      tenant: { type: 'string' },
      json: { type: 'boolean', default: false },
    });
    const tenants = Object.fromEntries(
      (await withStore((store) => store.snapshot())).contents.tenants
        .filter((t) => f.tenant === undefined || t.tenant === f.tenant)
        .map((t) => [t.tenant, tenantToRaw(t)]),
    );
    if (f.tenant !== undefined && Object.keys(tenants).length === 0)
      throw new UsageError(`no tenant ${f.tenant} has a policy`);
    out(f.json ? JSON.stringify(tenants, null, 2) : stringify(tenants).trimEnd());
    return;
  }
  throw new UsageError('usage: tenant set|show …');
}

export async function serviceCommand(args: string[], out: Out): Promise<void> {
  const [verb, ...rest] = args;
  if (verb === 'set') {
    const f = flags(rest, {
      sid: { type: 'string' },
      tenant: { type: 'string' },
      'allowed-callers': { type: 'string' },
      'required-roles': { type: 'string' },
      'max-depth': { type: 'string' },
      seal: { type: 'boolean' },
      entry: { type: 'boolean' },
      'bind-source': { type: 'boolean' },
    });
    const sid = required(f.sid, 'sid');
    const policy = validated(() =>
      parseService(
        sid,
        {
          ...(f.tenant !== undefined ? { tenant: f.tenant } : {}),
          ...(f['allowed-callers'] !== undefined ? { allowed_callers: f['allowed-callers'] } : {}),
          ...(f['required-roles'] !== undefined ? { required_roles: f['required-roles'] } : {}),
          ...(f['max-depth'] !== undefined ? { max_depth: f['max-depth'] } : {}),
          seal: f.seal === true,
          entry: f.entry === true,
          bind_source: f['bind-source'] === true,
        },
        'service',
      ),
    );
    await withStore((store) => store.putService(policy));
    out(`service ${policy.sid} set`);
    return;
  }
  if (verb === 'show') {
    const f = flags(rest, { sid: { type: 'string' }, json: { type: 'boolean', default: false } });
    const services = Object.fromEntries(
      (await withStore((store) => store.snapshot())).contents.services
        .filter((s) => f.sid === undefined || s.sid === f.sid)
        .map((s) => [s.sid, serviceToRaw(s)]),
    );
    if (f.sid !== undefined && Object.keys(services).length === 0)
      throw new UsageError(`no service ${f.sid} has a policy`);
    out(f.json ? JSON.stringify(services, null, 2) : stringify(services).trimEnd());
    return;
  }
  throw new UsageError('usage: service set|show …');
}

export async function principalCommand(args: string[], out: Out): Promise<void> {
  const [verb, ...rest] = args;
  if (verb !== 'map') throw new UsageError('usage: principal map --principal P --sid S');
  const f = flags(rest, { principal: { type: 'string' }, sid: { type: 'string' } });
  const principal = required(f.principal, 'principal');
  if (principal.length > 512 || /\s/.test(principal))
    throw new UsageError('--principal must be a SPIFFE id or principal name without spaces');
  const sid = validated(() => identifier(required(f.sid, 'sid'), '--sid'));
  await withStore((store) => store.mapPrincipal(principal, sid));
  out(`principal ${principal} → ${sid}`);
}

/** `registry import FILE`: the embedded-mode YAML, validated whole, then written to Redis. */
export async function registryCommand(args: string[], out: Out): Promise<void> {
  const [verb, file, ...rest] = args;
  if (verb !== 'import' || file === undefined || rest.length > 0)
    throw new UsageError('usage: registry import FILE');
  const contents = validated(() => loadRegistryFile(file, allowInsecure()));
  await withStore((store) => store.importContents(contents));
  out(
    `imported ${contents.issuers.length} issuers, ${contents.tenants.length} tenants, ${contents.services.length} services, ${Object.keys(contents.principals).length} principals`,
  );
}
