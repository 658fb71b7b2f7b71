import { EnvironmentError, messageOf } from '../errors.js';
import { stringify } from 'yaml';
import { environmentWithConfigFile } from '../config/config-file.js';
import { ConfigError, loadSettings } from '../config/config.js';
import { RedisLayout } from '../redis/layout.js';
import {
  ISSUER_SCHEMA,
  RecordError,
  type RecordSchema,
  SERVICE_SCHEMA,
  TENANT_SCHEMA,
  identifier,
  issuerToRaw,
  parseIssuer,
  parseService,
  parseTenant,
  serviceToRaw,
  tenantToRaw,
} from '../registry/records.js';
import { loadRegistryFile } from '../registry/registry-file.js';
import { RegistryStore } from '../registry/registry-store.js';
import type { Group, Options, Parsed } from './command.js';
import type { Env } from '../env.js';
import { UsageError } from './usage-error.js';
import { writeNamedFile } from './write-file.js';
import type { RegistryContents } from '../registry/memory-registry.js';

/** The only settings a registry command reads: a bad value elsewhere (a port) must not stop it. */
const registrySettings = (env: Env) =>
  loadSettings(environmentWithConfigFile(env), ['redisUrl', 'redisPrefix', 'allowInsecureIssuers']);

const allowInsecure = (env: Env): boolean =>
  loadSettings(environmentWithConfigFile(env), ['allowInsecureIssuers']).allowInsecureIssuers;

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

/**
 * A `rediss://` URL pointed at a plain Redis does not fail, it waits: the server reads the TLS
 * hello as a command that never ends. Said outright, since the timeout alone names no cause.
 */
function tlsHint(url: string, cause: string): string {
  return /^(rediss|redis\+(sentinel|cluster)s):\/\//.test(url) &&
    /ETIMEDOUT|timed? ?out|ECONNRESET|EPROTO|wrong version/i.test(cause)
    ? ' (REDIS_URL asks for TLS: does this Redis serve TLS on that port? A plain one is redis://)'
    : '';
}

export async function withStore<T>(
  env: Env,
  task: (store: RegistryStore) => Promise<T>,
): Promise<T> {
  const config = registrySettings(env);
  if (config.redisUrl === undefined)
    throw new ConfigError(
      'REDIS_URL',
      'registry commands need REDIS_URL (the embedded registry lives in the service process)',
    );
  // The Redis client is loaded here, not at the top: commands that never reach Redis (inspect,
  // keys, token, --help) start without it.
  const { connectRedis } = await import('../redis/connection.js');
  // The CLI may wait for a connection (unlike a Check), but not forever and not retrying.
  const redis = connectRedis(config.redisUrl, {
    enableOfflineQueue: true,
    retryStrategy: () => null,
    lazyConnect: true,
  });
  // The connect() rejection only says "Connection is closed"; the 'error' event says why (TLS, auth, refused).
  let cause: string | undefined;
  redis.on('error', (error: unknown) => {
    cause ??= messageOf(error);
  });
  try {
    await redis.connect().catch((error: unknown) => {
      const why = cause ?? messageOf(error);
      throw new EnvironmentError(
        `cannot reach Redis at REDIS_URL: ${why}${tlsHint(config.redisUrl ?? '', why)}`,
      );
    });
    return await task(
      new RegistryStore(redis, new RedisLayout(config.redisPrefix), config.allowInsecureIssuers),
    );
  } finally {
    // A connection that never opened (or already ended) has nothing to close: ioredis would still
    // arm a 2 s timer for its dead socket and hold the command's exit that long.
    if (redis.status !== 'end') redis.disconnect();
  }
}

// --- Flags, usage and raw records, all from the record schemas of src/registry/records.ts ---

function schemaOptions<R>(schema: RecordSchema<R>): Options {
  const options: Options = {};
  if (schema.name !== undefined) options[schema.name.flag] = { type: 'string' };
  for (const f of schema.fields)
    options[f.flag] =
      f.arg === undefined ? { type: 'boolean' } : { type: 'string', multiple: f.repeat === true };
  return options;
}

function schemaSynopsis<R>(schema: RecordSchema<R>): string {
  const name = schema.name === undefined ? [] : [`--${schema.name.flag} ${schema.name.arg}`];
  const fields = schema.fields.map((f) => {
    const flag = f.arg === undefined ? `--${f.flag}` : `--${f.flag} ${f.arg}`;
    if (f.required === true) return flag;
    return f.repeat === true ? `[${flag}]...` : `[${flag}]`;
  });
  return [...name, ...fields].join(' ');
}

function schemaDetails<R>(schema: RecordSchema<R>): string[] {
  const rows = [
    ...(schema.name === undefined
      ? []
      : [[`--${schema.name.flag} ${schema.name.arg}`, `required; ${schema.name.help}`]]),
    ...schema.fields.map((f) => [
      f.arg === undefined ? `--${f.flag}` : `--${f.flag} ${f.arg}`,
      `${f.required === true ? 'required; ' : ''}${f.repeat === true ? 'repeatable; ' : ''}${f.help}`,
    ]),
  ];
  const width = Math.max(...rows.map(([flag]) => (flag ?? '').length)) + 2;
  // The help column wrapped to stay within 100 columns (with the two spaces usageOf adds).
  const wrapHelp = (help: string): string =>
    (help.match(new RegExp(`.{1,${96 - width}}(?:\\s|$)`, 'g')) ?? [help])
      .map((line) => line.trimEnd())
      .join(`\n  ${' '.repeat(width)}`);
  return [
    ...rows.map(([flag, help]) => `${(flag ?? '').padEnd(width)}${wrapHelp(help ?? '')}`),
    'a flag left out goes back to its default: the whole record is replaced',
  ];
}

/** The record as the registry file would spell it, from the flags that were given. */
function rawFromFlags<R>(
  schema: RecordSchema<R>,
  values: Parsed['values'],
): Record<string, unknown> {
  const raw: Record<string, unknown> = {};
  for (const f of schema.fields) {
    const value = values[f.flag];
    if (f.required === true) required(value, f.flag);
    if (value !== undefined) raw[f.key] = value;
  }
  return raw;
}

const nameOf = <R>(schema: RecordSchema<R>, values: Parsed['values']): string =>
  required(values[schema.name?.flag ?? ''], schema.name?.flag ?? '');

const printed = (json: unknown, records: unknown): string =>
  json === true ? JSON.stringify(records, null, 2) : stringify(records).trimEnd();

// --- The commands ---

export const ISSUER: Group = {
  verbs: {
    add: {
      synopsis: schemaSynopsis(ISSUER_SCHEMA),
      details: ['register (or replace) a trusted issuer', ...schemaDetails(ISSUER_SCHEMA)],
      options: schemaOptions(ISSUER_SCHEMA),
      async run({ values, env }, out) {
        const raw = rawFromFlags(ISSUER_SCHEMA, values);
        const record = validated(() => parseIssuer(raw, 'issuer', allowInsecure(env)));
        await withStore(env, (store) => store.putIssuer(record));
        out(`issuer ${record.issuer} registered for tenant ${record.tenant}`);
        return 0;
      },
    },
    list: {
      synopsis: '[--tenant T] [--json]',
      details: ['the issuers (of one tenant), as YAML or --json'],
      options: { tenant: { type: 'string' }, json: { type: 'boolean', default: false } },
      async run({ values, env }, out) {
        const issuers = (await withStore(env, (store) => store.snapshot())).contents.issuers
          .filter((i) => values['tenant'] === undefined || i.tenant === values['tenant'])
          .sort((a, b) => a.issuer.localeCompare(b.issuer))
          .map(issuerToRaw);
        out(printed(values['json'], issuers));
        return 0;
      },
    },
    remove: {
      synopsis: '--issuer ISS',
      details: ['unregister an issuer and drop its cached keys'],
      options: { issuer: { type: 'string' } },
      async run({ values, env }, out) {
        const iss = required(values['issuer'], 'issuer');
        if (!(await withStore(env, (store) => store.removeIssuer(iss))))
          throw new UsageError(`no issuer ${iss} is registered`);
        out(`issuer ${iss} removed`);
        return 0;
      },
    },
  },
};

/** The contents as the registry file spells them, each section sorted by name. */
function registryDocument(contents: RegistryContents): Record<string, unknown> {
  const byName = <T>(items: readonly T[], name: (item: T) => string): T[] =>
    [...items].sort((a, b) => name(a).localeCompare(name(b)));
  return {
    issuers: byName(contents.issuers, (i) => i.issuer).map(issuerToRaw),
    tenants: Object.fromEntries(
      byName(contents.tenants, (t) => t.tenant).map((t) => [t.tenant, tenantToRaw(t)]),
    ),
    services: Object.fromEntries(
      byName(contents.services, (s) => s.sid).map((s) => [s.sid, serviceToRaw(s)]),
    ),
    principals: Object.fromEntries(
      Object.entries(contents.principals).sort(([a], [b]) => a.localeCompare(b)),
    ),
  };
}

export const TENANT: Group = {
  verbs: {
    set: {
      synopsis: schemaSynopsis(TENANT_SCHEMA),
      details: ["set a tenant's policy", ...schemaDetails(TENANT_SCHEMA)],
      options: schemaOptions(TENANT_SCHEMA),
      async run({ values, env }, out) {
        const name = nameOf(TENANT_SCHEMA, values);
        const raw = rawFromFlags(TENANT_SCHEMA, values);
        const policy = validated(() => parseTenant(name, raw, 'tenant'));
        await withStore(env, (store) => store.putTenant(policy));
        out(`tenant ${policy.tenant} set`);
        return 0;
      },
    },
    show: {
      synopsis: '[--tenant T] [--json]',
      details: ['tenant → policy, as YAML or --json'],
      options: { tenant: { type: 'string' }, json: { type: 'boolean', default: false } },
      async run({ values, env }, out) {
        const tenants = Object.fromEntries(
          (await withStore(env, (store) => store.snapshot())).contents.tenants
            .filter((t) => values['tenant'] === undefined || t.tenant === values['tenant'])
            .map((t) => [t.tenant, tenantToRaw(t)]),
        );
        if (values['tenant'] !== undefined && Object.keys(tenants).length === 0)
          throw new UsageError(`no tenant ${String(values['tenant'])} has a policy`);
        out(printed(values['json'], tenants));
        return 0;
      },
    },
    remove: {
      synopsis: '--tenant T',
      details: [
        "delete a tenant's policy record: the tenant falls back to the defaults (its issuers stay)",
      ],
      options: { tenant: { type: 'string' } },
      async run({ values, env }, out) {
        const name = required(values['tenant'], 'tenant');
        if (!(await withStore(env, (store) => store.removeTenant(name))))
          throw new UsageError(`no tenant ${name} has a policy`);
        out(`tenant ${name} removed`);
        return 0;
      },
    },
  },
};

export const SERVICE: Group = {
  verbs: {
    set: {
      synopsis: schemaSynopsis(SERVICE_SCHEMA),
      details: ["set a destination service's policy", ...schemaDetails(SERVICE_SCHEMA)],
      options: schemaOptions(SERVICE_SCHEMA),
      async run({ values, env }, out) {
        const sid = nameOf(SERVICE_SCHEMA, values);
        const raw = rawFromFlags(SERVICE_SCHEMA, values);
        const policy = validated(() => parseService(sid, raw, 'service'));
        await withStore(env, (store) => store.putService(policy));
        out(`service ${policy.sid} set`);
        return 0;
      },
    },
    show: {
      synopsis: '[--sid S] [--json]',
      details: ['service → policy, as YAML or --json'],
      options: { sid: { type: 'string' }, json: { type: 'boolean', default: false } },
      async run({ values, env }, out) {
        const services = Object.fromEntries(
          (await withStore(env, (store) => store.snapshot())).contents.services
            .filter((s) => values['sid'] === undefined || s.sid === values['sid'])
            .map((s) => [s.sid, serviceToRaw(s)]),
        );
        if (values['sid'] !== undefined && Object.keys(services).length === 0)
          throw new UsageError(`no service ${String(values['sid'])} has a policy`);
        out(printed(values['json'], services));
        return 0;
      },
    },
    remove: {
      synopsis: '--sid S',
      details: ["delete a service's policy record: it then gets its tenant's policy only"],
      options: { sid: { type: 'string' } },
      async run({ values, env }, out) {
        const sid = required(values['sid'], 'sid');
        if (!(await withStore(env, (store) => store.removeService(sid))))
          throw new UsageError(`no service ${sid} has a policy`);
        out(`service ${sid} removed`);
        return 0;
      },
    },
  },
};

function principalName(value: unknown): string {
  const principal = required(value, 'principal');
  if (principal.length > 512 || /\s/.test(principal))
    throw new UsageError('--principal must be a SPIFFE id or principal name without spaces');
  return principal;
}

export const PRINCIPAL: Group = {
  verbs: {
    map: {
      synopsis: '--principal P --sid S',
      details: ['map a workload identity (a SPIFFE id) to a service id'],
      options: { principal: { type: 'string' }, sid: { type: 'string' } },
      async run({ values, env }, out) {
        const principal = principalName(values['principal']);
        const sid = validated(() => identifier(required(values['sid'], 'sid'), '--sid'));
        await withStore(env, (store) => store.mapPrincipal(principal, sid));
        out(`principal ${principal} → ${sid}`);
        return 0;
      },
    },
    list: {
      synopsis: '[--sid S] [--json]',
      details: ['principal → sid (of the principals mapped to one sid), as YAML or --json'],
      options: { sid: { type: 'string' }, json: { type: 'boolean', default: false } },
      async run({ values, env }, out) {
        const { principals } = (await withStore(env, (store) => store.snapshot())).contents;
        const listed = Object.fromEntries(
          Object.entries(principals)
            .filter(([, sid]) => values['sid'] === undefined || sid === values['sid'])
            .sort(([a], [b]) => a.localeCompare(b)),
        );
        out(printed(values['json'], listed));
        return 0;
      },
    },
    show: {
      synopsis: '--principal P [--json]',
      details: ['the sid one principal is mapped to, as YAML or --json'],
      options: { principal: { type: 'string' }, json: { type: 'boolean', default: false } },
      async run({ values, env }, out) {
        const principal = principalName(values['principal']);
        const { principals } = (await withStore(env, (store) => store.snapshot())).contents;
        const sid = Object.hasOwn(principals, principal) ? principals[principal] : undefined;
        if (sid === undefined) throw new UsageError(`no principal ${principal} is mapped`);
        out(printed(values['json'], { [principal]: sid }));
        return 0;
      },
    },
    unmap: {
      synopsis: '--principal P',
      details: ['remove the mapping of a workload identity'],
      options: { principal: { type: 'string' } },
      async run({ values, env }, out) {
        const principal = principalName(values['principal']);
        if (!(await withStore(env, (store) => store.unmapPrincipal(principal))))
          throw new UsageError(`no principal ${principal} is mapped`);
        out(`principal ${principal} unmapped`);
        return 0;
      },
    },
  },
};

/**
 * `registry import FILE`: the embedded-mode YAML, validated whole, then added to Redis in
 * transactions of a few hundred records (see importContents: it merges, it never deletes).
 */
export const REGISTRY: Group = {
  verbs: {
    import: {
      synopsis: 'FILE',
      details: [
        'add or replace every record of a registry YAML (the embedded-mode format) in Redis;',
        'records in Redis that the file does not name are kept (remove them with the remove verbs)',
      ],
      options: {},
      positionals: { min: 1, max: 1 },
      async run({ positionals, env }, out) {
        const file = positionals[0] ?? '';
        const contents = validated(() => loadRegistryFile(file, allowInsecure(env), 'FILE'));
        await withStore(env, (store) => store.importContents(contents));
        out(
          `imported ${contents.issuers.length} issuers, ${contents.tenants.length} tenants, ${contents.services.length} services, ${Object.keys(contents.principals).length} principals`,
        );
        return 0;
      },
    },
    export: {
      synopsis: '[--out FILE] [--json]',
      details: [
        'every record in Redis as one registry file (the embedded-mode format), which',
        '`registry import` and MATRYOSHKA_REGISTRY_FILE read back as it is',
        '--out FILE   write to FILE instead of standard output',
        '--json       JSON (a YAML subset: import reads it too)',
      ],
      options: { out: { type: 'string' }, json: { type: 'boolean', default: false } },
      async run({ values, env }, out) {
        const { contents } = await withStore(env, (store) => store.snapshot());
        const text = printed(values['json'], registryDocument(contents));
        const file = values['out'];
        if (typeof file === 'string') writeNamedFile('--out', file, `${text}\n`, 0o644);
        else out(text);
        return 0;
      },
    },
  },
};
