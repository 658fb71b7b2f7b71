/**
 * `inspect` and `explain` on hostile tokens: they read at most the documented level cap (a compact
 * level's hop records included), their output stays bounded whatever the token's size, and their
 * --json output escapes what the text output escapes and never exhausts the stack.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DEFAULT_LIMITS } from '../../src/chain/limits.js';
import { runProgramWithEnv } from '../helpers/program.js';

const b64 = (value: unknown): string =>
  Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url');

/** A compact JWS with a well-formed but meaningless signature: inspect verifies nothing. */
function unsigned(payload: unknown): string {
  return `${b64({ alg: 'ES256', kid: 'k1' })}.${b64(payload)}.${Buffer.alloc(64, 7).toString('base64url')}`;
}

const NOW = 1_900_000_000;
const origin = unsigned({ iss: 'https://idp.example', sub: 'alice', iat: NOW, exp: NOW + 600 });

/** A forged compact level of ours holding `count` hop records around the origin. */
function compactWithHops(count: number): string {
  const hops = Array.from({ length: count }, (_, i) => [`s${i}`, NOW, NOW + 60, `j${i}`]);
  return unsigned({
    iss: 'urn:matryoshka:authz',
    aud: 'urn:matryoshka:authz',
    sub: 'alice',
    tenant_id: 'acme',
    iat: NOW,
    exp: NOW + 60,
    auth_stack: {
      fmt: 'JWT',
      form: 'compact',
      hops,
      sid: `s${count - 1}`,
      depth: count,
      container: origin,
    },
  });
}

const inspect = (token: string, ...flags: string[]) =>
  runProgramWithEnv(['inspect', ...flags, '-'], {}, token);
const explain = (token: string, ...flags: string[]) =>
  runProgramWithEnv(['explain', '--sid', 'orders', ...flags, '-'], { LOG_LEVEL: 'silent' }, token);

describe('inspect reads at most the level cap, hop records included', () => {
  it('a compact level of 5,000 hop records prints the cap, not 5,000 nodes', async () => {
    const result = await inspect(compactWithHops(5000));
    assert.equal(result.code, 1, result.stderr);
    assert.equal(result.stderr, '');
    const lines = result.stdout.trimEnd().split('\n');
    assert.ok(
      lines.length <= DEFAULT_LIMITS.maxLevels + 2,
      `${lines.length} lines for a 5,000-record level`,
    );
    assert.match(result.stdout, /stopped: more than 32 levels/);
  });

  it('output does not grow with the number of records past the cap (text and JSON)', async () => {
    for (const flags of [[], ['--json']]) {
      const small = await inspect(compactWithHops(2_000), ...flags);
      const large = await inspect(compactWithHops(8_000), ...flags);
      assert.equal(small.code, 1, small.stderr);
      assert.equal(large.code, 1, large.stderr);
      // Only the record numbers in the sids differ in width between the two.
      assert.ok(
        large.stdout.length < small.stdout.length * 1.2,
        `${flags.join(' ')}: ${small.stdout.length} → ${large.stdout.length} characters`,
      );
    }
  });

  it('a 3 MB token is read without crashing, and prints kilobytes', async () => {
    const token = compactWithHops(60_000);
    assert.ok(token.length > 3_000_000, `${token.length} characters`);
    for (const flags of [[], ['--json']]) {
      const result = await inspect(token, ...flags);
      assert.equal(result.code, 1, result.stderr);
      assert.equal(result.stderr, '', 'no crash');
      assert.ok(result.stdout.length < 64 * 1024, `${result.stdout.length} characters printed`);
    }
    const explained = await explain(token, '--json');
    assert.equal(explained.code, 1, explained.stderr);
    assert.ok(explained.stdout.length < 64 * 1024, `${explained.stdout.length} characters`);
  });
});

describe('--json on hostile claims', () => {
  const deep = 200_000;
  // Written as text: JSON.stringify here would exhaust this process's stack first.
  const nested = unsigned(
    `{"iss":"https://idp.example","sub":"alice","iat":${NOW},"exp":${'['.repeat(deep)}1${']'.repeat(deep)}}`,
  );

  it('deeply nested claims: inspect --json and explain --json print JSON, no stack overflow', async () => {
    const inspected = await inspect(nested, '--json');
    assert.equal(inspected.stderr, '');
    assert.equal(inspected.code, 0);
    const parsed = JSON.parse(inspected.stdout) as { levels: Array<{ exp: unknown }> };
    assert.equal(parsed.levels.length, 1);
    assert.match(JSON.stringify(parsed.levels[0]?.exp), /nested deeper than 16 levels/);

    const explained = await explain(nested, '--json');
    assert.equal(explained.code, 1, explained.stderr);
    assert.doesNotMatch(explained.stderr, /Maximum call stack|internal error/);
    JSON.parse(explained.stdout);
  });

  it('C1, bidi and line-separator characters are escaped in JSON as in text, and the JSON still says them', async () => {
    const iss = 'https://idp.example/\u009b31m\u202eevil\u2028x\u0085';
    const token = unsigned({ iss, sub: 'alice\u2066', iat: NOW, exp: NOW + 600 });
    const raw = /[\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/;
    for (const run of [await inspect(token, '--json'), await explain(token, '--json')]) {
      assert.doesNotMatch(run.stdout, raw);
      const parsed = JSON.parse(run.stdout) as { levels: Array<{ iss: string; sub?: string }> };
      assert.equal(parsed.levels[0]?.iss, iss, 'the JSON parses to exactly what the token says');
    }
    const text = await inspect(token);
    assert.doesNotMatch(text.stdout, raw);
  });
});
