/**
 * The Envoy answer built from a decision (src/pipeline/respond.ts): status mapping, the headers
 * set and removed upstream, the generic denial body, and the dynamic metadata — checked both as
 * objects and after a round trip through the real CheckResponse protobuf serialiser.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Chain, VerifiedLevel } from '../../src/chain/types.js';
import { IDENTITY_HEADERS } from '../../src/pipeline/owned-headers.js';
import type { DecisionRecord } from '../../src/pipeline/decision.js';
import type { Minted } from '../../src/pipeline/mint.js';
import {
  type CheckResponseMessage,
  type HeaderValueOption,
  type ResponseSettings,
  buildCheckResponse,
} from '../../src/pipeline/respond.js';
import { DENY_REASONS, type DenyReason } from '../../src/reasons.js';
import { loadProtos } from '../../src/server/protos.js';

const MINTED_TOKEN = 'eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2ln';
const DEFAULTS: ResponseSettings = { forwardHeader: 'authorization', debugReasons: false };

/** A one-level chain of the given depth (only `depth` matters to the response). */
function chainOfDepth(depth: number): Chain {
  const level = levelAt(depth);
  return {
    levels: [level],
    outer: level,
    depth,
    sealed: false,
    sids: [],
    verifiedHere: 1,
    keyCacheMiss: false,
    trustVersion: 0,
  };
}

function levelAt(depth: number): VerifiedLevel {
  return {
    iss: 'https://idp.acme.example',
    alg: 'ES256',
    kid: undefined,
    exp: undefined,
    nbf: undefined,
    iat: undefined,
    own: false,
    issuer: undefined,
    tenant: 'acme',
    stack: undefined,
    depth,
    subject: 'alice',
    roles: [],
  };
}

const minted = (overrides: Partial<Minted> = {}): Minted => ({
  token: MINTED_TOKEN,
  sids: ['gateway', 'orders'],
  jti: 'f5a0c1de-0000-4000-8000-000000000001',
  level: levelAt(2),
  levels: [levelAt(2)],
  inside: [],
  form: 'nested',
  ...overrides,
});

function allowed(overrides: Partial<DecisionRecord> = {}): DecisionRecord {
  return {
    requestId: 'req-123',
    allowed: true,
    reason: undefined,
    detail: undefined,
    shadow: false,
    shadowScope: undefined,
    operation: undefined,
    tenant: 'acme',
    user: 'alice',
    roles: ['reader', 'writer'],
    destination: 'orders',
    chain: chainOfDepth(1),
    minted: minted(),
    recursionAudited: false,
    ...overrides,
  };
}

function denied(
  reason: DenyReason | undefined,
  overrides: Partial<DecisionRecord> = {},
): DecisionRecord {
  return allowed({
    allowed: false,
    reason,
    detail: 'issuer https://idp.acme.example key kid-7 rejected',
    minted: undefined,
    ...overrides,
  });
}

/** Headers as a name → value map, failing on a name set twice. */
function headerMap(options: readonly HeaderValueOption[]): Map<string, string> {
  const map = new Map<string, string>();
  for (const { header } of options) {
    assert.ok(!map.has(header.key), `header ${header.key} set twice`);
    map.set(header.key, header.value);
  }
  return map;
}

function okPart(response: CheckResponseMessage): NonNullable<CheckResponseMessage['ok_response']> {
  assert.ok(response.ok_response, 'ok_response present');
  assert.equal(response.denied_response, undefined);
  return response.ok_response;
}

function deniedPart(
  response: CheckResponseMessage,
): NonNullable<CheckResponseMessage['denied_response']> {
  assert.ok(response.denied_response, 'denied_response present');
  assert.equal(response.ok_response, undefined);
  return response.denied_response;
}

const reasonsWith = (status: number): DenyReason[] =>
  (Object.keys(DENY_REASONS) as DenyReason[]).filter(
    (reason) => DENY_REASONS[reason].status === status,
  );

describe('buildCheckResponse: allow', () => {
  it('answers gRPC OK with the minted token and every identity header', () => {
    const response = buildCheckResponse(allowed(), DEFAULTS);
    assert.deepEqual(response.status, { code: 0, message: '' });
    const ok = okPart(response);
    const headers = headerMap(ok.headers);
    assert.deepEqual(Object.fromEntries(headers), {
      authorization: `Bearer ${MINTED_TOKEN}`,
      'x-tenant-id': 'acme',
      'x-user-id': 'alice',
      'x-user-roles': 'reader,writer',
      'x-request-id': 'req-123',
      'x-auth-depth': '2',
      'x-auth-chain': 'gateway,orders',
    });
    assert.deepEqual(
      ok.headers_to_remove,
      ['x-auth-actors', 'txn-token'],
      'every identity header is set, none needs removing but those this record has no value for',
    );
  });

  it('overwrites rather than appends every header', () => {
    for (const option of okPart(buildCheckResponse(allowed(), DEFAULTS)).headers) {
      assert.deepEqual(option.append, { value: false }, option.header.key);
    }
  });

  it('omits x-user-roles when there are no roles, and removes the client-sent copy', () => {
    const ok = okPart(buildCheckResponse(allowed({ roles: [] }), DEFAULTS));
    assert.equal(headerMap(ok.headers).has('x-user-roles'), false);
    assert.deepEqual(ok.headers_to_remove, ['x-user-roles', 'x-auth-actors', 'txn-token']);
  });

  it('removes every identity header it does not set', () => {
    const ok = okPart(
      buildCheckResponse(allowed({ roles: [], user: undefined, tenant: undefined }), DEFAULTS),
    );
    const headers = headerMap(ok.headers);
    assert.deepEqual([...ok.headers_to_remove].sort(), [
      'txn-token',
      'x-auth-actors',
      'x-tenant-id',
      'x-user-id',
      'x-user-roles',
    ]);
    for (const name of ok.headers_to_remove)
      assert.equal(headers.has(name), false, `${name} is not both set and removed`);
    for (const name of IDENTITY_HEADERS) {
      assert.ok(
        headers.has(name) !== ok.headers_to_remove.includes(name),
        `${name} is either set or removed`,
      );
    }
  });

  it('uses the Bearer scheme only when the forward header is authorization', () => {
    const custom = okPart(
      buildCheckResponse(allowed(), { forwardHeader: 'x-matryoshka-token', debugReasons: false }),
    );
    const headers = headerMap(custom.headers);
    assert.equal(headers.get('x-matryoshka-token'), MINTED_TOKEN);
    assert.equal(headers.has('authorization'), false);
    assert.equal(
      headerMap(okPart(buildCheckResponse(allowed(), DEFAULTS)).headers).get('authorization'),
      `Bearer ${MINTED_TOKEN}`,
    );
  });

  it('an allow without a minted token (shadow) sets only x-request-id and strips the forward and every identity header', () => {
    const record = allowed({ reason: 'recursion', shadow: true, minted: undefined });
    const ok = okPart(buildCheckResponse(record, DEFAULTS));
    assert.deepEqual(Object.fromEntries(headerMap(ok.headers)), { 'x-request-id': 'req-123' });
    assert.deepEqual(
      [...ok.headers_to_remove].sort(),
      ['authorization', ...IDENTITY_HEADERS].sort(),
    );
  });

  it('never sends x-authz-reason on allow, even with debug reasons on', () => {
    const ok = okPart(
      buildCheckResponse(allowed({ reason: 'recursion', shadow: true }), {
        forwardHeader: 'authorization',
        debugReasons: true,
      }),
    );
    assert.equal(headerMap(ok.headers).has('x-authz-reason'), false);
  });
});

describe('buildCheckResponse: deny', () => {
  const cases = [
    { http: 401, grpc: 16, error: 'unauthorized' },
    { http: 403, grpc: 7, error: 'forbidden' },
    { http: 503, grpc: 14, error: 'unavailable' },
  ] as const;

  for (const { http, grpc, error } of cases) {
    it(`maps every ${http} reason to gRPC ${grpc} and HTTP ${http} with body error "${error}"`, () => {
      const reasons = reasonsWith(http);
      assert.ok(reasons.length > 0);
      for (const reason of reasons) {
        const response = buildCheckResponse(denied(reason), DEFAULTS);
        assert.equal(response.status.code, grpc, reason);
        const deniedResponse = deniedPart(response);
        assert.deepEqual(deniedResponse.status, { code: http }, reason);
        assert.equal(deniedResponse.body, JSON.stringify({ error, request_id: 'req-123' }), reason);
      }
    });
  }

  it('sends www-authenticate on 401 only', () => {
    for (const reason of Object.keys(DENY_REASONS) as DenyReason[]) {
      const headers = headerMap(deniedPart(buildCheckResponse(denied(reason), DEFAULTS)).headers);
      if (DENY_REASONS[reason].status === 401)
        assert.equal(headers.get('www-authenticate'), 'Bearer error="invalid_token"', reason);
      else assert.equal(headers.has('www-authenticate'), false, reason);
    }
  });

  it('the body is exactly error and request_id: no reason, tenant, issuer or detail', () => {
    const record = denied('untrusted_issuer', { tenant: 'acme-tenant', user: 'alice-user' });
    const deniedResponse = deniedPart(buildCheckResponse(record, DEFAULTS));
    assert.deepEqual(JSON.parse(deniedResponse.body), {
      error: 'unauthorized',
      request_id: 'req-123',
    });
    const everything = deniedResponse.body + JSON.stringify(deniedResponse.headers);
    for (const secret of [
      'untrusted_issuer',
      'acme-tenant',
      'alice-user',
      'idp.acme.example',
      'kid-7',
    ]) {
      assert.ok(!everything.includes(secret), `${secret} leaks to the client`);
    }
  });

  it('the body is JSON with cache disabled', () => {
    const headers = headerMap(
      deniedPart(buildCheckResponse(denied('recursion'), DEFAULTS)).headers,
    );
    assert.equal(headers.get('content-type'), 'application/json');
    assert.equal(headers.get('cache-control'), 'no-store');
  });

  it('adds x-authz-reason only when debug reasons are on', () => {
    for (const reason of ['expired', 'depth_exceeded', 'unavailable'] as const) {
      const quiet = headerMap(deniedPart(buildCheckResponse(denied(reason), DEFAULTS)).headers);
      assert.equal(quiet.has('x-authz-reason'), false, reason);
      const loud = headerMap(
        deniedPart(
          buildCheckResponse(denied(reason), {
            forwardHeader: 'authorization',
            debugReasons: true,
          }),
        ).headers,
      );
      assert.equal(loud.get('x-authz-reason'), reason);
    }
  });

  it('a denial without a reason is unavailable (503), never an allow', () => {
    const response = buildCheckResponse(denied(undefined), DEFAULTS);
    assert.equal(response.status.code, 14);
    assert.equal(deniedPart(response).status.code, 503);
  });

  it('never forwards a token or identity headers on deny', () => {
    const headers = headerMap(
      deniedPart(buildCheckResponse(denied('role_missing', { minted: minted() }), DEFAULTS))
        .headers,
    );
    for (const name of ['authorization', ...IDENTITY_HEADERS])
      assert.equal(headers.has(name), false, name);
  });

  it('every deny header overwrites', () => {
    const options = deniedPart(
      buildCheckResponse(denied('expired'), { forwardHeader: 'authorization', debugReasons: true }),
    ).headers;
    for (const option of options)
      assert.deepEqual(option.append, { value: false }, option.header.key);
  });
});

describe('buildCheckResponse: dynamic_metadata', () => {
  it('allow: decision, tenant, minted depth and request id as camelCase Struct values', () => {
    const { fields } = buildCheckResponse(allowed(), DEFAULTS).dynamic_metadata;
    assert.deepEqual(fields, {
      decision: { stringValue: 'allow' },
      tenant_id: { stringValue: 'acme' },
      depth: { numberValue: 2 },
      request_id: { stringValue: 'req-123' },
    });
  });

  it('deny: decision deny, the reason, and the incoming chain depth', () => {
    const { fields } = buildCheckResponse(
      denied('depth_exceeded', { chain: chainOfDepth(5) }),
      DEFAULTS,
    ).dynamic_metadata;
    assert.deepEqual(fields, {
      decision: { stringValue: 'deny' },
      reason: { stringValue: 'depth_exceeded' },
      tenant_id: { stringValue: 'acme' },
      depth: { numberValue: 5 },
      request_id: { stringValue: 'req-123' },
    });
  });

  it('shadow allow is told apart from a plain allow and carries the would-be reason', () => {
    const { fields } = buildCheckResponse(
      allowed({ reason: 'caller_not_allowed', shadow: true }),
      DEFAULTS,
    ).dynamic_metadata;
    assert.deepEqual(fields['decision'], { stringValue: 'shadow_allow' });
    assert.deepEqual(fields['reason'], { stringValue: 'caller_not_allowed' });
  });

  it('omits tenant and depth when they are unknown', () => {
    const { fields } = buildCheckResponse(
      denied('missing_token', { tenant: undefined, chain: undefined }),
      DEFAULTS,
    ).dynamic_metadata;
    assert.deepEqual(Object.keys(fields).sort(), ['decision', 'reason', 'request_id']);
  });

  it('uses no snake_case Value keys', () => {
    for (const record of [allowed(), denied('expired')]) {
      for (const [name, value] of Object.entries(
        buildCheckResponse(record, DEFAULTS).dynamic_metadata.fields,
      )) {
        const keys = Object.keys(value);
        assert.equal(keys.length, 1, name);
        assert.ok(
          ['stringValue', 'numberValue', 'boolValue'].includes(keys[0] ?? ''),
          `${name}: ${keys.join()}`,
        );
      }
    }
  });
});

describe('buildCheckResponse: through the real CheckResponse serialiser', () => {
  const check = loadProtos().authorization['Check'];
  const roundTrip = (message: CheckResponseMessage): Record<string, unknown> => {
    assert.ok(check);
    return check.responseDeserialize(check.responseSerialize(message)) as Record<string, unknown>;
  };

  it('keeps the allow headers, removals and metadata', () => {
    const decoded = roundTrip(buildCheckResponse(allowed({ roles: [] }), DEFAULTS)) as {
      status: { code?: number };
      ok_response: {
        headers: { header: { key: string; value: string }; append: { value?: boolean } }[];
        headers_to_remove: string[];
      };
      dynamic_metadata: { fields: Record<string, { stringValue?: string; numberValue?: number }> };
    };
    assert.ok((decoded.status.code ?? 0) === 0);
    const auth = decoded.ok_response.headers.find((h) => h.header.key === 'authorization');
    assert.equal(auth?.header.value, `Bearer ${MINTED_TOKEN}`);
    assert.ok(auth?.append, 'append survives as an explicit BoolValue');
    assert.notEqual(auth.append.value, true);
    assert.deepEqual(decoded.ok_response.headers_to_remove, [
      'x-user-roles',
      'x-auth-actors',
      'txn-token',
    ]);
    assert.equal(decoded.dynamic_metadata.fields['decision']?.stringValue, 'allow');
    assert.equal(decoded.dynamic_metadata.fields['tenant_id']?.stringValue, 'acme');
    assert.equal(decoded.dynamic_metadata.fields['depth']?.numberValue, 2);
  });

  it('keeps the denial status, body and metadata', () => {
    const decoded = roundTrip(buildCheckResponse(denied('sealed_chain'), DEFAULTS)) as {
      status: { code: number };
      denied_response: {
        status: { code: unknown };
        body: string;
        headers: { header: { key: string } }[];
      };
      dynamic_metadata: { fields: Record<string, { stringValue?: string }> };
    };
    assert.equal(decoded.status.code, 7);
    assert.ok(
      decoded.denied_response.status.code === 403 ||
        decoded.denied_response.status.code === 'Forbidden',
      String(decoded.denied_response.status.code),
    );
    assert.equal(decoded.denied_response.body, '{"error":"forbidden","request_id":"req-123"}');
    assert.equal(decoded.dynamic_metadata.fields['reason']?.stringValue, 'sealed_chain');
    assert.equal(decoded.dynamic_metadata.fields['decision']?.stringValue, 'deny');
  });
});
