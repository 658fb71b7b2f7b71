import { errnoOf, MatryoshkaError } from '../errors.js';
import {
  brotliCompressSync,
  brotliDecompressSync,
  constants,
  gunzipSync,
  gzipSync,
} from 'node:zlib';

/** The `cmp` values of the format: `g` gzip, `b` brotli. */
export type Compression = 'g' | 'b';

export class InflateLimitError extends MatryoshkaError {
  constructor(limit: number) {
    super('ERR_INFLATE_LIMIT', `container inflates beyond ${limit} bytes`);
  }
}

export class InflateFormatError extends MatryoshkaError {
  constructor(cause: unknown) {
    super(
      'ERR_INFLATE_FORMAT',
      `container does not inflate: ${cause instanceof Error ? cause.message : String(cause)}`,
    );
  }
}

/**
 * Inflate with a cap on the output. zlib's `maxOutputLength` aborts the decoder as soon as the
 * output would pass the cap, so a bomb costs at most `maxBytes` of memory and the time to produce
 * them — never the size it claims to expand to.
 */
export function inflateBounded(data: Buffer, kind: Compression, maxBytes: number): Buffer {
  try {
    return kind === 'g'
      ? gunzipSync(data, { maxOutputLength: maxBytes })
      : brotliDecompressSync(data, { maxOutputLength: maxBytes });
  } catch (error) {
    if (errnoOf(error) === 'ERR_BUFFER_TOO_LARGE') throw new InflateLimitError(maxBytes);
    throw new InflateFormatError(error);
  }
}

/**
 * How hard to look for repeats. A container that already holds a compressed container is base64
 * of compressed bytes nested in base64url: there is nothing for LZ77 to match, and the whole gain
 * (3–5%, measured) is entropy-coding 6-bit symbols held in 8-bit characters — so `entropy`, for CPU:
 * gzip Huffman-only gives the length of level 6 (within 0.2%) at about half the CPU, brotli quality 1
 * the length of quality 5 at about half (`npm run bench`, its "compression" note). The first
 * compression of a chain holds the origin and the first levels as plain text, where the origin's
 * own repeats survive: `repeats` (zlib's level 6, brotli quality 5) finds them — 0.05 → 0.46 saved
 * on a token with a repetitive claim — for tens of µs on a 3–5 KB token.
 */
export type CompressionEffort = 'repeats' | 'entropy';

export function compress(
  data: Buffer,
  kind: Compression,
  effort: CompressionEffort = 'entropy',
): Buffer {
  if (kind === 'g')
    return effort === 'entropy'
      ? gzipSync(data, { strategy: constants.Z_HUFFMAN_ONLY })
      : gzipSync(data);
  return brotliCompressSync(data, {
    params: {
      [constants.BROTLI_PARAM_QUALITY]: effort === 'entropy' ? 1 : 5,
      [constants.BROTLI_PARAM_SIZE_HINT]: data.length,
    },
  });
}
