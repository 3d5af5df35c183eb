// The one record of a run; it feeds the CLI output, --json, metrics and notifications.

export type DatasetResult = 'sent' | 'up-to-date' | 'planned' | 'conflict' | 'failed';

export interface ErrorInfo {
  readonly code: string;
  readonly message: string;
  readonly hint?: string;
}

export interface DatasetReport {
  readonly source: string;
  readonly target: string;
  result: DatasetResult;
  /** Common base the increment started from (short snapshot name), if any. */
  base?: string;
  /** Newest snapshot now on the target. */
  newest?: string;
  /** Snapshots the target received in this run (short names). */
  snapshotsSent: string[];
  bytes?: number;
  seconds: number;
  verified: boolean;
  /** The snapshot held on the source with the job's tag after this run. */
  held?: string;
  error?: ErrorInfo;
  /** Human-readable plan line ("incremental -I @a → @c", "full @a then -I → @c"). */
  plan: string;
}

export interface PoolReport {
  readonly name: string;
  readonly health: string;
}

export interface JobReport {
  readonly job: string;
  readonly host: string;
  readonly dryRun: boolean;
  readonly startedAt: string;
  finishedAt: string;
  seconds: number;
  result: 'ok' | 'failed' | 'unreachable' | 'error';
  datasets: DatasetReport[];
  targetPools: PoolReport[];
  bytes: number;
  warnings: string[];
  error?: ErrorInfo;
}

export function toErrorInfo(e: unknown): ErrorInfo {
  if (e instanceof Error && 'code' in e && typeof (e as { code: unknown }).code === 'string') {
    const hint = (e as { hint?: string }).hint;
    return { code: (e as { code: string }).code, message: e.message, ...(hint !== undefined ? { hint } : {}) };
  }
  return { code: 'INTERNAL', message: e instanceof Error ? e.message : String(e) };
}
