// Validation problems as `path: message` lines, one problem per field whatever the input holds (control characters
// in keys or values are escaped), in words: "missing", "expected a number, got "abc"", the naming rule for a bad
// key. No schema here, so the agent can use it without loading the controller's config schema on every SSH call.
import type { z } from 'zod';
import type { Problem } from '../errors.js';
import { escapeUnsafe, shownName } from './shown.js';

const SIMPLE_KEY = /^[A-Za-z_][A-Za-z0-9_-]*$/;

/** Problems listed in a message; the rest are counted. */
export const MAX_PROBLEMS_SHOWN = 50;
/** Unknown field names listed in one problem; the rest are counted. */
const MAX_KEYS_SHOWN = 10;

/** A value as it may appear in a message: quoted and escaped (shown.ts), at most 60 characters of a string. */
export function shown(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (typeof v === 'string') return shownName(v, 60);
  if (typeof v === 'number') return Number.isFinite(v) ? JSON.stringify(v) : String(v);
  if (typeof v === 'object' && v !== null) return Array.isArray(v) ? 'a list' : 'an object';
  return escapeUnsafe(String(v)).slice(0, 60);
}

/** `jobs[0].datasets[1].source` from zod's path; odd keys quoted: `hosts["b c"]`. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const p of path) {
    if (typeof p === 'number') out += `[${p}]`;
    // A plain key as it is; an odd or long one (a 300-character host name) quoted and cut like any shown value.
    else if (SIMPLE_KEY.test(String(p)) && String(p).length <= 60) out += out === '' ? String(p) : `.${String(p)}`;
    else out += `[${shown(String(p))}]`;
  }
  return out === '' ? '(top level)' : out;
}

const ARTICLE: Record<string, string> = {
  string: 'a string',
  number: 'a number',
  boolean: 'true or false',
  array: 'a list',
  object: 'an object (key: value)',
  int: 'a whole number',
  record: 'a mapping of names to entries (name: {…})',
};
const article = (t: string) => (Object.hasOwn(ARTICLE, t) ? ARTICLE[t]! : t);

function typeOf(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'an object';
  return `${typeof v} ${shown(v)}`;
}

const nonFinite = (v: unknown) => typeof v === 'number' && !Number.isFinite(v);
const SAFE_RANGE_NOTE = /safe integer range/;

function boundWords(i: z.core.$ZodIssue & { code: 'too_small' | 'too_big' }, input: unknown): string {
  // A message the schema wrote itself is already in hozo's words.
  if (!/^Too (small|big)/.test(i.message)) return escapeUnsafe(i.message);
  const small = i.code === 'too_small';
  const bound = Number(small ? (i as { minimum: number | bigint }).minimum : (i as { maximum: number | bigint }).maximum);
  const inclusive = (i as { inclusive?: boolean }).inclusive !== false;
  const origin = (i as { origin?: string }).origin;
  const got = input !== undefined && typeof input !== 'object' ? ` (got ${shown(input)})` : '';
  if (origin === 'string') {
    const len = typeof input === 'string' ? input.length : undefined;
    if (small && bound === 1) return 'must not be empty';
    return `expected ${small ? 'at least' : 'at most'} ${bound} characters${len !== undefined ? ` (this one has ${len})` : ''}`;
  }
  if (origin === 'array' || origin === 'set') {
    const n = Array.isArray(input) ? ` (got ${input.length})` : '';
    return `expected ${small ? 'at least' : 'at most'} ${bound} entr${bound === 1 ? 'y' : 'ies'}${n}`;
  }
  if (origin === 'number' || origin === 'int' || origin === 'bigint') {
    if (SAFE_RANGE_NOTE.test(String((i as { note?: string }).note))) return `too large a number${got}`;
    const what = origin === 'int' ? 'a whole number' : 'a number';
    return `expected ${what} ${small ? (inclusive ? 'of at least' : 'greater than') : inclusive ? 'of at most' : 'less than'} ${bound}${got}`;
  }
  return `${escapeUnsafe(i.message.replace(/^Too (small|big): /, ''))}${got}`;
}

/** Problems of one zod issue; a union whose input matched one option's type gives that option's problems. */
function expand(i: z.core.$ZodIssue, base: readonly PropertyKey[]): (Problem & { rank: number })[] {
  const path = [...base, ...i.path];
  const one = (message: string, rank = 1) => [{ path: formatPath(path), message, rank }];
  const input = (i as { input?: unknown }).input;
  switch (i.code) {
    case 'invalid_type': {
      const expected = article(i.expected);
      if (input === undefined) return one(`missing (expected ${expected})`);
      if ((i.expected === 'number' || i.expected === 'int') && nonFinite(input)) return one(`expected a finite number, got ${String(input)}`);
      // 0x10, 1e3, true: YAML reads them as a number or a boolean where a name or address was meant.
      const quote = i.expected === 'string' && (typeof input === 'number' || typeof input === 'boolean') ? ' (quote it to keep it as text)' : '';
      return one(`expected ${expected}, got ${typeOf(input)}${quote}`);
    }
    case 'invalid_key': {
      const inner = i.issues.map((x) => x.message).filter((m) => m !== undefined && !/^Invalid/.test(m));
      return one(`${shown(input)} is not a valid name${inner.length > 0 ? `: ${inner.map(escapeUnsafe).join('; ')}` : ''}`);
    }
    case 'unrecognized_keys': {
      const listed = i.keys
        .slice(0, MAX_KEYS_SHOWN)
        .map((k) => shown(k))
        .join(', ');
      const more = i.keys.length > MAX_KEYS_SHOWN ? ` and ${i.keys.length - MAX_KEYS_SHOWN} more` : '';
      return one(`unknown field${i.keys.length > 1 ? 's' : ''} ${listed}${more} (a typo? fields are case-sensitive)`);
    }
    case 'invalid_union': {
      const options = (i as { options?: unknown[] }).options;
      if (Array.isArray(options) && i.errors.length === 0) {
        const key = (i as { discriminator?: string }).discriminator ?? '';
        const got = typeof input === 'object' && input !== null && Object.hasOwn(input, key) ? (input as Record<string, unknown>)[key] : undefined;
        const list = options.map((o) => shown(o)).join(', ');
        return one(got === undefined ? `missing (expected one of ${list})` : `expected one of ${list}, got ${shown(got)}`);
      }
      // The options whose type the input has (their problems are deeper, or checks): report that option's own.
      const typed = i.errors.filter((errs) => !errs.some((x) => x.code === 'invalid_type' && x.path.length === 0));
      if (typed.length === 1) return typed[0]!.flatMap((x) => expand(x, path));
      if (nonFinite(input)) return one(`expected a finite number, got ${String(input)}`);
      const types = [
        ...new Set(
          i.errors
            .flat()
            .filter((x) => x.code === 'invalid_type')
            .map((x) => article((x as { expected: string }).expected)),
        ),
      ];
      const other = [
        ...new Set(
          i.errors
            .flat()
            .filter((x) => x.code !== 'invalid_type')
            .map((x) => x.message)
            .filter((m) => !/^Invalid/.test(m)),
        ),
      ].map(escapeUnsafe);
      const inner = [...(types.length > 0 ? [`expected ${types.join(' or ')}`] : []), ...other];
      const what = inner.length > 0 ? inner.join(', or ') : 'not an accepted value';
      return one(input === undefined ? `missing (${what})` : `${what}; got ${typeOf(input)}`);
    }
    case 'invalid_value':
      return one(`expected one of ${i.values.map((v) => shown(v)).join(', ')}${input !== undefined ? `, got ${shown(input)}` : ''}`);
    case 'too_small':
    case 'too_big':
      return one(boundWords(i, input), SAFE_RANGE_NOTE.test(String((i as { note?: string }).note)) ? 0 : 1);
    default:
      return one(escapeUnsafe(i.message));
  }
}

/** One problem per field (the most telling one, zod may report several), in the order zod found them. */
export function issueProblems(issues: readonly z.core.$ZodIssue[]): Problem[] {
  const best = new Map<string, Problem & { rank: number }>();
  for (const p of issues.flatMap((i) => expand(i, []))) {
    const had = best.get(p.path);
    if (had === undefined || p.rank > had.rank) best.set(p.path, p);
  }
  return [...best.values()].map(({ path, message }) => ({ path, message }));
}

/** `path: message` lines, at most MAX_PROBLEMS_SHOWN and a count of the rest. */
export function problemLines(problems: readonly Problem[], max = MAX_PROBLEMS_SHOWN): string[] {
  const lines = problems.slice(0, max).map((p) => `${p.path}: ${p.message}`);
  if (problems.length > max) lines.push(`… and ${problems.length - max} more problems`);
  return lines;
}

export function formatIssues(issues: readonly z.core.$ZodIssue[]): string[] {
  return problemLines(issueProblems(issues));
}
