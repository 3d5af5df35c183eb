// User-given text as it may appear in a message: quoted, every character that could move the cursor, recolour the
// terminal or reorder what is shown escaped, and bounded in length. No zod here: the start-up path and the agent use it.

/** Longest stretch of a user-given string put in a message. */
export const SHOWN_MAX = 200;

// C0 and C1 controls, DEL, bidi marks/embeddings/overrides/isolates, line/paragraph separators, BOM, lone surrogates.
const UNSAFE =
  /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufeff]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;
const SHORT: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };

function escapeChar(c: string): string {
  if (Object.hasOwn(SHORT, c)) return SHORT[c]!;
  const n = c.charCodeAt(0);
  return n <= 0xff ? `\\x${n.toString(16).padStart(2, '0')}` : `\\u${n.toString(16).padStart(4, '0')}`;
}

/** `s` with unsafe characters escaped (\n, \x1b, \u202e…), no quotes added, no length bound. */
export function escapeUnsafe(s: string): string {
  return s.replace(UNSAFE, escapeChar);
}

/** At most `max` characters of `s` (not splitting a surrogate pair), and how long it was when cut. */
function cut(s: string, max: number): { text: string; more: string } {
  if (s.length <= max) return { text: s, more: '' };
  let end = max;
  const c = s.charCodeAt(end - 1);
  if (c >= 0xd800 && c <= 0xdbff) end--;
  return { text: s.slice(0, end), more: `… (${s.length} characters)` };
}

/** `"name"` for a message: quoted, `"` and `\` escaped, unsafe characters escaped, cut after `max` characters. */
export function shownName(s: string, max = SHOWN_MAX): string {
  const { text, more } = cut(String(s), max);
  return `"${escapeUnsafe(text.replace(/["\\]/g, (c) => `\\${c}`))}"${more}`;
}

/** A path or similar as it is when it is plain (printable, no quotes or spaces, not over-long), else shownName. */
export function shownPath(s: string, max = SHOWN_MAX): string {
  return s.length > 0 && s.length <= max && /^[\x21-\x7e\u00a0-\uffff]+$/.test(s) && !/["'\\]/.test(s) && escapeUnsafe(s) === s ? s : shownName(s, max);
}
