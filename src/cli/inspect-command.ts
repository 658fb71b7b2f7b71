import { inspectChain } from '../chain/inspect.js';
import type { Leaf } from './command.js';
import { renderTree } from './render-tree.js';
import { terminalJson } from './terminal-json.js';
import { UsageError } from './usage-error.js';

/** `inspect [TOKEN|-] [--json]`: the chain as a tree, without trusting any of it. */
export const INSPECT: Leaf = {
  synopsis: '[TOKEN|-] [--json]',
  details: [
    'print a chain as a tree, origin at the root, WITHOUT verifying it (no keys, no network)',
    'TOKEN        the token; - or absent: standard input (a leading "Bearer " is ignored)',
    '--json       the levels as JSON, for machines',
  ],
  options: { json: { type: 'boolean', default: false } },
  positionals: { min: 0, max: 1 },
  async run({ values, positionals, input }, out) {
    const source = positionals[0] ?? '-';
    const token = (source === '-' ? input() : source).trim();
    if (token.length === 0) throw new UsageError('inspect: no token given');
    const inspection = inspectChain(token);
    out(values['json'] === true ? terminalJson(inspection) : renderTree(inspection));
    return inspection.stop.kind === 'error' ? 1 : 0;
  },
};
