import { brotliCompressSync, constants, gzipSync } from 'node:zlib';
import { compress } from '../../src/chain/compression.js';
import { cpuMicros } from './floor.js';

export interface CompressionCost {
  readonly name: string;
  /** Median CPU µs of one compression of the sample. */
  readonly micros: number;
  /** Characters of the base64 container it gives (what the minted level carries). */
  readonly base64Length: number;
}

const VARIANTS: ReadonlyArray<readonly [string, (data: Buffer) => Buffer]> = [
  ['gzip level 6 (zlib default)', (d) => gzipSync(d)],
  ['gzip Huffman-only (ours past the first compression, cmp g)', (d) => compress(d, 'g')],
  [
    'brotli quality 5',
    (d) =>
      brotliCompressSync(d, {
        params: {
          [constants.BROTLI_PARAM_QUALITY]: 5,
          [constants.BROTLI_PARAM_MODE]: constants.BROTLI_MODE_TEXT,
          [constants.BROTLI_PARAM_SIZE_HINT]: d.length,
        },
      }),
  ],
  ['brotli quality 1 (ours past the first compression, cmp b)', (d) => compress(d, 'b')],
];

/**
 * What each compression setting costs on a real minted token (the deepest level the bench built):
 * the settings in src/chain/compression.ts are chosen from these figures.
 */
export function compressionCosts(token: string): CompressionCost[] {
  const data = Buffer.from(token, 'latin1');
  return VARIANTS.map(([name, f]) => {
    const base64Length = f(data).toString('base64').length;
    cpuMicros(() => f(data), 50);
    const rounds: number[] = [];
    for (let r = 0; r < 5; r++) rounds.push(cpuMicros(() => f(data), 100));
    rounds.sort((a, b) => a - b);
    return { name, micros: rounds[2] as number, base64Length };
  });
}
