import { createRequire } from 'node:module';
import { HozoError } from '../errors.js';
import { issueProblems } from './issues.js';
import { MAX_CONFIG_DEPTH, depthOf, jsonDuplicateKey, protoKeyPath, readConfigText } from './read.js';
import { configSchema, type Config } from './schema.js';

export { DEFAULT_CONFIG_PATH, resolveConfigPath } from './paths.js';

/** Validates already-parsed data; throws CONFIG_INVALID listing every problem. */
export function validateConfig(data: unknown, source = 'config'): Config {
  const result = configSchema.safeParse(data, { reportInput: true });
  if (!result.success) {
    const problems = issueProblems(result.error.issues);
    throw new HozoError('CONFIG_INVALID', `${source} is invalid:\n  ${problems.map((p) => `${p.path}: ${p.message}`).join('\n  ')}`, {
      hint: 'fix the listed fields; nothing was run',
      problems,
    });
  }
  return result.data;
}

/** A parser's message made safe to print: its first line, control characters escaped, at most 300 characters. */
export function parserMessage(e: unknown): string {
  const first = String((e as Error)?.message ?? e).split('\n')[0] ?? '';
  const safe = first.replace(/[\u0000-\u001f\u007f-\u009f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
  return safe.length > 300 ? `${safe.slice(0, 300)}…` : safe;
}

/** Parsed (not validated) config data: JSON for *.json, else YAML. Duplicate keys, `__proto__` keys and deep
 *  nesting are refused in both. */
export function parseConfigData(text: string, source: string): unknown {
  let data: unknown;
  const json = source.endsWith('.json');
  if (json) {
    const dup = jsonDuplicateKey(text);
    if (dup !== undefined) throw new HozoError('CONFIG_INVALID', `${source}: key "${dup}" appears twice (JSON would keep only the last)`, { hint: 'remove one of them; nothing was run' });
  }
  try {
    // yaml is loaded only for YAML files: the NixOS module renders JSON, and start-up time matters.
    data = json
      ? JSON.parse(text)
      : (createRequire(import.meta.url)('yaml') as typeof import('yaml')).parse(text, { uniqueKeys: true, logLevel: 'error', maxAliasCount: 100 });
  } catch (e) {
    throw new HozoError('CONFIG_INVALID', `${source}: cannot parse ${json ? 'JSON' : 'YAML'}: ${parserMessage(e)}`, { hint: 'fix the syntax there; nothing was run', cause: e });
  }
  if (depthOf(data) > MAX_CONFIG_DEPTH) throw new HozoError('CONFIG_INVALID', `${source}: nested deeper than ${MAX_CONFIG_DEPTH} levels`, { hint: 'is this the right file?' });
  const proto = protoKeyPath(data);
  if (proto !== undefined) throw new HozoError('CONFIG_INVALID', `${source}: ${proto}: the key "__proto__" is not allowed`, { hint: 'rename it; nothing was run' });
  return data;
}

export function parseConfigText(text: string, source: string): Config {
  return validateConfig(parseConfigData(text, source) ?? {}, source);
}

export function loadConfig(path: string): Config {
  return parseConfigText(readConfigText(path), path);
}

export { findHost, findJob } from './lookup.js';
