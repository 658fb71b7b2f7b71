/** Nesting deeper than this in a value from a token is not printed as structure. */
const MAX_DEPTH = 16;

/**
 * A value from a token, reduced to what JSON can print without recursing without end: scalars as
 * they are, arrays and objects down to MAX_DEPTH, anything deeper as the marker string. Iterative
 * in spirit (depth-bounded), so a claim nested a million deep cannot exhaust the stack.
 */
function bounded(value: unknown, depth: number): unknown {
  if (value === null || typeof value !== 'object') return value;
  if (depth >= MAX_DEPTH) return `(nested deeper than ${MAX_DEPTH} levels: not shown)`;
  if (Array.isArray(value)) return value.map((v) => bounded(v, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) out[k] = bounded(v, depth + 1);
  return out;
}

/** Characters JSON.stringify leaves raw that a terminal acts on: DEL, C1, bidi controls, LS/PS. */
const RAW_IN_JSON = /[\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

/**
 * `value` as indented JSON for a terminal: every string escaped as the text output escapes it
 * (as JSON `\uXXXX` escapes, so the JSON still parses to exactly what the token said), and
 * nesting bounded. JSON.stringify escapes C0 itself; the rest is done here, after it.
 */
export function terminalJson(value: unknown): string {
  const text = JSON.stringify(bounded(value, 0), null, 2) ?? 'null';
  return text.replace(
    RAW_IN_JSON,
    (char) => `\\u${char.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}
