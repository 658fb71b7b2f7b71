/**
 * Every mistake and outage ends in one line that says whose it is: the person's (exit 2, naming the
 * flag, argument or variable), the environment's (exit 3), or ours (exit 1, "internal error", and
 * only then). One case per command class: serve, the registry commands, the local file commands.
 */
import assert from 'node:assert/strict';
import { runProgramWithEnv } from '../helpers/program.js';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { type Server, createServer } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { EXIT_CODES, exitCodeOf } from '../../src/cli/exit-codes.js';
import { UsageError } from '../../src/cli/usage-error.js';
import { ConfigError } from '../../src/config/config.js';
import { EnvironmentError, MatryoshkaError, messageOf } from '../../src/errors.js';
import { RegistryUnavailableError } from '../../src/registry/registry.js';
import { ROOT, runCli, runCliAsync } from '../helpers/processes.js';
import { RedisServer, freePort } from '../helpers/redis-server.js';
import { perSuite } from '../helpers/suite-parts.js';

/** stderr is exactly one line, `matryoshka-authz: …`. */
function oneLine(stderr: string): string {
  const lines = stderr.split('\n').filter((l) => l.length > 0);
  assert.equal(lines.length, 1, `one line on stderr, got:\n${stderr}`);
  assert.match(lines[0] ?? '', /^matryoshka-authz: /);
  return lines[0] ?? '';
}

describe('serve: configuration and environment at start', () => {
  /** `serve` on free ports (unless `env` names one), logging nothing: stderr is all it says. */
  const serve = (env: Record<string, string>) =>
    runCli(['serve'], {
      env: { MATRYOSHKA_GRPC_PORT: '0', MATRYOSHKA_HTTP_PORT: '0', LOG_LEVEL: 'silent', ...env },
    });

  it('MATRYOSHKA_REGISTRY_FILE=nope.yaml: exit 2 naming the variable, not an internal error', () => {
    const result = serve({ MATRYOSHKA_REGISTRY_FILE: 'nope.yaml' });
    assert.equal(result.code, 2, result.stderr);
    const line = oneLine(result.stderr);
    assert.match(
      line,
      /MATRYOSHKA_REGISTRY_FILE: cannot read nope\.yaml \(no such file or directory\)/,
    );
    assert.doesNotMatch(line, /internal error/);
  });

  describe('a gRPC port already in use', () => {
    let holder: Server;
    let port: number;
    before(async () => {
      port = await freePort();
      holder = createServer();
      await new Promise<void>((resolve) => holder.listen(port, '127.0.0.1', resolve));
    });
    after(() => new Promise<void>((resolve) => holder.close(() => resolve())));

    it('exit 3 naming MATRYOSHKA_GRPC_PORT, and no raw grpc-js line on stderr', () => {
      const result = serve({ MATRYOSHKA_GRPC_PORT: String(port), MATRYOSHKA_HOST: '127.0.0.1' });
      assert.equal(result.code, 3, result.stderr);
      const line = oneLine(result.stderr);
      assert.match(
        line,
        new RegExp(
          `MATRYOSHKA_GRPC_PORT: cannot listen on 127\\.0\\.0\\.1:${port}: address already in use`,
        ),
      );
      assert.doesNotMatch(line, /internal error/);
    });
  });
});

// Independent cases that mostly wait on the CLI's Redis connection: run side by side.
describe('registry commands: Redis and files', { concurrency: true }, () => {
  it('Redis unreachable: exit 3, "cannot reach Redis", not an internal error', async () => {
    const result = await runCliAsync(['issuer', 'list'], {
      env: { REDIS_URL: 'redis://127.0.0.1:1' },
    });
    assert.equal(result.code, 3, result.stderr);
    const line = oneLine(result.stderr);
    assert.match(line, /cannot reach Redis at REDIS_URL: .*ECONNREFUSED/);
    assert.doesNotMatch(line, /internal error/);
  });

  it('registry import of a missing file names the FILE argument, not a variable never set', async () => {
    const result = await runProgramWithEnv(['registry', 'import', 'missing.yaml'], {
      REDIS_URL: 'redis://127.0.0.1:1',
    });
    assert.equal(result.code, 2, result.stderr);
    const line = oneLine(result.stderr);
    assert.match(line, /FILE: cannot read missing\.yaml \(no such file or directory\)/);
    assert.doesNotMatch(line, /MATRYOSHKA_REGISTRY_FILE/);
  });

  describe('rediss:// against a plain Redis', () => {
    const redis = perSuite(() => RedisServer.start());

    it('exit 3 with a hint that the URL asks for TLS', async () => {
      const result = await runCliAsync(['issuer', 'list'], {
        env: { REDIS_URL: `rediss://127.0.0.1:${redis().port}` },
      });
      assert.equal(result.code, 3, result.stderr);
      const line = oneLine(result.stderr);
      assert.match(line, /cannot reach Redis at REDIS_URL: .*REDIS_URL asks for TLS/);
    });
  });
});

describe('local file commands', () => {
  it('keys generate --out /no/dir/k.json: exit 2 naming --out', async () => {
    const result = await runProgramWithEnv(['keys', 'generate', '--out', '/no/dir/k.json'], {});
    assert.equal(result.code, 2, result.stderr);
    assert.match(
      oneLine(result.stderr),
      /--out \/no\/dir\/k\.json: cannot write \(no such file or directory\)/,
    );
  });

  it('certs generate --dir /proc/1/nope ends at once with exit 2 naming --dir (it used to spin a core)', () => {
    // runCli kills the child after 20 s: a spinning mkdir shows up as a null exit code.
    const result = runCli(['certs', 'generate', '--dir', '/proc/1/nope']);
    assert.equal(result.code, 2, result.stderr);
    assert.match(oneLine(result.stderr), /--dir \/proc\/1\/nope: cannot write/);
  });

  it('token mint without MATRYOSHKA_SIGNING_KEYS: exit 2 naming the variable', async () => {
    const result = await runProgramWithEnv(
      ['token', 'mint', '--tenant', 'demo', '--sub', 'alice'],
      {},
    );
    assert.equal(result.code, 2, result.stderr);
    assert.match(oneLine(result.stderr), /^matryoshka-authz: MATRYOSHKA_SIGNING_KEYS: /);
  });
});

describe('the error model', () => {
  it('exit codes: the person 2, the environment 3, a bug 1', () => {
    assert.equal(exitCodeOf(new UsageError('x')), 2);
    assert.equal(exitCodeOf(new ConfigError('X', 'bad')), 2);
    assert.equal(exitCodeOf(new EnvironmentError('down')), 3);
    assert.equal(exitCodeOf(new RegistryUnavailableError('down')), 3);
    assert.equal(exitCodeOf(new TypeError('x is undefined')), 1);
    assert.equal(exitCodeOf(new MatryoshkaError('ERR_INVARIANT', 'x')), 1);
    assert.equal(exitCodeOf('a string'), 1);
    for (const code of [0, 1, 2, 3])
      assert.ok(code in EXIT_CODES, `exit code ${code} is documented`);
  });

  it('messageOf says what any thrown value is, in one line', () => {
    assert.equal(messageOf(new Error('first\nsecond')), 'first');
    assert.equal(messageOf('plain'), 'plain');
    assert.equal(messageOf({ code: 'E' }), '{"code":"E"}');
    const circular: Record<string, unknown> = {};
    circular['self'] = circular;
    assert.equal(messageOf(circular), '[object Object]');
    assert.equal(messageOf(undefined), 'undefined');
  });

  it('src/ raises no bare Error and casts no caught value to Error', () => {
    const files = (dir: string): string[] =>
      readdirSync(dir).flatMap((name) => {
        const path = join(dir, name);
        return statSync(path).isDirectory() ? files(path) : name.endsWith('.ts') ? [path] : [];
      });
    const found: string[] = [];
    for (const file of files(join(ROOT, 'src'))) {
      readFileSync(file, 'utf8')
        .split('\n')
        .forEach((line, i) => {
          if (/\bnew Error\(|\bas Error\b|as NodeJS\.ErrnoException/.test(line))
            found.push(`${file.slice(ROOT.length)}:${i + 1}: ${line.trim()}`);
        });
    }
    assert.deepEqual(found, []);
  });
});

describe('a registry command that cannot reach Redis', () => {
  it('exits 3 leaving nothing armed behind it (its process used to linger 2 s)', async () => {
    const timers = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    const before = timers();
    const result = await runProgramWithEnv(['issuer', 'list'], {
      REDIS_URL: 'redis://127.0.0.1:1',
    });
    assert.equal(result.code, 3, result.stderr);
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(timers(), before, 'no timer of the command is still armed');
  });
});
