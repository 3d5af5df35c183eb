// The one record of a run; it feeds the CLI output, --json, metrics and notifications. Types and pure helpers only,
// no imports: a leaf.

/** What a run did with its box: woken or found awake, how long it took, whether and how it went back to sleep. */
export interface HostReport {
  readonly name: string;
  /** The box answered before we did anything. */
  awakeBefore: boolean;
  woke: boolean;
  /** Seconds from the wake call to ready. */
  wakeSeconds?: number;
  /** Seconds the run kept the box up: from the wake call (or the connection, if it was awake) to the shutdown
   *  request or the end of the run; the box's own power-off delay is not included. */
  awakeSeconds?: number;
  /** deferred: the agent will power off when the last other controller's lease is released. */
  shutdown: 'done' | 'deferred' | 'skipped' | 'refused' | 'failed' | 'not-configured';
  shutdownDetail?: string;
}

/** deferred: left for the next wake by the job's window (not a failure). */
export type DatasetResult = 'sent' | 'up-to-date' | 'planned' | 'conflict' | 'failed' | 'deferred';

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
  /** Creation time (unix s) of the newest snapshot on the target, for the lag metric. */
  newestCreation?: number;
  error?: ErrorInfo;
  /** The stream's estimated size (windowed runs): send -nP, or the snapshot's referenced; absent when unknown. */
  estimatedBytes?: number;
  /** Human-readable plan line ("incremental -I @a → @c", "full @a then -I → @c"). */
  plan: string;
}

export interface PoolReport {
  readonly name: string;
  readonly health: string;
  /** Allocated / size, 0..1, when known. */
  readonly capacityRatio?: number;
  /** Read + write + checksum errors, when known (agent status). */
  readonly errors?: number;
  /** End of the last scrub (unix s), when known (agent status). */
  readonly lastScrubEnd?: number;
  /** That scrub is older than the host's scrubWarnAfter (set with lastScrubEnd). */
  readonly scrubOverdue?: boolean;
  /** A scrub in progress (running, or paused across the box's power-off), with its progress 0..1 (agent status). */
  readonly scrub?: { readonly state: 'running' | 'paused'; readonly progress?: number };
}

export interface JobReport {
  /** The output format version (src/output/schemas.ts). */
  readonly version: 1;
  readonly job: string;
  readonly host: string;
  readonly dryRun: boolean;
  /** plan (`hozo plan`), dry-run (`hozo run --dry-run`) or run: the first two change nothing. */
  readonly mode: 'run' | 'plan' | 'dry-run';
  readonly startedAt: string;
  finishedAt: string;
  seconds: number;
  result: 'ok' | 'failed' | 'unreachable' | 'error';
  datasets: DatasetReport[];
  targetPools: PoolReport[];
  /** The box: whether it was woken, wake and awake seconds, how it was put back to sleep. */
  hosts: HostReport[];
  bytes: number;
  warnings: string[];
  /** The rate cap every transfer of this run ran under (bandwidthLimit), when one is set. */
  bandwidthLimit?: { readonly bytesPerSecond: number; readonly from: 'host' | 'job' };
  /** The job's own snapshot (snapshot.create): its name, the datasets that got it (a plan: would get it), whether
   *  it was one point in time, and how many older own snapshots were pruned. */
  ownSnapshot?: { readonly name: string; readonly datasets: number; readonly atomic: boolean; readonly taken: boolean; pruned: number };
  /** The wake window (job `window`): its length, when it closed for transfers, and what it left for the next wake. */
  window?: { readonly maxAwake: number; readonly deadline: string; backlogBytes: number; backlogDatasets: number; unknownSize: number };
  error?: ErrorInfo;
}

/** A run (or restore, verify) that stopped on `e`: unreachable when the box could not be reached, else error. */
export function failedResult(e: unknown): 'unreachable' | 'error' {
  const code = e instanceof Error && 'code' in e ? (e as { code: unknown }).code : undefined;
  return code === 'HOST_UNREACHABLE' || code === 'SSH_AUTH' || code === 'SSH_HOST_KEY' ? 'unreachable' : 'error';
}

export function toErrorInfo(e: unknown): ErrorInfo {
  if (e instanceof Error && 'code' in e && typeof (e as { code: unknown }).code === 'string') {
    const hint = (e as { hint?: string }).hint;
    return { code: (e as { code: string }).code, message: e.message, ...(hint !== undefined ? { hint } : {}) };
  }
  return { code: 'INTERNAL', message: e instanceof Error ? e.message : String(e) };
}

/** An empty report for a run that starts now. */
export function startReport(job: string, host: string, dryRun: boolean, started = Date.now(), mode: JobReport['mode'] = dryRun ? 'plan' : 'run'): JobReport {
  return {
    version: 1,
    job,
    host,
    dryRun,
    mode,
    startedAt: new Date(started).toISOString(),
    finishedAt: '',
    seconds: 0,
    result: 'ok',
    datasets: [],
    targetPools: [],
    hosts: [],
    bytes: 0,
    warnings: [],
  };
}

/** Totals, duration and the overall result once every dataset has its outcome. */
export function closeReport(report: JobReport, hosts: readonly HostReport[]): JobReport {
  report.hosts.push(...hosts);
  report.finishedAt = new Date().toISOString();
  report.seconds = (Date.parse(report.finishedAt) - Date.parse(report.startedAt)) / 1000;
  report.bytes = report.datasets.reduce((n, d) => n + (d.bytes ?? 0), 0);
  if (report.result === 'ok' && report.datasets.some((d) => d.result === 'failed' || d.result === 'conflict')) report.result = 'failed';
  return report;
}
