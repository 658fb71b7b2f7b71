/**
 * The command line answers --help and refuses a wrong shape: every command and subcommand prints
 * its usage on --help and -h (stdout, exit 0) and does nothing else (serve starts no server); an
 * unknown command, subcommand or flag is exit 2 with the usage on stderr. Each case runs the
 * program in this process; the process itself (streams, exit code) is checked once per outcome.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { runProgramHere } from '../helpers/program.js';
import { runCli } from '../helpers/processes.js';

/** Every leaf command, as typed. Groups (issuer, …) are their first words. */
const LEAVES = [
  ['serve'],
  ['inspect'],
  ['keys', 'generate'],
  ['certs', 'generate'],
  ['issuer', 'add'],
  ['issuer', 'list'],
  ['issuer', 'remove'],
  ['tenant', 'set'],
  ['tenant', 'show'],
  ['tenant', 'remove'],
  ['service', 'set'],
  ['service', 'show'],
  ['service', 'remove'],
  ['principal', 'map'],
  ['principal', 'unmap'],
  ['registry', 'import'],
];
const GROUPS = [...new Set(LEAVES.filter((l) => l.length > 1).map((l) => l[0] as string))];
// No REDIS_URL and a port that would be taken: a command that did more than print would fail.
const env = { MATRYOSHKA_GRPC_PORT: '1', MATRYOSHKA_HTTP_PORT: '1' };

describe('matryoshka-authz --help', () => {
  it('the top-level usage names every command, for --help, -h and help', async () => {
    for (const flag of ['--help', '-h', 'help']) {
      const result = await runProgramHere([flag]);
      assert.deepEqual(
        runCli([flag], { env }),
        { ...result, code: 0 },
        'the same from the process',
      );
      assert.equal(result.code, 0, `${flag}: ${result.stderr}`);
      assert.equal(result.stderr, '');
      for (const leaf of LEAVES)
        assert.ok(result.stdout.includes(`  ${leaf.join(' ')}`), `${flag} names ${leaf.join(' ')}`);
    }
  });

  it('every command and subcommand prints its usage on --help and -h, and exits 0', async () => {
    for (const leaf of LEAVES) {
      for (const flag of ['--help', '-h']) {
        const result = await runProgramHere([...leaf, flag]);
        const what = `${leaf.join(' ')} ${flag}`;
        assert.equal(result.code, 0, `${what}: ${result.stderr}`);
        assert.equal(result.stderr, '', what);
        assert.match(
          result.stdout,
          new RegExp(`^usage: matryoshka-authz ${leaf.join(' ')}\\b`),
          what,
        );
        for (const line of result.stdout.trimEnd().split('\n'))
          assert.ok(line.length <= 100, `${what}: "${line}" fits 100 columns`);
      }
    }
    for (const group of GROUPS) {
      const result = await runProgramHere([group, '--help']);
      assert.equal(result.code, 0, `${group} --help: ${result.stderr}`);
      for (const leaf of LEAVES.filter((l) => l[0] === group))
        assert.match(result.stdout, new RegExp(`usage: matryoshka-authz ${leaf.join(' ')}\\b`));
    }
  });

  it('serve --help prints and exits without binding anything', () => {
    const result = runCli(['serve', '--help'], { env: { MATRYOSHKA_GRPC_PORT: '9191' } });
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /^usage: matryoshka-authz serve/);
    assert.doesNotMatch(result.stdout, /serving/);
  });

  it('an unknown command, subcommand or flag is exit 2 with the usage on stderr', async () => {
    const cases = [
      ['frobnicate'],
      [],
      ...GROUPS.map((g) => [g, 'frobnicate']),
      ...GROUPS.map((g) => [g]),
      ...LEAVES.map((l) => [...l, '--frobnicate']),
    ];
    const [first] = cases;
    assert.deepEqual(runCli(first ?? [], { env }), await runProgramHere(first ?? []), 'process');
    for (const args of cases) {
      const result = await runProgramHere(args);
      const what = args.join(' ') || '(nothing)';
      assert.equal(result.code, 2, `${what}: ${result.stderr}`);
      assert.equal(result.stdout, '', `${what}: nothing on stdout`);
      const [first, ...usage] = result.stderr.trimEnd().split('\n');
      assert.match(first ?? '', /^matryoshka-authz: /, what);
      assert.match(usage[0] ?? '', /^usage: matryoshka-authz/, `${what}: usage follows`);
    }
  });
});
