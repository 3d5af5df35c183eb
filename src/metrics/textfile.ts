// The Prometheus textfile for one job (`hozo_<job>.prom`, read by node-exporter's textfile collector).
// Written after every real run, whatever its result, so alerts see failures as well as successes.
//
// Values that must outlive a failed run (last success time, the notification-failure counter, each dataset's newest
// snapshot time) come from the job's state file when the caller passes it as `previous`; without it they are read
// back from the previous textfile, so the file alone is enough to keep `time() - last_success` alerts correct.
import { join } from 'node:path';
import { Counter, Gauge, Registry } from './prom.js';
import { HozoError } from '../errors.js';
import { safeFileStem, writeFileAtomic } from '../state/files.js';
import { readOwnFile } from '../util/safe-fs.js';
import { finishedIso, nextJobState, remembered, type JobState, type ObservedHost, type ObservedReport } from '../state/state.js';

/** Wake timing of a host (the lifecycle's HostReport is one). */
export type HostObservation = ObservedHost;

export interface PoolObservation {
  readonly host: string;
  readonly name: string;
  readonly healthy: boolean;
  /** Allocated / size, 0..1. */
  readonly capacityRatio: number;
  /** End of the last completed scrub (unix s); absent when unknown or never scrubbed. */
  readonly lastScrubEnd?: number;
  /** lastScrubEnd is older than the host's scrubWarnAfter. */
  readonly scrubOverdue?: boolean;
  /** Read + write + checksum errors summed over the pool's vdevs. */
  readonly errors: number;
  /** Progress 0..1 of a scrub running or paused on the pool. */
  readonly scrubProgress?: number;
}

/** What the lifecycle learns besides the JobReport (wake timing, the box's pools from the agent's status). */
export interface MetricsExtra {
  /** Absent: the report's own `hosts` (the lifecycle's HostReport list), if it has them. */
  readonly hosts?: readonly HostObservation[];
  readonly pools?: readonly PoolObservation[];
}

export interface WriteMetricsOptions {
  /** The clock (lag is measured against it). */
  readonly now?: Date;
  /** The job's state before this run (from readJobState). Absent: carried values are read from the old file. */
  readonly previous?: JobState;
  /** Notifications that failed for this run (added to hozo_notify_failures_total). */
  readonly notifyFailures?: number;
}

/** Every metric name this module writes (the dashboard and alert tests check against it). */
export const METRIC_NAMES = [
  'hozo_job_last_run_timestamp_seconds',
  'hozo_job_last_success_timestamp_seconds',
  'hozo_job_last_run_success',
  'hozo_job_last_duration_seconds',
  'hozo_job_last_transferred_bytes',
  'hozo_notify_failures_total',
  'hozo_dataset_last_success',
  'hozo_dataset_last_transferred_bytes',
  'hozo_dataset_lag_seconds',
  'hozo_dataset_newest_snapshot_timestamp_seconds',
  'hozo_host_wake_seconds',
  'hozo_host_awake_seconds',
  'hozo_pool_healthy',
  'hozo_pool_capacity_ratio',
  'hozo_pool_last_scrub_timestamp_seconds',
  'hozo_pool_scrub_overdue',
  'hozo_pool_errors',
  'hozo_job_backlog_bytes',
  'hozo_job_backlog_datasets',
  'hozo_pool_scrub_progress_ratio',
] as const;
export type MetricName = (typeof METRIC_NAMES)[number];

/** `hozo_<job>.prom`; a job name is made file-safe (config already limits it to [A-Za-z0-9_.-]). */
export function metricsFileName(job: string): string {
  return `hozo_${safeFileStem(job)}.prom`;
}

export function metricsFilePath(dir: string, job: string): string {
  return join(dir, metricsFileName(job));
}

const HELP: Record<MetricName, string> = {
  hozo_job_last_run_timestamp_seconds: 'When the last run of the job finished (unix time).',
  hozo_job_last_success_timestamp_seconds: 'When the last fully successful run of the job finished (unix time; 0 if never). Kept across failed runs.',
  hozo_job_last_run_success: 'Whether the last run of the job succeeded (1) or not (0).',
  hozo_job_last_duration_seconds: 'How long the last run of the job took.',
  hozo_job_last_transferred_bytes: 'Bytes sent to the target by the last run of the job.',
  hozo_notify_failures_total: 'Notifications for this job that could not be delivered.',
  hozo_dataset_last_success: 'Whether the dataset was replicated or already up to date (1) in the last run, or not (0).',
  hozo_dataset_last_transferred_bytes: 'Bytes sent for the dataset by the last run.',
  hozo_dataset_lag_seconds: 'Age of the newest snapshot present on the target, measured at the end of the last run.',
  hozo_dataset_newest_snapshot_timestamp_seconds: 'Creation time of the newest snapshot present on the target (unix time).',
  hozo_host_wake_seconds: 'Seconds from the wake request until the host answered, in the last run.',
  hozo_host_awake_seconds: 'Seconds the host was kept awake by the last run.',
  hozo_pool_healthy: 'Whether the pool on the backup host was healthy (ONLINE, 1) or not (0) at the last run.',
  hozo_pool_capacity_ratio: 'Fraction of the pool allocated (0..1) at the last run.',
  hozo_pool_last_scrub_timestamp_seconds: 'When the last scrub of the pool finished (unix time).',
  hozo_pool_scrub_overdue: "Whether the last scrub of the pool is older than the host's scrubWarnAfter (1) or not (0).",
  hozo_pool_errors: 'Read, write and checksum errors reported for the pool at the last run.',
  hozo_job_backlog_bytes: 'Estimated bytes the last run left for the next wake because its wake window (window.maxAwake) closed.',
  hozo_job_backlog_datasets: 'Datasets the last run left for the next wake because of its wake window.',
  hozo_pool_scrub_progress_ratio: "Progress (0..1) of a scrub running or paused on the pool at the last run (it is carried across the box's power cycles).",
};

// Host and pool series also carry `job`: several jobs may share one box, and node-exporter rejects the same series
// from two files.
const LABELS: Record<MetricName, readonly string[]> = {
  hozo_job_last_run_timestamp_seconds: ['job'],
  hozo_job_last_success_timestamp_seconds: ['job'],
  hozo_job_last_run_success: ['job'],
  hozo_job_last_duration_seconds: ['job'],
  hozo_job_last_transferred_bytes: ['job'],
  hozo_notify_failures_total: ['job'],
  hozo_dataset_last_success: ['job', 'dataset'],
  hozo_dataset_last_transferred_bytes: ['job', 'dataset'],
  hozo_dataset_lag_seconds: ['job', 'dataset'],
  hozo_dataset_newest_snapshot_timestamp_seconds: ['job', 'dataset'],
  hozo_host_wake_seconds: ['job', 'host'],
  hozo_host_awake_seconds: ['job', 'host'],
  hozo_pool_healthy: ['job', 'host', 'pool'],
  hozo_pool_capacity_ratio: ['job', 'host', 'pool'],
  hozo_pool_last_scrub_timestamp_seconds: ['job', 'host', 'pool'],
  hozo_pool_scrub_overdue: ['job', 'host', 'pool'],
  hozo_pool_errors: ['job', 'host', 'pool'],
  hozo_job_backlog_bytes: ['job'],
  hozo_job_backlog_datasets: ['job'],
  hozo_pool_scrub_progress_ratio: ['job', 'host', 'pool'],
};

export type MetricSample = { readonly labels: Record<string, string>; readonly value: number };

const seconds = (iso: string) => Date.parse(iso) / 1000;
const round3 = (n: number) => Math.round(n * 1000) / 1000;

/** The samples of every metric for this run (pure; exported for tests and `hozo status --json`). */
export function collectJobMetrics(report: ObservedReport, extra: MetricsExtra, state: JobState, now: Date): Map<MetricName, MetricSample[]> {
  const out = new Map<MetricName, MetricSample[]>(METRIC_NAMES.map((n) => [n, []]));
  const add = (name: MetricName, labels: Record<string, string>, value: number) => {
    if (Number.isFinite(value)) out.get(name)!.push({ labels, value });
  };
  const job = report.job;
  const nowS = now.getTime() / 1000;

  add('hozo_job_last_run_timestamp_seconds', { job }, seconds(finishedIso(report, now)));
  add('hozo_job_last_success_timestamp_seconds', { job }, state.lastSuccess !== undefined ? seconds(state.lastSuccess) : 0);
  add('hozo_job_last_run_success', { job }, report.result === 'ok' ? 1 : 0);
  add('hozo_job_last_duration_seconds', { job }, round3(report.seconds));
  add('hozo_job_last_transferred_bytes', { job }, report.bytes);
  add('hozo_notify_failures_total', { job }, state.notifyFailures);
  // Only for windowed jobs (0 when the window fitted everything).
  if (report.window !== undefined) {
    add('hozo_job_backlog_bytes', { job }, report.window.backlogBytes);
    add('hozo_job_backlog_datasets', { job }, report.window.backlogDatasets);
  }

  const lag = (creation: number | undefined, dataset: string) => {
    if (creation === undefined) return;
    add('hozo_dataset_newest_snapshot_timestamp_seconds', { job, dataset }, creation);
    add('hozo_dataset_lag_seconds', { job, dataset }, round3(Math.max(0, nowS - creation))); // clock skew: never negative
  };
  if (report.datasets.length > 0) {
    for (const d of report.datasets) {
      const dataset = d.source;
      add('hozo_dataset_last_success', { job, dataset }, d.result === 'sent' || d.result === 'up-to-date' ? 1 : 0);
      add('hozo_dataset_last_transferred_bytes', { job, dataset }, d.bytes ?? 0);
      lag(d.newestCreation ?? remembered(state, d.source)?.newestCreation, dataset);
    }
  } else if (report.result !== 'ok') {
    // The run never reached the datasets (box unreachable): they were not replicated, and their lag keeps growing.
    for (const [dataset, memory] of Object.entries(state.datasets)) {
      add('hozo_dataset_last_success', { job, dataset }, 0);
      add('hozo_dataset_last_transferred_bytes', { job, dataset }, 0);
      lag(memory.newestCreation, dataset);
    }
  }

  for (const h of extra.hosts ?? report.hosts ?? []) {
    if (h.wakeSeconds !== undefined) add('hozo_host_wake_seconds', { job, host: h.name }, round3(h.wakeSeconds));
    if (h.awakeSeconds !== undefined) add('hozo_host_awake_seconds', { job, host: h.name }, round3(h.awakeSeconds));
  }
  const seen = new Set<string>();
  for (const p of extra.pools ?? []) {
    const labels = { job, host: p.host, pool: p.name };
    seen.add(`${p.host}\0${p.name}`);
    add('hozo_pool_healthy', labels, p.healthy ? 1 : 0);
    add('hozo_pool_capacity_ratio', labels, p.capacityRatio);
    if (p.lastScrubEnd !== undefined) add('hozo_pool_last_scrub_timestamp_seconds', labels, p.lastScrubEnd);
    if (p.scrubOverdue !== undefined) add('hozo_pool_scrub_overdue', labels, p.scrubOverdue ? 1 : 0);
    add('hozo_pool_errors', labels, p.errors);
    if (p.scrubProgress !== undefined) add('hozo_pool_scrub_progress_ratio', labels, p.scrubProgress);
  }
  // Without the agent's status, the run's own `zpool` health check still tells healthy or not.
  for (const p of report.targetPools) {
    if (!seen.has(`${report.host}\0${p.name}`)) add('hozo_pool_healthy', { job, host: report.host, pool: p.name }, p.health === 'ONLINE' ? 1 : 0);
  }
  return out;
}

/** The exposition text (a fresh prom-client Registry each time; the global registry is never touched). */
export async function renderJobMetrics(samples: Map<MetricName, MetricSample[]>): Promise<string> {
  const registry = new Registry();
  for (const [name, list] of samples) {
    if (list.length === 0) continue; // no HELP/TYPE for a family without samples
    const config = { name, help: HELP[name], labelNames: [...LABELS[name]], registers: [registry] };
    if (name.endsWith('_total')) {
      const c = new Counter(config);
      for (const s of list) c.inc(s.labels, s.value);
    } else {
      const g = new Gauge(config);
      for (const s of list) g.set(s.labels, s.value);
    }
  }
  return registry.metrics();
}

/** Values to carry over, read back from an earlier textfile of this job (for when no state is passed). */
export function carriedFromTextfile(text: string, job: string): JobState {
  const state: JobState = { version: 1, job, notifyFailures: 0, datasets: {} };
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (m === null) continue;
    const labels = parseLabels(m[2] ?? '');
    const value = Number(m[3]);
    if (labels['job'] !== job || !Number.isFinite(value)) continue;
    switch (m[1]) {
      case 'hozo_job_last_success_timestamp_seconds':
        if (value > 0) state.lastSuccess = new Date(value * 1000).toISOString();
        break;
      case 'hozo_notify_failures_total':
        state.notifyFailures = Math.max(0, Math.floor(value));
        break;
      case 'hozo_dataset_newest_snapshot_timestamp_seconds':
        if (labels['dataset'] !== undefined && labels['dataset'] !== '__proto__') state.datasets[labels['dataset']] = { newestCreation: value };
        break;
    }
  }
  return state;
}

function parseLabels(text: string): Record<string, string> {
  const labels: Record<string, string> = {};
  const re = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;
  for (let m = re.exec(text); m !== null; m = re.exec(text)) {
    labels[m[1]!] = m[2]!.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
  }
  return labels;
}

/**
 * Writes `<dir>/hozo_<job>.prom` atomically (temp file in `dir`, then rename; mode 0644) and returns its path.
 * A dry run writes nothing and returns undefined. Throws HozoError when the directory cannot be written.
 */
export async function writeJobMetrics(
  dir: string,
  report: ObservedReport,
  extra: MetricsExtra = {},
  opts: WriteMetricsOptions = {},
): Promise<string | undefined> {
  if (report.dryRun) return undefined;
  const now = opts.now ?? new Date();
  const path = metricsFilePath(dir, report.job);
  let previous = opts.previous;
  if (previous === undefined) {
    let old: string | undefined;
    try {
      old = readOwnFile(path);
    } catch {
      old = undefined; // none yet, or not a file hozo wrote: nothing carried over
    }
    if (old !== undefined) previous = carriedFromTextfile(old, report.job);
  }
  const state = nextJobState(previous, report, { now, notifyFailures: opts.notifyFailures ?? 0 });
  const text = await renderJobMetrics(collectJobMetrics(report, extra, state, now));
  try {
    await writeFileAtomic(path, text, 0o644);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? (e as Error).message;
    throw new HozoError('INTERNAL', `cannot write metrics file ${path}: ${code}`, {
      hint: 'check that metrics.textfileDirectory exists and is writable by the hozo service',
      cause: e,
    });
  }
  return path;
}
