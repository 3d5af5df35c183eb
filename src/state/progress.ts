// A running job's transfer progress as a small file in the state directory (progress/<job>.json), so that another
// process — `hozo serve`'s page and event stream — can show it for any run, started from the web, by a timer or by
// hand. Written at most once a second, atomically; removed when the run ends. A file whose writer is gone is stale.
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger, TransferProgress } from '../util/log.js';
import { pidExists } from '../util/proc.js';
import { ensureDirectory, readOwnFile } from '../util/safe-fs.js';
import { safeFileStem, writeFileAtomicSync } from './files.js';

export interface JobProgress extends TransferProgress {
  readonly job: string;
  readonly pid: number;
  /** ISO time it was written. */
  readonly at: string;
}

export function progressPath(stateDirectory: string, job: string): string {
  return join(stateDirectory, 'progress', `${safeFileStem(job)}.json`);
}

/** `log` with `transfer` writing the job's progress file (at most every `everyMs`); `done()` removes it. */
export function withProgressFile(log: Logger, stateDirectory: string, job: string, everyMs = 1000): { log: Logger; done(): void } {
  const path = progressPath(stateDirectory, job);
  let last = 0;
  let written = false;
  let broken = false;
  const transfer = (p: TransferProgress) => {
    const now = Date.now();
    if (broken || now - last < everyMs) return;
    last = now;
    try {
      if (!written) ensureDirectory(join(stateDirectory, 'progress'), 0o755);
      writeFileAtomicSync(path, `${JSON.stringify({ job, pid: process.pid, ...p, at: new Date(now).toISOString() })}\n`);
      written = true;
    } catch (e) {
      broken = true; // never fails the backup; said once
      log.debug(`cannot write the progress file ${path}: ${(e as Error).message}`);
    }
  };
  return {
    log: { ...log, transfer },
    done() {
      if (written) rmSync(path, { force: true });
    },
  };
}

/** The job's progress now, or undefined (no run transferring, or a stale file whose writer is gone). */
export function readProgress(stateDirectory: string, job: string): JobProgress | undefined {
  try {
    const p = JSON.parse(readOwnFile(progressPath(stateDirectory, job), 64 * 1024)) as JobProgress;
    if (typeof p.bytes !== 'number' || typeof p.dataset !== 'string' || typeof p.pid !== 'number' || !pidExists(p.pid)) return undefined;
    return p;
  } catch {
    return undefined;
  }
}
