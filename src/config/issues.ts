// Validation problems as `path: message` lines, one problem per line whatever the input holds (control characters
// in keys or values are escaped), in words: "missing", "expected a number, got "abc"", the naming rule for a bad
// key. No schema here, so the agent can use it without loading the controller's config schema on every SSH call.
import type { z } from 'zod';

const SIMPLE_KEY = /^[A-Za-z_][A-Za-z0-9_-]*$/;

/** A value as it may appear in a message: JSON (so control characters are escaped), at most 60 characters. */
export function shown(v: unknown): string {
  let s: string;
  try {
    s = v === undefined ? 'nothing' : typeof v === 'object' && v !== null ? (Array.isArray(v) ? 'a list' : 'an object') : (JSON.stringify(v) ?? String(v));
  } catch {
    s = String(v);
  }
  s = s.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  return s.length > 60 ? `${s.slice(0, 60)}…` : s;
}

/** `jobs[0].datasets[1].source` from zod's path; odd keys quoted: `hosts["b c"]`. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const p of path) {
    if (typeof p === 'number') out += `[${p}]`;
    else if (SIMPLE_KEY.test(String(p))) out += out === '' ? String(p) : `.${String(p)}`;
    else out += `[${shown(String(p))}]`;
  }
  return out === '' ? '(top level)' : out;
}

const ARTICLE: Record<string, string> = { string: 'a string', number: 'a number', boolean: 'true or false', array: 'a list', object: 'an object (key: value)', int: 'a whole number' };

function typeOf(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'an object';
  return `${typeof v} ${shown(v)}`;
}

function messageOf(i: z.core.$ZodIssue): string {
  const input = (i as { input?: unknown }).input;
  switch (i.code) {
    case 'invalid_type': {
      const expected = ARTICLE[i.expected] ?? i.expected;
      return input === undefined ? `missing (expected ${expected})` : `expected ${expected}, got ${typeOf(input)}`;
    }
    case 'invalid_key': {
      const inner = i.issues.map((x) => x.message).filter((m) => m !== undefined && !/^Invalid/.test(m));
      return `${shown(input)} is not a valid name${inner.length > 0 ? `: ${inner.join('; ')}` : ''}`;
    }
    case 'unrecognized_keys':
      return `unknown field${i.keys.length > 1 ? 's' : ''} ${i.keys.map((k) => shown(k)).join(', ')} (a typo? fields are case-sensitive)`;
    case 'invalid_union': {
      const options = (i as { options?: unknown[] }).options;
      if (Array.isArray(options) && i.errors.length === 0) {
        const got = (input as Record<string, unknown> | undefined)?.[(i as { discriminator?: string }).discriminator ?? ''];
        return `expected one of ${options.map((o) => shown(o)).join(', ')}${got !== undefined ? `, got ${shown(got)}` : ''}`;
      }
      const types = [...new Set(i.errors.flat().filter((x) => x.code === 'invalid_type').map((x) => ARTICLE[(x as { expected: string }).expected] ?? (x as { expected: string }).expected))];
      const other = [...new Set(i.errors.flat().filter((x) => x.code !== 'invalid_type').map((x) => x.message).filter((m) => !/^Invalid/.test(m)))];
      const inner = [...(types.length > 0 ? [`expected ${types.join(' or ')}`] : []), ...other];
      return `${inner.length > 0 ? inner.join(', or ') : 'not an accepted value'}${input !== undefined ? `; got ${typeOf(input)}` : ''}`;
    }
    case 'invalid_value':
      return `expected one of ${i.values.map((v) => shown(v)).join(', ')}${input !== undefined ? `, got ${shown(input)}` : ''}`;
    case 'too_small':
    case 'too_big':
      return `${i.message.replace(/^Too (small|big): /, '')}${input !== undefined && typeof input !== 'object' ? ` (got ${shown(input)})` : ''}`;
    default:
      return i.message.replace(/[\u0000-\u001f\u007f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  }
}

export function issueProblems(issues: readonly z.core.$ZodIssue[]): { path: string; message: string }[] {
  return issues.map((i) => ({ path: formatPath(i.path), message: messageOf(i) }));
}

export function formatIssues(issues: readonly z.core.$ZodIssue[]): string[] {
  return issueProblems(issues).map((p) => `${p.path}: ${p.message}`);
}
