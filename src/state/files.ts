// File helpers shared by the state file and the metrics file: safe names and atomic replacement.
import { randomBytes } from 'node:crypto';
import { open, rename, unlink } from 'node:fs/promises';
import { closeSync, fsyncSync, openSync, renameSync, unlinkSync, writeSync, fchmodSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';

/**
 * A job name as a file-name stem. Config already restricts names to [A-Za-z0-9_.-]; anything else (a slash, a NUL)
 * is %-encoded so no name can escape the directory or collide with another.
 */
export function safeFileStem(name: string): string {
  if (name === '') return '%';
  const stem = name.replace(/[^A-Za-z0-9_.-]/g, (c) => [...Buffer.from(c, 'utf8')].map((b) => '%' + b.toString(16).toUpperCase().padStart(2, '0')).join(''));
  // "." and ".." are not file names we want to write; the caller adds a prefix or suffix, but be explicit anyway.
  return stem === '.' || stem === '..' ? stem.replace(/\./g, '%2E') : stem;
}

// The temp file is a dot file with a non-.prom/.json suffix: node-exporter and readers never see it half-written.
function tempPathFor(path: string): string {
  return join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
}

/** Writes `text` to `path` atomically: a temp file in the same directory, fsync, chmod, rename. */
export async function writeFileAtomic(path: string, text: string, mode = 0o644): Promise<void> {
  const tmp = tempPathFor(path);
  try {
    const fh = await open(tmp, 'wx', mode);
    try {
      await fh.writeFile(text, 'utf8');
      await fh.chmod(mode); // the umask may have narrowed the create mode
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
  } catch (e) {
    await unlink(tmp).catch(() => undefined);
    throw e;
  }
}

/** The synchronous twin of writeFileAtomic (the state file is written from synchronous code paths too). */
export function writeFileAtomicSync(path: string, text: string, mode = 0o644): void {
  const tmp = tempPathFor(path);
  try {
    const fd = openSync(tmp, 'wx', mode);
    try {
      writeSync(fd, text);
      fchmodSync(fd, mode);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
  } catch (e) {
    try {
      unlinkSync(tmp);
    } catch {
      /* never created */
    }
    throw e;
  }
}
