/**
 * Wire helpers shared by the coordinator and the load generator: protobufjs over the service's
 * own .proto files (keepCase, so objects have the proto-loader shape EnvoyLikeClient builds), gRPC
 * length-prefixed framing, and a cheap allow/deny reader that does not decode the whole message.
 */
import protobuf from 'protobufjs';
import { PROTO_ROOT } from '../../src/server/protos.js';

let root: protobuf.Root | undefined;

export function wireRoot(): protobuf.Root {
  if (root !== undefined) return root;
  const r = new protobuf.Root();
  r.resolvePath = (_origin, target) =>
    target.startsWith('google/protobuf/') ? target : `${PROTO_ROOT}${target}`;
  r.loadSync(['envoy/service/auth/v3/external_auth.proto'], { keepCase: true });
  r.resolveAll();
  root = r;
  return r;
}

/** A CheckRequest object (proto-loader shape, snake_case) → one gRPC message frame (5-byte prefix + bytes). */
export function encodeCheckFrame(request: Record<string, unknown>): Buffer {
  const type = wireRoot().lookupType('envoy.service.auth.v3.CheckRequest');
  const message = type.fromObject(request);
  const problem = type.verify(message);
  if (problem) throw new Error(`CheckRequest: ${problem}`);
  return frame(type.encode(message).finish());
}

export function frame(bytes: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(5 + bytes.length);
  out[0] = 0;
  out.writeUInt32BE(bytes.length, 1);
  out.set(bytes, 5);
  return out;
}

/** The message inside one gRPC response frame, or undefined when the body is not exactly one uncompressed frame. */
export function unframe(body: Buffer): Buffer | undefined {
  if (body.length < 5 || body[0] !== 0) return undefined;
  const length = body.readUInt32BE(1);
  if (body.length !== 5 + length) return undefined;
  return body.subarray(5);
}

export interface DecodedCheckResponse {
  readonly allowed: boolean;
  readonly statusCode: number;
  readonly headers: Record<string, string>;
  readonly metadata: Record<string, string | number | boolean>;
}

type DecodedStruct = {
  fields?: Record<string, { stringValue?: string; numberValue?: number; boolValue?: boolean }>;
};
interface ResponseObject {
  status?: { code?: number };
  ok_response?: { headers?: Array<{ header?: { key?: string; value?: string } }> };
  denied_response?: { headers?: Array<{ header?: { key?: string; value?: string } }> };
  dynamic_metadata?: DecodedStruct;
}

/** Full decode (protobufjs), for pool building and for sampled verification under load. */
export function decodeCheckResponse(message: Uint8Array): DecodedCheckResponse {
  const type = wireRoot().lookupType('envoy.service.auth.v3.CheckResponse');
  const object = type.toObject(type.decode(message), {
    defaults: false,
    longs: Number,
    enums: String,
  }) as ResponseObject;
  const allowed = object.ok_response !== undefined;
  const headers: Record<string, string> = {};
  for (const option of (allowed ? object.ok_response?.headers : object.denied_response?.headers) ??
    []) {
    if (option.header?.key !== undefined) headers[option.header.key] = option.header.value ?? '';
  }
  const metadata: Record<string, string | number | boolean> = {};
  for (const [key, value] of Object.entries(object.dynamic_metadata?.fields ?? {})) {
    const v = value.stringValue ?? value.numberValue ?? value.boolValue;
    if (v !== undefined) metadata[key] = v;
  }
  return { allowed, statusCode: object.status?.code ?? 0, headers, metadata };
}

function readVarint(buf: Buffer, at: number): [value: number, next: number] {
  let value = 0;
  let shift = 0;
  let i = at;
  for (;;) {
    if (i >= buf.length) throw new Error('truncated varint');
    const byte = buf[i++] as number;
    value += (byte & 0x7f) * 2 ** shift;
    if ((byte & 0x80) === 0) return [value, i];
    shift += 7;
    if (shift > 63) throw new Error('varint too long');
  }
}

function skipField(buf: Buffer, wireType: number, at: number): number {
  switch (wireType) {
    case 0:
      return readVarint(buf, at)[1];
    case 1:
      return at + 8;
    case 2: {
      const [length, next] = readVarint(buf, at);
      return next + length;
    }
    case 5:
      return at + 4;
    default:
      throw new Error(`wire type ${wireType}`);
  }
}

/**
 * Allow or deny without decoding: CheckResponse has `status` = 1 (google.rpc.Status, code = 1),
 * `denied_response` = 2, `ok_response` = 3. Allowed means ok_response present and status.code 0.
 */
export function quickVerdict(message: Buffer): 'allow' | 'deny' | 'malformed' {
  try {
    let ok = false;
    let denied = false;
    let code = 0;
    let at = 0;
    while (at < message.length) {
      const [tag, next] = readVarint(message, at);
      const field = Math.floor(tag / 8);
      const wireType = tag & 7;
      if (field === 1 && wireType === 2) {
        const [length, start] = readVarint(message, next);
        const end = start + length;
        let p = start;
        while (p < end) {
          const [innerTag, innerNext] = readVarint(message, p);
          if (innerTag === 8) {
            const [value, after] = readVarint(message, innerNext);
            code = value;
            p = after;
          } else {
            p = skipField(message, innerTag & 7, innerNext);
          }
        }
        at = end;
        continue;
      }
      if (field === 2) denied = true;
      if (field === 3) ok = true;
      at = skipField(message, wireType, next);
    }
    if (at !== message.length) return 'malformed';
    return ok && !denied && code === 0 ? 'allow' : 'deny';
  } catch {
    return 'malformed';
  }
}
