// One run per job at a time: an exclusive lock file holding the owner's pid and its start time. A lock is stale only
// when its owner is gone (dead, or its pid is another process now: a lock left from before a reboot); a lock file
// without a readable owner yet (another run between creating and writing it) is fresh for 30 s. A stale lock is
// broken by renaming it aside first, so a run can never remove a lock another run has just taken.
import { randomBytes } from 'node:crypto';
import { closeSync, linkSync, openSync, renameSync, statSync, unlinkSync, writeSync } from 'node:fs';
// mkdir -p that resolves the existing part first: a recursive mkdir into /proc (a symlink there) never returns.
import { ensureDirectory, readOwnFile } from '../util/safe-fs.js';
import { errnoWords } from '../config/read.js';
import { shownPath } from '../config/shown.js';
import { join } from 'node:path';
import { HozoError } from '../errors.js';
import { lockIsStale, lockOwner } from '../util/proc.js';

export interface Lock {
  readonly path: string;
  release(): void;
}

function read(path: string): { text: string; ageMs: number } | undefined {
  try {
    return { text: readOwnFile(path, 4096), ageMs: Date.now() - statSync(path).mtimeMs };
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    // A FIFO or a device in the lock's place (opened without blocking): not a lock any run took; nothing is removed.
    if (code === 'ENOTREG' || code === 'EFBIG')
      throw new HozoError('CONFIG_INVALID', `the job lock ${shownPath(path)} cannot be used: ${errnoWords(e)}`, {
        hint: 'remove it yourself (hozo only ever writes a small regular file there)',
      });
    return undefined; // gone meanwhile
  }
}

/** Moves the lock judged stale (its text `judged`) out of the way. A lock that changed meanwhile is put back. */
function breakStale(path: string, judged: string): void {
  const aside = `${path}.stale-${process.pid}-${randomBytes(4).toString('hex')}`;
  try {
    renameSync(path, aside);
  } catch {
    return; // someone else broke it (or released it) first
  }
  let text: string | undefined;
  try {
    text = readOwnFile(aside, 4096);
  } catch {
    text = undefined;
  }
  if (text !== judged) {
    // We moved a lock another run took a moment ago: give it back (unless a third run has one now; then that run holds
    // the job and the moved one is only a file).
    try {
      linkSync(aside, path);
    } catch {
      /* path taken again */
    }
  }
  try {
    unlinkSync(aside);
  } catch {
    /* gone */
  }
}

export function acquireJobLock(stateDirectory: string, job: string): Lock {
  const dir = join(stateDirectory, 'locks');
  ensureDirectory(dir, 0o755);
  const path = join(dir, `${job}.lock`);
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const fd = openSync(path, 'wx', 0o644);
      writeSync(fd, `${lockOwner()}\n`);
      closeSync(fd);
      let released = false;
      return {
        path,
        release() {
          if (released) return;
          released = true;
          try {
            unlinkSync(path);
          } catch {
            /* already gone */
          }
        },
      };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      const held = read(path);
      if (held === undefined) continue;
      if (!lockIsStale(held.text, held.ageMs)) {
        throw new HozoError('LOCKED', `job "${job}" is already running (${holderOf(held.text)}, lock ${path})`, {
          hint: 'wait for the other run to finish; runs of one job never overlap',
        });
      }
      // The previous owner died without releasing: the lock is stale.
      breakStale(path, held.text);
    }
  }
  throw new HozoError('LOCKED', `job "${job}": could not take the lock ${path}`, { hint: 'another run is starting at the same moment' });
}

/** Who holds the job's lock now ("pid 123"), or undefined when no live run does (none, or a stale one). */
export function jobLockHolder(stateDirectory: string, job: string): string | undefined {
  const path = join(stateDirectory, 'locks', `${job}.lock`);
  let held: { text: string; ageMs: number } | undefined;
  try {
    held = read(path);
  } catch {
    return 'a file in the lock\u2019s place';
  }
  if (held === undefined || lockIsStale(held.text, held.ageMs)) return undefined;
  return holderOf(held.text);
}

/** "pid 123" from a lock's text, or "starting" (created, its owner not written yet). */
function holderOf(text: string): string {
  const owner = Number.parseInt(text, 10);
  return Number.isInteger(owner) && owner > 0 ? `pid ${owner}` : 'starting';
}
