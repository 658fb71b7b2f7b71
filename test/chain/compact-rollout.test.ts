/**
 * The compact form through the real parts: a real Redis registry, the real CLI, the real gRPC
 * service and client. The documented rollout — ship reading every form, then switch one tenant
 * to compact in Redis without a restart — and the header budget's 431 as Envoy receives it, with
 * the minted bytes in the metrics and the audit line; `inspect` shows a compact level's hops.
 */
import assert from 'node:assert/strict';
import { issuerAddArgs } from '../helpers/records.js';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { LocalIssuer } from '../../src/demo/local-issuer.js';
import { type Harness, startHarness } from '../helpers/harness.js';
import { eventually } from '../helpers/processes.js';
import { cliWith, runProgramHere } from '../helpers/program.js';
import { RedisServer } from '../helpers/redis-server.js';
import { authStack } from '../helpers/tokens.js';

describe('compact chains through Redis, the CLI and the gRPC server', () => {
  let redis: RedisServer;
  let idp: LocalIssuer;
  let h: Harness;
  const cli = (...args: string[]) =>
    cliWith({ REDIS_URL: redis.url, MATRYOSHKA_ALLOW_INSECURE_ISSUERS: 'true' })(...args);

  before(async () => {
    redis = await RedisServer.start();
    idp = await LocalIssuer.start();
    assert.equal((await cli(...issuerAddArgs(idp, 'acme'))).code, 0);
    assert.equal(
      (await cli('tenant', 'set', '--tenant', 'acme', '--chain-format', 'nested')).code,
      0,
    );
    h = await startHarness({
      env: { REDIS_URL: redis.url, MATRYOSHKA_REGISTRY_POLL_MS: '100', LOG_LEVEL: 'info' },
    });
  });
  after(async () => {
    await h.stop();
    await idp.stop();
    await redis.dispose();
  });

  it('refuses a bad chain_format or header_budget with one line and exit 2', async () => {
    const format = await cli('tenant', 'set', '--tenant', 'acme', '--chain-format', 'sideways');
    assert.equal(format.code, 2);
    assert.match(format.stderr, /chain_format: must be one of nested, compact, auto/);
    const budget = await cli('tenant', 'set', '--tenant', 'acme', '--header-budget', '12');
    assert.equal(budget.code, 2);
    assert.match(budget.stderr, /header_budget: must be a whole number of bytes from 1024/);
    assert.equal(budget.stderr.trim().split('\n').length, 1);
  });

  it('switches one tenant from nested to compact in Redis, without a restart', async () => {
    const origin = await idp.mint({ sub: 'alice', pad: randomBytes(300).toString('base64url') });
    let first = await h.client.check({ token: origin, sid: 'A' });
    await eventually(
      async () => {
        first = await h.client.check({ token: origin, sid: 'A' });
        return first.allowed;
      },
      5000,
      'the registry loaded from Redis',
    );
    assert.equal(authStack(first.forwardedToken as string)['form'], undefined, 'nested');

    assert.equal(
      (await cli('tenant', 'set', '--tenant', 'acme', '--chain-format', 'compact')).code,
      0,
    );
    const shown = JSON.parse(
      (await cli('tenant', 'show', '--tenant', 'acme', '--json')).stdout,
    ) as Record<string, Record<string, unknown>>;
    assert.equal(shown['acme']?.['chain_format'], 'compact');

    let token = first.forwardedToken as string;
    await eventually(
      async () => {
        const next = await h.client.check({ token, sid: 'B' });
        return authStack(next.forwardedToken as string)['form'] === 'compact';
      },
      5000,
      'the tenant switched to compact',
    );
    const viaB = await h.client.check({ token, sid: 'B' });
    token = viaB.forwardedToken as string;
    assert.deepEqual(
      (authStack(token)['hops'] as unknown[][]).map((hop) => hop[0]),
      ['A', 'B'],
      'the nested level minted before the switch collapsed into the compact one',
    );
    assert.equal(viaB.headers['x-auth-chain'], 'A,B');
    assert.equal(viaB.headers['x-auth-depth'], '2');

    const tree = await runProgramHere(['inspect', token]);
    assert.equal(tree.code, 0, tree.stderr);
    const lines = tree.stdout.trim().split('\n');
    assert.match(lines[0] ?? '', /^origin/);
    assert.match(lines[1] ?? '', /depth 1 {2}sid=A .*form=compact {2}len=\(in record\)/);
    assert.match(lines[2] ?? '', /depth 2 {2}sid=B .*form=compact {2}len=\d+/);
  });

  it('answers 431 / RESOURCE_EXHAUSTED over the budget, and counts minted header bytes', async () => {
    // `tenant set` writes the whole record: the form is named again.
    const set = await cli(
      'tenant',
      'set',
      '--tenant',
      'acme',
      '--chain-format',
      'compact',
      '--header-budget',
      '2048',
    );
    assert.equal(set.code, 0, set.stderr);
    const big = await idp.mint({ sub: 'alice', pad: randomBytes(1500).toString('base64url') });
    let denied = await h.client.check({ token: big, sid: 'A' });
    await eventually(
      async () => {
        denied = await h.client.check({ token: big, sid: 'A' });
        return !denied.allowed;
      },
      5000,
      'the budget applies',
    );
    assert.equal(denied.httpStatus, 431);
    assert.equal(denied.grpcCode, 8);
    assert.equal(denied.metadata['reason'], 'header_budget_exceeded');
    assert.equal(denied.headers['authorization'], undefined, 'no oversized token is answered');

    const small = await idp.mint({ sub: 'alice' });
    const allowed = await h.client.check({ token: small, sid: 'A' });
    assert.equal(allowed.allowed, true);
    const audit = h.logs.filter((l) => l['msg'] === 'check' && l['decision'] === 'allow').at(-1);
    assert.equal(audit?.['form'], 'compact');
    assert.equal(typeof audit?.['header_bytes'], 'number');
    assert.ok((audit?.['header_bytes'] as number) <= 2048);
    const metrics = await (await fetch(`http://127.0.0.1:${h.service.httpPort}/metrics`)).text();
    assert.match(metrics, /authz_minted_header_bytes_count\{[^}]*form="compact"[^}]*\} [1-9]/);
  });
});
