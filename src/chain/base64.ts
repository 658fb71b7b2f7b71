/**
 * Strict base64 decoding. `Buffer.from(s, 'base64')` silently skips characters outside the
 * alphabet, which would let two different strings decode to the same bytes; we refuse them instead.
 */
const STANDARD = /^[A-Za-z0-9+/]*={0,2}$/;
const URL_SAFE = /^[A-Za-z0-9_-]*={0,2}$/;
const URL_SAFE_UNPADDED = /^[A-Za-z0-9_-]*$/;

/** Standard or URL-safe alphabet, with or without `=` padding (containers in the wild use both). */
export function decodeAnyBase64(text: string): Buffer | undefined {
  if (!(STANDARD.test(text) || URL_SAFE.test(text))) return undefined;
  const unpadded = text.replace(/=+$/, '');
  if (unpadded.length % 4 === 1) return undefined;
  if (text.length !== unpadded.length && text.length % 4 !== 0) return undefined;
  return Buffer.from(unpadded, 'base64');
}

/** A JWS/JWE segment: base64url without padding, as RFC 7515 requires. */
export function decodeSegment(text: string): Buffer | undefined {
  if (!URL_SAFE_UNPADDED.test(text) || text.length % 4 === 1) return undefined;
  return Buffer.from(text, 'base64url');
}

export function encodeStandardBase64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
}
