import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { HozoError } from '../errors.js';
import { formatIssues } from './issues.js';
import { configSchema, type Config } from './schema.js';

export { DEFAULT_CONFIG_PATH, resolveConfigPath } from './paths.js';

/** Validates already-parsed data; throws CONFIG_INVALID listing every problem. */
export function validateConfig(data: unknown, source = 'config'): Config {
  const result = configSchema.safeParse(data);
  if (!result.success) {
    const lines = formatIssues(result.error.issues);
    throw new HozoError('CONFIG_INVALID', `${source} is invalid:\n  ${lines.join('\n  ')}`, {
      hint: 'fix the listed fields; nothing was run',
    });
  }
  return result.data;
}

export function parseConfigText(text: string, source: string): Config {
  let data: unknown;
  try {
    // yaml is loaded only for YAML files: the NixOS module renders JSON, and start-up time matters.
    data = source.endsWith('.json') ? JSON.parse(text) : (createRequire(import.meta.url)('yaml') as typeof import('yaml')).parse(text);
  } catch (e) {
    throw new HozoError('CONFIG_INVALID', `${source}: cannot parse: ${(e as Error).message}`, { cause: e });
  }
  return validateConfig(data ?? {}, source);
}

export function loadConfig(path: string): Config {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new HozoError('CONFIG_NOT_FOUND', `cannot read config ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, {
      hint: 'pass --config FILE or set HOZO_CONFIG',
      cause: e,
    });
  }
  return parseConfigText(text, path);
}

export { findHost, findJob } from './lookup.js';
