/**
 * What leaves the service when a client is hostile: the headers a pass-through lets reach the
 * upstream (every header we own is set by us or removed, on every path that lets a request through),
 * and the text a hostile token puts in front of people — `inspect`'s tree on a terminal, the audit
 * line and the span — escaped and bounded.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { ConfigError, loadConfig } from '../../src/config/config.js';
import type { CheckResult } from '../../src/demo/envoy-client.js';
import { LocalIssuer } from '../../src/demo/local-issuer.js';
import { type Harness, startHarness } from '../helpers/harness.js';
import { runProgramWithEnv } from '../helpers/program.js';
import { runProgramHere } from '../helpers/program.js';
import { localIssuer, service } from '../helpers/records.js';
import { claims } from '../helpers/tokens.js';
import { tracedServe } from '../helpers/traced-serve.js';

/** Raw C0 (newline aside: it separates lines), DEL, C1 and bidi controls: none may be printed. */
const RAW_CONTROL =
  /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/;
/** The headers the service owns upstream, written out here as the contract rather than read from the code under test. */
const ownedHeaders = (forward: string): string[] => [
  forward,
  'x-tenant-id',
  'x-user-id',
  'x-user-roles',
  'x-auth-depth',
  'x-auth-chain',
  'x-auth-actors',
  'txn-token',
  'x-request-id',
];
const ANY_CONTROL =
  /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/;

describe('pass-through answers set or remove every header we own (shadow mode, custom forward header)', () => {
  const FORWARD = 'x-chain-token';
  const spoofed: Record<string, string> = {
    [FORWARD]: 'client-forged-token',
    'x-tenant-id': 'evil',
    'x-user-id': 'root',
    'x-user-roles': 'admin',
    'x-auth-depth': '0',
    'x-auth-chain': 'forged',
  };
  let idp: LocalIssuer;
  let slowIdp: LocalIssuer;
  let stranger: LocalIssuer;
  let h: Harness;
  let plain: Harness;
  before(async () => {
    idp = await LocalIssuer.start();
    // An IdP whose JWKS answers long after the caller's deadline: the answer is the timeout path.
    slowIdp = await LocalIssuer.start({ jwksDelayMs: 4000 });
    stranger = await LocalIssuer.start();
    const contents = {
      issuers: [localIssuer(idp, 'acme'), localIssuer(slowIdp, 'slow')],
      services: [service('guarded', { required_roles: ['admin'] })],
    };
    h = await startHarness({
      contents,
      env: { MATRYOSHKA_MODE: 'shadow', MATRYOSHKA_FORWARD_HEADER: FORWARD },
    });
    plain = await startHarness({ contents, env: { MATRYOSHKA_MODE: 'shadow' } });
  });
  after(async () => {
    await h.stop();
    await plain.stop();
    await idp.stop();
    await slowIdp.stop();
    await stranger.stop();
  });

  /** Each owned header is either set by us (overwriting, not the client's value) or removed — never both, never neither. */
  function assertOwnedControlled(result: CheckResult, forward: string, what: string): void {
    assert.equal(result.allowed, true, `${what}: shadow mode lets it through`);
    const setNames = (result.raw.ok_response?.headers ?? []).map((o) => o.header.key);
    for (const option of result.raw.ok_response?.headers ?? [])
      assert.deepEqual(option.append, { value: false }, `${what}: ${option.header.key} overwrites`);
    for (const name of ownedHeaders(forward)) {
      const set = setNames.includes(name);
      const removed = result.headersToRemove.includes(name);
      assert.ok(
        set !== removed,
        `${what}: ${name} is ${set ? 'set and removed' : 'neither set nor removed'}`,
      );
      if (set)
        assert.notEqual(
          result.headers[name],
          spoofed[name],
          `${what}: ${name} is ours, not the client's`,
        );
    }
  }

  /** A pass-through that minted nothing vouches for nothing: only the request id is set. */
  function assertVouchesForNothing(
    result: CheckResult,
    forward: string,
    reason: string,
    what: string,
  ): void {
    assertOwnedControlled(result, forward, what);
    assert.equal(result.metadata['decision'], 'shadow_allow', what);
    assert.equal(result.metadata['reason'], reason, what);
    assert.deepEqual(
      Object.keys(result.headers),
      ['x-request-id'],
      `${what}: nothing but the request id is set`,
    );
    assert.deepEqual(
      [...result.headersToRemove].sort(),
      ownedHeaders(forward)
        .filter((n) => n !== 'x-request-id')
        .sort(),
      what,
    );
  }

  it('an allow sets the minted token under the forward header and overwrites every identity header', async () => {
    const result = await h.client.check({
      token: await idp.mint({ sub: 'alice', roles: ['reader'] }),
      sid: 'A',
      headers: spoofed,
    });
    assertOwnedControlled(result, FORWARD, 'allow');
    assert.equal(result.metadata['decision'], 'allow');
    assert.equal(
      claims(result.headers[FORWARD] as string)['iss'],
      'urn:matryoshka:authz',
      'the forward header carries our minted level',
    );
    assert.equal(result.headers['x-tenant-id'], 'acme');
    assert.equal(result.headers['x-user-id'], 'alice');
  });

  it('a would-be denial in shadow mode (role missing) still forwards only what we minted', async () => {
    const result = await h.client.check({
      token: await idp.mint({ sub: 'alice' }),
      sid: 'guarded',
      headers: spoofed,
    });
    assertOwnedControlled(result, FORWARD, 'shadow role_missing');
    assert.equal(result.metadata['decision'], 'shadow_allow');
    assert.equal(result.metadata['reason'], 'role_missing');
    assert.equal(claims(result.headers[FORWARD] as string)['iss'], 'urn:matryoshka:authz');
    assert.ok(
      result.headersToRemove.includes('x-user-roles'),
      'no roles: the spoofed x-user-roles is removed',
    );
  });

  it('a chain with no destination to mint for passes through in shadow mode vouching for nothing', async () => {
    // A genuine chain, but no route sid, principal or default names the destination: a policy
    // denial (unknown_service), let through by dry-run with nothing minted.
    const result = await h.client.check({
      token: await idp.mint({ sub: 'alice' }),
      headers: spoofed,
    });
    assertVouchesForNothing(result, FORWARD, 'unknown_service', 'no destination');
  });

  it("with the default forward header, a pass-through removes the client's own authorization", async () => {
    const result = await plain.client.check({
      token: await idp.mint({ sub: 'alice' }),
      headers: spoofed,
    });
    assertVouchesForNothing(result, 'authorization', 'unknown_service', 'default forward header');
    assert.ok(result.headersToRemove.includes('authorization'));
  });

  it('a malformed token, an unregistered issuer and a missed deadline are denied even in shadow mode', async () => {
    // Authenticity is never shadowed: dry-run lets policy through, never an unproven identity.
    const cases: Array<[string, string | undefined, string, number]> = [
      ['malformed token', 'not.a.token', 'malformed_token', 401],
      ['unregistered issuer', await stranger.mint({ sub: 'eve' }), 'untrusted_issuer', 401],
      ['deadline', await slowIdp.mint({ sub: 'alice' }), 'unavailable', 503],
    ];
    for (const [what, token, reason, status] of cases) {
      const result = await h.client.check({
        ...(token === undefined ? {} : { token }),
        sid: 'A',
        headers: spoofed,
        deadlineMs: 600,
      });
      assert.equal(result.allowed, false, what);
      assert.equal(result.httpStatus, status, what);
      assert.equal(result.metadata['decision'], 'deny', what);
      assert.equal(result.metadata['reason'], reason, what);
      assert.equal(result.raw.ok_response, undefined, `${what}: nothing goes upstream`);
    }
  });

  it('refuses a forward header that is one of the headers the service sets itself', () => {
    for (const name of ['x-tenant-id', 'X-User-Roles', 'x-auth-chain', 'x-request-id']) {
      assert.throws(
        () => loadConfig({ MATRYOSHKA_FORWARD_HEADER: name }),
        (e: unknown) => e instanceof ConfigError && /MATRYOSHKA_FORWARD_HEADER/.test(e.message),
        name,
      );
    }
    assert.equal(
      loadConfig({ MATRYOSHKA_FORWARD_HEADER: 'x-chain-token' }).forwardHeader,
      'x-chain-token',
    );
  });
});

/** A compact JWS with any header and payload text; `inspect` reads without verifying, so the signature is filler. */
function unsigned(header: Record<string, unknown>, payloadJson: string): string {
  const b64 = (text: string): string => Buffer.from(text, 'utf8').toString('base64url');
  return `${b64(JSON.stringify(header))}.${b64(payloadJson)}.${Buffer.from('not-a-signature').toString('base64url')}`;
}

describe('inspect on hostile tokens', () => {
  const ESCAPES = {
    title: '\u001b]0;pwned\u0007',
    eraseLine: '\u001b[2K',
    cr: '\r',
    lf: '\n',
    nel: '\u0085',
    csi: '\u009b31m',
    del: '\u007f',
    rlo: '\u202e',
    isolate: '\u2066',
    pdi: '\u2069',
    lineSeparator: '\u2028',
  };
  const hostile = Object.values(ESCAPES).join('');
  const origin = unsigned(
    { alg: 'ES256', kid: `kid${ESCAPES.rlo}gnp.exe${ESCAPES.title}` },
    JSON.stringify({
      iss: `https://idp${ESCAPES.title}.example`,
      sub: `alice${ESCAPES.eraseLine}${ESCAPES.cr}root${ESCAPES.lf}forged line`,
      iat: 1700000000,
      exp: 1900000000,
    }),
  );
  const wrap = (inner: string, extra: string): string =>
    unsigned(
      { alg: `ES256${ESCAPES.csi}`, kid: 'k' },
      `{"iss":"urn:matryoshka:authz${ESCAPES.nel}","sub":"alice","tenant_id":${JSON.stringify(`acme${hostile}`)},"auth_stack":{"fmt":"JWT","sid":${JSON.stringify(`svc${hostile}`)},"depth":1,"container":${JSON.stringify(inner)}}${extra}}`,
    );

  // `inspect` in this process: the same function and the same bytes the command writes to the
  // terminal; a spawned process (the standard-input case below) shows the process path.
  const inspect = runProgramHere;

  /** The tree completed: one line per level plus the `stopped:` line, nothing raw on the terminal. */
  function assertSafeTree(stdout: string, levels: number, what: string): string[] {
    assert.doesNotMatch(stdout, RAW_CONTROL, `${what}: no raw control or bidi character`);
    const lines = stdout.trimEnd().split('\n');
    assert.equal(lines.length, levels + 1, `${what}: one line per level, none forged:\n${stdout}`);
    return lines;
  }

  it('escapes control, C1 and bidi characters in every claim and header it prints (exit 0, tree complete)', async () => {
    const token = wrap(origin, ',"iat":1700000001,"exp":1800000000');
    const tree = await inspect(['inspect', token]);
    assert.equal(tree.code, 0, tree.stderr);
    assert.equal(tree.stderr, '');
    const lines = assertSafeTree(tree.stdout, 2, 'hostile claims');
    assert.match(
      lines[0] ?? '',
      /^origin {2}iss=https:\/\/idp\\x1b\]0;pwned\\x07\.example {2}sub=alice\\x1b\[2K\\x0droot\\x0aforged line {2}alg=ES256 {2}kid=kid\\u202egnp\.exe\\x1b… {2}exp=2030-03-17T17:46:40Z/,
    );
    assert.match(
      lines[1] ?? '',
      /└── depth 1 {2}sid=svc\\x1b.*\\x85.*\\u202e\\u2066\\u2069\\u2028 {2}iss=urn:matryoshka:authz\\x85 {2}sub=alice {2}tenant=acme\\x1b.* {2}alg=ES256\\x9b31m {2}kid=k {2}exp=2027-01-15T08:00:00Z {2}fmt=JWT {2}cmp=-/,
    );
    assert.match(lines[2] ?? '', /^stopped: origin reached \(2 levels read\)$/);

    const json = await inspect(['inspect', '--json', token]);
    assert.equal(json.code, 0);
    const parsed = JSON.parse(json.stdout) as { levels: Array<{ sub?: string; sid?: string }> };
    assert.equal(
      parsed.levels[0]?.sub,
      `alice${ESCAPES.eraseLine}${ESCAPES.cr}root${ESCAPES.lf}forged line`,
      '--json keeps the value exactly (JSON-escaped)',
    );
    assert.equal(parsed.levels[1]?.sid, `svc${hostile}`);
    assert.doesNotMatch(json.stdout, /[\u0000-\u0009\u000b-\u001f]/, 'JSON escaping covers C0');
  });

  it('prints times Date cannot represent as the raw value and never throws', async () => {
    const cases: Array<[string, string, RegExp]> = [
      ['exp 1e300', '"exp":1e300', /exp=1e\+300 /],
      ['exp 1e999 (Infinity)', '"exp":1e999', /exp=Infinity /],
      ['exp -1', '"exp":-1', /exp=-1 /],
      ['exp beyond Date', '"exp":8640000000001', /exp=8640000000001 /],
      ['exp "x"', '"exp":"x"', /exp="x" /],
      [
        'exp with ESC',
        `"exp":${JSON.stringify(`9${ESCAPES.title}`)}`,
        /exp="9\\u001b\]0;pwned\\u0007" /,
      ],
      ['exp an object', '"exp":{"a":[1,true,null]}', /exp=\{"a":\[1,true,null\]\} /],
      ['iat -1', '"iat":-1,"exp":1800000000', /exp=2027-01-15T08:00:00Z /],
      ['exp null', '"exp":null', /exp=null /],
    ];
    for (const [what, extra, expected] of cases) {
      const token = wrap(origin, `,${extra}`);
      const tree = await inspect(['inspect', token]);
      assert.equal(tree.code, 0, `${what}: ${tree.stderr}`);
      assert.equal(tree.stderr, '', what);
      const lines = assertSafeTree(tree.stdout, 2, what);
      assert.match(lines[1] ?? '', expected, what);
      const json = await inspect(['inspect', '--json', token]);
      assert.equal(json.code, 0, what);
      JSON.parse(json.stdout);
    }
  });

  it('a hostile token whose walk stops on an error exits 1 with the tree still complete and escaped', async () => {
    const token = wrap('garbage', ',"exp":1e300');
    const tree = await inspect(['inspect', token]);
    assert.equal(tree.code, 1);
    assert.equal(tree.stderr, '');
    const lines = assertSafeTree(tree.stdout, 1, 'error stop');
    assert.match(lines[1] ?? '', /^stopped: .*not a compact JWS/);
  });

  it('bounds a 40 KB claim in the tree', async () => {
    const token = unsigned(
      { alg: 'ES256' },
      JSON.stringify({
        iss: `https://${'a'.repeat(40_000)}`,
        sub: '\u001b'.repeat(10_000),
        exp: 1800000000,
      }),
    );
    // Through standard input: 130 KB is more than one command-line argument may hold.
    const tree = await runProgramWithEnv(['inspect', '-'], {}, token);
    assert.equal(tree.code, 0, tree.stderr);
    assertSafeTree(tree.stdout, 1, '40 KB iss');
    assert.ok(tree.stdout.length < 1200, `tree line of ${tree.stdout.length} characters`);
    assert.match(
      tree.stdout,
      /iss=https:\/\/a+…\[truncated, 40008 chars\] {2}sub=(\\x1b)+…\[truncated, 10000 chars\]/,
    );
  });
});

describe('token text in the audit line and the span is escaped and bounded', () => {
  // A registered issuer that may wrap chains for any sid: its levels are verified, yet every string in them is its choice.
  const app = tracedServe({ record: { mints_for: ['*'] } });

  it('a 40 KB unregistered iss is cut to a bounded detail', async () => {
    const iss = `https://${'a'.repeat(40_000)}${'\u001b]0;pwned\u0007'}`;
    const now = Math.floor(Date.now() / 1000);
    const token = await app.idp.signCompact(
      { typ: 'JWT' },
      JSON.stringify({ iss, sub: 'eve', iat: now, exp: now + 600 }),
    );
    assert.ok(token.length < 65_536, 'under the token length cap: it reaches the issuer lookup');
    const result = await app.client.check({
      token,
      sid: 'A',
      headers: { 'x-request-id': 'req-hostile-iss' },
    });
    assert.equal(result.allowed, false);
    const line = await app.auditLine('req-hostile-iss');
    assert.equal(line['reason'], 'untrusted_issuer');
    const detail = String(line['detail']);
    assert.match(detail, /^issuer https:\/\/a+…\[truncated, 40018 chars\] is not registered$/);
    assert.ok(
      JSON.stringify(line).length < 1024,
      `audit line of ${JSON.stringify(line).length} characters`,
    );
  });

  it('escapes control characters an unregistered iss carries into the detail', async () => {
    const now = Math.floor(Date.now() / 1000);
    const token = await app.idp.signCompact(
      { typ: 'JWT' },
      JSON.stringify({
        iss: 'https://x\u001b[2K\r\u0085\u202eevil',
        sub: 'eve',
        iat: now,
        exp: now + 600,
      }),
    );
    await app.client.check({ token, sid: 'A', headers: { 'x-request-id': 'req-hostile-ctl' } });
    const line = await app.auditLine('req-hostile-ctl');
    assert.equal(line['detail'], 'issuer https://x\\x1b[2K\\x0d\\x85\\u202eevil is not registered');
  });

  it('a signed chain with a huge, hostile sid and sub: refused, audit line and span bounded and escaped', async () => {
    const now = Math.floor(Date.now() / 1000);
    const sub = `alice\u001b]0;pwned\u0007${'b'.repeat(900)}`;
    const sid = `svc\u202e\u001b[2K${'s'.repeat(5000)}`;
    const origin = await app.idp.mint({ sub });
    const wrapped = await app.idp.signCompact(
      { typ: 'JWT' },
      JSON.stringify({
        iss: app.idp.issuer,
        sub,
        iat: now,
        exp: now + 300,
        auth_stack: { fmt: 'JWT', sid, depth: 1, container: origin },
      }),
    );
    const traceId = randomBytes(16).toString('hex');
    const result = await app.client.check({
      token: wrapped,
      sid: 'D',
      headers: {
        'x-request-id': 'req-hostile-sid',
        traceparent: `00-${traceId}-${randomBytes(8).toString('hex')}-01`,
      },
    });
    assert.equal(result.allowed, false, 'a sid outside the grammar never becomes a hop');

    const line = await app.auditLine('req-hostile-sid');
    const text = JSON.stringify(line);
    assert.ok(text.length < 2048, `audit line of ${text.length} characters`);
    assert.doesNotMatch(Object.values(line).map(String).join(' '), ANY_CONTROL);

    const span = await app.receiver.serverSpan(traceId);
    const values = [
      ...(span.attributes ?? []),
      ...(span.events ?? []).flatMap((e) => e.attributes ?? []),
    ]
      .map((a) => a.value.stringValue)
      .filter((v): v is string => v !== undefined);
    for (const value of values) {
      assert.ok(value.length <= 600, `span attribute of ${value.length} characters`);
      assert.doesNotMatch(value, ANY_CONTROL);
    }
  });

  it('an allowed chain with the longest subject the grammar admits: the audit line and span carry it bounded', async () => {
    const sub = `alice-${'b'.repeat(1018)}`;
    const traceId = randomBytes(16).toString('hex');
    const result = await app.client.check({
      token: await app.idp.mint({ sub }),
      sid: 'D',
      headers: {
        'x-request-id': 'req-long-sub',
        traceparent: `00-${traceId}-${randomBytes(8).toString('hex')}-01`,
      },
    });
    assert.equal(result.allowed, true, result.body);
    assert.equal(result.headers['x-user-id'], sub, 'the header carries the subject whole');
    const line = await app.auditLine('req-long-sub');
    assert.match(String(line['user_id']), /^alice-b+…\[truncated, 1024 chars\]$/);
    assert.ok(String(line['user_id']).length < 300);
    const span = await app.receiver.serverSpan(traceId);
    for (const a of span.attributes ?? [])
      assert.ok((a.value.stringValue ?? '').length <= 600, `span attribute ${a.key}`);
  });
});
