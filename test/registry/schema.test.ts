/**
 * The record schemas of src/registry/records.ts drive every form a record takes. Walking them:
 * every field round-trips registry file (YAML) → record → Redis → record, every field has a CLI
 * flag that sets it (a spawned CLI against a real redis-server), and every flag is in the usage.
 * A field added to a schema is covered here without touching this file.
 */
import assert from 'node:assert/strict';
import { runProgramHere, runProgramWithEnv } from '../helpers/program.js';
import { describe, it } from 'node:test';
import { stringify } from 'yaml';
import { RedisLayout } from '../../src/redis/layout.js';
import {
  type FieldSpec,
  ISSUER_SCHEMA,
  type RecordSchema,
  SERVICE_SCHEMA,
  TENANT_SCHEMA,
  parseIssuer,
  parseService,
  parseTenant,
} from '../../src/registry/records.js';
import type { RegistryContents } from '../../src/registry/memory-registry.js';
import { parseRegistryDocument } from '../../src/registry/registry-file.js';
import { RegistryStore } from '../../src/registry/registry-store.js';
import { RedisServer } from '../helpers/redis-server.js';
import { perSuite } from '../helpers/suite-parts.js';

type AnySchema = RecordSchema<object>;

/** Every field at its example value, as the registry file spells it. */
const exampleRaw = (schema: AnySchema): Record<string, unknown> =>
  Object.fromEntries(schema.fields.map((f) => [f.key, f.example]));

/** The CLI arguments that say the same as `raw`, from each field's flag. */
function argv(schema: AnySchema, raw: Record<string, unknown>): string[] {
  return schema.fields.flatMap((f: FieldSpec<object>) => {
    const value = raw[f.key];
    if (f.arg === undefined) return value === true ? [`--${f.flag}`] : [];
    if (Array.isArray(value))
      return f.repeat === true
        ? value.flatMap((v) => [
            `--${f.flag}`,
            typeof v === 'object' ? JSON.stringify(v) : String(v),
          ])
        : [`--${f.flag}`, value.join(',')];
    return [`--${f.flag}`, String(value)];
  });
}

const KINDS = [
  {
    schema: ISSUER_SCHEMA as AnySchema,
    name: 'https://idp.example',
    minimal: parseIssuer({ issuer: 'https://idp.example', tenant: 'acme' }, 'x', false),
    cli: (args: string[]) => ['issuer', 'add', ...args],
  },
  {
    schema: TENANT_SCHEMA as AnySchema,
    name: 'acme',
    minimal: parseTenant('acme', {}, 'x'),
    cli: (args: string[]) => ['tenant', 'set', '--tenant', 'acme', ...args],
  },
  {
    schema: SERVICE_SCHEMA as AnySchema,
    name: 'orders',
    minimal: parseService('orders', {}, 'x'),
    cli: (args: string[]) => ['service', 'set', '--sid', 'orders', ...args],
  },
];

describe('the registry record schemas', () => {
  const redis = perSuite(() => RedisServer.start());

  /** The three example records, read from one registry file. */
  const fromYaml = () =>
    parseRegistryDocument(
      stringify({
        issuers: [exampleRaw(ISSUER_SCHEMA as AnySchema)],
        tenants: { acme: exampleRaw(TENANT_SCHEMA as AnySchema) },
        services: { orders: exampleRaw(SERVICE_SCHEMA as AnySchema) },
      }),
      false,
    );

  it('every example is valid and differs from the default, so each round trip below can fail', async () => {
    const contents = fromYaml();
    const records = [contents.issuers[0], contents.tenants[0], contents.services[0]];
    for (const [i, { schema, minimal }] of KINDS.entries()) {
      const record = records[i] as unknown as Record<string, unknown>;
      for (const f of schema.fields) {
        if (f.required === true) continue; // issuer and tenant of an issuer: no default to differ from
        assert.notDeepEqual(
          record[f.prop as string],
          (minimal as unknown as Record<string, unknown>)[f.prop as string],
          `${schema.kind}.${f.key}: the example is not the default`,
        );
      }
    }
  });

  /** The records stored under `prefix` (after `write`, if given) are exactly `expected`'s. */
  async function assertStored(
    prefix: string,
    expected: RegistryContents,
    write?: (store: RegistryStore) => Promise<void>,
  ): Promise<void> {
    const store = new RegistryStore(redis().client(), new RedisLayout(prefix), false);
    try {
      await write?.(store);
      const stored = (await store.snapshot()).contents;
      assert.deepEqual(stored.issuers, expected.issuers);
      assert.deepEqual(stored.tenants, expected.tenants);
      assert.deepEqual(stored.services, expected.services);
    } finally {
      store.redis.disconnect();
    }
  }

  it('YAML → record → Redis → record keeps every field', async () => {
    const contents = fromYaml();
    await assertStored('schema-yaml', contents, (store) => store.importContents(contents));
  });

  it('the CLI sets every field with its flag, to the same record the YAML gives', async () => {
    const expected = fromYaml();
    const env = { REDIS_URL: redis().url, MATRYOSHKA_REDIS_PREFIX: 'schema-cli' };
    for (const { schema, cli } of KINDS) {
      const result = await runProgramWithEnv(cli(argv(schema, exampleRaw(schema))), env);
      assert.equal(result.code, 0, `${schema.kind}: ${result.stderr}`);
    }
    await assertStored('schema-cli', expected);
  });

  it('every flag appears in the usage and in its command --help', async () => {
    const usage = (await runProgramHere(['--help'])).stdout;
    for (const { schema, cli } of KINDS) {
      const help = (await runProgramHere([...cli([]).slice(0, 2), '--help'])).stdout;
      for (const f of schema.fields) {
        const flag = f.arg === undefined ? `--${f.flag}` : `--${f.flag} ${f.arg}`;
        assert.ok(usage.includes(flag), `${schema.kind}.${f.key}: ${flag} in the usage`);
        assert.ok(help.includes(flag), `${schema.kind}.${f.key}: ${flag} in --help`);
        // The first words of the help text, as --help wraps it.
        assert.ok(help.includes(f.help.slice(0, 30)), `${schema.kind}.${f.key}: described`);
      }
    }
  });
});
