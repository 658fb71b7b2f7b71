/**
 * `matryoshka-authz explain`: the Check pipeline offline, against the configured registry (a file,
 * or Redis) and keys. Chains are minted by a real service; explain runs as its own process.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { SignJWT } from 'jose';
import { EnvoyLikeClient } from '../../src/demo/envoy-client.js';
import { LocalIssuer } from '../../src/demo/local-issuer.js';
import { type Served, eventually, runCli, spawnServe } from '../helpers/processes.js';
import { runProgramHere, runProgramWithEnv } from '../helpers/program.js';
import { RedisServer } from '../helpers/redis-server.js';

interface Explained {
  levels: Array<{ sid?: string; iss?: string; verified: boolean }>;
  refused?: { reason: string };
  destination?: string;
  rule: { service?: string; serviceRegistered: boolean; operation?: string };
  decision: string;
  reason?: string;
  status: number;
}

function walkThrough(client: EnvoyLikeClient, origin: string, sids: string[]): Promise<string> {
  return sids.reduce(async (previous, sid) => {
    const result = await client.check({ token: await previous, sid });
    assert.equal(result.allowed, true, `${sid}: ${result.body}`);
    return result.forwardedToken as string;
  }, Promise.resolve(origin));
}

/** The same three cases against whichever registry `env` configures. */
function explainCases(
  env: () => Record<string, string>,
  chain: () => Promise<{ allowed: string }>,
) {
  // In this process (runProgram under the child's environment): the same pipeline and output;
  // the bad-configuration case below spawns the command for the process path.
  const explain = (args: string[]) => runProgramWithEnv(['explain', ...args], env());

  it('explains an allowed chain: every level verified, the operation that decided, exit 0', async () => {
    const { allowed } = await chain();
    // GET /orders/7 at orders: the operation `read` decides.
    const readOrder = ['--sid', 'orders', '--method', 'GET', '--path', '/orders/7', allowed];
    const text = await explain(readOrder);
    assert.equal(text.code, 0, text.stderr + text.stdout);
    assert.match(text.stdout, /chain \(3 levels read\)/);
    assert.equal((text.stdout.match(/ verified$/gm) ?? []).length, 3, text.stdout);
    assert.match(text.stdout, /rule {9}service orders, operation read; tenant registered/);
    assert.match(text.stdout, /decision {5}allow {2}200/);
    const json = await explain(['--json', ...readOrder]);
    assert.equal(json.code, 0, json.stderr);
    const parsed = JSON.parse(json.stdout) as Explained;
    assert.equal(parsed.decision, 'allow');
    assert.deepEqual(parsed.rule, {
      service: 'orders',
      serviceRegistered: true,
      operation: 'read',
      tenantRegistered: true,
    });
    assert.deepEqual(
      parsed.levels.map((l) => l.sid),
      [undefined, 'gateway', 'cart'],
    );
  });

  it('explains a recursive chain: denied with its reason, exit 1', async () => {
    const { allowed } = await chain();
    const result = await explain(['--json', '--sid', 'gateway', allowed]);
    assert.equal(result.code, 1, result.stderr);
    const parsed = JSON.parse(result.stdout) as Explained;
    assert.equal(parsed.decision, 'deny');
    assert.equal(parsed.reason, 'recursion');
    assert.equal(parsed.status, 403);
    assert.ok(
      parsed.levels.every((l) => l.verified),
      'the chain itself is genuine',
    );
  });

  it('explains a tampered chain: refused as not genuine, levels shown unverified, exit 1', async () => {
    const { allowed } = await chain();
    const [header, payload, signature] = allowed.split('.') as [string, string, string];
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as Record<
      string,
      unknown
    >;
    const tampered = `${header}.${Buffer.from(JSON.stringify({ ...claims, roles: ['admin'] })).toString('base64url')}.${signature}`;
    const result = await explain(['--sid', 'orders', tampered]);
    assert.equal(result.code, 1, result.stderr);
    assert.match(result.stdout, /refused: bad_signature/);
    assert.match(result.stdout, /not verified/);
    assert.match(result.stdout, /decision {5}deny {2}bad_signature {2}401/);
  });

  it('refuses bad usage and bad configuration with exit 2', async () => {
    assert.equal((await explain(['--frobnicate', 'x'])).code, 2);
    const env2 = { ...env(), MATRYOSHKA_MAX_DEPTH: 'deep' };
    const badConfig = await runProgramWithEnv(['explain', 'x.y.z'], env2);
    assert.equal(badConfig.code, 2, badConfig.stderr);
    assert.match(badConfig.stderr, /MATRYOSHKA_MAX_DEPTH/);
  });
}

const registryYaml = (idp: LocalIssuer) => `issuers:
  - issuer: ${idp.issuer}
    tenant: acme
    jwks_uri: ${idp.jwksUri}
tenants:
  acme: { recursion: deny }
services:
  orders:
    tenant: acme
    operations:
      - { name: read, path: /orders/*, methods: [GET] }
`;

/**
 * A spawned service on the registry `configure` sets up from the registry file (its environment,
 * shared with explain, and what to dispose of after), with explainCases run against it.
 */
function explainAgainst(
  configure: (registryFile: string, dir: string) => Promise<Configured>,
): void {
  let idp: LocalIssuer;
  let served: Served;
  let client: EnvoyLikeClient;
  let configured: Configured;
  before(async () => {
    idp = await LocalIssuer.start();
    const dir = mkdtempSync(join(tmpdir(), 'matryoshka-explain-'));
    writeFileSync(join(dir, 'registry.yaml'), registryYaml(idp));
    configured = await configure(join(dir, 'registry.yaml'), dir);
    served = await spawnServe(configured.env);
    client = new EnvoyLikeClient(`127.0.0.1:${served.grpcPort}`);
    await eventually(
      async () => (await fetch(`http://127.0.0.1:${served.httpPort}/readyz`)).status === 200,
      5000,
      'ready',
    );
  });
  after(async () => {
    client.close();
    await served.stop();
    await idp.stop();
    await configured.dispose?.();
  });
  explainCases(
    () => configured.env,
    async () => ({
      allowed: await walkThrough(client, await idp.mint({ sub: 'alice' }), ['gateway', 'cart']),
    }),
  );
}

interface Configured {
  env: Record<string, string>;
  dispose?: () => Promise<void>;
}

describe('explain against a registry file', () => {
  explainAgainst(async (registryFile, dir) => {
    const keys = await runProgramHere(['keys', 'generate', '--out', join(dir, 'keys.json')]);
    assert.equal(keys.code, 0, keys.stderr);
    return {
      env: {
        MATRYOSHKA_REGISTRY_FILE: registryFile,
        MATRYOSHKA_SIGNING_KEYS: join(dir, 'keys.json'),
        MATRYOSHKA_ALLOW_INSECURE_ISSUERS: 'true',
      },
    };
  });
});

describe('explain against Redis', () => {
  explainAgainst(async (registryFile) => {
    const redis = await RedisServer.start();
    const env = { REDIS_URL: redis.url, MATRYOSHKA_ALLOW_INSECURE_ISSUERS: 'true' };
    const imported = runCli(['registry', 'import', registryFile], { env });
    assert.equal(imported.code, 0, imported.stderr);
    // Generated keys, published to Redis: explain verifies our levels with the fleet's keys.
    return { env, dispose: () => redis.dispose() };
  });
});

describe('explain under the environment it is handed', () => {
  // Twice in one process, each environment naming its own secret for the same HS256 issuer, which
  // the process's own environment does not have: each run must verify with its own.
  it('verifies an HS256 origin with the secret of the environment it is given, not the process’s', async () => {
    const variable = `EXPLAIN_HS_SECRET_${process.pid}`;
    assert.equal(process.env[variable], undefined);
    const dir = mkdtempSync(join(tmpdir(), 'matryoshka-explain-'));
    writeFileSync(
      join(dir, 'registry.yaml'),
      `issuers:\n  - issuer: legacy-hs\n    tenant: acme\n    algorithms: [HS256]\n    secret_env: ${variable}\nservices:\n  orders: { tenant: acme }\n`,
    );
    for (const secret of [
      'first-secret-of-32-bytes-or-more!',
      'second-secret-of-32-bytes-or-more',
    ]) {
      const token = await new SignJWT({ sub: 'alice' })
        .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
        .setIssuer('legacy-hs')
        .setIssuedAt()
        .setExpirationTime('5m')
        .sign(new TextEncoder().encode(secret));
      const result = await runProgramWithEnv(['explain', '--json', '--sid', 'orders', token], {
        MATRYOSHKA_REGISTRY_FILE: join(dir, 'registry.yaml'),
        [variable]: secret,
      });
      assert.equal(result.code, 0, result.stderr + result.stdout);
      const parsed = JSON.parse(result.stdout) as Explained;
      assert.equal(parsed.decision, 'allow');
      assert.deepEqual(
        parsed.levels.map((l) => l.verified),
        [true],
      );
    }
  });
});
