import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { HozoError } from '../../src/errors.js';
import type { JobReport } from '../../src/job/report.js';
import {
  METRIC_NAMES,
  carriedFromTextfile,
  metricsFileName,
  writeJobMetrics,
  type MetricsExtra,
  type WriteMetricsOptions,
} from '../../src/metrics/textfile.js';
import { emptyJobState, nextJobState, type ObservedReport } from '../../src/state/state.js';

// ---- promtool: every file a test writes goes through `promtool check metrics` ----

const PROMTOOL = (() => {
  const r = spawnSync('promtool', ['--version'], { encoding: 'utf8' });
  return r.status === 0 ? 'promtool' : undefined;
})();
let promtoolChecked = 0;

function promtoolCheckMetrics(text: string): void {
  if (PROMTOOL === undefined) {
    console.warn('SKIP: promtool not installed (Debian package "prometheus"); `promtool check metrics` not run');
    return;
  }
  const r = spawnSync(PROMTOOL, ['check', 'metrics'], { input: text, encoding: 'utf8' });
  expect({ status: r.status, out: (r.stdout + r.stderr).trim() }).toEqual({ status: 0, out: '' });
  promtoolChecked++;
}

afterAll(() => {
  if (PROMTOOL !== undefined) expect(promtoolChecked).toBeGreaterThan(0);
});

/** writeJobMetrics, then promtool on the file it wrote. */
async function write(dir: string, report: ObservedReport, extra: MetricsExtra = {}, opts: WriteMetricsOptions = {}): Promise<string> {
  const path = await writeJobMetrics(dir, report, extra, opts);
  expect(path).toBeDefined();
  promtoolCheckMetrics(readFileSync(path!, 'utf8'));
  return path!;
}

// ---- an independent parser of the text format (not the module's own) ----

interface Parsed {
  help: Map<string, string>;
  type: Map<string, string>;
  samples: { name: string; labels: Record<string, string>; value: number }[];
}

function parseProm(text: string): Parsed {
  const out: Parsed = { help: new Map(), type: new Map(), samples: [] };
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    let m = /^# HELP (\S+) (.*)$/.exec(line);
    if (m) {
      out.help.set(m[1]!, m[2]!);
      continue;
    }
    m = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (m) {
      out.type.set(m[1]!, m[2]!);
      continue;
    }
    m = /^([a-z_:][a-z0-9_:]*)(?:\{([^}]*)\})? (\S+)$/i.exec(line);
    if (!m) throw new Error(`unparsable line: ${line}`);
    const labels: Record<string, string> = {};
    for (const pair of (m[2] ?? '').split(',').filter(Boolean)) {
      const [k, v] = pair.split('=');
      labels[k!] = JSON.parse(v!) as string;
    }
    out.samples.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return out;
}

function value(p: Parsed, name: string, labels: Record<string, string>): number | undefined {
  const hits = p.samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  expect(hits.length).toBeLessThanOrEqual(1);
  return hits[0]?.value;
}

const readParsed = (path: string) => parseProm(readFileSync(path, 'utf8'));

// A plain JobReport is accepted wherever an ObservedReport is (compile-time check).
const acceptsJobReport = (r: JobReport): ObservedReport => r;
void acceptsJobReport;

// ---- fixtures ----

const T0 = Date.parse('2026-03-01T04:00:00Z') / 1000;
const at = (s: number) => new Date(s * 1000);
const iso = (s: number) => at(s).toISOString();

function report(over: Partial<JobReport> & { datasets?: ObservedReport['datasets'] } = {}, finished = T0 + 600): ObservedReport {
  return {
    job: 'nightly',
    host: 'box',
    dryRun: false,
    startedAt: iso(finished - 600),
    finishedAt: iso(finished),
    seconds: 600,
    result: 'ok',
    datasets: [
      {
        source: 'tank/home',
        target: 'backup/home',
        result: 'sent',
        snapshotsSent: ['@a'],
        bytes: 1000,
        seconds: 10,
        verified: true,
        plan: 'incremental',
        newestCreation: finished - 3600,
      },
      {
        source: 'tank/db',
        target: 'backup/db',
        result: 'up-to-date',
        snapshotsSent: [],
        bytes: 0,
        seconds: 1,
        verified: true,
        plan: 'up to date',
        newestCreation: finished - 7200,
      },
    ],
    targetPools: [{ name: 'backup', health: 'ONLINE' }],
    bytes: 1000,
    warnings: [],
    ...over,
  };
}

function failedReport(finished: number): ObservedReport {
  const r = report({}, finished);
  return {
    ...r,
    result: 'failed',
    bytes: 0,
    datasets: [
      { ...r.datasets[0]!, result: 'failed', bytes: 0, error: { code: 'PIPELINE_FAILED', message: 'zfs receive died', hint: 'check the box' } },
      r.datasets[1]!,
    ],
  };
}

function unreachableReport(finished: number): ObservedReport {
  return {
    ...report({}, finished),
    result: 'unreachable',
    datasets: [],
    targetPools: [],
    bytes: 0,
    error: { code: 'HOST_UNREACHABLE', message: 'box did not wake' },
  };
}

const extra: MetricsExtra = {
  hosts: [{ name: 'box', wakeSeconds: 42.25, awakeSeconds: 700 }],
  pools: [
    { host: 'box', name: 'backup', healthy: true, capacityRatio: 0.61, lastScrubEnd: T0 - 86400 * 3, scrubOverdue: false, errors: 0, scrubProgress: 0.25 },
  ],
};

const tmp = () => mkdtempSync(join(tmpdir(), 'hozo-metrics-'));
const entries = (dir: string) => readdirSync(dir).sort();

describe('writeJobMetrics', () => {
  it('writes every metric with HELP, TYPE, labels and values for a successful run', async () => {
    const dir = tmp();
    const window = { maxAwake: 7200, deadline: iso(T0), backlogBytes: 5000, backlogDatasets: 1, unknownSize: 0 };
    const path = await write(dir, report({ window }), extra, { now: at(T0 + 600) });
    expect(path).toBe(join(dir, 'hozo_nightly.prom'));
    expect(entries(dir)).toEqual(['hozo_nightly.prom']);
    expect(statSync(path).mode & 0o777).toBe(0o644);

    const p = readParsed(path);
    for (const name of new Set(p.samples.map((s) => s.name))) {
      expect(p.help.get(name), `HELP for ${name}`).toBeTruthy();
      expect(p.type.get(name), `TYPE for ${name}`).toMatch(/^(gauge|counter)$/);
      expect(METRIC_NAMES).toContain(name);
    }
    // every documented metric appears when its inputs are present
    expect(new Set(p.samples.map((s) => s.name))).toEqual(new Set(METRIC_NAMES));
    expect(p.type.get('hozo_notify_failures_total')).toBe('counter');

    const job = { job: 'nightly' };
    expect(value(p, 'hozo_job_last_run_timestamp_seconds', job)).toBe(T0 + 600);
    expect(value(p, 'hozo_job_last_success_timestamp_seconds', job)).toBe(T0 + 600);
    expect(value(p, 'hozo_job_last_run_success', job)).toBe(1);
    expect(value(p, 'hozo_job_backlog_bytes', job)).toBe(5000);
    expect(value(p, 'hozo_job_backlog_datasets', job)).toBe(1);
    expect(value(p, 'hozo_job_last_duration_seconds', job)).toBe(600);
    expect(value(p, 'hozo_job_last_transferred_bytes', job)).toBe(1000);
    expect(value(p, 'hozo_notify_failures_total', job)).toBe(0);

    const home = { job: 'nightly', dataset: 'tank/home' };
    const db = { job: 'nightly', dataset: 'tank/db' };
    expect(value(p, 'hozo_dataset_last_success', home)).toBe(1);
    expect(value(p, 'hozo_dataset_last_success', db)).toBe(1);
    expect(value(p, 'hozo_dataset_last_transferred_bytes', home)).toBe(1000);
    expect(value(p, 'hozo_dataset_last_transferred_bytes', db)).toBe(0);
    expect(value(p, 'hozo_dataset_lag_seconds', home)).toBe(3600);
    expect(value(p, 'hozo_dataset_lag_seconds', db)).toBe(7200);
    expect(value(p, 'hozo_dataset_newest_snapshot_timestamp_seconds', home)).toBe(T0 + 600 - 3600);

    expect(value(p, 'hozo_host_wake_seconds', { job: 'nightly', host: 'box' })).toBe(42.25);
    expect(value(p, 'hozo_host_awake_seconds', { job: 'nightly', host: 'box' })).toBe(700);
    const pool = { job: 'nightly', host: 'box', pool: 'backup' };
    expect(value(p, 'hozo_pool_healthy', pool)).toBe(1);
    expect(value(p, 'hozo_pool_capacity_ratio', pool)).toBe(0.61);
    expect(value(p, 'hozo_pool_last_scrub_timestamp_seconds', pool)).toBe(T0 - 86400 * 3);
    expect(value(p, 'hozo_pool_errors', pool)).toBe(0);

    // label sets as documented
    for (const s of p.samples) {
      const keys = Object.keys(s.labels).sort();
      if (s.name.startsWith('hozo_job_') || s.name === 'hozo_notify_failures_total') expect(keys).toEqual(['job']);
      if (s.name.startsWith('hozo_dataset_')) expect(keys).toEqual(['dataset', 'job']);
      if (s.name.startsWith('hozo_host_')) expect(keys).toEqual(['host', 'job']);
      if (s.name.startsWith('hozo_pool_')) expect(keys).toEqual(['host', 'job', 'pool']);
    }
  });

  it('keeps the last success time across a failed run (state passed as previous)', async () => {
    const dir = tmp();
    const okRun = report({}, T0);
    await write(dir, okRun, extra, { now: at(T0) });
    const state = nextJobState(undefined, okRun, { now: at(T0) });
    const path = await write(dir, failedReport(T0 + 86400), extra, { now: at(T0 + 86400), previous: state });
    const p = readParsed(path);
    expect(value(p, 'hozo_job_last_success_timestamp_seconds', { job: 'nightly' })).toBe(T0);
    expect(value(p, 'hozo_job_last_run_timestamp_seconds', { job: 'nightly' })).toBe(T0 + 86400);
    expect(value(p, 'hozo_job_last_run_success', { job: 'nightly' })).toBe(0);
    expect(value(p, 'hozo_dataset_last_success', { job: 'nightly', dataset: 'tank/home' })).toBe(0);
    expect(value(p, 'hozo_dataset_last_success', { job: 'nightly', dataset: 'tank/db' })).toBe(1);
  });

  it('keeps the last success time across failed runs with no state, read back from the previous file', async () => {
    const dir = tmp();
    await write(dir, report({}, T0), extra, { now: at(T0) });
    await write(dir, failedReport(T0 + 86400), extra, { now: at(T0 + 86400) });
    const path = await write(dir, unreachableReport(T0 + 2 * 86400), {}, { now: at(T0 + 2 * 86400) });
    const p = readParsed(path);
    expect(value(p, 'hozo_job_last_success_timestamp_seconds', { job: 'nightly' })).toBe(T0);
    expect(value(p, 'hozo_job_last_run_timestamp_seconds', { job: 'nightly' })).toBe(T0 + 2 * 86400);
    expect(value(p, 'hozo_job_last_run_success', { job: 'nightly' })).toBe(0);
    // a later success moves it forward again
    const again = readParsed(await write(dir, report({}, T0 + 3 * 86400), extra, { now: at(T0 + 3 * 86400) }));
    expect(value(again, 'hozo_job_last_success_timestamp_seconds', { job: 'nightly' })).toBe(T0 + 3 * 86400);
  });

  it('reports 0 as the last success of a job that never succeeded', async () => {
    const p = readParsed(await write(tmp(), failedReport(T0), {}, { now: at(T0) }));
    expect(value(p, 'hozo_job_last_success_timestamp_seconds', { job: 'nightly' })).toBe(0);
  });

  for (const mode of ['state', 'previous file'] as const) {
    it(`carries datasets through an unreachable run (${mode}): not successful, lag still growing`, async () => {
      const dir = tmp();
      const okRun = report({}, T0);
      await write(dir, okRun, extra, { now: at(T0) });
      const later = T0 + 2 * 86400;
      const previous = mode === 'state' ? { previous: nextJobState(undefined, okRun, { now: at(T0) }) } : {};
      const p = readParsed(await write(dir, unreachableReport(later), {}, { now: at(later), ...previous }));
      const home = { job: 'nightly', dataset: 'tank/home' };
      expect(value(p, 'hozo_dataset_last_success', home)).toBe(0);
      expect(value(p, 'hozo_dataset_last_transferred_bytes', home)).toBe(0);
      expect(value(p, 'hozo_dataset_lag_seconds', home)).toBe(2 * 86400 + 3600);
      expect(value(p, 'hozo_dataset_newest_snapshot_timestamp_seconds', home)).toBe(T0 - 3600);
      expect(value(p, 'hozo_dataset_lag_seconds', { job: 'nightly', dataset: 'tank/db' })).toBe(2 * 86400 + 7200);
      expect(p.samples.some((s) => s.name.startsWith('hozo_pool_') || s.name.startsWith('hozo_host_'))).toBe(false);
    });
  }

  it('persists hozo_notify_failures_total: from state, and from the previous file', async () => {
    const dir = tmp();
    let p = readParsed(await write(dir, report({}, T0), {}, { now: at(T0), notifyFailures: 2 }));
    expect(value(p, 'hozo_notify_failures_total', { job: 'nightly' })).toBe(2);
    p = readParsed(await write(dir, failedReport(T0 + 10), {}, { now: at(T0 + 10), notifyFailures: 1 }));
    expect(value(p, 'hozo_notify_failures_total', { job: 'nightly' })).toBe(3);
    p = readParsed(await write(dir, report({}, T0 + 20), {}, { now: at(T0 + 20) }));
    expect(value(p, 'hozo_notify_failures_total', { job: 'nightly' })).toBe(3);
    const state = { ...emptyJobState('nightly'), notifyFailures: 10 };
    p = readParsed(await write(dir, report({}, T0 + 30), {}, { now: at(T0 + 30), previous: state, notifyFailures: 1 }));
    expect(value(p, 'hozo_notify_failures_total', { job: 'nightly' })).toBe(11);
  });

  it('falls back to the run’s own pool health check when the agent gave no pool status', async () => {
    const r = report({
      targetPools: [
        { name: 'backup', health: 'DEGRADED' },
        { name: 'cold', health: 'ONLINE' },
      ],
    });
    const p = readParsed(await write(tmp(), r, {}, { now: at(T0 + 600) }));
    expect(value(p, 'hozo_pool_healthy', { job: 'nightly', host: 'box', pool: 'backup' })).toBe(0);
    expect(value(p, 'hozo_pool_healthy', { job: 'nightly', host: 'box', pool: 'cold' })).toBe(1);
    expect(p.samples.some((s) => s.name === 'hozo_pool_capacity_ratio')).toBe(false);
    expect(p.help.has('hozo_pool_capacity_ratio')).toBe(false); // no empty families
  });

  it('takes wake timing from the report’s own hosts (the lifecycle’s HostReport) unless extra.hosts is given', async () => {
    const r = { ...report(), hosts: [{ name: 'box', awakeBefore: false, woke: true, wakeSeconds: 12.5, awakeSeconds: 300, shutdown: 'done' as const }] };
    let p = readParsed(await write(tmp(), r, {}, { now: at(T0 + 600) }));
    expect(value(p, 'hozo_host_wake_seconds', { job: 'nightly', host: 'box' })).toBe(12.5);
    expect(value(p, 'hozo_host_awake_seconds', { job: 'nightly', host: 'box' })).toBe(300);
    p = readParsed(await write(tmp(), r, { hosts: [{ name: 'box', wakeSeconds: 1 }] }, { now: at(T0 + 600) }));
    expect(value(p, 'hozo_host_wake_seconds', { job: 'nightly', host: 'box' })).toBe(1);
    expect(value(p, 'hozo_host_awake_seconds', { job: 'nightly', host: 'box' })).toBeUndefined();
    // a box that was already awake has no wake time: no sample rather than a made-up one
    p = readParsed(await write(tmp(), { ...r, hosts: [{ name: 'box', awakeSeconds: 30 }] }, {}, { now: at(T0 + 600) }));
    expect(value(p, 'hozo_host_wake_seconds', { job: 'nightly', host: 'box' })).toBeUndefined();
    expect(value(p, 'hozo_host_awake_seconds', { job: 'nightly', host: 'box' })).toBe(30);
  });

  it('never reports negative lag when the box clock runs ahead', async () => {
    const r = report();
    const ahead = { ...r, datasets: [{ ...r.datasets[0]!, newestCreation: T0 + 600 + 120 }] };
    const p = readParsed(await write(tmp(), ahead, {}, { now: at(T0 + 600) }));
    expect(value(p, 'hozo_dataset_lag_seconds', { job: 'nightly', dataset: 'tank/home' })).toBe(0);
  });

  it('omits lag for datasets whose newest target snapshot is unknown (e.g. until the report carries it)', async () => {
    const r = report();
    const plain = { ...r, datasets: r.datasets.map(({ newestCreation: _, ...d }) => d) };
    const p = readParsed(await write(tmp(), plain, {}, { now: at(T0 + 600) }));
    expect(p.samples.some((s) => s.name === 'hozo_dataset_lag_seconds')).toBe(false);
    expect(value(p, 'hozo_dataset_last_success', { job: 'nightly', dataset: 'tank/home' })).toBe(1);
  });

  it('writes nothing for a dry run', async () => {
    const dir = tmp();
    expect(await writeJobMetrics(dir, report({ dryRun: true }), extra)).toBeUndefined();
    expect(entries(dir)).toEqual([]);
  });

  it('uses a safe file name for job names with dots and dashes, and cannot escape the directory', async () => {
    const dir = tmp();
    expect(metricsFileName('nightly.home-2')).toBe('hozo_nightly.home-2.prom');
    expect(metricsFileName('a/../../etc/x')).toBe('hozo_a%2F..%2F..%2Fetc%2Fx.prom');
    expect(metricsFileName('a b')).not.toBe(metricsFileName('a_b'));
    const path = await write(dir, report({ job: 'nightly.home-2' }), {}, { now: at(T0 + 600) });
    expect(path).toBe(join(dir, 'hozo_nightly.home-2.prom'));
    expect(value(readParsed(path), 'hozo_job_last_run_success', { job: 'nightly.home-2' })).toBe(1);
    const odd = await write(dir, report({ job: 'a/../x' }), {}, { now: at(T0 + 600) });
    expect(entries(dir)).toEqual(['hozo_a%2F..%2Fx.prom', 'hozo_nightly.home-2.prom']);
    expect(odd.startsWith(dir + '/')).toBe(true);
  });

  it('replaces the file atomically: concurrent writers leave one complete file and no temp files', async () => {
    const dir = tmp();
    await Promise.all(Array.from({ length: 20 }, (_, i) => writeJobMetrics(dir, report({ bytes: i }), extra, { now: at(T0 + 600) })));
    expect(entries(dir)).toEqual(['hozo_nightly.prom']);
    const text = readFileSync(join(dir, 'hozo_nightly.prom'), 'utf8');
    promtoolCheckMetrics(text);
    expect(parseProm(text).samples.filter((s) => s.name === 'hozo_job_last_transferred_bytes')).toHaveLength(1);
  });

  it('throws a typed error and leaves no temp file when the file cannot be replaced', async () => {
    const dir = tmp();
    mkdirSync(join(dir, 'hozo_nightly.prom')); // a directory where the file should go: rename fails
    const err = await writeJobMetrics(dir, report(), {}, { now: at(T0 + 600) }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HozoError);
    expect((err as HozoError).message).toContain('cannot write metrics file');
    expect((err as HozoError).hint).toContain('textfileDirectory');
    expect(entries(dir)).toEqual(['hozo_nightly.prom']);
    const missing = await writeJobMetrics(join(dir, 'nope'), report()).catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(HozoError);
  });

  it('reads carried values back only for its own job', () => {
    const text = [
      'hozo_job_last_success_timestamp_seconds{job="other"} 5',
      'hozo_job_last_success_timestamp_seconds{job="nightly"} 1700000000',
      'hozo_notify_failures_total{job="nightly"} 4',
      'hozo_dataset_newest_snapshot_timestamp_seconds{job="nightly",dataset="tank/a"} 1699990000',
      'garbage line',
    ].join('\n');
    const s = carriedFromTextfile(text, 'nightly');
    expect(s.lastSuccess).toBe(new Date(1700000000 * 1000).toISOString());
    expect(s.notifyFailures).toBe(4);
    expect(s.datasets).toEqual({ 'tank/a': { newestCreation: 1699990000 } });
    expect(carriedFromTextfile('hozo_job_last_success_timestamp_seconds{job="nightly"} 0\n', 'nightly').lastSuccess).toBeUndefined();
  });

  it('the promtool gate itself rejects bad input (so a pass above means something)', () => {
    if (PROMTOOL === undefined) {
      console.warn('SKIP: promtool not installed; negative promtool check not run');
      return;
    }
    const r = spawnSync(PROMTOOL, ['check', 'metrics'], { input: 'hozo_bad 1\n', encoding: 'utf8' });
    expect(r.status).not.toBe(0);
    expect(r.stdout + r.stderr).toContain('no help text');
  });
});
