/**
 * Property (fast-check): random CheckRequests never make the RPC fail, are each answered within a
 * second, and leave the service answering a valid check quickly and SERVING.
 * Seeds and run counts: test/helpers/fast-check-runs.ts.
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import fc from 'fast-check';
import { type CheckResult, EnvoyLikeClient } from '../../src/demo/envoy-client.js';
import { loadProtos } from '../../src/server/protos.js';
import {
  checkRequestArb,
  describeRequest,
  printable,
  roughSize,
} from '../helpers/check-requests.js';
import { idpHarness } from '../helpers/idp-harness.js';
import { hmacIssuer, service } from '../helpers/records.js';

import {
  MAX_MESSAGE_BYTES,
  REQUEST_RUNS,
  SLOW_REQUEST_MS,
  coverageChecked,
  params,
} from '../helpers/fast-check-runs.js';
import {
  LIFETIME,
  HS_SECRET,
  HS_ISSUER,
  principalOf,
  PROPERTY_ENV,
} from '../helpers/property-chains.js';

describe('property: random CheckRequests never crash the server or leave it unresponsive', () => {
  const s = idpHarness({
    env: PROPERTY_ENV,
    record: { algorithms: ['ES256'] },
    contents: {
      issuers: [hmacIssuer(HS_ISSUER, 'legacy', 'PROPS_HS', { mints_for: ['*'] })],
      services: [
        service('bound', { bind_source: true }),
        service('picky', { allowed_callers: ['A'], required_roles: ['admin'], max_depth: 2 }),
      ],
      principals: { [principalOf('A')]: 'A', [principalOf('B')]: 'B' },
    },
    processEnv: { PROPS_HS: HS_SECRET },
  });
  let valid: string;
  before(async () => {
    valid = await s.idp.mint({ sub: 'carol', roles: ['admin'] }, { ttl: LIFETIME });
  });

  it('every request gets a CheckResponse; afterwards a valid check is quick and health is SERVING', async () => {
    const first = await s.h.client.check({ token: valid, sid: 'A' });
    assert.equal(first.allowed, true, JSON.stringify(first.metadata));
    const world = {
      tokens: [
        valid,
        first.forwardedToken as string,
        await s.idp.mint({ sub: 'dave' }, { ttl: LIFETIME }),
      ],
      principals: [principalOf('A'), principalOf('B'), 'spiffe://unknown'],
      sids: ['A', 'B', 'bound', 'picky'],
      issuers: [s.idp.issuer, HS_ISSUER, 'urn:matryoshka:authz'],
    };
    const outcomes = { allowed: 0, denied: 0, unencodable: 0, oversized: 0 };
    let slowest = 0;
    const started = performance.now();
    await fc.assert(
      fc.asyncProperty(
        fc.array(checkRequestArb(world), { minLength: 1, maxLength: 4 }),
        async (requests) => {
          // One after the other, so that a slow answer is pinned on the request that caused it.
          for (const request of requests) {
            await (async () => {
              const t0 = performance.now();
              let result: CheckResult;
              try {
                result = await s.h.client.send(request, 5000);
              } catch (error) {
                const e = error as grpc.ServiceError;
                // protobufjs could not encode the object on the client: nothing was sent.
                if (e.code === grpc.status.INTERNAL && /serializ/i.test(e.details ?? e.message)) {
                  outcomes.unencodable++;
                  return;
                }
                // Past MATRYOSHKA_MAX_TOKEN_LENGTH + 64 KiB the transport refuses the message before
                // buffering it. roughSize over-counts, so a smaller estimate refused is a real bug.
                if (
                  e.code === grpc.status.RESOURCE_EXHAUSTED &&
                  roughSize(request) > MAX_MESSAGE_BYTES
                ) {
                  outcomes.oversized++;
                  return;
                }
                assert.fail(
                  `RPC error ${e.code} (${e.details ?? e.message}) for ${describeRequest(request)}`,
                );
              }
              const elapsed = performance.now() - t0;
              slowest = Math.max(slowest, elapsed);
              // A request that takes seconds blocks the event loop for every other check.
              assert.ok(
                elapsed < SLOW_REQUEST_MS,
                `answered in ${Math.round(elapsed)} ms (reason ${String(result.metadata['reason'])}): ${describeRequest(request)}`,
              );
              if (result.allowed) {
                outcomes.allowed++;
                // Only a token that was signed can be allowed: the request must carry one of the world's.
                const text = JSON.stringify(request, (_k, v: unknown) =>
                  v instanceof Uint8Array || (v as { type?: string })?.type === 'Buffer'
                    ? Buffer.from(v as Uint8Array).toString('latin1')
                    : v,
                );
                assert.ok(
                  world.tokens.some((t) => text.includes(t)),
                  `allowed without a valid token: ${describeRequest(request)}`,
                );
              } else {
                outcomes.denied++;
              }
              assert.ok(
                [200, 401, 403].includes(result.httpStatus),
                `status ${result.httpStatus} (${String(result.metadata['reason'])}) for ${describeRequest(request)}`,
              );
              assert.ok(
                [0, 7, 16].includes(result.grpcCode),
                `gRPC status ${result.grpcCode} for ${describeRequest(request)}`,
              );
            })();
          }
        },
      ),
      // No shrinking: a failing case here can take seconds to re-run, and the message names it.
      params(REQUEST_RUNS, {
        endOnFailure: true,
        examples: [
          [[printable(EnvoyLikeClient.request({ token: `a${' '.repeat(60_000)}b`, sid: 'A' }))]],
        ],
      }),
    );
    console.log(
      `# requests: ${JSON.stringify(outcomes)} in ${Math.round(performance.now() - started)} ms; slowest ${Math.round(slowest)} ms`,
    );
    if (coverageChecked(REQUEST_RUNS))
      assert.ok(outcomes.denied > 0 && outcomes.allowed > 0, 'the generator reaches both outcomes');
    const unexpected = s.h.logs.filter((l) => l['msg'] === 'check failed unexpectedly');
    assert.equal(
      unexpected.length,
      0,
      `internal errors logged: ${JSON.stringify(unexpected.slice(0, 3))}`,
    );

    // Still responsive: a normal check answers correctly, and health says SERVING.
    // Answered within a generous deadline (a wedged service would not be); no speed figure here.
    const after = await s.h.client.check({ token: valid, sid: 'B', deadlineMs: SLOW_REQUEST_MS });
    assert.equal(after.allowed, true, JSON.stringify(after.metadata));
    assert.equal(s.h.service.health.current, 'SERVING');
    const { HealthClient } = loadProtos();
    const health = new HealthClient(
      `127.0.0.1:${s.h.service.grpcPort}`,
      grpc.credentials.createInsecure(),
    ) as unknown as grpc.Client & {
      Check: (
        req: { service: string },
        opts: grpc.CallOptions,
        cb: (e: grpc.ServiceError | null, r: { status: string }) => void,
      ) => void;
    };
    try {
      for (const svc of ['', 'envoy.service.auth.v3.Authorization']) {
        const status = await new Promise<string>((resolve, reject) =>
          health.Check({ service: svc }, { deadline: Date.now() + 1000 }, (e, r) =>
            e ? reject(e) : resolve(r.status),
          ),
        );
        assert.equal(status, 'SERVING', `health of "${svc}"`);
      }
    } finally {
      health.close();
    }
  });
});
