/**
 * `depth 1 txn-off` / `depth 1 txn-token`: the cost of emitting a Txn-Token beside the chain
 * (docs/transaction-tokens.md): the same depth-1 Check twice, on fresh servers whose registry
 * differs only in tenant `bench`'s `txn_tokens`. The requests carry no Txn-Token, so every allowed
 * hop signs one: one more ES256 signature per Check. Measured in TXN_PAIRS pairs, the order
 * alternating pair by pair (off on, on off, …), and reported as the median over the pairs of
 * on ÷ off: on a shared machine one busy window then decides one pair, not the verdict.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ServeContext } from '../lib/context.js';
import { measureDepth } from '../lib/depth-run.js';
import type { ScenarioResult } from '../lib/results.js';

export const TXN_OFF = 'depth 1 txn-off';
export const TXN_ON = 'depth 1 txn-token';
export const TXN_PAIRS = 3;

/** The row name of pair `pair` (1-based). */
export const txnRow = (base: string, pair: number): string => `${base} #${pair}`;

export async function runTxnTokens(ctx: ServeContext): Promise<ScenarioResult[]> {
  const registry = readFileSync(ctx.fixture.registryFile, 'utf8');
  if (!registry.includes('  bench: {}\n'))
    throw new Error('txn-tokens: the fixture registry no longer declares tenant bench as expected');
  const onFile = join(ctx.workDir, 'registry-txn-tokens.yaml');
  writeFileSync(onFile, registry.replace('  bench: {}\n', '  bench: { txn_tokens: true }\n'));
  const results: ScenarioResult[] = [];
  const off = [TXN_OFF, ctx.fixture.registryFile] as const;
  const on = [TXN_ON, onFile] as const;
  for (let pair = 1; pair <= TXN_PAIRS; pair++)
    for (const [base, registryFile] of pair % 2 === 1 ? [off, on] : [on, off]) {
      const name = txnRow(base, pair);
      await ctx.sink.withRetry(name, ctx.knobs.retries, async () => {
        const { result } = await measureDepth(ctx, {
          depth: 1,
          logLevel: 'warn',
          name,
          peer: false,
          keepPool: false,
          env: {
            MATRYOSHKA_REGISTRY_FILE: registryFile,
            MATRYOSHKA_TRUST_DOMAIN: 'bench.example',
          },
        });
        results.push(result);
      });
    }
  return results;
}
