import type { InspectedLevel, Inspection } from '../chain/inspect.js';

/** Thumbprint kids are 43 characters; 12 identify a key among an issuer's few. The JSON output has them whole. */
const shortKid = (kid: string | undefined): string => (kid === undefined ? '-' : kid.length > 14 ? `${kid.slice(0, 12)}…` : kid);
const time = (t: number | undefined): string => (t === undefined ? '-' : new Date(t * 1000).toISOString().replace('.000Z', 'Z'));

function describe(level: InspectedLevel, isRoot: boolean, sealed: boolean): string {
  const name = isRoot && !sealed && level.fmt === undefined ? 'origin' : `depth ${level.depth ?? '?'}`;
  const parts = [
    name,
    level.sid === undefined ? undefined : `sid=${level.sid}`,
    `iss=${level.iss ?? '-'}`,
    level.sub === undefined ? undefined : `sub=${level.sub}`,
    level.tenant === undefined ? undefined : `tenant=${level.tenant}`,
    `alg=${level.alg}`,
    `kid=${shortKid(level.kid)}`,
    `exp=${time(level.exp)}`,
    level.fmt === undefined ? undefined : `fmt=${level.fmt}`,
    level.fmt === undefined ? undefined : `cmp=${level.cmp ?? '-'}`,
    `len=${level.length}`,
  ];
  return parts.filter((p) => p !== undefined).join('  ');
}

/** The chain as a tree, origin at the root, each wrapping level one step further in. */
export function renderTree(inspection: Inspection): string {
  const lines: string[] = [];
  let indent = '';
  if (inspection.sealed) {
    lines.push('[sealed: the levels below are encrypted to another party]');
  }
  inspection.levels.forEach((level, i) => {
    const branch = i === 0 && !inspection.sealed ? '' : '└── ';
    lines.push(`${indent}${branch}${describe(level, i === 0, inspection.sealed)}`);
    if (i > 0 || inspection.sealed) indent += '    ';
  });
  lines.push(`stopped: ${inspection.stop.detail} (${inspection.levels.length} level${inspection.levels.length === 1 ? '' : 's'} read)`);
  return lines.join('\n');
}
