// One run per job at a time: an exclusive lock file holding the owner's pid. A lock whose owner is gone is stale.
import { closeSync, mkdirSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { HozoError } from '../errors.js';
import { pidExists } from '../util/proc.js';

export interface Lock {
  readonly path: string;
  release(): void;
}

export function acquireJobLock(stateDirectory: string, job: string): Lock {
  const dir = join(stateDirectory, 'locks');
  mkdirSync(dir, { recursive: true });
  const path = join(dir, `${job}.lock`);
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(path, 'wx', 0o644);
      writeSync(fd, `${process.pid}\n`);
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
      const owner = Number.parseInt(readFileSync(path, 'utf8'), 10);
      if (Number.isInteger(owner) && owner > 0 && pidExists(owner)) {
        throw new HozoError('LOCKED', `job "${job}" is already running (pid ${owner}, lock ${path})`, {
          hint: 'wait for the other run to finish; runs of one job never overlap',
        });
      }
      // The previous owner died without releasing: the lock is stale.
      try {
        unlinkSync(path);
      } catch {
        /* raced with another cleaner */
      }
    }
  }
  throw new HozoError('LOCKED', `job "${job}": could not take the lock ${path}`, { hint: 'another run is starting at the same moment' });
}
