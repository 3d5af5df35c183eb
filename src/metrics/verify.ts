// The Prometheus textfile of a job's verifications (`hozo_verify_<job>.prom`, beside the run's `hozo_<job>.prom`, so
// neither overwrites the other). The last success time is carried over from the previous file across failed runs.
import { join } from 'node:path';
import { Gauge, Registry } from './prom.js';
import { HozoError } from '../errors.js';
import type { VerifyReport } from '../job/verify.js';
import { safeFileStem, writeFileAtomic } from '../state/files.js';
import { readOwnFile } from '../util/safe-fs.js';

export const VERIFY_METRIC_NAMES = [
  'hozo_verify_last_run_timestamp_seconds',
  'hozo_verify_last_success_timestamp_seconds',
  'hozo_verify_last_run_success',
  'hozo_verify_last_restore_test',
  'hozo_verify_datasets',
  'hozo_verify_files_checked',
  'hozo_verify_bytes_checked',
  'hozo_verify_mismatches',
] as const;

const HELP: Record<(typeof VERIFY_METRIC_NAMES)[number], string> = {
  hozo_verify_last_run_timestamp_seconds: 'When the last hozo verify of the job finished (unix time).',
  hozo_verify_last_success_timestamp_seconds: 'When the last successful hozo verify of the job finished (unix time; 0 if never). Kept across failed runs.',
  hozo_verify_last_run_success: 'Whether the last verify succeeded (1) or not (0).',
  hozo_verify_last_restore_test: 'Whether the last verify restored the backups and compared them (1) or only checked guids, holds and pools (0).',
  hozo_verify_datasets: 'Datasets of the last verify by result (ok, failed).',
  hozo_verify_files_checked: 'Files whose content the last restore test compared.',
  hozo_verify_bytes_checked: 'Bytes of file content the last restore test compared.',
  hozo_verify_mismatches: 'Paths that differed between the source snapshot and its restored backup in the last restore test.',
};

export const verifyMetricsFileName = (job: string) => `hozo_verify_${safeFileStem(job)}.prom`;

export function renderVerifyMetrics(r: VerifyReport, lastSuccess: number): Promise<string> {
  const registry = new Registry();
  const g = (name: (typeof VERIFY_METRIC_NAMES)[number], labelNames: string[] = ['job']) =>
    new Gauge({ name, help: HELP[name], labelNames, registers: [registry] });
  const job = { job: r.job };
  const end = Date.parse(r.finishedAt) / 1000;
  g('hozo_verify_last_run_timestamp_seconds').set(job, end);
  g('hozo_verify_last_success_timestamp_seconds').set(job, r.result === 'ok' ? end : lastSuccess);
  g('hozo_verify_last_run_success').set(job, r.result === 'ok' ? 1 : 0);
  g('hozo_verify_last_restore_test').set(job, r.restoreTest ? 1 : 0);
  const ds = g('hozo_verify_datasets', ['job', 'result']);
  for (const result of ['ok', 'failed'] as const) ds.set({ ...job, result }, r.datasets.filter((d) => d.result === result).length);
  const tests = r.datasets.map((d) => d.restoreTest).filter((t) => t !== undefined);
  g('hozo_verify_files_checked').set(
    job,
    tests.reduce((n, t) => n + (t.filesChecked ?? 0), 0),
  );
  g('hozo_verify_bytes_checked').set(
    job,
    tests.reduce((n, t) => n + (t.bytesChecked ?? 0), 0),
  );
  g('hozo_verify_mismatches').set(
    job,
    tests.reduce((n, t) => n + (t.mismatches?.length ?? 0), 0),
  );
  return registry.metrics();
}

export async function writeVerifyMetrics(dir: string, r: VerifyReport): Promise<string> {
  const path = join(dir, verifyMetricsFileName(r.job));
  let old = '';
  try {
    old = readOwnFile(path);
  } catch {
    // none yet, or not a file hozo wrote
  }
  const m = /^hozo_verify_last_success_timestamp_seconds\{[^}]*\}\s+(\S+)/m.exec(old);
  const lastSuccess = m !== null && Number.isFinite(Number(m[1])) ? Number(m[1]) : 0;
  try {
    await writeFileAtomic(path, await renderVerifyMetrics(r, lastSuccess), 0o644);
  } catch (e) {
    throw new HozoError('INTERNAL', `cannot write metrics file ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, {
      hint: 'check that metrics.textfileDirectory exists and is writable',
    });
  }
  return path;
}
