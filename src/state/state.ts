// A small JSON file per job in the state directory: what `hozo status` shows and what the metrics file carries over
// between runs (last success, notification failures, each dataset's newest snapshot on the target).
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import type { DatasetReport, DatasetResult, ErrorInfo, JobReport } from '../job/report.js';
import { safeFileStem, writeFileAtomicSync } from './files.js';

/** A dataset's report, optionally with the creation time (unix s) of the newest snapshot now on the target. */
export type ObservedDataset = DatasetReport & { readonly newestCreation?: number };
/** What the run learnt about the box (the lifecycle's HostReport is one). */
export interface ObservedHost {
  readonly name: string;
  /** Seconds from the wake request until the box was ready. */
  readonly wakeSeconds?: number;
  /** Seconds the box was kept awake by this run. */
  readonly awakeSeconds?: number;
}
/** A JobReport whose datasets may carry `newestCreation` (a plain JobReport is one, with or without `hosts`). */
export type ObservedReport = Omit<JobReport, 'datasets' | 'hosts'> & {
  readonly datasets: readonly ObservedDataset[];
  readonly hosts?: readonly ObservedHost[];
};

export interface DatasetSummary {
  source: string;
  target: string;
  result: DatasetResult;
  bytes?: number;
  seconds: number;
  newest?: string;
  newestCreation?: number;
  error?: ErrorInfo;
}

export interface RunSummary {
  startedAt: string;
  finishedAt: string;
  result: JobReport['result'];
  seconds: number;
  bytes: number;
  datasets: DatasetSummary[];
  error?: ErrorInfo;
  warnings: string[];
}

/** What is known about one dataset across runs (keyed by source), so lag stays known when a run cannot reach the box. */
export interface DatasetMemory {
  target?: string;
  newest?: string;
  /** Creation time (unix s) of the newest snapshot last seen on the target. */
  newestCreation?: number;
  /** ISO time of the last run in which this dataset was sent or already up to date. */
  lastSuccess?: string;
  /** Source snapshot (short name) that carries this job's hold, so a no-op run need not touch holds. */
  held?: string;
}

export interface JobState {
  version: 1;
  job: string;
  lastRun?: RunSummary;
  /** ISO time of the last run whose result was "ok". */
  lastSuccess?: string;
  /** Notifications that failed, ever (a counter: only grows). */
  notifyFailures: number;
  datasets: Record<string, DatasetMemory>;
}

const errorInfo = z.object({ code: z.string(), message: z.string(), hint: z.string().optional() });
const isoTime = z.string().refine((s) => !Number.isNaN(Date.parse(s)), 'expected an ISO time');

const stateFileSchema = z.object({
  version: z.literal(1),
  job: z.string(),
  lastRun: z
    .object({
      startedAt: z.string(),
      finishedAt: z.string(),
      result: z.enum(['ok', 'failed', 'unreachable', 'error']),
      seconds: z.number(),
      bytes: z.number(),
      datasets: z.array(
        z.object({
          source: z.string(),
          target: z.string(),
          result: z.enum(['sent', 'up-to-date', 'planned', 'conflict', 'failed']),
          bytes: z.number().optional(),
          seconds: z.number(),
          newest: z.string().optional(),
          newestCreation: z.number().optional(),
          error: errorInfo.optional(),
        }),
      ),
      error: errorInfo.optional(),
      warnings: z.array(z.string()).default([]),
    })
    .optional(),
  lastSuccess: isoTime.optional(),
  notifyFailures: z.number().int().min(0).default(0),
  datasets: z
    .record(
      z.string(),
      z.object({
        target: z.string().optional(),
        newest: z.string().optional(),
        newestCreation: z.number().optional(),
        lastSuccess: isoTime.optional(),
        held: z.string().optional(),
      }),
    )
    .default({}),
});

export function jobStatePath(stateDirectory: string, job: string): string {
  return join(stateDirectory, 'jobs', `${safeFileStem(job)}.json`);
}

export function emptyJobState(job: string): JobState {
  return { version: 1, job, notifyFailures: 0, datasets: {} };
}

/**
 * The job's state, or undefined when there is none yet. A file that cannot be read or parsed is reported through
 * `warn` and treated as absent: a damaged state file must never stop a backup.
 */
export function readJobState(stateDirectory: string, job: string, warn?: (msg: string) => void): JobState | undefined {
  const path = jobStatePath(stateDirectory, job);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') warn?.(`cannot read state file ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    return undefined;
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    warn?.(`state file ${path} is not valid JSON; ignoring it`);
    return undefined;
  }
  const parsed = stateFileSchema.safeParse(data);
  if (!parsed.success || parsed.data.job !== job) {
    warn?.(`state file ${path} has an unexpected shape; ignoring it`);
    return undefined;
  }
  return parsed.data as JobState;
}

export function isSuccess(report: Pick<JobReport, 'result' | 'dryRun'>): boolean {
  return report.result === 'ok' && !report.dryRun;
}

const datasetOk = (r: DatasetResult) => r === 'sent' || r === 'up-to-date';

/** When the run finished (its report's time, else `now`). */
export function finishedIso(report: Pick<JobReport, 'finishedAt'>, now: Date = new Date()): string {
  return report.finishedAt !== '' && !Number.isNaN(Date.parse(report.finishedAt)) ? report.finishedAt : now.toISOString();
}

/**
 * The state after `report` (pure). A dry run changes nothing. `notifyFailures` is the number of notifications that
 * failed for this run; it is added to the persisted counter.
 */
export function nextJobState(previous: JobState | undefined, report: ObservedReport, opts: { now?: Date; notifyFailures?: number } = {}): JobState {
  const prev = previous ?? emptyJobState(report.job);
  const added = Math.max(0, Math.floor(opts.notifyFailures ?? 0));
  if (report.dryRun) return { ...prev, notifyFailures: prev.notifyFailures + added };
  const finished = finishedIso(report, opts.now);
  // The run summary says what this run saw; the per-dataset memory also keeps what earlier runs saw.
  const summaries: DatasetSummary[] = report.datasets.map((d) => ({
    source: d.source,
    target: d.target,
    result: d.result,
    ...(d.bytes !== undefined ? { bytes: d.bytes } : {}),
    seconds: d.seconds,
    ...(d.newest !== undefined ? { newest: d.newest } : {}),
    ...(d.newestCreation !== undefined ? { newestCreation: d.newestCreation } : {}),
    ...(d.error !== undefined ? { error: d.error } : {}),
  }));
  // A run that never got as far as listing datasets (box unreachable) tells nothing new about them: keep what we knew.
  let datasets = prev.datasets;
  if (summaries.length > 0) {
    datasets = {};
    for (const s of summaries) {
      const memory = prev.datasets[s.source];
      const newest = s.newest ?? memory?.newest;
      const newestCreation = s.newestCreation ?? memory?.newestCreation;
      const lastSuccess = datasetOk(s.result) ? finished : memory?.lastSuccess;
      const held = report.datasets.find((d) => d.source === s.source)?.held ?? memory?.held;
      datasets[s.source] = {
        ...(held !== undefined ? { held } : {}),
        target: s.target,
        ...(newest !== undefined ? { newest } : {}),
        ...(newestCreation !== undefined ? { newestCreation } : {}),
        ...(lastSuccess !== undefined ? { lastSuccess } : {}),
      };
    }
  }
  const lastSuccess = isSuccess(report) ? finished : prev.lastSuccess;
  return {
    version: 1,
    job: report.job,
    lastRun: {
      startedAt: report.startedAt,
      finishedAt: finished,
      result: report.result,
      seconds: report.seconds,
      bytes: report.bytes,
      datasets: summaries,
      ...(report.error !== undefined ? { error: report.error } : {}),
      warnings: [...report.warnings],
    },
    ...(lastSuccess !== undefined ? { lastSuccess } : {}),
    notifyFailures: prev.notifyFailures + added,
    datasets,
  };
}

/** Writes the state atomically (temp file + rename), creating `<stateDirectory>/jobs`. Returns the path. */
export function writeJobState(stateDirectory: string, state: JobState): string {
  const path = jobStatePath(stateDirectory, state.job);
  mkdirSync(join(stateDirectory, 'jobs'), { recursive: true });
  writeFileAtomicSync(path, JSON.stringify(state, null, 2) + '\n', 0o600);
  return path;
}

/** Read, apply the report, write. Returns the new state (for a dry run, the unchanged one, and nothing is written). */
export function recordRun(
  stateDirectory: string,
  report: ObservedReport,
  opts: { now?: Date; notifyFailures?: number; warn?: (msg: string) => void } = {},
): JobState {
  const previous = readJobState(stateDirectory, report.job, opts.warn);
  const next = nextJobState(previous, report, opts);
  if (report.dryRun && (opts.notifyFailures ?? 0) === 0) return next;
  writeJobState(stateDirectory, next);
  return next;
}

/** Adds notification failures to the persisted counter (when notifications run after the run was recorded). */
export function recordNotifyFailures(stateDirectory: string, job: string, count: number, warn?: (msg: string) => void): JobState {
  const state = readJobState(stateDirectory, job, warn) ?? emptyJobState(job);
  const next = { ...state, notifyFailures: state.notifyFailures + Math.max(0, Math.floor(count)) };
  if (next.notifyFailures !== state.notifyFailures) writeJobState(stateDirectory, next);
  return next;
}
