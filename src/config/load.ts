import { HozoError } from '../errors.js';
import { issueProblems, problemLines } from './issues.js';
import { MAX_CONFIG_DEPTH, MAX_CONFIG_VALUES, depthOf, jsonDuplicateKey, jsonErrorWords, protoKeyPath, readConfigText, valuesOver } from './read.js';
import { escapeUnsafe, shownName, shownPath } from './shown.js';
import { parseYamlConfig } from './yaml.js';
import { configSchema, type Config } from './schema.js';

export { DEFAULT_CONFIG_PATH, resolveConfigPath } from './paths.js';

/** Problems kept in a CONFIG_INVALID error for --json (its message lists fewer, see problemLines). */
const MAX_PROBLEMS_KEPT = 1000;

/** Validates already-parsed data; throws CONFIG_INVALID listing the problems (the first MAX_PROBLEMS_SHOWN of them). */
export function validateConfig(data: unknown, source = 'config'): Config {
  const result = configSchema.safeParse(data, { reportInput: true });
  if (!result.success) {
    const problems = issueProblems(result.error.issues);
    throw new HozoError('CONFIG_INVALID', `${shownPath(source)} is invalid:\n  ${problemLines(problems).join('\n  ')}`, {
      hint: 'fix the listed fields; nothing was run',
      problems: problems.slice(0, MAX_PROBLEMS_KEPT),
    });
  }
  return result.data;
}

/** A parser's message made safe to print: its first line, control characters escaped, at most 300 characters. */
export function parserMessage(e: unknown): string {
  const first = String((e as Error)?.message ?? e).split('\n')[0] ?? '';
  const safe = escapeUnsafe(first);
  return safe.length > 300 ? `${safe.slice(0, 300)}…` : safe;
}

/** Parsed (not validated) config data: JSON for *.json, else YAML. Duplicate keys, `__proto__` keys, deep nesting
 *  and more values than any config has are refused in both. */
export function parseConfigData(text: string, source: string): unknown {
  let data: unknown;
  const where = shownPath(source);
  const json = source.endsWith('.json');
  // An empty file says nothing is configured, whichever its format (YAML reads it as null; JSON.parse would refuse it).
  if (json && text.trim() === '') data = null;
  else if (json) {
    const dup = jsonDuplicateKey(text);
    if (dup !== undefined)
      throw new HozoError('CONFIG_INVALID', `${where}: key ${shownName(dup)} appears twice (JSON would keep only the last)`, {
        hint: 'remove one of them; nothing was run',
      });
    try {
      data = JSON.parse(text);
    } catch (e) {
      throw new HozoError('CONFIG_INVALID', `${where}: cannot parse JSON: ${jsonErrorWords(e, text)}`, {
        hint: 'fix the syntax there; nothing was run',
        cause: e,
      });
    }
  } else {
    // yaml is loaded only for YAML files: the NixOS module renders JSON, and start-up time matters.
    data = parseYamlConfig(text, source);
  }
  if (valuesOver(data))
    throw new HozoError('CONFIG_INVALID', `${where}: more than ${MAX_CONFIG_VALUES} values; a hozo config has a few thousand at most`, {
      hint: 'is this the right file?',
    });
  if (depthOf(data) > MAX_CONFIG_DEPTH)
    throw new HozoError('CONFIG_INVALID', `${where}: nested deeper than ${MAX_CONFIG_DEPTH} levels`, { hint: 'is this the right file?' });
  const proto = protoKeyPath(data);
  if (proto !== undefined)
    throw new HozoError('CONFIG_INVALID', `${where}: ${escapeUnsafe(proto)}: the key "__proto__" is not allowed`, { hint: 'rename it; nothing was run' });
  return data;
}

export function parseConfigText(text: string, source: string): Config {
  return validateConfig(parseConfigData(text, source) ?? {}, source);
}

export function loadConfig(path: string): Config {
  return parseConfigText(readConfigText(path), path);
}

export { findHost, findJob } from './lookup.js';
