// hozo's own config through the cache (cache.ts): which modules make up its schema, where its state directory is read
// from without the yaml library, and the uncached loader (load.ts, zod) it falls back to.
import { loadCached, type CacheSpec, type LoadResult } from './cache.js';
import { parseYamlConfig } from './yaml.js';
import { checkPathsInUse } from './paths-in-use.js';
import type { Config } from './schema.js';

/** The default of configSchema's stateDirectory (kept equal by a test). */
export const DEFAULT_STATE_DIRECTORY = '/var/lib/hozo';

/**
 * `stateDirectory` read from a plain top-level line of a YAML config (`stateDirectory: /x`, quoted or not), or from
 * the absence of any such key, without loading the yaml library (most of the rest of a warm start on a slow CPU). Only
 * a hint for where to look for the cache: the cache's key is the hash of the whole text, so a wrong guess costs a
 * validation, never a wrong config. undefined: not a plain line with an absolute path (flow style, a block scalar…),
 * so parse it properly.
 */
export function stateDirectoryLine(text: string): { stateDirectory?: string } | undefined {
  const lines = text.split('\n').filter((l) => /^["']?stateDirectory["']?\s*:/.test(l));
  if (lines.length === 0) return /stateDirectory/.test(text) ? undefined : {};
  if (lines.length > 1) return undefined;
  const m = /^["']?stateDirectory["']?\s*:[ \t]*(?:"(\/[^"\\]*)"|'(\/[^']*)'|(\/[^#]*?))[ \t]*(?:#.*)?\r?$/.exec(lines[0]!);
  const value = m?.[1] ?? m?.[2] ?? m?.[3];
  return value === undefined ? undefined : { stateDirectory: value };
}

const CONTROLLER: CacheSpec<Config> = {
  format: 'hozo-config-cache/1',
  schemaModules: [
    './schema.js',
    './fields.js',
    './duration.js',
    './issues.js',
    './shown.js',
    './addresses.js',
    './mac.js',
    './load.js',
    './read.js',
    './yaml.js',
    './controller-cache.js',
    '../util/safe-fs.js',
    '../notify/schema.js',
    '../zfs/names.js',
  ].map((m) => new URL(m, import.meta.url)),
  defaultStateDirectory: DEFAULT_STATE_DIRECTORY,
  parseRaw: (text, path) => (path.endsWith('.json') ? JSON.parse(text) : (stateDirectoryLine(text) ?? parseYamlConfig(text, path))),
  validate: async (text, path) => (await import('./load.js')).parseConfigText(text, path),
  checkInUse: checkPathsInUse,
  load: async (path) => (await import('./load.js')).loadConfig(path),
};

/** hozo's config at `path`, validated now or (same bytes, same schema) before. Errors are loadConfig's. */
export function loadConfigCached(path: string): Promise<LoadResult<Config>> {
  return loadCached(path, CONTROLLER);
}
