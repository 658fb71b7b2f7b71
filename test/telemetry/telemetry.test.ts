import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { EnvoyLikeClient } from '../../src/demo/envoy-client.js';
import { LocalIssuer } from '../../src/demo/local-issuer.js';
import { attribute } from '../helpers/otlp-receiver.js';
import { eventually, spawnServe } from '../helpers/processes.js';
import { registryFile } from '../helpers/records.js';
import { tracedServe } from '../helpers/traced-serve.js';

async function walk(client: EnvoyLikeClient, token: string, sids: string[]): Promise<string> {
  let current = token;
  for (const sid of sids)
    current = (await client.check({ token: current, sid })).forwardedToken as string;
  return current;
}

describe('decisions as OpenTelemetry traces, metrics and audit lines', () => {
  const app = tracedServe({
    env: {
      OTEL_SERVICE_NAME: 'authz-under-test',
      OTEL_RESOURCE_ATTRIBUTES: 'deployment.environment=test',
    },
  });

  it('continues the trace of traceparent with one SERVER span carrying the decision and one event per level', async () => {
    const token = await walk(app.client, await app.idp.mint({ sub: 'alice', roles: ['reader'] }), [
      'A',
      'B',
      'C',
    ]);
    const traceId = randomBytes(16).toString('hex');
    const parentId = randomBytes(8).toString('hex');
    const result = await app.client.check({
      token,
      sid: 'D',
      headers: { traceparent: `00-${traceId}-${parentId}-01` },
    });
    assert.equal(result.allowed, true);

    const span = await app.spanOf(traceId);
    assert.equal(span.parentSpanId, parentId);
    assert.equal(span.name, 'authz allow D');
    assert.equal(attribute(span, 'authz.decision'), 'allow');
    assert.equal(attribute(span, 'authz.reason'), 'none');
    assert.equal(attribute(span, 'authz.tenant'), 'acme');
    assert.equal(attribute(span, 'authz.origin_issuer'), app.idp.issuer);
    assert.equal(attribute(span, 'authz.destination'), 'D');
    assert.equal(attribute(span, 'authz.depth'), 3);
    assert.equal(attribute(span, 'authz.chain'), 'A,B,C');
    assert.equal(attribute(span, 'authz.recursion'), false);
    assert.equal(attribute(span, 'authz.sealed'), false);
    assert.equal(attribute(span, 'authz.key_cache'), 'hit');
    const levels = (span.events ?? []).filter((e) => e.name === 'chain level');
    assert.equal(levels.length, 4, 'origin and three minted levels');
    assert.deepEqual(
      levels.map((e) => attribute(e, 'level.depth')),
      [0, 1, 2, 3],
    );
    assert.deepEqual(
      levels.map((e) => attribute(e, 'level.sid') ?? null),
      [null, 'A', 'B', 'C'],
    );
    assert.ok(
      levels.every(
        (e) =>
          attribute(e, 'level.alg') === 'ES256' && typeof attribute(e, 'level.kid') === 'string',
      ),
    );
    // This replica minted the token it is shown (at hop C) and remembers it by its text: the hop
    // verifies no signature at all. (A level it did not mint is verified: the fresh origin below.)
    assert.deepEqual(
      levels.map((e) => attribute(e, 'level.verified')),
      ['memo', 'memo', 'memo', 'memo'],
    );

    // Fan-out: the same token for another destination is entirely a memo hit.
    const fanOutTrace = randomBytes(16).toString('hex');
    assert.equal(
      (
        await app.client.check({
          token,
          sid: 'E',
          headers: { traceparent: `00-${fanOutTrace}-${randomBytes(8).toString('hex')}-01` },
        })
      ).allowed,
      true,
    );
    const fanOut = await app.spanOf(fanOutTrace);
    assert.deepEqual(
      (fanOut.events ?? []).map((e) => attribute(e, 'level.verified')),
      ['memo', 'memo', 'memo', 'memo'],
    );

    const originTrace = randomBytes(16).toString('hex');
    const origin = await app.idp.mint({ sub: 'bob' });
    assert.equal(
      (
        await app.client.check({
          token: origin,
          sid: 'A',
          headers: { traceparent: `00-${originTrace}-${randomBytes(8).toString('hex')}-01` },
        })
      ).allowed,
      true,
    );
    assert.deepEqual(
      ((await app.spanOf(originTrace)).events ?? []).map((e) => attribute(e, 'level.verified')),
      ['signature'],
    );

    const children = app.receiver.spans
      .filter((s) => s.traceId === traceId && s.parentSpanId === span.spanId)
      .map((s) => s.name)
      .sort();
    assert.deepEqual(children, ['chain open', 'registry read', 'token mint']);
    const exported = JSON.stringify(app.receiver.spans.filter((s) => s.traceId === traceId));
    assert.ok(!exported.includes(token.split('.')[2] as string), 'no signature in any span');
    assert.ok(!exported.includes(token.slice(0, 40)), 'no token in any span');
    const resource = JSON.stringify(app.receiver.resources);
    assert.match(resource, /authz-under-test/);
    assert.match(resource, /deployment\.environment/);
  });

  it('shows each hop of a compact level as its own span event, and the minted form and header bytes', async () => {
    const compact = await spawnServe({
      MATRYOSHKA_REGISTRY_FILE: registryFile(app.idp),
      MATRYOSHKA_ALLOW_INSECURE_ISSUERS: 'true',
      MATRYOSHKA_CHAIN_FORMAT: 'compact',
      ...app.receiver.env,
    });
    const compactClient = new EnvoyLikeClient(`127.0.0.1:${compact.grpcPort}`);
    try {
      const token = await walk(compactClient, await app.idp.mint({ sub: 'alice' }), [
        'A',
        'B',
        'C',
      ]);
      const traceId = randomBytes(16).toString('hex');
      const result = await compactClient.check({
        token,
        sid: 'D',
        headers: { traceparent: `00-${traceId}-${randomBytes(8).toString('hex')}-01` },
      });
      assert.equal(result.allowed, true);
      const span = await app.spanOf(traceId);
      const levels = (span.events ?? []).filter((e) => e.name === 'chain level');
      assert.deepEqual(
        levels.map((e) => [attribute(e, 'level.sid') ?? null, attribute(e, 'level.form') ?? null]),
        [
          [null, null],
          ['A', 'compact'],
          ['B', 'compact'],
          ['C', 'compact'],
        ],
      );
      assert.equal(attribute(span, 'authz.minted_form'), 'compact');
      const bytes = attribute(span, 'authz.minted_header_bytes');
      assert.equal(typeof bytes, 'number');
      assert.ok((bytes as number) > (result.forwardedToken?.length ?? Infinity));
    } finally {
      compactClient.close();
      await compact.stop();
    }
  });

  it('records a denied recursion with reason recursion, continuing a B3 trace', async () => {
    const token = await walk(app.client, await app.idp.mint({ sub: 'alice' }), ['A', 'B']);
    const traceId = randomBytes(16).toString('hex');
    const spanId = randomBytes(8).toString('hex');
    const result = await app.client.check({
      token,
      sid: 'A',
      headers: { 'x-b3-traceid': traceId, 'x-b3-spanid': spanId, 'x-b3-sampled': '1' },
    });
    assert.equal(result.allowed, false);
    const span = await app.spanOf(traceId);
    assert.equal(span.parentSpanId, spanId);
    assert.equal(attribute(span, 'authz.decision'), 'deny');
    assert.equal(attribute(span, 'authz.reason'), 'recursion');
    assert.equal(attribute(span, 'authz.recursion'), true);
  });

  it('counts decisions by reason on /metrics', async () => {
    const scrape = async (): Promise<string> =>
      (await fetch(`http://127.0.0.1:${app.served.httpPort}/metrics`)).text();
    const count = (text: string, labels: RegExp, metric = 'authz_decisions_total'): number =>
      text
        .split('\n')
        .filter((l) => l.startsWith(`${metric}{`) && labels.test(l))
        .reduce((sum, l) => sum + Number(l.split(' ').pop()), 0);
    const before = await scrape();
    const token = await app.idp.mint({ sub: 'alice' });
    await app.client.check({ token, sid: 'A' });
    await app.client.check({ token, sid: 'A' });
    await app.client.check({ token: 'not.a.token', sid: 'A' });
    const after = await scrape();
    assert.equal(
      count(after, /decision="allow".*reason="none"/) -
        count(before, /decision="allow".*reason="none"/),
      2,
    );
    assert.equal(
      count(after, /decision="deny".*reason="malformed_token"/) -
        count(before, /decision="deny".*reason="malformed_token"/),
      1,
    );
    assert.match(after, /# TYPE authz_decisions_total counter/);
    // The two checks that opened a chain found their keys in memory; the malformed one opened none.
    assert.equal(
      count(after, /result="hit"/, 'authz_key_cache_lookups_total') -
        count(before, /result="hit"/, 'authz_key_cache_lookups_total'),
      2,
    );
    assert.match(after, /authz_check_duration_seconds_bucket\{[^}]*decision="allow"/);
    assert.match(after, /authz_chain_depth_bucket\{/);
    assert.match(after, /authz_key_fetches_total\{[^}]*outcome="ok"[^}]*\} 1/);
    assert.match(after, /authz_key_cache_hit_ratio/);
  });

  it('writes one audit line per decision with reason, request id and trace id, and never the token', async () => {
    const token = await app.idp.mint({ sub: 'alice', secret_marker: 'do-not-log-me' });
    const traceId = randomBytes(16).toString('hex');
    const result = await app.client.check({
      token,
      headers: {
        'x-request-id': 'req-audit-1',
        traceparent: `00-${traceId}-${randomBytes(8).toString('hex')}-01`,
      },
    });
    assert.equal(result.allowed, false);
    const line = await app.auditLine('req-audit-1', 2000);
    assert.equal(line['msg'], 'check');
    assert.equal(line['decision'], 'deny');
    assert.equal(line['reason'], 'unknown_service');
    assert.equal(line['tenant_id'], 'acme');
    assert.equal(line['user_id'], 'alice');
    assert.equal(line['trace_id'], traceId);
    assert.equal(typeof line['duration_ms'], 'number');
    const everything = JSON.stringify(app.served.lines);
    assert.ok(
      !everything.includes(token.split('.')[1] as string),
      'no token payload in any log line',
    );
    assert.ok(!everything.includes(token.split('.')[2] as string), 'no signature in any log line');
    assert.ok(!everything.includes('do-not-log-me'));
  });
});

describe('telemetry off', () => {
  it('answers checks with no exporter configured and logs no error', async () => {
    const idp = await LocalIssuer.start();
    const served = await spawnServe({
      MATRYOSHKA_REGISTRY_FILE: registryFile(idp),
      MATRYOSHKA_ALLOW_INSECURE_ISSUERS: 'true',
    });
    const stderr: string[] = [];
    served.child.stderr?.on('data', (c: Buffer) => stderr.push(c.toString()));
    const client = new EnvoyLikeClient(`127.0.0.1:${served.grpcPort}`);
    try {
      const token = await idp.mint({ sub: 'alice' });
      for (let i = 0; i < 20; i++)
        assert.equal(
          (
            await client.check({
              token,
              sid: 'A',
              headers: {
                traceparent: `00-${randomBytes(16).toString('hex')}-${randomBytes(8).toString('hex')}-01`,
              },
            })
          ).allowed,
          true,
        );
      await new Promise((r) => setTimeout(r, 300));
      assert.deepEqual(
        served.lines.filter((l) => (l['level'] as number) >= 50),
        [],
        'no error lines',
      );
      assert.equal(stderr.join(''), '', 'nothing on stderr');
      assert.ok(
        served.lines.some(
          (l) => l['msg'] === 'telemetry' && String(l['tracing']).startsWith('off'),
        ),
      );
      // Nothing is exported, but the audit line still names the request's own trace for correlation.
      const traceId = randomBytes(16).toString('hex');
      await client.check({
        token,
        sid: 'A',
        headers: {
          'x-request-id': 'req-off-1',
          traceparent: `00-${traceId}-${randomBytes(8).toString('hex')}-01`,
        },
      });
      await eventually(
        async () => served.lines.some((l) => l['request_id'] === 'req-off-1'),
        2000,
        'audit line',
      );
      assert.equal(
        served.lines.find((l) => l['request_id'] === 'req-off-1')?.['trace_id'],
        traceId,
      );
      assert.equal(
        (await fetch(`http://127.0.0.1:${served.httpPort}/metrics`)).status,
        200,
        'metrics still served',
      );
    } finally {
      client.close();
      await served.stop();
      await idp.stop();
    }
  });
});
