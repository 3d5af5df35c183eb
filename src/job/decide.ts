// The driver's decisions between rounds of transfers (run.ts), pure so they are tested on their own
// (tests/unit/run-driver.test.ts): which resumed datasets are re-planned, which partial receives are discarded,
// which failures are retried, and what a dataset entry's postRun hook is told.
import type { DatasetPlan } from '../planner/types.js';
import type { DatasetReport } from './report.js';

export const isResume = (p: DatasetPlan): boolean => p.action === 'send' && p.steps[0]?.kind === 'resume';

/** What OpenZFS says when a resume token cannot be used (see src/zfs/errors.ts, ZFS_RESUME_INVALID). */
export const UNUSABLE_TOKEN =
  /resume token is corrupt|resume token does not match|cannot resume send|used in the initial send no longer exists|kind of stream|Resuming recv on existing/i;

/** Resumed streams that completed: the snapshot the token carried is there; the rest is planned from fresh listings. */
export function resumedAndSent(pending: readonly number[], plans: readonly DatasetPlan[], datasets: readonly DatasetReport[]): number[] {
  return pending.filter((i) => isResume(plans[i]!) && datasets[i]!.result === 'sent');
}

/**
 * Resumes the source refused (a stale token: the snapshot it started from is gone). Left alone they block the
 * dataset for good, so their partial state is discarded (`zfs receive -A`, never a snapshot) and the retry plans a
 * normal send.
 */
export function staleResumes(pending: readonly number[], plans: readonly DatasetPlan[], datasets: readonly DatasetReport[]): number[] {
  return pending.filter((i) => {
    const d = datasets[i]!;
    return isResume(plans[i]!) && d.result === 'failed' && UNUSABLE_TOKEN.test(d.error?.message ?? '');
  });
}

/** Failures a retry can mend: the stream broke (PIPELINE_FAILED). A zfs error that says otherwise is final. */
export function retryable(pending: readonly number[], datasets: readonly DatasetReport[]): number[] {
  return pending.filter((i) => datasets[i]!.result === 'failed' && datasets[i]!.error?.code === 'PIPELINE_FAILED');
}

/** A resumed dataset's report after its follow-up send: one line of plan, the bytes and seconds of both. */
export function mergeFollowUp(before: DatasetReport, after: DatasetReport): void {
  after.plan = `${before.plan}, then ${after.plan}`;
  // Nothing left to send after the resume: the resume itself was the send.
  if (after.result === 'up-to-date') after.result = 'sent';
  after.bytes = (after.bytes ?? 0) + (before.bytes ?? 0);
  after.seconds += before.seconds;
}

/** What a dataset entry's postRun hook is told (HOZO_RESULT) about the datasets it covers. */
export function entryResult(reports: readonly DatasetReport[]): 'failed' | 'sent' | 'up-to-date' {
  if (reports.some((r) => r.result === 'failed' || r.result === 'conflict')) return 'failed';
  return reports.some((r) => r.result === 'sent') ? 'sent' : 'up-to-date';
}
