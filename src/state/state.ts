// A small JSON file per job in the state directory: what `hozo status` shows and what the metrics file carries over
// between runs (last success, notification failures, each dataset's newest snapshot on the target).
import { errnoWords } from '../config/read.js';
import { shownPath } from '../config/shown.js';
import { stateDirectoryProblem } from './dir.js';
// mkdir -p that resolves the existing part first: a recursive mkdir into /proc (a symlink there) never returns.
import { ensureDirectory, readOwnFile } from '../util/safe-fs.js';
import { join } from 'node:path';
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

// The state file is checked by hand, not with the config's zod: `hozo run` reads it on every run, and loading zod
// is the largest part of the CLI's start-up on a slow CPU (1.3 s of a run's fixed cost in the OpenZFS lab's VMs,
// docs/bench.md). Like a zod object, the result keeps only the known fields; any wrong type rejects the file.
class Shape extends Error {}
type Obj = Record<string, unknown>;
const obj = (v: unknown): Obj => {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Shape();
  return v as Obj;
};
const str = (v: unknown): string => {
  if (typeof v !== 'string') throw new Shape();
  return v;
};
const num = (v: unknown): number => {
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new Shape();
  return v;
};
const oneOf = <T extends string>(v: unknown, values: readonly T[]): T => {
  if (!values.includes(v as T)) throw new Shape();
  return v as T;
};
const isoTime = (v: unknown): string => {
  if (Number.isNaN(Date.parse(str(v)))) throw new Shape();
  return v as string;
};
/** `{ key: read(o[key]) }` when present (undefined counts as absent), else nothing. */
const opt = <T>(o: Obj, key: string, read: (v: unknown) => T): Record<string, T> => (o[key] === undefined ? {} : { [key]: read(o[key]) });
const errorInfo = (v: unknown): ErrorInfo => {
  const o = obj(v);
  return { code: str(o['code']), message: str(o['message']), ...opt(o, 'hint', str) };
};

function datasetSummary(v: unknown): DatasetSummary {
  const o = obj(v);
  return {
    source: str(o['source']),
    target: str(o['target']),
    result: oneOf(o['result'], ['sent', 'up-to-date', 'planned', 'conflict', 'failed', 'deferred'] as const),
    ...opt(o, 'bytes', num),
    seconds: num(o['seconds']),
    ...opt(o, 'newest', str),
    ...opt(o, 'newestCreation', num),
    ...opt(o, 'error', errorInfo),
  };
}

function runSummary(v: unknown): RunSummary {
  const o = obj(v);
  const datasets = o['datasets'];
  if (!Array.isArray(datasets)) throw new Shape();
  const warnings = o['warnings'] ?? [];
  if (!Array.isArray(warnings)) throw new Shape();
  return {
    startedAt: str(o['startedAt']),
    finishedAt: str(o['finishedAt']),
    result: oneOf(o['result'], ['ok', 'failed', 'unreachable', 'error'] as const),
    seconds: num(o['seconds']),
    bytes: num(o['bytes']),
    datasets: datasets.map(datasetSummary),
    ...opt(o, 'error', errorInfo),
    warnings: warnings.map(str),
  };
}

function datasetMemory(v: unknown): DatasetMemory {
  const o = obj(v);
  return { ...opt(o, 'target', str), ...opt(o, 'newest', str), ...opt(o, 'newestCreation', num), ...opt(o, 'lastSuccess', isoTime), ...opt(o, 'held', str) };
}

/** The state file's content as a JobState, or undefined when its shape is wrong. */
export function parseJobState(data: unknown): JobState | undefined {
  try {
    const o = obj(data);
    if (o['version'] !== 1) return undefined;
    const notifyFailures = o['notifyFailures'] ?? 0;
    if (!Number.isInteger(notifyFailures) || (notifyFailures as number) < 0) return undefined;
    const datasets: Record<string, DatasetMemory> = {};
    // (No dataset is named __proto__: pool names begin with a letter; assigning it would set the prototype.)
    for (const [k, v] of Object.entries(o['datasets'] === undefined ? {} : obj(o['datasets']))) if (k !== '__proto__') datasets[k] = datasetMemory(v);
    return {
      version: 1,
      job: str(o['job']),
      ...opt(o, 'lastRun', runSummary),
      ...opt(o, 'lastSuccess', isoTime),
      notifyFailures: notifyFailures as number,
      datasets,
    };
  } catch (e) {
    if (e instanceof Shape) return undefined;
    throw e;
  }
}

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
/** What the state remembers of a dataset: own keys only (a pool named constructor is not Object's). */
export function remembered(state: JobState | undefined, dataset: string): DatasetMemory | undefined {
  return state !== undefined && Object.hasOwn(state.datasets, dataset) ? state.datasets[dataset] : undefined;
}

export function readJobState(stateDirectory: string, job: string, warn?: (msg: string) => void): JobState | undefined {
  const path = jobStatePath(stateDirectory, job);
  let text: string;
  try {
    text = readOwnFile(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') {
      const dir = stateDirectoryProblem(stateDirectory);
      warn?.(
        `cannot read state file ${shownPath(path)}: ${errnoWords(e)}${dir !== undefined ? ` (stateDirectory ${shownPath(stateDirectory)}: ${dir}; a run would refuse it)` : ''}`,
      );
    }
    return undefined;
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    warn?.(`state file ${path} is not valid JSON; ignoring it`);
    return undefined;
  }
  const parsed = parseJobState(data);
  if (parsed === undefined || parsed.job !== job) {
    warn?.(`state file ${path} has an unexpected shape; ignoring it`);
    return undefined;
  }
  return parsed;
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
      const memory = remembered(prev, s.source);
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
  ensureDirectory(join(stateDirectory, 'jobs'), 0o755);
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
