/**
 * The hand-written Check codec (src/server/check-codec.ts) against proto-loader's reflection over
 * the same protos: every response encodes to the very bytes protobufjs writes, and every request
 * decodes to the same CheckInput.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { CheckResponseMessage, HeaderValueOption } from '../../src/pipeline/respond.js';
import { decodeCheckRequest, encodeCheckResponse } from '../../src/server/check-codec.js';
import { toCheckInput } from '../../src/server/check-request.js';
import { loadProtos } from '../../src/server/protos.js';

const check = loadProtos().authorization['Check'];
if (check === undefined) throw new Error('no Check method');
const reflectEncode = (m: CheckResponseMessage): Buffer => check.responseSerialize(m);
const reflectDecode = (b: Buffer): unknown => check.requestDeserialize(b);
const serializeRequest = (m: object): Buffer => check.requestSerialize(m);

let seed = 7;
const rand = (n: number): number => {
  seed = (seed * 1103515245 + 12345) % 2 ** 31;
  return seed % n;
};
const TEXTS = [
  '',
  'a',
  'Bearer eyJ.x.y',
  'ü€𝄞',
  'x'.repeat(200),
  'y'.repeat(20_000),
  'orders:read,cart:write',
];
const text = (): string => TEXTS[rand(TEXTS.length)] as string;
const header = (): HeaderValueOption => ({
  header: { key: `x-${rand(1000)}`, value: text() },
  append: { value: rand(2) === 1 },
});
const headers = (): HeaderValueOption[] => Array.from({ length: rand(9) }, header);

function randomResponse(): CheckResponseMessage {
  const fields: CheckResponseMessage['dynamic_metadata']['fields'] = {};
  for (let i = rand(6); i > 0; i--) {
    const kind = rand(3);
    // Whole characters: a lone surrogate is written as U+FFFD here (as Buffer does) and differently by
    // protobufjs; no value we emit can hold one (every one is checked ASCII before it is sent).
    fields[`k${rand(50)}${Array.from(text()).slice(0, 3).join('')}`] =
      kind === 0
        ? { stringValue: text() }
        : kind === 1
          ? { numberValue: [0, 1, 9, -3, 0.5, 1e300][rand(6)] as number }
          : { boolValue: rand(2) === 1 };
  }
  const base = {
    status: {
      code: [0, 3, 7, 14, 16, -1][rand(6)] as number,
      message: rand(3) === 0 ? text() : '',
    },
    dynamic_metadata: { fields },
  };
  if (rand(2) === 0)
    return {
      ...base,
      ok_response: {
        headers: headers(),
        headers_to_remove: Array.from(
          { length: rand(6) },
          () => `x-${Array.from(text()).slice(0, 5).join('')}`,
        ),
      },
    };
  return {
    ...base,
    denied_response: {
      status: { code: [401, 403, 503, 0][rand(4)] as number },
      headers: headers(),
      body: text(),
    },
  };
}

function randomRequest(): object {
  const map = (): Record<string, string> =>
    Object.fromEntries(Array.from({ length: rand(8) }, () => [`h-${rand(20)}`, text()]));
  const http: Record<string, unknown> = {
    id: '123',
    method: ['GET', 'POST', ''][rand(3)],
    path: text(),
    host: 'orders.internal',
    size: String(rand(100000)),
    body: text(),
    raw_body: Buffer.from(text()),
    protocol: 'HTTP/2',
  };
  if (rand(2) === 0) http['headers'] = { authorization: `Bearer ${text()}`, ...map() };
  if (rand(2) === 0)
    http['header_map'] = {
      headers: Array.from({ length: rand(6) }, () =>
        rand(2) === 0
          ? { key: `hm-${rand(5)}`, raw_value: Buffer.from(text(), 'latin1') }
          : { key: `hm-${rand(5)}`, value: text() },
      ),
    };
  return {
    attributes: {
      source: {
        principal: rand(2) === 0 ? `spiffe://cluster.local/ns/a/sa/${rand(9)}` : '',
        address: { socket_address: { address: '10.0.0.1', port_value: 443 } },
        labels: map(),
      },
      ...(rand(2) === 0 ? { destination: { principal: text(), service: 'svc' } } : {}),
      request: { time: { seconds: '1700000000', nanos: 5 }, http },
      context_extensions: map(),
      metadata_context: { filter_metadata: { f: { fields: { a: { stringValue: 'b' } } } } },
      tls_session: { sni: 'orders' },
    },
  };
}

describe('the hand-written Check codec', () => {
  it('encodes every response to the bytes protobufjs writes', () => {
    for (let i = 0; i < 400; i++) {
      const response = randomResponse();
      const ours = encodeCheckResponse(response);
      const theirs = reflectEncode(response);
      assert.ok(
        ours.equals(theirs),
        `${JSON.stringify(response).slice(0, 300)}\n${ours.toString('hex').slice(0, 200)}\n${theirs.toString('hex').slice(0, 200)}`,
      );
    }
  });

  it('decodes every request to the CheckInput protobufjs gives', () => {
    for (let i = 0; i < 400; i++) {
      const bytes = serializeRequest(randomRequest());
      assert.deepEqual(
        toCheckInput(decodeCheckRequest(bytes)),
        toCheckInput(reflectDecode(bytes) as Parameters<typeof toCheckInput>[0]),
      );
    }
  });

  it('keeps the last of a repeated map key and of a repeated field, as protobufjs does', () => {
    const a = serializeRequest({
      attributes: { request: { http: { path: '/a', headers: { x: '1' } } } },
    });
    const b = serializeRequest({
      attributes: { request: { http: { path: '/b', headers: { x: '2' } } } },
    });
    const both = Buffer.concat([a, b]);
    assert.deepEqual(
      toCheckInput(decodeCheckRequest(both)),
      toCheckInput(reflectDecode(both) as Parameters<typeof toCheckInput>[0]),
    );
  });

  it('refuses a truncated request instead of reading what is left', () => {
    const bytes = serializeRequest(randomRequest());
    for (const cut of [1, 2, 7, Math.floor(bytes.length / 2), bytes.length - 1])
      assert.throws(() => decodeCheckRequest(bytes.subarray(0, cut)));
  });

  it('refuses a field we read that arrives with another wire type', () => {
    // attributes (field 1) sent as a varint.
    assert.throws(() => decodeCheckRequest(Buffer.from([0x08, 0x01])));
  });

  it('skips a shallow group, and refuses groups nested past 32 levels instead of exhausting the stack', () => {
    // Field 99 as a group (start tag 0x9b 0x06, end tag 0x9c 0x06), which Envoy never sends.
    const nested = (levels: number) =>
      Buffer.concat([
        ...Array.from({ length: levels }, () => Buffer.from([0x9b, 0x06])),
        ...Array.from({ length: levels }, () => Buffer.from([0x9c, 0x06])),
      ]);
    assert.deepEqual(
      toCheckInput(decodeCheckRequest(nested(3))),
      toCheckInput(reflectDecode(nested(3)) as Parameters<typeof toCheckInput>[0]),
    );
    assert.throws(() => decodeCheckRequest(nested(200_000)), /nested too deep/);
  });
});
