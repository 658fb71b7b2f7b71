/**
 * Text that came from a token (or anything else a client chose) on its way to a terminal, a log
 * line or a span. Two things make such text dangerous there:
 *
 * - control characters: ESC and C1 sequences rewrite the line, the screen or the terminal title
 *   (`\u001b]0;…\u0007`), CR and NEL overwrite or forge lines, and bidi overrides and isolates
 *   reorder what is shown, so a reader sees something other than what was sent;
 * - size: a 40 KB `iss` would be copied whole into every audit line it appears in.
 *
 * One helper does both, so every place that shows such text has the same rule.
 */

/** C0, DEL, C1 (incl. NEL U+0085), the Arabic letter mark, LRM/RLM, line/paragraph separators, bidi embeddings, overrides and isolates. */
const UNSAFE =
  /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/;
const UNSAFE_ALL = new RegExp(UNSAFE.source, 'g');

/** Longest stretch of attacker-chosen text shown in one place, in characters (before the marker). */
export const UNTRUSTED_TEXT_BOUND = 256;

/** The character as a JavaScript escape: visible, ASCII, and unambiguous about what was sent. */
function escapeChar(char: string): string {
  const code = char.charCodeAt(0);
  return code < 0x100
    ? `\\x${code.toString(16).padStart(2, '0')}`
    : `\\u${code.toString(16).padStart(4, '0')}`;
}

/** Control characters written as escapes; everything else unchanged. Never longer than six times the input. */
export function escapeControls(text: string): string {
  return UNSAFE.test(text) ? text.replace(UNSAFE_ALL, escapeChar) : text;
}

/**
 * `text` made safe to show: control characters escaped, then cut to `bound` characters with a
 * marker naming the original length. Only the first `bound` characters are ever scanned, so the
 * cost does not depend on how much the attacker sent.
 */
export function untrustedText(text: string, bound: number = UNTRUSTED_TEXT_BOUND): string {
  if (text.length <= bound && !UNSAFE.test(text)) return text;
  const shown = escapeControls(text.length > bound ? text.slice(0, bound) : text);
  if (shown.length <= bound && text.length <= bound) return shown;
  let cut = Math.min(bound, shown.length);
  // Never end inside an escape written above (at most six characters) or between a surrogate pair.
  const lastEscape = shown.lastIndexOf('\\', cut - 1);
  if (lastEscape !== -1 && cut - lastEscape < 6) {
    const width = shown[lastEscape + 1] === 'x' ? 4 : shown[lastEscape + 1] === 'u' ? 6 : 1;
    if (lastEscape + width > cut) cut = lastEscape;
  }
  const before = shown.charCodeAt(cut - 1);
  if (before >= 0xd800 && before <= 0xdbff) cut--;
  return `${shown.slice(0, cut)}…[truncated, ${text.length} chars]`;
}
