/**
 * The example registry the README points at is a registry file the service accepts, `registry
 * import` writes it into a real Redis, and `registry export` writes back a file that `registry
 * import` and MATRYOSHKA_REGISTRY_FILE read as the same registry.
 */
import assert from 'node:assert/strict';
import { runProgramWithEnv } from '../helpers/program.js';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parse } from 'yaml';
import type { RegistryContents } from '../../src/registry/memory-registry.js';
import { loadRegistryFile } from '../../src/registry/registry-file.js';
import { ROOT } from '../helpers/processes.js';
import { RedisServer } from '../helpers/redis-server.js';

const EXAMPLE = join(ROOT, 'examples/registry.yaml');
const dir = mkdtempSync(join(tmpdir(), 'matryoshka-export-'));

/** The contents with every section in name order (export sorts; a file need not). */
function sorted(contents: RegistryContents): RegistryContents {
  const by = <T>(items: readonly T[], name: (t: T) => string): T[] =>
    [...items].sort((a, b) => name(a).localeCompare(name(b)));
  return {
    issuers: by(contents.issuers, (i) => i.issuer),
    tenants: by(contents.tenants, (t) => t.tenant),
    services: by(contents.services, (s) => s.sid),
    principals: contents.principals,
  };
}

describe('examples/registry.yaml', () => {
  it('is a valid registry file with issuers, tenants, services and principals', async () => {
    const contents = loadRegistryFile(EXAMPLE, false);
    assert.ok(contents.issuers.length >= 1);
    assert.ok(contents.tenants.length >= 1);
    assert.ok(contents.services.some((s) => s.sid === 'orders'));
    assert.ok(Object.keys(contents.principals).length >= 1);
  });
});

describe('registry import, then export, against a real redis-server', () => {
  let redis: RedisServer;
  const cli = (args: string[], prefix = 'matryoshka') =>
    runProgramWithEnv(args, { REDIS_URL: redis.url, MATRYOSHKA_REDIS_PREFIX: prefix });
  before(async () => {
    redis = await RedisServer.start();
  });
  after(() => redis.stop());

  it('export writes a file import reads back: the same registry, the same text', async () => {
    const imported = await cli(['registry', 'import', EXAMPLE]);
    assert.equal(imported.code, 0, imported.stderr);
    assert.match(imported.stdout, /imported 2 issuers, 2 tenants, 3 services, 1 principals/);

    const first = join(dir, 'first.yaml');
    const exported = await cli(['registry', 'export', '--out', first]);
    assert.equal(exported.code, 0, exported.stderr);
    // What was exported is what the example says, record for record.
    assert.deepEqual(
      sorted(loadRegistryFile(first, false)),
      sorted(loadRegistryFile(EXAMPLE, false)),
    );

    // Into an empty registry (another prefix), and out again: the same text.
    const again = await cli(['registry', 'import', first], 'copy');
    assert.equal(again.code, 0, again.stderr);
    const second = await cli(['registry', 'export'], 'copy');
    assert.equal(second.code, 0, second.stderr);
    assert.equal(`${second.stdout.trimEnd()}\n`, readFileSync(first, 'utf8'));

    // --json is a registry file too.
    const json = await cli(['registry', 'export', '--json'], 'copy');
    const document = JSON.parse(json.stdout) as Record<string, unknown>;
    assert.deepEqual(Object.keys(document), ['issuers', 'tenants', 'services', 'principals']);
    assert.deepEqual(document, parse(readFileSync(first, 'utf8')));
  });

  it('principal list and show read what was imported', async () => {
    const list = await cli(['principal', 'list', '--json']);
    assert.equal(list.code, 0, list.stderr);
    assert.deepEqual(JSON.parse(list.stdout), {
      'spiffe://cluster.local/ns/shop/sa/checkout': 'checkout',
    });
    const bySid = await cli(['principal', 'list', '--sid', 'orders', '--json']);
    assert.deepEqual(JSON.parse(bySid.stdout), {});
    const show = await cli([
      'principal',
      'show',
      '--principal',
      'spiffe://cluster.local/ns/shop/sa/checkout',
    ]);
    assert.equal(show.code, 0, show.stderr);
    assert.equal(show.stdout.trim(), 'spiffe://cluster.local/ns/shop/sa/checkout: checkout');
    const missing = await cli(['principal', 'show', '--principal', 'spiffe://nobody']);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /no principal spiffe:\/\/nobody is mapped/);
  });

  it('one empty-result convention: an empty listing is the empty collection and exit 0; a named record that is not there is exit 2', async () => {
    const empty = 'empty';
    for (const [args, expected] of [
      [['issuer', 'list'], '[]'],
      [['issuer', 'list', '--json'], '[]'],
      [['tenant', 'show'], '{}'],
      [['service', 'show', '--json'], '{}'],
      [['principal', 'list'], '{}'],
    ] as const) {
      const result = await cli([...args], empty);
      assert.equal(result.code, 0, `${args.join(' ')}: ${result.stderr}`);
      assert.equal(result.stdout.trim(), expected, args.join(' '));
    }
    for (const args of [
      ['tenant', 'show', '--tenant', 'nope'],
      ['service', 'show', '--sid', 'nope'],
      ['principal', 'show', '--principal', 'nope'],
    ]) {
      const result = await cli(args, empty);
      assert.equal(result.code, 2, args.join(' '));
      assert.equal(result.stdout, '');
    }
    const exported = await cli(['registry', 'export'], empty);
    assert.equal(exported.code, 0, exported.stderr);
    assert.deepEqual(parse(exported.stdout), {
      issuers: [],
      tenants: {},
      services: {},
      principals: {},
    });
  });
});
