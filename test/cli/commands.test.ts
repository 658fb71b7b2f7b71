import assert from 'node:assert/strict';
import { runProgramHere } from '../helpers/program.js';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { EnvoyLikeClient } from '../../src/demo/envoy-client.js';
import { LocalIssuer } from '../../src/demo/local-issuer.js';
import { runCli as run, scripts, spawnServe as serve } from '../helpers/processes.js';
import { localIssuer } from '../helpers/records.js';
import { perSuite } from '../helpers/suite-parts.js';

describe('the command line', () => {
  const idp = perSuite(() => LocalIssuer.start());
  /** One Check of alice's origin token at A, as Envoy sends it to `served`. */
  const checkAliceAtA = async (served: { grpcPort: number }) => {
    const client = new EnvoyLikeClient(`127.0.0.1:${served.grpcPort}`);
    try {
      return await client.check({ token: await idp().mint({ sub: 'alice' }), sid: 'A' });
    } finally {
      client.close();
    }
  };

  it('npm start serves Check on the embedded default with no configuration, and stops on SIGTERM', async () => {
    assert.equal(scripts['start'], 'exec node dist/src/cli/main.js serve');
    const served = await serve({});
    try {
      assert.ok(served.grpcPort > 0 && served.httpPort > 0, 'free ports were picked and logged');
      assert.ok(
        served.lines.some(
          (l) => typeof l['msg'] === 'string' && (l['msg'] as string).includes('embedded registry'),
        ),
        'says what it trusts',
      );
      const result = await checkAliceAtA(served);
      assert.equal(result.httpStatus, 401, 'an issuer nobody registered is refused');
      assert.equal((await fetch(`http://127.0.0.1:${served.httpPort}/readyz`)).status, 200);
    } finally {
      assert.equal(await served.stop(), 0);
    }
  });

  it('serves the issuers of MATRYOSHKA_REGISTRY_FILE with the keys of MATRYOSHKA_SIGNING_KEYS', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'matryoshka-cli-'));
    const keys = await runProgramHere(['keys', 'generate', '--out', join(dir, 'keys.json')]);
    assert.equal(keys.code, 0, keys.stderr);
    const keyFile = JSON.parse(readFileSync(join(dir, 'keys.json'), 'utf8')) as {
      keys: Array<{ kid: string; use: string; d?: string }>;
    };
    assert.deepEqual(
      keyFile.keys.map((k) => k.use),
      ['sig', 'enc'],
    );
    assert.ok(
      keyFile.keys.every((k) => typeof k.d === 'string'),
      'private keys',
    );
    writeFileSync(
      join(dir, 'registry.yaml'),
      `issuers:\n  - issuer: ${idp().issuer}\n    tenant: acme\n    jwks_uri: ${idp().jwksUri}\nservices:\n  A: { tenant: acme }\n`,
    );
    const served = await serve({
      MATRYOSHKA_REGISTRY_FILE: join(dir, 'registry.yaml'),
      MATRYOSHKA_SIGNING_KEYS: join(dir, 'keys.json'),
      MATRYOSHKA_ALLOW_INSECURE_ISSUERS: 'true',
    });
    try {
      const result = await checkAliceAtA(served);
      assert.equal(result.allowed, true);
      const jwks = (await (
        await fetch(`http://127.0.0.1:${served.httpPort}/.well-known/jwks.json`)
      ).json()) as { keys: Array<{ kid: string }> };
      assert.deepEqual(jwks.keys.map((k) => k.kid).sort(), keyFile.keys.map((k) => k.kid).sort());
      const header = JSON.parse(
        Buffer.from(
          (result.forwardedToken as string).split('.')[0] as string,
          'base64url',
        ).toString(),
      ) as { kid: string };
      assert.equal(header.kid, keyFile.keys[0]?.kid, 'the first key signs');
    } finally {
      await served.stop();
    }
  });

  it('refuses to start on a secret literal in the registry file, naming the field (exit 2)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'matryoshka-cli-'));
    writeFileSync(
      join(dir, 'registry.yaml'),
      'issuers:\n  - issuer: legacy-hs\n    tenant: acme\n    algorithms: [HS256]\n    secret: example\n',
    );
    const result = run(['serve'], {
      env: {
        MATRYOSHKA_REGISTRY_FILE: join(dir, 'registry.yaml'),
        MATRYOSHKA_GRPC_PORT: '0',
        MATRYOSHKA_HTTP_PORT: '0',
      },
    });
    assert.equal(result.code, 2);
    assert.match(result.stderr, /issuers\[0\]\.secret: a secret must be an environment reference/);
    assert.equal(result.stderr.trim().split('\n').length, 1, 'one line');
  });

  it('refuses a bad environment value with one line naming the variable (exit 2)', () => {
    const result = run(['serve'], { env: { MATRYOSHKA_GRPC_PORT: 'ninety' } });
    assert.equal(result.code, 2);
    assert.equal(
      result.stderr.trim(),
      'matryoshka-authz: MATRYOSHKA_GRPC_PORT: must be a whole number from 0 to 65535',
    );
  });

  it('inspect prints a depth-4 chain as a tree, origin at the root, and --json for machines', async () => {
    const { startHarness } = await import('../helpers/harness.js');
    const h = await startHarness({
      contents: {
        issuers: [localIssuer(idp(), 'acme')],
      },
    });
    let token = await idp().mint({ sub: 'alice', pad: 'z'.repeat(600) });
    try {
      for (const sid of ['A', 'B', 'C', 'D'])
        token = (await h.client.check({ token, sid })).forwardedToken as string;
    } finally {
      await h.stop();
    }
    const tree = run(['inspect', token]);
    assert.equal(tree.code, 0, tree.stderr);
    const lines = tree.stdout.trim().split('\n');
    assert.match(
      lines[0] ?? '',
      /^origin {2}iss=http:\/\/127\.0\.0\.1:\d+ {2}sub=alice {2}alg=ES256/,
    );
    for (const [i, sid] of ['A', 'B', 'C', 'D'].entries()) {
      assert.match(
        lines[i + 1] ?? '',
        new RegExp(
          `^\\s*└── depth ${i + 1}  sid=${sid}  iss=urn:matryoshka:authz .*fmt=JWT  cmp=${i + 1 >= 3 ? 'g' : '-'}`,
        ),
      );
    }
    assert.match(lines[5] ?? '', /stopped: origin reached \(5 levels read\)/);

    const json = run(['inspect', '--json', '-'], { input: `Bearer ${token}\n` });
    const parsed = JSON.parse(json.stdout) as {
      levels: Array<{ sid?: string; depth?: number }>;
      stop: { kind: string };
    };
    assert.deepEqual(
      parsed.levels.map((l) => l.sid ?? null),
      [null, 'A', 'B', 'C', 'D'],
    );
    assert.equal(parsed.stop.kind, 'origin');

    const garbage = run(['inspect', 'definitely-not-a-token']);
    assert.equal(garbage.code, 1);
    assert.match(garbage.stdout, /stopped: .*not a compact JWS/);
    assert.equal(run(['inspect', '--bogus']).code, 2);
  });
});
