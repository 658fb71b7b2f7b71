import type { InspectedLevel, Inspection } from '../chain/inspect.js';
import { untrustedText } from '../untrusted-text.js';

/**
 * Everything printed from a token goes through `show`: an inspected token is by definition not
 * trusted, and its claims must not drive the terminal (see untrusted-text.ts).
 */
const show = (text: string): string => untrustedText(text);

/** Thumbprint kids are 43 characters; 12 identify a key among an issuer's few. The JSON output has them whole. */
export const shortKid = (kid: string | undefined): string =>
  kid === undefined ? '-' : show(kid.length > 14 ? `${kid.slice(0, 12)}…` : kid);

/** Date's range is ±8.64e15 ms from the epoch; NumericDates before the epoch are not valid either. */
const LATEST_DATE_SECONDS = 8.64e12;

/** A NumericDate as UTC, or, when it is not one Date can show, the value as the token has it. */
export function time(value: unknown): string {
  if (value === undefined) return '-';
  if (
    typeof value === 'number' &&
    Number.isFinite(value) &&
    value >= 0 &&
    value <= LATEST_DATE_SECONDS
  ) {
    return new Date(value * 1000).toISOString().replace('.000Z', 'Z');
  }
  return show(rawValue(value));
}

function rawValue(value: unknown): string {
  if (typeof value === 'number') return String(value);
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    // Nesting deep enough to exhaust the stack: nothing worth printing.
    return '(unprintable)';
  }
}

function describe(level: InspectedLevel, isRoot: boolean, sealed: boolean): string {
  const name =
    isRoot && !sealed && level.fmt === undefined ? 'origin' : `depth ${level.depth ?? '?'}`;
  const parts = [
    name,
    level.sid === undefined ? undefined : `sid=${show(level.sid)}`,
    `iss=${level.iss === undefined ? '-' : show(level.iss)}`,
    level.sub === undefined ? undefined : `sub=${show(level.sub)}`,
    level.tenant === undefined ? undefined : `tenant=${show(level.tenant)}`,
    `alg=${show(level.alg)}`,
    `kid=${shortKid(level.kid)}`,
    `exp=${time(level.exp)}`,
    level.fmt === undefined ? undefined : `fmt=${level.fmt}`,
    level.fmt === undefined ? undefined : `cmp=${level.cmp ?? '-'}`,
    level.form === 'compact' ? 'form=compact' : undefined,
    level.form === 'compact' && level.length === 0 ? 'len=(in record)' : `len=${level.length}`,
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
  lines.push(
    `stopped: ${show(inspection.stop.detail)} (${inspection.levels.length} level${inspection.levels.length === 1 ? '' : 's'} read)`,
  );
  return lines.join('\n');
}
