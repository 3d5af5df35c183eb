// A YAML config parsed in linear time and bounded work, with errors in hozo's words at line:column. The yaml library's
// own duplicate-key check compares each key with every earlier one (40,000 keys: 10 s), so it is off and keys are
// checked here with one Set per mapping; aliases are counted and their expansion bounded before anything is built.
// No zod here: the cache's start-up path reads stateDirectory with it.
import { createRequire } from 'node:module';
import type { Document, LineCounter, Node as YamlNode } from 'yaml';
import { HozoError } from '../errors.js';
import { entriesProblem, MAX_CONFIG_VALUES } from './read.js';
import { escapeUnsafe, shownName, shownPath } from './shown.js';

type Yaml = typeof import('yaml');

/** Alias references (*name) a config may hold; hozo's own examples use none. */
export const MAX_ALIASES = 100;

// The library's words for what it found, where they say more than its message would.
const WORDS: Partial<Record<string, string>> = {
  TAB_AS_INDENT: 'a tab used for indentation (YAML indents with spaces)',
  MULTILINE_IMPLICIT_KEY: 'a key that runs over several lines (a missing ":" or quote on the line before?)',
  BLOCK_AS_IMPLICIT_KEY: 'a mapping inside a one-line mapping ("a: b: c"), or a line indented under a plain value',
  MISSING_CHAR: 'a closing bracket or quote is missing',
  BAD_DQ_ESCAPE: 'an invalid escape in a double-quoted string (write \\\\ for a backslash)',
  KEY_OVER_1024_CHARS: 'a key longer than 1024 characters',
  MULTIPLE_ANCHORS: 'two anchors (&) on one value',
  MULTIPLE_TAGS: 'two tags (!) on one value',
  BLOCK_IN_FLOW: 'a block inside [ ] or { }',
  BAD_SCALAR_START: 'a value that starts with a character YAML reserves (quote it)',
  BAD_INDENT: 'an indentation that does not line up (the entries of one mapping or list start in one column)',
  BAD_DIRECTIVE: 'a % directive YAML does not know (quote a value that starts with %)',
  TAG_RESOLVE_FAILED: 'a tag (!) YAML does not know (quote a value that starts with !)',
};

// The library's token names, as a message may quote them ("Unexpected flow-map-end token in YAML stream").
const TOKENS: Record<string, string> = {
  'block-seq-ind': 'a list item "-"',
  'block-scalar': 'a block of text (| or >)',
  'block-map': 'a mapping',
  'block-seq': 'a list',
  'flow-collection': 'a [ ] or { }',
  'flow-map-start': '"{"',
  'flow-map-end': '"}"',
  'flow-seq-start': '"["',
  'flow-seq-end': '"]"',
  'map-value-ind': '":"',
  'explicit-key-ind': '"?"',
  'doc-start': '"---"',
  'doc-end': '"..."',
  'doc-mode': 'a document marker',
  comma: '","',
  anchor: 'an anchor (&)',
  alias: 'an alias (*)',
  tag: 'a tag (!)',
  directive: 'a % directive',
  comment: 'a comment',
  scalar: 'a value',
  'single-quoted-scalar': 'a quoted value',
  'double-quoted-scalar': 'a quoted value',
};

/** A message of the library with its token names in words: "Unexpected flow-map-end token in YAML stream: "}"" → 'unexpected "}"'. */
export function yamlWords(message: string): string {
  const m = /^Unexpected ([a-z-]+)(?: token)?(?: in YAML (?:stream|document))?(?:: .*)?$/.exec(message);
  if (m !== null && Object.hasOwn(TOKENS, m[1]!)) return `unexpected ${TOKENS[m[1]!]} here`;
  const inside = /^Unexpected (.{1,20}?) in (flow sequence|flow map|flow collection|collection|YAML document)\b/.exec(message);
  if (inside !== null) {
    const where = { 'flow sequence': ' inside [ ]', 'flow map': ' inside { }', 'flow collection': ' inside [ ] or { }' }[inside[2]!] ?? '';
    const what = inside[1]!.startsWith('"') ? inside[1]! : `"${inside[1]!}"`;
    return `unexpected ${what}${where} here`;
  }
  return message.replace(/\b[a-z]+(?:-[a-z]+)+\b/g, (t) => (Object.hasOwn(TOKENS, t) ? TOKENS[t]! : t)).replace(/ token\b/g, '');
}

/** `field`: the key path the problem is at (config check --json lists it as the problem's path). */
function fail(where: string, at: string, what: string, hint = 'fix the syntax there; nothing was run', field?: string): never {
  throw new HozoError('CONFIG_INVALID', `${where}: ${at}${what}`, {
    hint,
    ...(field !== undefined ? { problems: [{ path: field === '' ? '(top level)' : escapeUnsafe(field).slice(0, 300), message: `${at}${what}` }] } : {}),
  });
}

/** Parsed (not validated) data of a YAML config, or a CONFIG_INVALID error saying where and what. */
export function parseYamlConfig(text: string, source: string): unknown {
  const where = shownPath(source);
  const many = entriesProblem(text);
  if (many !== undefined) fail(where, '', many, 'is this the right file?');
  const Y = createRequire(import.meta.url)('yaml') as Yaml;
  const lc = new Y.LineCounter();
  const at = (offset: number | undefined) => {
    if (offset === undefined) return '';
    const p = lc.linePos(offset);
    return `line ${p.line}, column ${p.col}: `;
  };
  const docs = Y.parseAllDocuments(text, { uniqueKeys: false, merge: false, prettyErrors: false, lineCounter: lc, logLevel: 'silent' }) as Document.Parsed[];
  if (docs.length === 0) return null;
  if (docs.length > 1) {
    const second = docs[1]!.range[0];
    fail(where, at(second), 'expected one YAML document, found several (a line with --- starts another)');
  }
  const doc = docs[0]!;
  const err = doc.errors[0];
  if (err !== undefined) {
    const flow = /^Flow (sequence|map)/.test(err.message) ? 'a [ or { is not closed where it should be (or it is indented less than its key)' : undefined;
    const own = flow ?? (Object.hasOwn(WORDS, err.code) ? WORDS[err.code] : undefined);
    const words = own ?? escapeUnsafe(yamlWords(err.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, ''))).slice(0, 300);
    const p = lc.linePos(err.pos[0]);
    fail(where, '', `cannot parse YAML at line ${p.line}, column ${p.col}: ${words}`);
  }
  checkNodes(Y, doc, lc, where);
  try {
    return doc.toJS({ maxAliasCount: MAX_ALIASES });
  } catch (e) {
    const m = String((e as Error)?.message ?? e);
    if (/alias count/i.test(m))
      fail(
        where,
        '',
        'too many alias references (*name) — refused (a document that expands to far more than it says)',
        'write the values out; nothing was run',
      );
    fail(where, '', `cannot parse YAML: ${escapeUnsafe(m.split('\n')[0]!).slice(0, 300)}`);
  }
}

/** Duplicate keys (one Set per mapping), merge keys, non-scalar keys, and aliases: how many, and how much they expand. */
function checkNodes(Y: Yaml, doc: Document.Parsed, lc: LineCounter, where: string): void {
  const at = (n: { range?: [number, number, number] | null } | null | undefined) => {
    const o = n?.range?.[0];
    if (o === undefined) return '';
    const p = lc.linePos(o);
    return `line ${p.line}, column ${p.col}: `;
  };
  // Values each anchor stands for once expanded; an anchor still open (an alias inside its own value) is a loop.
  const sizes = new Map<string, number>();
  const open = new Set<string>();
  let aliases = 0;
  let total = 0;
  const walk = (node: unknown, path: string): number => {
    if (node === null || node === undefined) return 1;
    if (Y.isAlias(node)) {
      if (++aliases > MAX_ALIASES)
        fail(
          where,
          at(node),
          `too many alias references (*${escapeUnsafe(node.source)} is the ${MAX_ALIASES + 1}th) — refused`,
          'write the values out; nothing was run',
        );
      if (open.has(node.source))
        fail(where, at(node), `the alias *${escapeUnsafe(node.source)} is inside its own anchor (a loop) — refused`, 'write the values out; nothing was run');
      if (!sizes.has(node.source))
        fail(where, at(node), `the alias *${escapeUnsafe(node.source)} names no anchor (&${escapeUnsafe(node.source)}) given before it`);
      const size = sizes.get(node.source)!;
      total += size;
      if (total > MAX_CONFIG_VALUES)
        fail(
          where,
          at(node),
          `too many alias references (*${escapeUnsafe(node.source)} expands to ${size} values; with the rest more than ${MAX_CONFIG_VALUES}) — refused`,
          'write the values out; nothing was run',
        );
      return size;
    }
    const anchor = (node as { anchor?: string }).anchor;
    if (anchor !== undefined) open.add(anchor);
    let size = 1;
    total++;
    if (Y.isMap(node)) {
      const keys = new Set<string>();
      for (const pair of node.items) {
        const k = pair.key as YamlNode | null;
        if (k !== null && !Y.isScalar(k))
          fail(where, at(k as never), `${path || 'the top level'} has a key that is a list or mapping; expected a name`, undefined, path);
        // `~:` or `null:` (YAML's null) and `"":` would all become the name "".
        if (k === null || k.value === null || k.value === '')
          fail(where, at(k ?? pair.value ?? node), `${path || 'the top level'} has an empty key (or ~, YAML's null); expected a name`, undefined, path);
        const name = String(k.value);
        const here = path === '' ? name : `${path}.${name}`;
        if (name === '<<' && (k as { type?: string } | null)?.type === 'PLAIN')
          fail(where, at(k as never), 'YAML merge keys (<<) are not supported; write the fields out', undefined, path);
        if (keys.has(name))
          fail(where, at(k as never), `key ${shownName(here)} appears twice (YAML would keep only one)`, 'remove one of them; nothing was run', here);
        keys.add(name);
        size += walk(pair.value, here);
      }
    } else if (Y.isSeq(node)) {
      node.items.forEach((item, i) => {
        size += walk(item, `${path}[${i}]`);
      });
    }
    if (anchor !== undefined) {
      open.delete(anchor);
      sizes.set(anchor, size);
    }
    return size;
  };
  walk(doc.contents, '');
}
