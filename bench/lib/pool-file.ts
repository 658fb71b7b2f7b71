/** Reading pool files (length-prefixed frames, written by bench/lib/pools.ts) in the load generator. */
import type { HttpAuthzRequest } from './http1.js';

export function readPool(data: Buffer): Buffer[] {
  const frames: Buffer[] = [];
  for (let at = 0; at < data.length; ) {
    const length = data.readUInt32BE(at);
    frames.push(data.subarray(at + 4, at + 4 + length));
    at += 4 + length;
  }
  return frames;
}

/** The requests of a pool file written by `writeHttpPool`. */
export const readHttpPool = (data: Buffer): HttpAuthzRequest[] =>
  readPool(data).map((frame) => JSON.parse(frame.toString('utf8')) as HttpAuthzRequest);
