// The validated config, remembered for the next start. Loading zod and building the schema is most of hozo's start-up
// (about 0.08 s of 0.19 s), and a scheduled run reads the same file every night. The result of validating exactly
// these bytes with exactly this schema is stored in <stateDirectory>/config-cache.json; a start whose file and schema
// are unchanged uses it without loading zod, so the box's SSH handshake can start that much sooner. Anything else
// (a changed byte, another hozo build, a damaged or foreign cache file) validates in full, as `hozo config check`
// always does. Validation is pure (no files, clock or environment are read), so equal inputs give equal results.
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, realpathSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeFileAtomicSync } from '../state/files.js';
import type { Config } from './schema.js';

/** The default of configSchema's stateDirectory (kept equal by a test). */
export const DEFAULT_STATE_DIRECTORY = '/var/lib/hozo';
const FORMAT = 'hozo-config-cache/1';

// The modules whose code decides validation: a rebuilt or upgraded hozo is a different schema.
const SCHEMA_MODULES = ['./schema.js', './fields.js', './duration.js', './issues.js', '../notify/schema.js', '../zfs/names.js'];

let identity: string | undefined;
/** Path after symlinks (a Nix store path changes with every build), size and mtime of each schema module. */
export function schemaIdentity(): string {
  identity ??= SCHEMA_MODULES.map((m) => {
    const file = fileURLToPath(new URL(m, import.meta.url));
    try {
      const st = statSync(file);
      return `${realpathSync(file)}:${st.size}:${st.mtimeMs}`;
    } catch {
      return `${file}:missing`;
    }
  }).join('\n');
  return identity;
}

export function cacheKey(path: string, text: string): string {
  return createHash('sha256').update(`${FORMAT}\0${schemaIdentity()}\0${path}\0${text}`).digest('hex');
}

/** Where this config keeps its cache: its own stateDirectory when it names one (read without validating: it only
 *  picks a file to read), else the default. */
function stateDirectoryOf(path: string, text: string): string {
  try {
    const raw: unknown = path.endsWith('.json') ? JSON.parse(text) : (createRequire(import.meta.url)('yaml') as typeof import('yaml')).parse(text);
    const dir = typeof raw === 'object' && raw !== null ? (raw as Record<string, unknown>)['stateDirectory'] : undefined;
    return typeof dir === 'string' && dir.startsWith('/') ? dir : DEFAULT_STATE_DIRECTORY;
  } catch {
    return DEFAULT_STATE_DIRECTORY;
  }
}

export const cacheFile = (stateDirectory: string) => join(stateDirectory, 'config-cache.json');

export interface LoadResult {
  readonly config: Config;
  /** true: taken from the cache (the file and schema were unchanged). */
  readonly cached: boolean;
}

/** The config at `path`, validated now or (same bytes, same schema) before. Errors are loadConfig's. */
export async function loadConfigCached(path: string): Promise<LoadResult> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return { config: (await import('./load.js')).loadConfig(path), cached: false }; // its CONFIG_NOT_FOUND error
  }
  const key = cacheKey(path, text);
  const dir = stateDirectoryOf(path, text);
  try {
    const c = JSON.parse(readFileSync(cacheFile(dir), 'utf8')) as { key?: unknown; config?: unknown };
    if (c.key === key && typeof c.config === 'object' && c.config !== null) return { config: c.config as Config, cached: true };
  } catch {
    // no cache yet, or unreadable: validate
  }
  const config = (await import('./load.js')).parseConfigText(text, path);
  // Only where the validated config itself says the state lives; best effort (a read-only state directory only
  // costs the next start its validation). 0600: notification URLs can carry tokens.
  if (config.stateDirectory === dir) {
    try {
      mkdirSync(dir, { recursive: true });
      writeFileAtomicSync(cacheFile(dir), JSON.stringify({ key, config }) + '\n', 0o600);
    } catch {
      // ignore
    }
  }
  return { config, cached: false };
}
