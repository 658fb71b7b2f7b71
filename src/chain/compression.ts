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
 * Brotli at its default quality 11 costs milliseconds per token; quality 5 keeps nearly all of
 * the gain at a fraction of the CPU, which matters because we compress on every mint.
 */
export function compress(data: Buffer, kind: Compression): Buffer {
  return kind === 'g'
    ? gzipSync(data)
    : brotliCompressSync(data, {
        params: {
          [constants.BROTLI_PARAM_QUALITY]: 5,
          [constants.BROTLI_PARAM_MODE]: constants.BROTLI_MODE_TEXT,
          [constants.BROTLI_PARAM_SIZE_HINT]: data.length,
        },
      });
}
