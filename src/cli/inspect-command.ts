import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { inspectChain } from '../chain/inspect.js';
import { renderTree } from './render-tree.js';
import { UsageError } from './usage-error.js';

/** `inspect [TOKEN|-] [--json]`: the chain as a tree, without trusting any of it. */
export function inspectCommand(args: string[], out: (text: string) => void): number {
  const { values, positionals } = parseArgs({
    args,
    options: { json: { type: 'boolean', default: false } },
    allowPositionals: true,
    strict: true,
  });
  if (positionals.length > 1)
    throw new UsageError('inspect takes one token (or - for standard input)');
  const source = positionals[0] ?? '-';
  const token = (source === '-' ? readFileSync(0, 'utf8') : source).trim();
  if (token.length === 0) throw new UsageError('inspect: no token given');
  const inspection = inspectChain(token);
  out(values.json ? JSON.stringify(inspection, null, 2) : renderTree(inspection));
  return inspection.stop.kind === 'error' ? 1 : 0;
}
