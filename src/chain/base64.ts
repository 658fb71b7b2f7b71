/**
 * Strict base64 decoding. `Buffer.from(s, 'base64')` silently skips characters outside the
 * alphabet, which would let two different strings decode to the same bytes; we refuse them instead.
 */
const STANDARD = /^[A-Za-z0-9+/]*={0,2}$/;
const URL_SAFE = /^[A-Za-z0-9_-]*={0,2}$/;
const URL_SAFE_UNPADDED = /^[A-Za-z0-9_-]*$/;

const ALPHABET_INDEX = (() => {
  const index = new Int8Array(128).fill(-1);
  const chars = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
  for (let i = 0; i < chars.length; i++) index[chars.charCodeAt(i)] = i;
  index[43] = index[45] = 62; // + -
  index[47] = index[95] = 63; // / _
  return index;
})();

/**
 * The last character of a base64 text that does not fill a whole byte carries unused low bits;
 * decoders drop them, so 'AB' and 'AA' decode alike. Accepting both would give every token several
 * spellings (16 for an ES256 signature) — a malleability we refuse: unused bits must be zero.
 */
function unusedBitsAreZero(unpadded: string): boolean {
  const rest = unpadded.length % 4;
  if (rest === 0) return true;
  const last = ALPHABET_INDEX[unpadded.charCodeAt(unpadded.length - 1)] ?? -1;
  return (last & (rest === 2 ? 0x0f : 0x03)) === 0;
}

/** Standard or URL-safe alphabet, with or without `=` padding (containers in the wild use both). */
export function decodeAnyBase64(text: string): Buffer | undefined {
  if (!(STANDARD.test(text) || URL_SAFE.test(text))) return undefined;
  const unpadded = text.replace(/=+$/, '');
  if (unpadded.length % 4 === 1) return undefined;
  if (text.length !== unpadded.length && text.length % 4 !== 0) return undefined;
  if (!unusedBitsAreZero(unpadded)) return undefined;
  return Buffer.from(unpadded, 'base64');
}

/** A JWS/JWE segment: base64url without padding, as RFC 7515 requires, in its one canonical spelling. */
export function decodeSegment(text: string): Buffer | undefined {
  if (!URL_SAFE_UNPADDED.test(text) || text.length % 4 === 1 || !unusedBitsAreZero(text)) return undefined;
  return Buffer.from(text, 'base64url');
}

export function encodeStandardBase64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
}
