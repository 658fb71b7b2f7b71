/**
 * Strict base64 decoding. `Buffer.from(s, 'base64')` skips characters outside the alphabet, takes
 * either alphabet, any padding, and drops the unused low bits of a last partial character (so 'AB'
 * and 'AA' decode alike — 16 spellings of one ES256 signature). Accepting any of that would give a
 * token several spellings, a malleability we refuse: a text is accepted only when it is the one
 * canonical encoding of the bytes it decodes to, checked by encoding them again. Both directions
 * are native code, several times cheaper than a regular expression over a 20 KB segment.
 */

/** Standard or URL-safe alphabet (not mixed), with or without `=` padding (containers in the wild use both). */
export function decodeAnyBase64(text: string): Buffer | undefined {
  const bytes = Buffer.from(text, 'base64');
  const urlSafe = text.includes('-') || text.includes('_');
  const padded = text.endsWith('=');
  let canonical = bytes.toString(urlSafe ? 'base64url' : 'base64');
  if (urlSafe && padded) canonical += '='.repeat((4 - (canonical.length % 4)) % 4);
  if (!urlSafe && !padded) canonical = withoutPadding(canonical);
  return canonical === text ? bytes : undefined;
}

/** A JWS/JWE segment: base64url without padding, as RFC 7515 requires, in its one canonical spelling. */
export function decodeSegment(text: string): Buffer | undefined {
  const bytes = Buffer.from(text, 'base64url');
  return bytes.toString('base64url') === text ? bytes : undefined;
}

function withoutPadding(text: string): string {
  let end = text.length;
  while (end > 0 && text.charCodeAt(end - 1) === 61) end--;
  return end === text.length ? text : text.slice(0, end);
}

export function encodeStandardBase64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
}
