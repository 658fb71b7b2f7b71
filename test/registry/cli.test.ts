import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Redis } from 'ioredis';
import { LocalIssuer } from '../../src/demo/local-issuer.js';
import { type Harness, startHarness } from '../helpers/harness.js';
import { eventually } from '../helpers/processes.js';
import { runProgramWithEnv } from '../helpers/program.js';
import { redisWithClient } from './redis-suite.js';

/** Every key with its DUMP: equal snapshots mean nothing at all was written. */
async function everything(client: Redis): Promise<Record<string, string>> {
  const keys = (await client.keys('*')).sort();
  const dumps = await Promise.all(
    keys.map(async (k) => (await client.dumpBuffer(k))?.toString('base64') ?? ''),
  );
  return Object.fromEntries(keys.map((k, i) => [k, dumps[i] ?? '']));
}

/** `issuer add` of `issuer` for `tenant`, with further flags. */
const issuerAdd = (tenant: string, issuer: string, ...flags: string[]): string[] => [
  'issuer',
  'add',
  '--tenant',
  tenant,
  '--issuer',
  issuer,
  ...flags,
];

describe('registry commands against a real Redis', () => {
  const { redis, client } = redisWithClient();
  const env = (): Record<string, string> => ({ REDIS_URL: redis().url });
  const cli = (...args: string[]) => runProgramWithEnv(args, env());

  it('refuses malformed input with one line and exit 2, leaving Redis unchanged', async () => {
    assert.equal(
      (await cli(...issuerAdd('acme', 'https://idp.acme.example', '--audience', 'orders-api')))
        .code,
      0,
    );
    assert.equal((await cli('tenant', 'set', '--tenant', 'acme', '--max-depth', '6')).code, 0);
    const before = await everything(client());
    const malformed: Array<[string[], RegExp]> = [
      [issuerAdd('acme', 'http://idp.insecure.example'), /must be an https URL/],
      [
        issuerAdd('acme', 'https://idp.acme.example', '--algorithms', 'ES256,none'),
        /unsupported algorithm none/,
      ],
      [issuerAdd('acme', 'legacy', '--algorithms', 'HS256'), /secret_env: is required/],
      [
        issuerAdd('acme', 'legacy', '--algorithms', 'HS256', '--secret-env', 'not a name'),
        /environment variable/,
      ],
      [issuerAdd('bad tenant', 'https://x.example'), /tenant: must be an identifier/],
      [['issuer', 'add', '--issuer', 'https://x.example'], /--tenant is required/],
      [
        issuerAdd('acme', 'https://x.example', '--jwks-uri', 'ftp://x.example/keys'),
        /jwks_uri: must be an https URL/,
      ],
      [issuerAdd('acme', 'https://x.example', '--bogus'), /Unknown option '--bogus'/],
      [
        ['issuer', 'remove', '--issuer', 'https://never.example'],
        /no issuer https:\/\/never\.example/,
      ],
      [
        ['tenant', 'set', '--tenant', 'acme', '--max-depth', 'deep'],
        /max_depth: must be a whole number/,
      ],
      [
        ['tenant', 'set', '--tenant', 'acme', '--recursion', 'maybe'],
        /recursion: must be one of deny, audit/,
      ],
      [
        ['service', 'set', '--sid', 'orders', '--allowed-callers', 'gate way'],
        /allowed_callers\[0\]: must be a glob/,
      ],
      [['service', 'set', '--sid', 'orders', '--max-depth', '-1'], /--max-depth/],
      [
        ['service', 'set', '--sid', 'orders', '--max-depth=-1'],
        /max_depth: must be a whole number/,
      ],
      [
        ['principal', 'map', '--principal', 'spiffe://cluster.local/ns/shop/sa/orders'],
        /--sid is required/,
      ],
    ];
    // In this process (the same runProgram the command runs, under the same environment): a
    // refusal needs no process of its own; the commands above and below spawn one.
    for (const [args, message] of malformed) {
      const result = await runProgramWithEnv(args, env());
      assert.equal(result.code, 2, `${args.join(' ')} → exit 2 (${result.stderr})`);
      assert.match(result.stderr, message, args.join(' '));
      // A mistake in the command's shape (an unknown flag) adds the usage after its one line.
      const [first, ...rest] = result.stderr.trim().split('\n');
      assert.match(first ?? '', message, args.join(' '));
      if (/Unknown option/.test(first ?? '')) assert.ok(rest.length > 0, 'usage follows');
      if (rest.length > 0) assert.match(rest[0] ?? '', /^usage: /, args.join(' '));
    }
    assert.deepEqual(await everything(client()), before, 'nothing was written');
  });

  it('round-trips issuer list --json, tenant show and service show', async () => {
    const globexIdp = issuerAdd('globex', 'https://idp.globex.example');
    const jwks = ['--jwks-uri', 'https://idp.globex.example/keys'];
    const claims = ['--algorithms', 'ES256,PS256', '--roles-claim', 'realm_access.roles'];
    assert.equal((await cli(...globexIdp, ...jwks, ...claims)).code, 0);
    const legacy = ['--algorithms', 'HS256', '--secret-env', 'LEGACY_HS_SECRET'];
    assert.equal((await cli(...issuerAdd('globex', 'legacy-hs', ...legacy))).code, 0);
    const listed = JSON.parse(
      (await cli('issuer', 'list', '--tenant', 'globex', '--json')).stdout,
    ) as unknown;
    assert.deepEqual(listed, [
      {
        issuer: 'https://idp.globex.example',
        tenant: 'globex',
        jwks_uri: 'https://idp.globex.example/keys',
        algorithms: ['ES256', 'PS256'],
        roles_claim: 'realm_access.roles',
      },
      {
        issuer: 'legacy-hs',
        tenant: 'globex',
        algorithms: ['HS256'],
        secret_env: 'LEGACY_HS_SECRET',
      },
    ]);
    // Feeding the listing back through `issuer add` reproduces it exactly.
    for (const record of listed as Array<Record<string, unknown>>) {
      const args = issuerAdd(String(record['tenant']), String(record['issuer']), '--algorithms');
      args.push((record['algorithms'] as string[]).join(','));
      if (record['jwks_uri']) args.push('--jwks-uri', String(record['jwks_uri']));
      if (record['roles_claim']) args.push('--roles-claim', String(record['roles_claim']));
      if (record['secret_env']) args.push('--secret-env', String(record['secret_env']));
      assert.equal((await cli(...args)).code, 0);
    }
    assert.deepEqual(
      JSON.parse((await cli('issuer', 'list', '--tenant', 'globex', '--json')).stdout),
      listed,
    );

    assert.equal(
      (
        await cli(
          'tenant',
          'set',
          '--tenant',
          'globex',
          '--max-depth',
          '4',
          '--recursion',
          'audit',
          '--sealed',
          'allow',
          '--entry-only',
        )
      ).code,
      0,
    );
    assert.deepEqual(
      JSON.parse((await cli('tenant', 'show', '--tenant', 'globex', '--json')).stdout),
      {
        globex: { recursion: 'audit', sealed: 'allow', entry_only: true, max_depth: 4 },
      },
    );
    assert.equal(
      (
        await cli(
          'service',
          'set',
          '--sid',
          'orders',
          '--tenant',
          'globex',
          '--allowed-callers',
          'gateway,cart-*',
          '--required-roles',
          'buyer',
          '--bind-source',
        )
      ).code,
      0,
    );
    assert.deepEqual(
      JSON.parse((await cli('service', 'show', '--sid', 'orders', '--json')).stdout),
      {
        orders: {
          tenant: 'globex',
          allowed_callers: ['gateway', 'cart-*'],
          required_roles: ['buyer'],
          bind_source: true,
        },
      },
    );
    assert.equal((await cli('tenant', 'show', '--tenant', 'nobody')).code, 2);
  });

  it('refuses a secret literal in registry input and in the config file, naming the field', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'matryoshka-registry-'));
    writeFileSync(
      join(dir, 'registry.yaml'),
      'issuers:\n  - issuer: legacy-hs\n    tenant: acme\n    algorithms: [HS256]\n    secret: example\n',
    );
    const imported = await cli('registry', 'import', join(dir, 'registry.yaml'));
    assert.equal(imported.code, 2);
    assert.match(
      imported.stderr,
      /issuers\[0\]\.secret: a secret must be an environment reference/,
    );
    assert.doesNotMatch(imported.stderr, /example/, 'the secret is not echoed');

    writeFileSync(
      join(dir, 'config.yaml'),
      `REDIS_URL: redis://:hunter2@127.0.0.1:${redis().port}\n`,
    );
    const configured = await runProgramWithEnv(['issuer', 'list'], {
      MATRYOSHKA_CONFIG_FILE: join(dir, 'config.yaml'),
    });
    assert.equal(configured.code, 2);
    assert.match(
      configured.stderr,
      /config\.yaml: REDIS_URL: a secret must be an environment reference/,
    );
    assert.doesNotMatch(configured.stderr, /hunter2/);

    writeFileSync(
      join(dir, 'config.yaml'),
      'REDIS_URL: redis://:${REDIS_PASSWORD}@127.0.0.1:1\nMATRYOSHKA_HMAC_SECRET: literal\n',
    );
    const unknown = await runProgramWithEnv(['issuer', 'list'], {
      MATRYOSHKA_CONFIG_FILE: join(dir, 'config.yaml'),
      REDIS_PASSWORD: 'x',
    });
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /MATRYOSHKA_HMAC_SECRET: unknown variable/);
  });

  it('reads REDIS_URL from the config file through an environment reference', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'matryoshka-registry-'));
    writeFileSync(join(dir, 'config.yaml'), 'REDIS_URL: redis://127.0.0.1:${TEST_REDIS_PORT}\n');
    const listed = await runProgramWithEnv(['issuer', 'list', '--json'], {
      MATRYOSHKA_CONFIG_FILE: join(dir, 'config.yaml'),
      TEST_REDIS_PORT: String(redis().port),
    });
    assert.equal(listed.code, 0, listed.stderr);
    assert.ok((JSON.parse(listed.stdout) as unknown[]).length >= 1);
  });

  describe('changes reach a running service', () => {
    let idp: LocalIssuer;
    let h: Harness;
    before(async () => {
      idp = await LocalIssuer.start();
      h = await startHarness({ env: { REDIS_URL: redis().url } });
    });
    after(async () => {
      await h.stop();
      await idp.stop();
    });

    it('applies tenant, service and principal changes without restart', async () => {
      assert.equal(
        (
          await runProgramWithEnv(issuerAdd('shop', idp.issuer, '--jwks-uri', idp.jwksUri), {
            ...env(),
            MATRYOSHKA_ALLOW_INSECURE_ISSUERS: 'true',
          })
        ).code,
        0,
      );
      const token = await idp.mint({ sub: 'alice', roles: ['buyer'] });
      await eventually(
        async () => (await h.client.check({ token, sid: 'cart' })).allowed,
        1000,
        'issuer registered',
      );

      assert.equal(
        (
          await cli(
            'service',
            'set',
            '--sid',
            'cart',
            '--tenant',
            'shop',
            '--required-roles',
            'admin',
          )
        ).code,
        0,
      );
      await eventually(
        async () => (await h.client.check({ token, sid: 'cart' })).httpStatus === 403,
        1000,
        'service policy applied',
      );

      assert.equal(
        (
          await cli(
            'principal',
            'map',
            '--principal',
            'spiffe://cluster.local/ns/shop/sa/billing',
            '--sid',
            'billing',
          )
        ).code,
        0,
      );
      await eventually(
        async () =>
          (
            await h.client.check({
              token,
              destinationPrincipal: 'spiffe://cluster.local/ns/shop/sa/billing',
            })
          ).headers['x-auth-chain'] === 'billing',
        1000,
        'principal mapping applied',
      );

      assert.equal((await cli('tenant', 'set', '--tenant', 'shop', '--max-depth', '1')).code, 0);
      const first = await h.client.check({ token, sid: 'billing' });
      await eventually(
        async () =>
          (await h.client.check({ token: first.forwardedToken as string, sid: 'ledger' }))
            .httpStatus === 403,
        1000,
        'tenant depth applied',
      );
    });
  });
});
