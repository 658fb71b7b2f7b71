import { brotliCompressSync, brotliDecompressSync, constants, gunzipSync, gzipSync } from 'node:zlib';

/** The `cmp` values of the format: `g` gzip, `b` brotli. */
export type Compression = 'g' | 'b';

export class InflateLimitError extends Error {
  constructor(limit: number) {
    super(`container inflates beyond ${limit} bytes`);
    this.name = 'InflateLimitError';
  }
}

export class InflateFormatError extends Error {
  constructor(cause: unknown) {
    super(`container does not inflate: ${cause instanceof Error ? cause.message : String(cause)}`);
    this.name = 'InflateFormatError';
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
    if ((error as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') throw new InflateLimitError(maxBytes);
    throw new InflateFormatError(error);
  }
}

/**
 * We compress on every mint at depth ≥ 3, so the settings are chosen for CPU. What a container
 * holds is mostly base64 of an already compressed inner container: there is almost nothing for
 * LZ77 to match, and the whole gain is entropy coding 6-bit symbols held in 8-bit characters.
 * `npm run bench` measures the settings on a real depth-8 token (its "compression" note): gzip
 * Huffman-only gives the length of level 6 (within 0.2%) at about half the CPU, brotli quality 1
 * the length of quality 5 at about half.
 */
export function compress(data: Buffer, kind: Compression): Buffer {
  return kind === 'g'
    ? gzipSync(data, { strategy: constants.Z_HUFFMAN_ONLY })
    : brotliCompressSync(data, {
        params: {
          [constants.BROTLI_PARAM_QUALITY]: 1,
          [constants.BROTLI_PARAM_SIZE_HINT]: data.length,
        },
      });
}
