/**
 * The Check call's two messages, read and written by hand instead of through protobufjs's
 * reflection (decode, then toObject; fromObject, then encode): the request is read straight into
 * the few fields `toCheckInput` looks at, everything else skipped by its length; the response is
 * sized once and written into one buffer. Same objects in, same bytes out as proto-loader with
 * LOADER_OPTIONS (test/server/check-codec.test.ts holds the two against each other).
 */
import { invariant } from '../errors.js';
import type { CheckResponseMessage, HeaderValueOption, ProtoStruct } from '../pipeline/respond.js';
import type { CheckRequestMessage } from './check-request.js';

export class CheckCodecError extends Error {}

const VARINT = 0;
const I64 = 1;
const LEN = 2;
const I32 = 5;
/** Envoy sends no groups at all; protobufjs would follow any depth. */
const MAX_GROUP_DEPTH = 32;

/** A cursor over one message's bytes; every read is bounded by `end`. */
class Reader {
  constructor(
    readonly buf: Buffer,
    public pos: number,
    readonly end: number,
  ) {}

  varint(): number {
    let result = 0;
    let shift = 0;
    for (;;) {
      if (this.pos >= this.end) throw new CheckCodecError('truncated varint');
      const b = this.buf[this.pos++] as number;
      // Lengths and tags we act on fit in 32 bits; higher bits of a longer varint are dropped, as
      // protobufjs's uint32() drops them.
      if (shift < 32) result += (b & 0x7f) * 2 ** shift;
      if ((b & 0x80) === 0) break;
      shift += 7;
      if (shift > 63) throw new CheckCodecError('varint too long');
    }
    return result % 2 ** 32;
  }

  /** The extent of a length-delimited field, checked to lie within this message. */
  len(): number {
    const n = this.varint();
    const end = this.pos + n;
    if (end > this.end) throw new CheckCodecError('length past the end of the message');
    return end;
  }

  string(): string {
    const end = this.len();
    const s = this.buf.toString('utf8', this.pos, end);
    this.pos = end;
    return s;
  }

  bytes(): Buffer {
    const end = this.len();
    const b = this.buf.subarray(this.pos, end);
    this.pos = end;
    return b;
  }

  skip(wireType: number, groupDepth = 0): void {
    if (wireType === VARINT) this.varint();
    else if (wireType === I64) this.advance(8);
    else if (wireType === LEN) this.pos = this.len();
    else if (wireType === I32) this.advance(4);
    else if (wireType === 3) {
      // A group: skip to its end tag, as protobufjs does; nested deeper than any message of ours
      // goes, it is refused rather than recursed into (a few bytes per level would exhaust the stack).
      if (groupDepth >= MAX_GROUP_DEPTH) throw new CheckCodecError('groups nested too deep');
      for (;;) {
        const tag = this.varint();
        if ((tag & 7) === 4) break;
        this.skip(tag & 7, groupDepth + 1);
      }
    } else throw new CheckCodecError(`invalid wire type ${wireType}`);
  }

  private advance(n: number): void {
    if (this.pos + n > this.end) throw new CheckCodecError('truncated field');
    this.pos += n;
  }
}

/** The embedded message at the cursor, as a reader of its own; the cursor moves past it. */
function sub(r: Reader): Reader {
  const end = r.len();
  const inner = new Reader(r.buf, r.pos, end);
  r.pos = end;
  return inner;
}

/** The next field's number and wire type; 0 at the end of the message. */
function nextField(r: Reader): { n: number; wire: number } {
  if (r.pos >= r.end) return { n: 0, wire: 0 };
  const tag = r.varint();
  const n = tag >>> 3;
  if (n === 0) throw new CheckCodecError('field number 0');
  return { n, wire: tag & 7 };
}

function expectLen(wire: number): void {
  if (wire !== LEN) throw new CheckCodecError('a field of the wrong wire type');
}

/** map<string, string> entry: key = 1, value = 2; "" for a missing side, as protobufjs. */
function mapEntry(r: Reader): [string, string] {
  const m = sub(r);
  let key = '';
  let value = '';
  for (let f = nextField(m); f.n !== 0; f = nextField(m)) {
    if (f.n === 1) {
      expectLen(f.wire);
      key = m.string();
    } else if (f.n === 2) {
      expectLen(f.wire);
      value = m.string();
    } else m.skip(f.wire);
  }
  return [key, value];
}

/** Only the fields `toCheckInput` reads; a later occurrence of a field replaces an earlier one, as in protobufjs. */
export function decodeCheckRequest(buf: Buffer): CheckRequestMessage {
  const message: CheckRequestMessage = {};
  const r = new Reader(buf, 0, buf.length);
  for (let f = nextField(r); f.n !== 0; f = nextField(r)) {
    if (f.n === 1) {
      expectLen(f.wire);
      message.attributes = readAttributes(sub(r));
    } else r.skip(f.wire);
  }
  return message;
}

type Attributes = NonNullable<CheckRequestMessage['attributes']>;
type HttpRequest = NonNullable<NonNullable<Attributes['request']>['http']>;
type HeaderEntry = { key?: string; value?: string; raw_value?: Buffer | Uint8Array };

function readAttributes(r: Reader): Attributes {
  const a: Attributes = {};
  for (let f = nextField(r); f.n !== 0; f = nextField(r)) {
    if (f.n === 1 || f.n === 2) {
      expectLen(f.wire);
      const peer = readPeer(sub(r));
      if (f.n === 1) a.source = peer;
      else a.destination = peer;
    } else if (f.n === 4) {
      expectLen(f.wire);
      a.request = readRequest(sub(r));
    } else if (f.n === 10) {
      expectLen(f.wire);
      const [key, value] = mapEntry(r);
      a.context_extensions ??= {};
      a.context_extensions[key] = value;
    } else r.skip(f.wire);
  }
  return a;
}

function readPeer(r: Reader): { principal?: string } {
  const peer: { principal?: string } = {};
  for (let f = nextField(r); f.n !== 0; f = nextField(r)) {
    if (f.n === 4) {
      expectLen(f.wire);
      peer.principal = r.string();
    } else r.skip(f.wire);
  }
  return peer;
}

function readRequest(r: Reader): { http?: HttpRequest } {
  const request: { http?: HttpRequest } = {};
  for (let f = nextField(r); f.n !== 0; f = nextField(r)) {
    if (f.n === 2) {
      expectLen(f.wire);
      request.http = readHttp(sub(r));
    } else r.skip(f.wire);
  }
  return request;
}

function readHttp(r: Reader): HttpRequest {
  const http: HttpRequest = {};
  for (let f = nextField(r); f.n !== 0; f = nextField(r)) {
    if (f.n === 2) {
      expectLen(f.wire);
      http.method = r.string();
    } else if (f.n === 3) {
      expectLen(f.wire);
      const [key, value] = mapEntry(r);
      http.headers ??= {};
      http.headers[key] = value;
    } else if (f.n === 4) {
      expectLen(f.wire);
      http.path = r.string();
    } else if (f.n === 13) {
      expectLen(f.wire);
      http.header_map = { headers: readHeaderMap(sub(r)) };
    } else r.skip(f.wire);
  }
  return http;
}

function readHeaderMap(r: Reader): HeaderEntry[] {
  const headers: HeaderEntry[] = [];
  for (let f = nextField(r); f.n !== 0; f = nextField(r)) {
    if (f.n === 1) {
      expectLen(f.wire);
      const h = sub(r);
      const entry: HeaderEntry = {};
      for (let g = nextField(h); g.n !== 0; g = nextField(h)) {
        if (g.n === 1) {
          expectLen(g.wire);
          entry.key = h.string();
        } else if (g.n === 2) {
          expectLen(g.wire);
          entry.value = h.string();
        } else if (g.n === 3) {
          expectLen(g.wire);
          entry.raw_value = h.bytes();
        } else h.skip(g.wire);
      }
      headers.push(entry);
    } else r.skip(f.wire);
  }
  return headers;
}

/* ---------------------------------------------------------------- response */

const varintSize = (v: number): number =>
  v < 0x80 ? 1 : v < 0x4000 ? 2 : v < 0x200000 ? 3 : v < 0x10000000 ? 4 : 5;
const strSize = (s: string): number => Buffer.byteLength(s, 'utf8');
/** A length-delimited field of `n` bytes, with its one-byte tag. */
const lenField = (n: number): number => 1 + varintSize(n) + n;
/** int32 as protobufjs writes it: negative numbers take ten bytes. */
const int32Size = (v: number): number => (v < 0 ? 10 : varintSize(v));

class Writer {
  pos = 0;
  constructor(readonly buf: Buffer) {}
  byte(b: number): void {
    this.buf[this.pos++] = b;
  }
  varint(v: number): void {
    while (v >= 0x80) {
      this.buf[this.pos++] = (v & 0x7f) | 0x80;
      v = Math.floor(v / 128);
    }
    this.buf[this.pos++] = v;
  }
  int32(v: number): void {
    if (v >= 0) {
      this.varint(v);
      return;
    }
    // Sign-extended to 64 bits: ten bytes.
    let lo = v >>> 0;
    for (let i = 0; i < 4; i++) {
      this.buf[this.pos++] = (lo & 0x7f) | 0x80;
      lo >>>= 7;
    }
    this.buf[this.pos++] = (lo & 0x0f) | 0x70 | 0x80;
    for (let i = 0; i < 4; i++) this.buf[this.pos++] = 0xff;
    this.buf[this.pos++] = 0x01;
  }
  string(tag: number, s: string, size: number): void {
    this.byte(tag);
    this.varint(size);
    this.pos += this.buf.write(s, this.pos, size, 'utf8');
  }
}

interface Sized<T> {
  readonly value: T;
  readonly size: number;
}

function headerOptionSize(h: HeaderValueOption): {
  size: number;
  header: number;
  key: number;
  value: number;
} {
  const key = strSize(h.header.key);
  const value = strSize(h.header.value);
  const header = lenField(key) + lenField(value);
  // header = 1 { key = 1, value = 2 }, append = 2 { value = 1 (always written, as fromObject sets it) }
  return { size: lenField(header) + lenField(2), header, key, value };
}

function writeHeaderOption(w: Writer, tag: number, h: HeaderValueOption): void {
  const s = headerOptionSize(h);
  w.byte(tag);
  w.varint(s.size);
  w.byte(0x0a);
  w.varint(s.header);
  w.string(0x0a, h.header.key, s.key);
  w.string(0x12, h.header.value, s.value);
  w.byte(0x12);
  w.byte(2);
  w.byte(0x08);
  w.byte(h.append.value ? 1 : 0);
}

type Value = ProtoStruct['fields'][string];

function valueSize(v: Value): number {
  if ('stringValue' in v) return lenField(strSize(String(v.stringValue)));
  if ('numberValue' in v) return 9;
  if ('boolValue' in v) return 2;
  return 0;
}

function structSize(s: ProtoStruct): Sized<Array<[string, number, number, number]>> {
  // per entry: key, key bytes, value message bytes, entry bytes
  const entries: Array<[string, number, number, number]> = [];
  let size = 0;
  for (const key of Object.keys(s.fields)) {
    const k = strSize(key);
    const v = valueSize(s.fields[key] as Value);
    const entry = lenField(k) + lenField(v);
    entries.push([key, k, v, entry]);
    size += lenField(entry);
  }
  return { value: entries, size };
}

function writeStruct(
  w: Writer,
  s: ProtoStruct,
  sized: Sized<Array<[string, number, number, number]>>,
): void {
  for (const [key, k, vSize, entry] of sized.value) {
    const v = s.fields[key] as Value;
    w.byte(0x0a);
    w.varint(entry);
    w.string(0x0a, key, k);
    w.byte(0x12);
    w.varint(vSize);
    if ('stringValue' in v) {
      const text = String(v.stringValue);
      w.string(0x1a, text, strSize(text));
    } else if ('numberValue' in v) {
      w.byte(0x11);
      w.buf.writeDoubleLE(Number(v.numberValue), w.pos);
      w.pos += 8;
    } else if ('boolValue' in v) {
      w.byte(0x20);
      w.byte(v.boolValue ? 1 : 0);
    }
  }
}

/** The bytes protobufjs writes for the same object (fields in number order, defaults written as fromObject sets them). */
export function encodeCheckResponse(response: CheckResponseMessage): Buffer {
  const statusMessage = strSize(response.status.message);
  const status = 1 + int32Size(response.status.code) + lenField(statusMessage);
  let size = lenField(status);

  const denied = response.denied_response;
  let deniedSize = 0;
  let deniedStatus = 0;
  let bodySize = 0;
  if (denied !== undefined) {
    deniedStatus = 1 + int32Size(denied.status.code);
    bodySize = strSize(denied.body);
    deniedSize = lenField(deniedStatus) + lenField(bodySize);
    for (const h of denied.headers) deniedSize += lenField(headerOptionSize(h).size);
    size += lenField(deniedSize);
  }
  const ok = response.ok_response;
  let okSize = 0;
  const removeSizes: number[] = [];
  if (ok !== undefined) {
    for (const h of ok.headers) okSize += lenField(headerOptionSize(h).size);
    for (const name of ok.headers_to_remove) {
      const n = strSize(name);
      removeSizes.push(n);
      okSize += lenField(n);
    }
    size += lenField(okSize);
  }
  const meta = structSize(response.dynamic_metadata);
  size += lenField(meta.size);

  const w = new Writer(Buffer.allocUnsafe(size));
  w.byte(0x0a);
  w.varint(status);
  w.byte(0x08);
  w.int32(response.status.code);
  w.string(0x12, response.status.message, statusMessage);
  if (denied !== undefined) {
    w.byte(0x12);
    w.varint(deniedSize);
    w.byte(0x0a);
    w.varint(deniedStatus);
    w.byte(0x08);
    w.int32(denied.status.code);
    for (const h of denied.headers) writeHeaderOption(w, 0x12, h);
    w.string(0x1a, denied.body, bodySize);
  }
  if (ok !== undefined) {
    w.byte(0x1a);
    w.varint(okSize);
    for (const h of ok.headers) writeHeaderOption(w, 0x12, h);
    for (let i = 0; i < ok.headers_to_remove.length; i++)
      w.string(0x2a, ok.headers_to_remove[i] as string, removeSizes[i] as number);
  }
  w.byte(0x22);
  w.varint(meta.size);
  writeStruct(w, response.dynamic_metadata, meta);
  if (w.pos !== size) invariant(`CheckResponse sized ${size}, wrote ${w.pos}`);
  return w.buf;
}
