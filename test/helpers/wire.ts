import * as grpc from '@grpc/grpc-js';
import protobuf from 'protobufjs';
import { PROTO_ROOT } from '../../src/server/protos.js';

/** protobufjs over the same .proto files, camelCase names: reads proto3 JSON as captured from Envoy. */
export function loadWireRoot(): protobuf.Root {
  const root = new protobuf.Root();
  root.resolvePath = (_origin, target) => {
    if (target.startsWith('google/protobuf/')) return target; // bundled with protobufjs
    return `${PROTO_ROOT}${target}`;
  };
  root.loadSync(['envoy/service/auth/v3/external_auth.proto', 'grpc/health/v1/health.proto']);
  root.resolveAll();
  return root;
}

/** proto3 JSON renders Timestamp as RFC 3339; protobufjs wants {seconds, nanos}. */
function timestamps(value: unknown, key = ''): unknown {
  if (typeof value === 'string' && key === 'time') {
    const ms = Date.parse(value);
    return { seconds: Math.floor(ms / 1000), nanos: (ms % 1000) * 1e6 };
  }
  if (Array.isArray(value)) return value.map((v) => timestamps(v));
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, timestamps(v, k)]));
  }
  return value;
}

/** Encode a CheckRequest given in proto3 JSON into wire bytes, refusing unknown fields. */
export function encodeCheckRequest(root: protobuf.Root, json: unknown): Uint8Array {
  const type = root.lookupType('envoy.service.auth.v3.CheckRequest');
  const object = timestamps(json) as Record<string, unknown>;
  const problem = type.verify(type.fromObject(object));
  if (problem) throw new Error(problem);
  return type.encode(type.fromObject(object)).finish();
}

/** Call Check with raw bytes and decode the answer with protobufjs: no proto-loader on the client side. */
export function checkRaw(
  address: string,
  bytes: Uint8Array,
  root: protobuf.Root,
): Promise<Record<string, unknown>> {
  const client = new grpc.Client(address, grpc.credentials.createInsecure());
  const responseType = root.lookupType('envoy.service.auth.v3.CheckResponse');
  return new Promise((resolve, reject) => {
    client.makeUnaryRequest(
      '/envoy.service.auth.v3.Authorization/Check',
      (b: Uint8Array) => Buffer.from(b),
      (b: Buffer) => b,
      bytes,
      (error, response) => {
        client.close();
        if (error || response === undefined) return reject(error ?? new Error('no response'));
        resolve(
          responseType.toObject(responseType.decode(response), {
            enums: String,
            longs: String,
            defaults: false,
            oneofs: true,
          }),
        );
      },
    );
  });
}
