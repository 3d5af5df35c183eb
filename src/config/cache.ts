// The validated config, remembered for the next start. Loading zod and building the schema is most of hozo's start-up
// (about 0.08 s of 0.19 s; on a small or emulated box ~1.5 s of hozo-agent's ~3 s), and a scheduled run reads the
// same file every night. The result of validating exactly these bytes with exactly this schema is stored in
// <stateDirectory>/config-cache.json; a start whose file and schema are unchanged uses it without loading zod. Anything
// else (a changed byte, another build, a damaged or foreign cache file) validates in full, as `hozo config check`
// always does. Validation is pure (no files, clock or environment are read), so equal inputs give equal results.
// This is the mechanism, for any kind of config: hozo's is config/controller-cache.ts, hozo-agent's
// agent/config-cache.ts.
import { createHash } from 'node:crypto';
import { lstatSync, readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeFileAtomicSync } from '../state/files.js';
import { ensureDirectory, readOwnFile } from '../util/safe-fs.js';
import { readConfigText } from './read.js';

/** How one kind of config is validated and where its cache lives (in the validated config's own stateDirectory). */
export interface CacheSpec<T extends { readonly stateDirectory: string }> {
  /** Names the cache format and the kind of config (a controller's cache is never taken for an agent's). */
  readonly format: string;
  /** The modules whose code decides validation: a rebuilt or upgraded build is a different schema. */
  readonly schemaModules: readonly URL[];
  readonly defaultStateDirectory: string;
  /** Parses the file's text without validating (only stateDirectory is read from it, to pick the cache file). */
  readonly parseRaw: (text: string, path: string) => unknown;
  /** Full validation; throws the usual CONFIG_INVALID error. */
  readonly validate: (text: string, path: string) => Promise<T>;
  /** What the file system says about the validated config's paths; throws before the cache is written. */
  readonly checkInUse?: (config: T, path: string) => unknown;
  /** The uncached loader, for a file that cannot be read (it throws its own CONFIG_NOT_FOUND). */
  readonly load: (path: string) => Promise<T>;
}

const identities = new Map<string, string>();
/**
 * The content of each schema module, and of the file holding this code: from tsc's output that is one more module;
 * in a bundle (dist/bin, scripts/bundle.mjs) the listed modules do not exist and this file is the bundle, which names
 * its chunks (the schema's among them) by their content hash. Contents, not mtimes: npm packs every file with the same
 * mtime, so an upgrade of the same size would otherwise look unchanged.
 */
export function schemaIdentity(modules: readonly URL[]): string {
  const all = [...modules, new URL(import.meta.url)];
  const id = all.map((u) => u.href).join('\n');
  let v = identities.get(id);
  if (v === undefined) identities.set(id, (v = contentIdentity(all)));
  return v;
}

/** A hash of each file's URL and content ("missing" for one that is not there). */
export function contentIdentity(files: readonly URL[]): string {
  const h = createHash('sha256');
  for (const u of files) {
    let text: Buffer | undefined;
    try {
      text = readFileSync(fileURLToPath(u));
    } catch {
      // not there (a bundle): the bundle's own content stands for it
    }
    h.update(`${u.href}\0${text === undefined ? 'missing' : createHash('sha256').update(text).digest('hex')}\0`);
  }
  return h.digest('hex');
}

export function cacheKeyFor(spec: { readonly format: string; readonly schemaModules: readonly URL[] }, path: string, text: string): string {
  return createHash('sha256')
    .update(`${spec.format}\0${schemaIdentity(spec.schemaModules)}\0${path}\0${text}`)
    .digest('hex');
}

export const cacheFile = (stateDirectory: string) => join(stateDirectory, 'config-cache.json');

/** A regular file owned by this process's user, mode 0600 or stricter, in a directory only its owner (this user or
 *  root) can write to. */
export function ownPrivateFile(file: string): boolean {
  const uid = process.geteuid?.() ?? -1;
  const st = lstatSync(file);
  if (!st.isFile() || st.uid !== uid || (st.mode & 0o077) !== 0) return false;
  const d = statSync(dirname(file));
  return (d.uid === uid || d.uid === 0) && (d.mode & 0o022) === 0;
}

export interface LoadResult<T> {
  readonly config: T;
  /** true: taken from the cache (the file and schema were unchanged). */
  readonly cached: boolean;
}

/** The config at `path`, validated now or (same bytes, same schema) before. Errors are the spec's. */
export async function loadCached<T extends { readonly stateDirectory: string }>(path: string, spec: CacheSpec<T>): Promise<LoadResult<T>> {
  let text: string;
  try {
    text = readConfigText(path);
  } catch {
    return { config: await spec.load(path), cached: false };
  }
  const key = cacheKeyFor(spec, path, text);
  // Read without validating: it only picks a file to read.
  let dir = spec.defaultStateDirectory;
  try {
    const raw = spec.parseRaw(text, path);
    const d = typeof raw === 'object' && raw !== null ? (raw as Record<string, unknown>)['stateDirectory'] : undefined;
    if (typeof d === 'string' && d.startsWith('/')) dir = d;
  } catch {
    // unparsable: validate (and fail) below
  }
  try {
    const file = cacheFile(dir);
    // Only a file this user wrote for itself: a cache entry planted by anyone else (another user, a group-writable
    // directory) is never taken for a validated config.
    if (ownPrivateFile(file)) {
      const c = JSON.parse(readOwnFile(file)) as { key?: unknown; config?: unknown };
      if (c.key === key && typeof c.config === 'object' && c.config !== null) return { config: c.config as T, cached: true };
    }
  } catch {
    // no cache yet, or unreadable: validate
  }
  const config = await spec.validate(text, path);
  // A config that cannot be used (a FIFO as logFile, a state directory through a symlink into /proc) writes nothing.
  spec.checkInUse?.(config, path);
  // Only where the validated config itself says the state lives; best effort (a read-only state directory only
  // costs the next start its validation). 0600: notification URLs can carry tokens.
  if (config.stateDirectory === dir) {
    try {
      // Not a recursive mkdir: one into /proc (through a symlink) never returns.
      ensureDirectory(dir, 0o755);
      writeFileAtomicSync(cacheFile(dir), JSON.stringify({ key, config }) + '\n', 0o600);
    } catch {
      // ignore
    }
  }
  return { config, cached: false };
}
