// Each job's recent runs, newest first, for `hozo serve` (GET /api/jobs/{job}/runs, the page's last runs): one JSON
// file per job in the state directory, rewritten atomically after every run, bounded in count and in bytes (a run of
// thousands of datasets is a large report; the oldest go first). The state file (state.ts) stays what runs read.
import { join } from 'node:path';
import { ensureDirectory, readOwnFile } from '../util/safe-fs.js';
import { safeFileStem, writeFileAtomicSync } from './files.js';

/** Runs kept per job. */
export const MAX_RUNS = 100;
/** Bytes the kept runs may take per job (what readOwnFile reads back, with room). */
export const MAX_HISTORY_BYTES = 8 * 1024 * 1024;

export function historyPath(stateDirectory: string, job: string): string {
  return join(stateDirectory, 'history', `${safeFileStem(job)}.json`);
}

/** The job's kept runs, newest first; none when there is no file yet. A file hozo cannot read back is `warn`ed about. */
export function readRuns(stateDirectory: string, job: string, warn: (m: string) => void = () => undefined): unknown[] {
  const path = historyPath(stateDirectory, job);
  let text: string;
  try {
    text = readOwnFile(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') warn(`cannot read run history ${path}: ${(e as Error).message}`);
    return [];
  }
  try {
    const data = JSON.parse(text) as { version?: unknown; runs?: unknown };
    if (data.version === 1 && Array.isArray(data.runs)) return data.runs;
  } catch {
    // below
  }
  warn(`run history ${path} is not one hozo wrote; it is started afresh with the next run`);
  return [];
}

/** Puts `report` first in the job's history and drops what is over MAX_RUNS or MAX_HISTORY_BYTES. */
export function appendRun(stateDirectory: string, job: string, report: unknown, warn: (m: string) => void = () => undefined): void {
  ensureDirectory(join(stateDirectory, 'history'), 0o755);
  const kept: string[] = [];
  let bytes = 0;
  for (const r of [report, ...readRuns(stateDirectory, job, warn)].slice(0, MAX_RUNS)) {
    const text = JSON.stringify(r);
    // The newest is always kept, however large; the others while they fit.
    if (kept.length > 0 && bytes + text.length > MAX_HISTORY_BYTES) break;
    kept.push(text);
    bytes += text.length + 1;
  }
  writeFileAtomicSync(historyPath(stateDirectory, job), `{"version":1,"runs":[\n${kept.join(',\n')}\n]}\n`);
}
