// Paths hozo and hozo-agent write to (state, leases, metrics, logs): the config's text rules, and the guards where they
// are used. A recursive mkdir in /proc never returns (it retries ENOENT forever) and a FIFO as a log file blocks the
// writer, so: text first (no NUL or control characters, no "..", not under /proc, /sys or /dev once normalized), then
// at use the deepest existing ancestor is resolved (symlinks too) before anything is created below it, one level at a
// time, and a log file is opened without blocking and must be a regular file. No zod here (start-up path, agent).
import { closeSync, constants, fstatSync, mkdirSync, openSync, readFileSync, realpathSync, statSync, writeSync } from 'node:fs';
import { posix } from 'node:path';
import { escapeUnsafe, shownPath } from '../config/shown.js';

export const MAX_PATH = 4096;
const VIRTUAL = /^\/(proc|sys|dev)(\/|$)/;

/** Why `p` is not an absolute path a config may give (text only), or undefined. */
export function absolutePathProblem(p: string): string | undefined {
  if (p.includes('\0')) return 'contains a NUL byte';
  if (!p.startsWith('/')) return 'expected an absolute path';
  if (p.length > MAX_PATH) return `expected a path of at most ${MAX_PATH} characters (this one has ${p.length})`;
  if (escapeUnsafe(p) !== p) return 'a path with control characters (a newline?) is refused';
  return undefined;
}

/** `p` with `//`, `/./` and a trailing `/` collapsed ("/tmp/../proc" keeps its ".." out: it is refused, not resolved). */
export function normalizedPath(p: string): string {
  const n = posix.normalize(p).replace(/^\/+/, '/');
  return n.length > 1 ? n.replace(/\/+$/, '') : n;
}

/** Why `p` is not a place hozo may write to (text only: the schema is pure), or undefined. */
export function writablePathProblem(p: string): string | undefined {
  const problem = absolutePathProblem(p);
  if (problem !== undefined) return problem;
  if (p.split('/').includes('..')) return 'a ".." component is refused (write the path without it)';
  if (VIRTUAL.test(normalizedPath(p))) return 'must not be under /proc, /sys or /dev';
  return undefined;
}

/** A path that resolves into /proc, /sys or /dev (through a symlink, or spelled so the text check missed it). */
export class VirtualPathError extends Error {}

/** The deepest existing ancestor of `p` (or `p`), its real path, and the names below it that do not exist yet. */
export function existingAncestor(p: string): { real: string; missing: string[]; exists: boolean } {
  let cur = normalizedPath(p);
  const missing: string[] = [];
  for (;;) {
    try {
      statSync(cur);
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT' || cur === '/') throw e;
      missing.unshift(posix.basename(cur));
      cur = posix.dirname(cur);
    }
  }
  const real = realpathSync(cur);
  if (VIRTUAL.test(real)) {
    throw new VirtualPathError(
      `${real === cur ? shownPath(cur) : `${shownPath(cur)} resolves to ${shownPath(real)}, which is`} in /proc, /sys or /dev (nothing hozo writes may go there)`,
    );
  }
  return { real, missing, exists: missing.length === 0 };
}

/** Why `p` cannot be used as a directory hozo writes to, without creating anything; undefined when it can (or when
 *  that is only found out by creating it). */
export function directoryInUseProblem(p: string): string | undefined {
  try {
    existingAncestor(p);
  } catch (e) {
    if (e instanceof VirtualPathError) return e.message;
  }
  return undefined;
}

/**
 * mkdir -p that cannot hang: the existing ancestor is resolved and refused in /proc, /sys or /dev (VirtualPathError),
 * then each missing level is created on its own. Throws the fs error (EEXIST when `dir` is not a directory).
 */
export function ensureDirectory(dir: string, mode = 0o755): void {
  const { real, missing } = existingAncestor(dir);
  if (missing.length === 0) {
    if (!statSync(real).isDirectory()) throw Object.assign(new Error(`${shownPath(dir)} exists and is not a directory`), { code: 'EEXIST' });
    return;
  }
  let cur = real;
  for (const name of missing) {
    cur = posix.join(cur, name);
    try {
      mkdirSync(cur, { mode });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
  }
}

/** What a file that is not a regular one is, in words ("a FIFO (named pipe)"). */
export function kindOf(st: import('node:fs').Stats): string {
  if (st.isDirectory()) return 'a directory';
  if (st.isFIFO()) return 'a FIFO (named pipe)';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  if (st.isSocket()) return 'a socket';
  return 'not a regular file';
}

/** Largest file of its own hozo reads back (state, locks, caches): a state file of thousands of datasets is far less. */
export const MAX_OWN_FILE = 16 * 1024 * 1024;

/**
 * A file hozo wrote itself (job state, a lock, a cache), read without ever blocking: opened O_NONBLOCK (a FIFO put in
 * its place cannot hold the open, nor the read), and only a regular file of at most `maxBytes`. Otherwise the fs
 * error, or one with code ENOTREG or EFBIG; the callers treat each like an unreadable file.
 */
export function readOwnFile(path: string, maxBytes = MAX_OWN_FILE): string {
  const fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY);
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw Object.assign(new Error(`${shownPath(path)} is ${kindOf(st)}, not a regular file`), { code: 'ENOTREG' });
    if (st.size > maxBytes) throw Object.assign(new Error(`${shownPath(path)} is ${st.size} bytes, more than hozo writes`), { code: 'EFBIG' });
    return readFileSync(fd, 'utf8');
  } finally {
    closeSync(fd);
  }
}

/** Why `file` cannot be a log file hozo appends to (not a regular file, or in /proc, /sys, /dev), without creating it. */
export function logFileProblem(file: string): string | undefined {
  try {
    const st = statSync(file);
    if (!st.isFile()) return `${shownPath(file)} is ${kindOf(st)}; expected a regular file (or a path where one can be created)`;
  } catch {
    // not there yet (or unreadable): its directory decides
  }
  const dirProblem = directoryInUseProblem(posix.dirname(normalizedPath(file)));
  if (dirProblem !== undefined) return dirProblem;
  try {
    const real = realpathSync(file);
    if (VIRTUAL.test(real)) return `${shownPath(file)} resolves to ${shownPath(real)}, in /proc, /sys or /dev`;
  } catch {
    // not there yet
  }
  return undefined;
}

/** Opens `file` for appending without ever blocking (O_NONBLOCK: a FIFO cannot hold the open); only a regular file. */
export function openForAppend(file: string, mode = 0o644): number {
  const problem = logFileProblem(file);
  if (problem !== undefined) throw new Error(problem);
  const fd = openSync(file, constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT | constants.O_NONBLOCK | constants.O_NOCTTY, mode);
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw new Error(`${shownPath(file)} is ${kindOf(st)}; expected a regular file`);
  } catch (e) {
    closeSync(fd);
    throw e;
  }
  return fd;
}

/** Appends `text` to a regular file (see openForAppend); throws on any problem. */
export function appendToFile(file: string, text: string, mode = 0o644): void {
  const fd = openForAppend(file, mode);
  try {
    writeSync(fd, text);
  } finally {
    closeSync(fd);
  }
}
