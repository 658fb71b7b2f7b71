/**
 * Property-based tests (fast-check): what the service refuses and that it does not fall over.
 *
 *   1. Random mutations of valid chains — byte and character flips in any segment of any level
 *      (inner levels and compressed containers re-encoded, never re-signed), truncation, garbage,
 *      other spellings of the same bytes, levels extracted, reordered, skipped or spliced from
 *      another chain, fields changed, removed or repeated — are never allowed; denials are
 *      401/403, never 503, never an RPC error. The same mutations re-signed by a registered
 *      partner (so that the walk gets past the outer signature into the stack checks) likewise.
 *   2. Random CheckRequests never make the RPC fail, are each answered within a second, and leave
 *      the service answering a valid check quickly and SERVING.
 *   3. The codec (inspectChain, parseCompactJws, readAuthStack, unpackContainer, base64,
 *      hasDuplicateKeys) never throws anything but its own error type on arbitrary input, and
 *      agrees with reference implementations.
 *
 * Seeds and sizes. CI runs a fixed seed (FC_SEED, default DEFAULT_SEED below) with run counts
 * (MUTATION_RUNS etc.) sized for about 25 s on two cores. FC_RUNS overrides every run count; a
 * larger local run, 5,000 runs of every property (about a minute):
 *
 *     npx tsc -p . && FC_RUNS=5000 node --test dist/test/properties.test.js
 *
 * FC_SEED=<n> picks another seed; FC_SEED=random draws one and prints it. A failure prints the
 * seed and path; replay exactly that case with
 *
 *     FC_SEED=<seed> FC_PATH=<path> node --test --test-name-pattern='<test name>' dist/test/properties.test.js
 *
 * Some cases are run first whatever the seed (fast-check `examples`): they are regressions for
 * bugs these properties found (a second spelling of a signature; a header that backtracks).
 */
import assert from 'node:assert/strict';
import { brotliCompressSync, brotliDecompressSync, gunzipSync, gzipSync } from 'node:zlib';
import { after, before, describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import fc from 'fast-check';
import { CompactSign, SignJWT } from 'jose';
import {
  type AuthStack,
  StackFormatError,
  readAuthStack,
  unpackContainer,
} from '../../src/chain/auth-stack.js';
import { decodeAnyBase64, decodeSegment } from '../../src/chain/base64.js';
import { CompactFormatError, parseCompactJws } from '../../src/chain/compact.js';
import { hasDuplicateKeys } from '../../src/chain/duplicate-keys.js';
import { inspectChain } from '../../src/chain/inspect.js';
import { withContainer } from '../../src/pipeline/mint.js';
import { DEFAULT_LIMITS } from '../../src/chain/limits.js';
import { type CheckResult, EnvoyLikeClient } from '../../src/demo/envoy-client.js';
import { LocalIssuer } from '../../src/demo/local-issuer.js';
import { loadProtos } from '../../src/server/protos.js';
import {
  B64_VARIANTS,
  type B64Variant,
  type Cmp,
  b64u,
  encodeB64,
  openLevel,
  packContainer,
  peel,
} from '../helpers/chain-surgery.js';
import {
  checkRequestArb,
  describeRequest,
  printable,
  roughSize,
} from '../helpers/check-requests.js';
import { type Harness, startHarness } from '../helpers/harness.js';
import {
  type Mutation,
  type MutationContext,
  applyMutations,
  describeMutations,
  mutationsArb,
} from '../helpers/mutations.js';
import { issuer, service, tenant } from '../helpers/records.js';

// ---------------------------------------------------------------------------------------------
// Seed and run counts
// ---------------------------------------------------------------------------------------------

const DEFAULT_SEED = 0x6d617472; // "matr"
function seedFromEnv(): number {
  const raw = process.env['FC_SEED'];
  if (raw === undefined || raw === '') return DEFAULT_SEED;
  if (raw === 'random') {
    const seed = (Math.random() * 0x7fffffff) | 0;
    console.log(`# FC_SEED=${seed}`);
    return seed;
  }
  const seed = Number(raw);
  if (!Number.isInteger(seed))
    throw new Error(`FC_SEED must be an integer or "random", got ${raw}`);
  return seed;
}
const SEED = seedFromEnv();
const RUNS_OVERRIDE =
  process.env['FC_RUNS'] === undefined || process.env['FC_RUNS'] === ''
    ? undefined
    : Number(process.env['FC_RUNS']);
if (RUNS_OVERRIDE !== undefined && !(Number.isInteger(RUNS_OVERRIDE) && RUNS_OVERRIDE > 0))
  throw new Error('FC_RUNS must be a positive integer');

/** fast-check parameters: the shared seed, `runs` (or FC_RUNS), and FC_PATH to replay one case. */
function params<T>(runs: number, extra: fc.Parameters<T> = {}): fc.Parameters<T> {
  const path = process.env['FC_PATH'];
  return {
    seed: SEED,
    numRuns: RUNS_OVERRIDE ?? runs,
    includeErrorInReport: true,
    ...(path ? { path } : {}),
    ...extra,
  };
}

// CI sizes: network properties cost a few ms a run, pure ones microseconds.
const MUTATION_RUNS = 4000;
const RESIGN_RUNS = 1500;
const REQUEST_RUNS = 1200;
const PURE_RUNS = 4000;
/** Below this many runs the "the generator reached X" checks are skipped (FC_RUNS=10 for a smoke run). */
const COVERAGE_MIN_RUNS = 200;
const coverageChecked = (runs: number): boolean => (RUNS_OVERRIDE ?? runs) >= COVERAGE_MIN_RUNS;
/** Longest a single random CheckRequest may take to be answered. */
const SLOW_REQUEST_MS = 1000;
/** The gRPC receive limit at the default MATRYOSHKA_MAX_TOKEN_LENGTH (64 KiB) plus 64 KiB for the rest of a CheckRequest. */
const MAX_MESSAGE_BYTES = 128 * 1024;

const nowSeconds = (): number => Math.floor(Date.now() / 1000);
const LIFETIME = 3600; // long enough for FC_RUNS=5000 runs against tokens built once

// ---------------------------------------------------------------------------------------------
// The world: a real service, an ES256 IdP, a seed-style HS256 issuer, chains built through Check
// ---------------------------------------------------------------------------------------------

const HS_SECRET = 'properties-shared-secret';
const hsKey = new TextEncoder().encode(HS_SECRET);
const HS_ISSUER = 'legacy-hs';
/** Registered minters that may wrap chains only for `partner-*` sids, one per tenant: what an insider holds. */
const PARTNER_SECRET = 'properties-partner-secret';
const partnerKey = new TextEncoder().encode(PARTNER_SECRET);
const PARTNER = { acme: 'partner-acme', legacy: 'partner-legacy' } as const;
const SEED_SVC = (s: string): string => `Organization.Services.Service${s}`;
const principalOf = (sid: string): string => `spiffe://cluster.local/ns/props/sa/${sid}`;
/** Destinations the mutated tokens are sent to: not in any chain, bound to the calling workload. */
const ACME_DEST = 'Z';
const LEGACY_DEST = SEED_SVC('Z');
const ALL_SIDS = ['A', 'B', 'C', 'D', ACME_DEST, ...['A', 'B', 'C', 'D', 'E', 'Z'].map(SEED_SVC)];

/** One valid token and the request that makes it allowed: its caller's workload, a fresh destination. */
interface PoolEntry {
  readonly label: string;
  readonly token: string;
  /** sid of the token's outermost level: the workload that legitimately presents it. */
  readonly caller: string;
  readonly dest: string;
}

async function seedLevel(
  claims: Record<string, unknown>,
  iat: number,
  exp: number,
): Promise<string> {
  return new SignJWT(claims)
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setIssuer(HS_ISSUER)
    .setIssuedAt(iat)
    .setExpirationTime(exp)
    .sign(hsKey);
}

function seedWrap(
  inner: string,
  sid: string,
  depth: number,
  cmp?: 'g' | 'b',
): Record<string, unknown> {
  let container = inner;
  if (cmp === 'g') container = gzipSync(Buffer.from(inner)).toString('base64');
  if (cmp === 'b') container = brotliCompressSync(Buffer.from(inner)).toString('base64url');
  return {
    sub: '1234567890',
    roles: ['user'],
    auth_stack: {
      fmt: 'jwt',
      ...(cmp ? { cmp } : { cmp: null }),
      sid,
      depth,
      container,
      hash: 'c2VlZC1oYXNo',
    },
  };
}

describe('property: mutations of valid chains are never allowed', () => {
  let idp: LocalIssuer;
  let h: Harness;
  const pool: PoolEntry[] = [];
  let ctx: MutationContext;

  before(async () => {
    idp = await LocalIssuer.start();
    h = await startHarness({
      env: { LOG_LEVEL: 'warn', MATRYOSHKA_TOKEN_TTL: String(LIFETIME) },
      contents: {
        issuers: [
          issuer({
            issuer: idp.issuer,
            tenant: 'acme',
            jwks_uri: idp.jwksUri,
            algorithms: ['ES256'],
          }),
          issuer({
            issuer: HS_ISSUER,
            tenant: 'legacy',
            algorithms: ['HS256'],
            secret_env: 'PROPS_HS',
            mints_for: ['Organization.Services.*'],
          }),
          issuer({
            issuer: PARTNER.acme,
            tenant: 'acme',
            algorithms: ['HS256'],
            secret_env: 'PROPS_PARTNER',
            mints_for: ['partner-*'],
          }),
          issuer({
            issuer: PARTNER.legacy,
            tenant: 'legacy',
            algorithms: ['HS256'],
            secret_env: 'PROPS_PARTNER',
            mints_for: ['partner-*'],
          }),
        ],
        // entry_only + bind_source close the pattern's own hole (an inner level is a valid token):
        // without them "extract a level" would be a legitimate allow, not a mutation that must fail.
        tenants: [tenant('acme', { entry_only: true }), tenant('legacy')],
        services: [
          service('A', { tenant: 'acme', entry: true }),
          service(ACME_DEST, { tenant: 'acme', bind_source: true }),
          service(LEGACY_DEST, { tenant: 'legacy', bind_source: true }),
        ],
        principals: Object.fromEntries(ALL_SIDS.map((sid) => [principalOf(sid), sid])),
      },
      processEnv: { PROPS_HS: HS_SECRET, PROPS_PARTNER: PARTNER_SECRET },
    });

    // Two ES256-origin chains walked A → B → C → D through Check: one with a large origin
    // (gzip containers from depth 3), one small.
    for (const [label, claims] of [
      [
        'es-large',
        { sub: 'alice', roles: ['reader', 'writer'], tenant_id: 'acme', pad: 'x'.repeat(700) },
      ],
      ['es-small', { sub: 'bob', roles: ['admin'] }],
    ] as const) {
      let token = await idp.mint(claims, { ttl: LIFETIME });
      for (const [i, sid] of ['A', 'B', 'C', 'D'].entries()) {
        const result = await h.client.check({ token, sid });
        assert.equal(
          result.allowed,
          true,
          `building ${label}: hop to ${sid}: ${JSON.stringify(result.metadata)}`,
        );
        token = result.forwardedToken as string;
        pool.push({ label: `${label}@${i + 1}`, token, caller: sid, dest: ACME_DEST });
      }
    }
    assert.ok(
      pool.some((e) => peel(e.token)[0]?.level?.stack?.cmp === 'g'),
      'some chain carries a gzip container',
    );

    // A chain in the seed's style (HS256, lowercase fmt, gzip padded standard base64, brotli
    // URL-safe), and one of our levels wrapped around it.
    const now = nowSeconds();
    let hs = await seedLevel({ sub: '1234567890', roles: ['user'] }, now - 30, now + LIFETIME);
    const hsPath = ['A', 'B', 'C', 'D'];
    for (const [i, s] of hsPath.entries()) {
      hs = await seedLevel(
        seedWrap(hs, SEED_SVC(s), i + 1, i === 2 ? 'g' : i === 3 ? 'b' : undefined),
        now - 20 + i,
        now + LIFETIME,
      );
      pool.push({ label: `hs256@${i + 1}`, token: hs, caller: SEED_SVC(s), dest: LEGACY_DEST });
    }
    const mixed = await h.client.check({ token: hs, sid: SEED_SVC('E') });
    assert.equal(mixed.allowed, true, `wrapping the seed chain: ${JSON.stringify(mixed.metadata)}`);
    pool.push({
      label: 'mixed@5',
      token: mixed.forwardedToken as string,
      caller: SEED_SVC('E'),
      dest: LEGACY_DEST,
    });

    ctx = {
      donors: pool.map((e) => e.token),
      ownIssuer: 'urn:matryoshka:authz',
      otherIssuers: [idp.issuer, HS_ISSUER],
      sids: ALL_SIDS,
    };
  });

  after(async () => {
    await h?.stop();
    await idp?.stop();
  });

  const send = (entry: PoolEntry, token: string) =>
    h.client.check({ token, sid: entry.dest, sourcePrincipal: principalOf(entry.caller) });

  it('control: every valid token is allowed from its own caller, and its inner levels are not', async () => {
    assert.equal(pool.length, 13);
    for (const entry of pool) {
      const result = await send(entry, entry.token);
      assert.equal(result.allowed, true, `${entry.label}: ${JSON.stringify(result.metadata)}`);
      const levels = peel(entry.token);
      assert.ok(
        levels.length >= 2 && levels.every((l) => l.level !== undefined),
        `${entry.label} opens fully`,
      );
      // The pattern's own hole, closed by policy: each inner level is a validly signed token.
      for (const inner of levels.slice(1)) {
        const extracted = await send(entry, inner.compact);
        assert.equal(
          extracted.allowed,
          false,
          `${entry.label}: an extracted inner level is refused`,
        );
        assert.equal(extracted.httpStatus, 403);
      }
    }
  });

  it('never allows a mutated token; denials are 401/403, never 503 or an RPC error', async () => {
    const reasons = new Map<string, number>();
    let tried = 0;
    const started = performance.now();
    // Cases worth running every time, whatever the seed (another spelling of the signature's
    // bytes; the origin pulled out; a level skipped; the container of another chain).
    const examples: Array<[number, Mutation[]]> = [
      [0, [{ kind: 'reencode-segment', level: 0, seg: 2, variant: 'loose-bits' }]],
      [11, [{ kind: 'reencode-segment', level: 0, seg: 2, variant: 'loose-bits' }]],
      [3, [{ kind: 'extract', level: 4 }]],
      [3, [{ kind: 'reorder', order: [0, 2, 3, 4] }]],
      [2, [{ kind: 'splice', level: 0, donor: 10, donorLevel: 1 }]],
      [
        12,
        [
          {
            kind: 'field',
            level: 1,
            field: 'sid',
            inStack: true,
            edit: 'duplicate',
            value: { derived: 'other-sid' },
          },
        ],
      ],
    ];
    await fc.assert(
      fc.asyncProperty(fc.nat(), mutationsArb, async (which, mutations) => {
        const entry = pool[which % pool.length] as PoolEntry;
        const mutated = applyMutations(entry.token, mutations, ctx);
        fc.pre(mutated !== entry.token);
        tried++;
        const what = `${entry.label} ${describeMutations(mutations)}\n  ${whereChanged(entry.token, mutated)}`;
        let result: CheckResult;
        try {
          result = await send(entry, mutated);
        } catch (error) {
          assert.fail(`the RPC failed (${(error as Error).message}) for ${what}`);
        }
        const reason = String(result.metadata['reason'] ?? 'none');
        reasons.set(reason, (reasons.get(reason) ?? 0) + 1);
        assert.equal(result.allowed, false, `ALLOWED: ${what}`);
        assert.ok(
          result.httpStatus === 401 || result.httpStatus === 403,
          `denied with ${result.httpStatus} (${reason}): ${what}`,
        );
        assert.ok(
          result.grpcCode === 16 || result.grpcCode === 7,
          `gRPC status ${result.grpcCode}: ${what}`,
        );
      }),
      params(MUTATION_RUNS, { examples }),
    );
    const unexpected = h.logs.filter((l) => l['msg'] === 'check failed unexpectedly');
    assert.equal(
      unexpected.length,
      0,
      `internal errors logged: ${JSON.stringify(unexpected.slice(0, 3))}`,
    );
    console.log(
      `# mutations: ${tried} sent in ${Math.round(performance.now() - started)} ms; reasons ${JSON.stringify(Object.fromEntries(reasons))}`,
    );
    // The generator reaches past the outer signature too (policy, not only bad_signature).
    if (coverageChecked(MUTATION_RUNS)) {
      assert.ok(
        (reasons.get('bad_signature') ?? 0) > 0 && (reasons.get('caller_not_allowed') ?? 0) > 0,
        'mutations reach both signature and policy checks',
      );
    }
  });

  it('mutated chains re-signed by a registered partner (a minter for partner-* only) are never allowed, never 503', async () => {
    // Past the outer signature: the mutated outer level is signed again by an insider's key, so
    // the walk reaches the stack checks (minting rights, containers, inner levels, depth, tenant,
    // time) with every mutation. Denial is the only outcome: the partner may not wrap for the
    // chain's sids, and where it may (sid renamed partner-*) the caller is not the source workload.
    const reasons = new Map<string, number>();
    const started = performance.now();
    let tried = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.nat(),
        mutationsArb,
        fc.boolean(),
        async (which, mutations, renameSid) => {
          const entry = pool[which % pool.length] as PoolEntry;
          const mutated = applyMutations(entry.token, mutations, ctx);
          const outer = openLevel(mutated);
          fc.pre(outer !== undefined);
          const claims: Record<string, unknown> = {
            ...outer.claims,
            iss: PARTNER[entry.dest === ACME_DEST ? 'acme' : 'legacy'],
          };
          const stack = claims['auth_stack'];
          if (renameSid && stack !== null && typeof stack === 'object' && !Array.isArray(stack)) {
            const sid = (stack as Record<string, unknown>)['sid'];
            claims['auth_stack'] = {
              ...stack,
              sid: `partner-${typeof sid === 'string' ? sid : 'x'}`,
            };
          }
          const token = await new CompactSign(new TextEncoder().encode(JSON.stringify(claims)))
            .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
            .sign(partnerKey);
          tried++;
          const what = `${entry.label} ${describeMutations(mutations)} re-signed by the partner${renameSid ? ', sid renamed' : ''}`;
          let result: CheckResult;
          try {
            result = await send(entry, token);
          } catch (error) {
            assert.fail(`the RPC failed (${(error as Error).message}) for ${what}`);
          }
          const reason = String(result.metadata['reason'] ?? 'none');
          reasons.set(reason, (reasons.get(reason) ?? 0) + 1);
          assert.equal(result.allowed, false, `ALLOWED: ${what}`);
          assert.ok(
            result.httpStatus === 401 || result.httpStatus === 403,
            `denied with ${result.httpStatus} (${reason}): ${what}`,
          );
        },
      ),
      params(RESIGN_RUNS),
    );
    const unexpected = h.logs.filter((l) => l['msg'] === 'check failed unexpectedly');
    assert.equal(
      unexpected.length,
      0,
      `internal errors logged: ${JSON.stringify(unexpected.slice(0, 3))}`,
    );
    console.log(
      `# re-signed mutations: ${tried} sent in ${Math.round(performance.now() - started)} ms; reasons ${JSON.stringify(Object.fromEntries(reasons))}`,
    );
    if (coverageChecked(RESIGN_RUNS)) {
      for (const deep of ['untrusted_issuer', 'caller_not_allowed', 'stack_malformed'])
        assert.ok((reasons.get(deep) ?? 0) > 0, `some re-signed mutation ends in ${deep}`);
    }
  });
});

// ---------------------------------------------------------------------------------------------
// Property 2: random CheckRequests
// ---------------------------------------------------------------------------------------------

describe('property: random CheckRequests never crash the server or leave it unresponsive', () => {
  let idp: LocalIssuer;
  let h: Harness;
  let valid: string;

  before(async () => {
    idp = await LocalIssuer.start();
    h = await startHarness({
      env: { LOG_LEVEL: 'warn', MATRYOSHKA_TOKEN_TTL: String(LIFETIME) },
      contents: {
        issuers: [
          issuer({
            issuer: idp.issuer,
            tenant: 'acme',
            jwks_uri: idp.jwksUri,
            algorithms: ['ES256'],
          }),
          issuer({
            issuer: HS_ISSUER,
            tenant: 'legacy',
            algorithms: ['HS256'],
            secret_env: 'PROPS_HS',
            mints_for: ['*'],
          }),
        ],
        services: [
          service('bound', { bind_source: true }),
          service('picky', { allowed_callers: ['A'], required_roles: ['admin'], max_depth: 2 }),
        ],
        principals: { [principalOf('A')]: 'A', [principalOf('B')]: 'B' },
      },
      processEnv: { PROPS_HS: HS_SECRET },
    });
    valid = await idp.mint({ sub: 'carol', roles: ['admin'] }, { ttl: LIFETIME });
  });
  after(async () => {
    await h?.stop();
    await idp?.stop();
  });

  it('every request gets a CheckResponse; afterwards a valid check is quick and health is SERVING', async () => {
    const first = await h.client.check({ token: valid, sid: 'A' });
    assert.equal(first.allowed, true, JSON.stringify(first.metadata));
    const world = {
      tokens: [
        valid,
        first.forwardedToken as string,
        await idp.mint({ sub: 'dave' }, { ttl: LIFETIME }),
      ],
      principals: [principalOf('A'), principalOf('B'), 'spiffe://unknown'],
      sids: ['A', 'B', 'bound', 'picky'],
      issuers: [idp.issuer, HS_ISSUER, 'urn:matryoshka:authz'],
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
                result = await h.client.send(request, 5000);
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
              // Envoy's ext_authz timeout is 200 ms by default; a second is generous even on a slow CI
              // box (the largest requests here take ~300 ms), and a request that takes longer blocks
              // the event loop for every other check.
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
    const unexpected = h.logs.filter((l) => l['msg'] === 'check failed unexpectedly');
    assert.equal(
      unexpected.length,
      0,
      `internal errors logged: ${JSON.stringify(unexpected.slice(0, 3))}`,
    );

    // Still responsive: a normal check answers correctly and fast, and health says SERVING.
    const t0 = performance.now();
    const after = await h.client.check({ token: valid, sid: 'B', deadlineMs: 1000 });
    const elapsed = performance.now() - t0;
    assert.equal(after.allowed, true, JSON.stringify(after.metadata));
    assert.ok(elapsed < 1000, `a valid check took ${Math.round(elapsed)} ms after the run`);
    assert.equal(h.service.health.current, 'SERVING');
    const { HealthClient } = loadProtos();
    const health = new HealthClient(
      `127.0.0.1:${h.service.grpcPort}`,
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

/** Where two tokens differ: offset and a window of each, for assertion messages. */
function whereChanged(original: string, mutated: string): string {
  let p = 0;
  while (p < original.length && p < mutated.length && original[p] === mutated[p]) p++;
  let q = 0;
  while (
    q < original.length - p &&
    q < mutated.length - p &&
    original[original.length - 1 - q] === mutated[mutated.length - 1 - q]
  )
    q++;
  const from = Math.max(0, p - 12);
  const window = (t: string): string =>
    `${from > 0 ? '…' : ''}${t.slice(from, Math.min(t.length - q + 12, p + 60))}${t.length - q + 12 < t.length ? '…' : ''}`;
  return `length ${original.length} → ${mutated.length}, first change at ${p}: ${window(original)} → ${window(mutated)}`;
}

// ---------------------------------------------------------------------------------------------
// Property 3: the codec, pure
// ---------------------------------------------------------------------------------------------

const B64URL_CHARS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'.split('');
const B64STD_CHARS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'.split('');
const seg = (value: unknown): string =>
  b64u(typeof value === 'string' ? value : JSON.stringify(value));

/** An unsigned but well-formed chain: what inspectChain must walk to the origin. */
interface GeneratedChain {
  readonly token: string;
  readonly sids: readonly string[];
  readonly fmts: readonly string[];
  readonly cmps: ReadonlyArray<Cmp | undefined>;
}

// The sid grammar (src/header-grammar.ts): a letter or digit, then letters, digits and . - _ : @ /.
const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
const sidArb = fc
  .tuple(
    fc.constantFrom(...ALNUM.split('')),
    fc.string({ unit: fc.constantFrom(...`${ALNUM}.-_:@/`.split('')), maxLength: 15 }),
  )
  .map(([first, rest]) => first + rest);
const levelSpecArb = fc.record({
  sid: fc.option(sidArb, { nil: undefined }),
  fmt: fc.constantFrom('JWT', 'jwt', 'Jwt'),
  cmp: fc.constantFrom<Cmp | null | undefined>(undefined, null, 'g', 'b'),
  variant: fc.constantFrom<B64Variant>(...B64_VARIANTS),
  declareDepth: fc.boolean(),
  extra: fc.dictionary(
    fc.string({ maxLength: 6 }).filter((k) => k !== 'auth_stack' && k !== '__proto__'),
    fc.jsonValue({ maxDepth: 1 }),
    { maxKeys: 2 },
  ),
});
const generatedChainArb: fc.Arbitrary<GeneratedChain> = fc
  .record({
    origin: fc.dictionary(
      fc.string({ maxLength: 6 }).filter((k) => k !== 'auth_stack' && k !== '__proto__'),
      fc.jsonValue({ maxDepth: 2 }),
      { maxKeys: 4 },
    ),
    header: fc.record(
      {
        alg: fc.constantFrom('ES256', 'HS256', 'RS256', 'EdDSA'),
        kid: fc.option(fc.string({ maxLength: 8 }), { nil: undefined }),
      },
      { requiredKeys: ['alg'] },
    ),
    levels: fc.array(levelSpecArb, { maxLength: 6 }),
    sig: fc.uint8Array({ minLength: 0, maxLength: 72 }),
  })
  .map(({ origin, header, levels, sig }) => {
    const sign = (payload: unknown): string =>
      `${seg(header)}.${seg(payload)}.${Buffer.from(sig).toString('base64url')}`;
    let token = sign(origin);
    for (const [i, l] of levels.entries()) {
      const container = packContainer(token, l.cmp ?? undefined, l.variant);
      const stack = {
        fmt: l.fmt,
        ...(l.cmp === undefined ? {} : { cmp: l.cmp }),
        ...(l.sid === undefined ? {} : { sid: l.sid }),
        ...(l.declareDepth ? { depth: i + 1 } : {}),
        container,
      };
      token = sign({ ...l.extra, auth_stack: stack });
    }
    return {
      token,
      sids: levels.map((l) => l.sid ?? ''),
      fmts: levels.map((l) => l.fmt.toUpperCase()),
      cmps: levels.map((l) => l.cmp ?? undefined),
    };
  });

/** Strings of every shape inspectChain or parseCompactJws might be handed. */
const tokenishArb: fc.Arbitrary<string> = fc.oneof(
  fc.string(),
  fc.string({ unit: 'binary' }),
  fc.base64String(),
  fc
    .array(
      fc.oneof(
        fc.string({ unit: fc.constantFrom(...B64URL_CHARS) }),
        fc.jsonValue({ maxDepth: 2 }).map(seg),
        fc.base64String(),
      ),
      { minLength: 1, maxLength: 6 },
    )
    .map((p) => p.join('.')),
  generatedChainArb.map((c) => c.token),
  fc
    .tuple(generatedChainArb, fc.nat(), fc.string({ maxLength: 4 }))
    .map(([c, n, junk]) => c.token.slice(0, n % (c.token.length + 1)) + junk),
  fc.tuple(generatedChainArb, fc.nat(), fc.constantFrom(...B64URL_CHARS)).map(([c, n, ch]) => {
    const i = n % c.token.length;
    return c.token.slice(0, i) + ch + c.token.slice(i + 1);
  }),
);

/** The auth_stack validity rules of the format spec, written independently of auth-stack.ts. */
function stackIsValidPerSpec(payload: Record<string, unknown>): boolean {
  const s = payload['auth_stack'];
  if (s === null || typeof s !== 'object' || Array.isArray(s)) return false;
  const c = s as Record<string, unknown>;
  const fmtOk = typeof c['fmt'] === 'string' && ['JWT', 'JWE'].includes(c['fmt'].toUpperCase());
  const cmpOk = c['cmp'] === undefined || c['cmp'] === null || c['cmp'] === 'g' || c['cmp'] === 'b';
  const containerOk = typeof c['container'] === 'string' && c['container'] !== '';
  const sidOk =
    c['sid'] === undefined ||
    (typeof c['sid'] === 'string' && /^[A-Za-z0-9][A-Za-z0-9._:@/-]{0,127}$/.test(c['sid']));
  const d = c['depth'];
  const depthOk =
    d === undefined ||
    (typeof d === 'number' && Number.isInteger(d) && d >= 1 && d <= Number.MAX_SAFE_INTEGER);
  return fmtOk && cmpOk && containerOk && sidOk && depthOk;
}

/** A JSON document model in which an object may repeat a member name. */
type JNode =
  | { t: 'obj'; members: Array<[string, JNode]> }
  | { t: 'arr'; items: JNode[] }
  | { t: 'str'; v: string }
  | { t: 'lit'; v: string };

const keyArb = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.constantFrom(
      'a',
      'b',
      'iss',
      'sub',
      'auth_stack',
      'container',
      '__proto__',
      '',
      'a"b',
      'a\\b',
      '\\',
      '"',
      'é',
      '\u0000',
      '\ud800',
      '{',
      '}',
      ',',
      ':',
      '[',
    ),
  },
  { weight: 1, arbitrary: fc.string({ maxLength: 5 }) },
);
const jnodeArb: fc.Arbitrary<JNode> = fc.letrec<{ node: JNode }>((tie) => ({
  node: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.oneof(keyArb, fc.string({ maxLength: 6 })).map((v): JNode => ({ t: 'str', v })),
    fc
      .constantFrom('1', '-0.5e3', 'true', 'false', 'null', '0')
      .map((v): JNode => ({ t: 'lit', v })),
    fc.array(tie('node'), { maxLength: 4 }).map((items): JNode => ({ t: 'arr', items })),
    fc
      .array(fc.tuple(keyArb, tie('node')), { maxLength: 5 })
      .map((members): JNode => ({ t: 'obj', members })),
  ),
})).node;

/** Serialise with random whitespace and random (but valid) escaping of every string. */
function serialise(node: JNode, rnd: () => number): string {
  const ws = (): string => [' ', '', '\n', '\t', ''][Math.floor(rnd() * 5)] as string;
  const str = (s: string): string => {
    let out = '"';
    for (const ch of s) {
      const code = ch.codePointAt(0) as number;
      const r = rnd();
      const u = `\\u${code.toString(16).padStart(4, '0')}`;
      if (ch === '"') out += r < 0.5 ? '\\"' : u;
      else if (ch === '\\') out += r < 0.5 ? '\\\\' : u;
      else if (code < 0x20 || (code >= 0xd800 && code <= 0xdfff))
        out += r < 0.5 ? u : u.toUpperCase().replace('\\U', '\\u');
      else if (r < 0.2 && code <= 0xffff) out += `\\u${code.toString(16).padStart(4, '0')}`;
      else if (r < 0.25 && ch === '/') out += '\\/';
      else out += ch;
    }
    return `${out}"`;
  };
  switch (node.t) {
    case 'str':
      return str(node.v);
    case 'lit':
      return node.v;
    case 'arr':
      return `[${ws()}${node.items.map((n) => serialise(n, rnd)).join(`${ws()},${ws()}`)}${ws()}]`;
    case 'obj':
      return `{${ws()}${node.members.map(([k, v]) => `${str(k)}${ws()}:${ws()}${serialise(v, rnd)}`).join(`${ws()},${ws()}`)}${ws()}}`;
  }
}

/** Reference: does any object in the model repeat a member name (as decoded, which JSON compares)? */
function modelHasDuplicates(node: JNode): boolean {
  if (node.t === 'arr') return node.items.some(modelHasDuplicates);
  if (node.t !== 'obj') return false;
  const seen = new Set<string>();
  for (const [k, v] of node.members) {
    if (seen.has(k)) return true;
    seen.add(k);
    if (modelHasDuplicates(v)) return true;
  }
  return false;
}

function referenceInflate(bytes: Buffer, cmp: Cmp): Buffer | undefined {
  try {
    return cmp === 'g' ? gunzipSync(bytes) : brotliDecompressSync(bytes);
  } catch {
    return undefined;
  }
}

describe('property: the codec on arbitrary input', () => {
  it('a payload with its container spliced in parses to the payload JSON.stringify would give', () => {
    const base64ish = fc.string({
      unit: fc.constantFrom(...'ABCxyz019+/=_-.'.split('')),
      maxLength: 400,
    });
    // The fast path is for our own encodings; a quote or backslash must still come out intact.
    const hostile = fc
      .tuple(base64ish, fc.constantFrom('"', '\\', '\\"', '"}}'), base64ish)
      .map(([a, b, c]) => a + b + c);
    fc.assert(
      fc.property(
        fc.oneof(base64ish, hostile),
        fc.string({ maxLength: 40 }),
        fc.array(fc.string({ maxLength: 12 }), { maxLength: 4 }),
        (container, sub, roles) => {
          const payload = {
            iss: 'https://authz.test',
            sub,
            roles,
            auth_stack: { fmt: 'JWT', cmp: 'g', sid: 'svc', depth: 3, container: '' },
          };
          const json = withContainer(payload, container);
          assert.deepEqual(JSON.parse(json), {
            ...payload,
            auth_stack: { ...payload.auth_stack, container },
          });
        },
      ),
      params(PURE_RUNS),
    );
  });

  it('inspectChain never throws and always names why it stopped', () => {
    fc.assert(
      fc.property(
        tokenishArb,
        fc.constantFrom('', 'Bearer ', 'bearer\t', '  '),
        (token, prefix) => {
          const result = inspectChain(prefix + token);
          assert.ok(
            ['origin', 'sealed', 'error'].includes(result.stop.kind),
            `stop ${result.stop.kind}`,
          );
          assert.equal(typeof result.stop.detail, 'string');
          assert.equal(result.sealed, result.stop.kind === 'sealed');
          assert.ok(result.levels.length <= DEFAULT_LIMITS.maxLevels);
          if (result.stop.kind === 'origin') {
            assert.ok(result.levels.length >= 1);
            assert.equal(result.levels[0]?.fmt, undefined, 'the origin has no container');
          }
        },
      ),
      params(PURE_RUNS),
    );
  });

  it('inspectChain walks every well-formed chain to its origin (any fmt case, cmp, base64 spelling)', () => {
    fc.assert(
      fc.property(generatedChainArb, (chain) => {
        const result = inspectChain(chain.token);
        assert.equal(result.stop.kind, 'origin', result.stop.detail);
        assert.equal(result.levels.length, chain.sids.length + 1);
        assert.deepEqual(
          result.levels.slice(1).map((l) => l.sid ?? ''),
          chain.sids,
        );
        assert.deepEqual(
          result.levels.slice(1).map((l) => l.fmt),
          chain.fmts,
        );
        assert.deepEqual(
          result.levels.slice(1).map((l) => l.cmp),
          chain.cmps,
        );
      }),
      params(PURE_RUNS / 2),
    );
  });

  it('parseCompactJws throws nothing but CompactFormatError', () => {
    fc.assert(
      fc.property(tokenishArb, (token) => {
        try {
          const jws = parseCompactJws(token);
          assert.ok(typeof jws.alg === 'string' && jws.alg.length > 0);
          for (const part of [jws.header, jws.payload])
            assert.ok(part !== null && typeof part === 'object' && !Array.isArray(part));
        } catch (error) {
          assert.ok(
            error instanceof CompactFormatError,
            `threw ${(error as Error)?.name}: ${(error as Error)?.message}`,
          );
        }
      }),
      params(PURE_RUNS),
    );
  });

  it('readAuthStack returns or throws StackFormatError, and accepts exactly what the spec allows', () => {
    const fieldArb = fc.oneof(
      fc.jsonValue({ maxDepth: 1 }),
      fc.constantFrom(
        'JWT',
        'jwt',
        'JwE',
        'JWS',
        'g',
        'b',
        'G',
        '',
        'x',
        0,
        1,
        -1,
        1.5,
        2 ** 53,
        2 ** 53 - 1,
        null,
        'A',
      ),
    );
    const stackArb = fc.record(
      {
        fmt: fieldArb,
        cmp: fieldArb,
        container: fieldArb,
        sid: fieldArb,
        depth: fieldArb,
        hash: fieldArb,
      },
      { requiredKeys: [] },
    );
    const payloadArb = fc.oneof(
      fc.record({
        auth_stack: fc.oneof(
          { weight: 4, arbitrary: stackArb },
          { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 2 }) },
        ),
      }),
      fc
        .jsonValue({ maxDepth: 3 })
        .filter(
          (v): v is Record<string, fc.JsonValue> =>
            v !== null && typeof v === 'object' && !Array.isArray(v),
        ),
    );
    fc.assert(
      fc.property(payloadArb, (value) => {
        // Through JSON text, as a payload reaches it.
        const payload = JSON.parse(JSON.stringify(value)) as Record<string, unknown>;
        let stack: AuthStack | undefined;
        try {
          stack = readAuthStack(payload);
        } catch (error) {
          assert.ok(error instanceof StackFormatError, `threw ${(error as Error)?.name}`);
          assert.equal(
            stackIsValidPerSpec(payload),
            false,
            `refused a valid auth_stack: ${JSON.stringify(payload['auth_stack'])} (${(error as Error).message})`,
          );
          return;
        }
        if (!Object.hasOwn(payload, 'auth_stack')) {
          assert.equal(stack, undefined);
          return;
        }
        assert.ok(
          stackIsValidPerSpec(payload),
          `accepted an invalid auth_stack: ${JSON.stringify(payload['auth_stack'])}`,
        );
        assert.ok(stack !== undefined && (stack.fmt === 'JWT' || stack.fmt === 'JWE'));
      }),
      params(PURE_RUNS),
    );
  });

  it('unpackContainer returns the inflated token or throws StackFormatError, within its cap', () => {
    const printable = fc.string({
      unit: fc.constantFrom(...'abcXYZ019.-_~'.split('')),
      maxLength: 300,
    });
    const containerArb = fc.oneof(
      fc.base64String({ maxLength: 80 }),
      fc.string({ maxLength: 40 }),
      fc
        .tuple(printable, fc.constantFrom<Cmp>('g', 'b'), fc.constantFrom(...B64_VARIANTS))
        .map(([text, cmp, v]) => packContainer(text, cmp, v)),
      fc
        .tuple(
          fc.uint8Array({ maxLength: 200 }),
          fc.constantFrom<Cmp>('g', 'b'),
          fc.constantFrom(...B64_VARIANTS),
        )
        .map(([bytes, cmp, v]) =>
          encodeB64(cmp === 'g' ? gzipSync(bytes) : brotliCompressSync(bytes), v),
        ),
      fc.tuple(printable, fc.constantFrom<Cmp>('g', 'b'), fc.nat()).map(([text, cmp, n]) => {
        const packed = packContainer(text, cmp, 'std-pad');
        return packed.slice(0, n % (packed.length + 1));
      }),
    );
    fc.assert(
      fc.property(
        containerArb,
        fc.constantFrom<Cmp | undefined>('g', 'b', undefined),
        fc.integer({ min: 0, max: 400 }),
        (container, cmp, maxBytes) => {
          fc.pre(container.length > 0);
          const stack: AuthStack = { fmt: 'JWT', cmp, container, sid: undefined, depth: undefined };
          let out: string;
          try {
            out = unpackContainer(stack, maxBytes);
          } catch (error) {
            assert.ok(
              error instanceof StackFormatError,
              `threw ${(error as Error)?.name}: ${(error as Error)?.message}`,
            );
            if (error.code === 'ERR_STACK_TOO_LARGE') {
              const size =
                cmp === undefined
                  ? container.length
                  : referenceInflate(decodeAnyBase64(container) as Buffer, cmp)?.length;
              assert.ok(
                size === undefined || size > maxBytes,
                `tooLarge, yet it is ${size} bytes for a cap of ${maxBytes}`,
              );
            }
            return;
          }
          assert.ok(out.length <= maxBytes, `${out.length} bytes past a cap of ${maxBytes}`);
          if (cmp === undefined) {
            assert.equal(out, container);
          } else {
            assert.match(out, /^[\x21-\x7e]*$/);
            const reference = referenceInflate(Buffer.from(container, 'base64'), cmp);
            assert.equal(out, reference?.toString('latin1'), 'inflates to what zlib says');
          }
        },
      ),
      params(PURE_RUNS),
    );
  });

  it('base64 decoders accept exactly the canonical spellings the alphabet rules allow (reference: the rules written out)', () => {
    const INDEX = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
    const sextet = (c: string): number =>
      c === '+' || c === '-' ? 62 : c === '/' || c === '_' ? 63 : INDEX.indexOf(c);
    const unusedBitsZero = (unpadded: string): boolean => {
      const rest = unpadded.length % 4;
      return rest === 0 || (sextet(unpadded.slice(-1)) & (rest === 2 ? 0x0f : 0x03)) === 0;
    };
    const referenceSegment = (t: string): boolean =>
      /^[A-Za-z0-9_-]*$/.test(t) && t.length % 4 !== 1 && unusedBitsZero(t);
    const referenceAny = (t: string): boolean => {
      if (!/^[A-Za-z0-9+/]*={0,2}$/.test(t) && !/^[A-Za-z0-9_-]*={0,2}$/.test(t)) return false;
      const unpadded = t.replace(/=+$/, '');
      return (
        unpadded.length % 4 !== 1 &&
        (t.length === unpadded.length || t.length % 4 === 0) &&
        unusedBitsZero(unpadded)
      );
    };
    const chars = fc.constantFrom(...`${INDEX}+/-_= .\n%`.split(''));
    const textArb = fc.oneof(
      fc.string({ unit: chars, maxLength: 24 }),
      fc
        .tuple(fc.uint8Array({ maxLength: 24 }), fc.constantFrom(...B64_VARIANTS))
        .map(([bytes, v]) => encodeB64(Buffer.from(bytes), v)),
      // A canonical spelling with one character changed, added or removed.
      fc
        .tuple(
          fc.uint8Array({ minLength: 1, maxLength: 24 }),
          fc.constantFrom(...B64_VARIANTS),
          fc.nat(),
          chars,
          fc.constantFrom('set', 'insert', 'delete'),
        )
        .map(([bytes, v, at, c, op]) => {
          const t = encodeB64(Buffer.from(bytes), v);
          const i = at % t.length;
          return op === 'set'
            ? t.slice(0, i) + c + t.slice(i + 1)
            : op === 'insert'
              ? t.slice(0, i) + c + t.slice(i)
              : t.slice(0, i) + t.slice(i + 1);
        }),
    );
    fc.assert(
      fc.property(textArb, (text) => {
        const segment = decodeSegment(text);
        assert.equal(
          segment !== undefined,
          referenceSegment(text),
          `decodeSegment(${JSON.stringify(text)})`,
        );
        if (segment !== undefined) assert.equal(segment.toString('base64url'), text);
        const any = decodeAnyBase64(text);
        assert.equal(
          any !== undefined,
          referenceAny(text),
          `decodeAnyBase64(${JSON.stringify(text)})`,
        );
        if (any !== undefined) assert.deepEqual(any, Buffer.from(text, 'base64'));
      }),
      params(PURE_RUNS),
    );
  });

  it('hasDuplicateKeys agrees with a reference on JSON texts with repeated, escaped and nested member names', () => {
    fc.assert(
      fc.property(jnodeArb, fc.integer(), (node, salt) => {
        let state = salt >>> 0 || 1;
        const rnd = (): number => {
          state = (Math.imul(state, 1103515245) + 12345) >>> 0;
          return (state >>> 8) / 0x1000000;
        };
        const text = serialise(node, rnd);
        JSON.parse(text); // the input contract: text that JSON.parse accepted
        assert.equal(hasDuplicateKeys(text), modelHasDuplicates(node), text);
      }),
      params<[JNode, number]>(PURE_RUNS, {
        examples: [
          [
            {
              t: 'obj',
              members: [
                ['a', { t: 'lit', v: '1' }],
                ['a', { t: 'lit', v: '2' }],
              ],
            },
            7,
          ],
        ],
      }),
    );
  });

  it('decodeSegment accepts only the canonical base64url of the bytes (one spelling per signature)', () => {
    // A JWS segment that decodes to the same bytes under two spellings makes a token malleable:
    // a signature's unused low bits can be changed and it still verifies.
    fc.assert(
      fc.property(
        fc.string({ unit: fc.constantFrom(...B64URL_CHARS, '=', '+', '/'), maxLength: 12 }),
        (text) => {
          const bytes = decodeSegment(text);
          if (bytes !== undefined)
            assert.equal(
              bytes.toString('base64url'),
              text,
              `${JSON.stringify(text)} decodes to the bytes of ${JSON.stringify(bytes.toString('base64url'))}`,
            );
        },
      ),
      params(PURE_RUNS, { examples: [['AB'], ['AAB']] }),
    );
  });

  it('decodeAnyBase64 reads each byte string from its standard and URL-safe, padded and unpadded spellings only', () => {
    fc.assert(
      fc.property(
        fc.string({ unit: fc.constantFrom(...B64STD_CHARS, '-', '_', '='), maxLength: 12 }),
        (text) => {
          const bytes = decodeAnyBase64(text);
          if (bytes === undefined) return;
          const normalised = text.replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
          assert.equal(
            bytes.toString('base64url'),
            normalised,
            `${JSON.stringify(text)} decodes to the bytes of ${JSON.stringify(bytes.toString('base64url'))}`,
          );
        },
      ),
      params(PURE_RUNS),
    );
    // And every spelling of random bytes is read back to those bytes.
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 40 }),
        fc.constantFrom(...B64_VARIANTS),
        (bytes, variant) => {
          const decoded = decodeAnyBase64(encodeB64(bytes, variant));
          assert.ok(decoded !== undefined);
          assert.deepEqual(new Uint8Array(decoded), bytes);
        },
      ),
      params(PURE_RUNS),
    );
  });
});
