import { mkdirSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { JobReport } from '../../src/job/report.js';
import { safeFileStem } from '../../src/state/files.js';
import {
  jobStatePath,
  nextJobState,
  parseJobState,
  readJobState,
  recordNotifyFailures,
  recordRun,
  writeJobState,
  type ObservedReport,
} from '../../src/state/state.js';

const tmp = () => mkdtempSync(join(tmpdir(), 'hozo-state-'));

function report(result: JobReport['result'], finishedAt: string, over: Partial<ObservedReport> = {}): ObservedReport {
  return {
    job: 'nightly',
    host: 'box',
    dryRun: false,
    startedAt: '2026-03-01T04:00:00.000Z',
    finishedAt,
    seconds: 61.5,
    result,
    datasets:
      result === 'unreachable'
        ? []
        : [
            {
              source: 'tank/a',
              target: 'bk/a',
              result: result === 'ok' ? 'sent' : 'failed',
              snapshotsSent: ['@s1'],
              bytes: 2048,
              seconds: 3,
              verified: true,
              plan: 'full @s1',
              newest: '@s1',
              newestCreation: 1772337600,
              ...(result === 'ok' ? {} : { error: { code: 'PIPELINE_FAILED', message: 'zfs receive died', hint: 'look at the box' } }),
            },
            { source: 'tank/b', target: 'bk/b', result: 'up-to-date', snapshotsSent: [], seconds: 0.5, verified: true, plan: 'up to date', newest: '@s0' },
          ],
    targetPools: [],
    bytes: result === 'ok' ? 2048 : 0,
    warnings: result === 'ok' ? [] : ['something odd'],
    ...(result === 'unreachable' ? { error: { code: 'HOST_UNREACHABLE', message: 'box did not answer' } } : {}),
    ...over,
  };
}

describe('job state file', () => {
  it('is absent before the first run', () => {
    expect(readJobState(tmp(), 'nightly')).toBeUndefined();
  });

  it("records the last run, the last success and per-dataset summaries; written atomically, 0600 (error texts stay the operator's)", () => {
    const dir = tmp();
    const s = recordRun(dir, report('ok', '2026-03-01T04:01:01.500Z'));
    const path = jobStatePath(dir, 'nightly');
    expect(path).toBe(join(dir, 'jobs', 'nightly.json'));
    expect(readdirSync(join(dir, 'jobs'))).toEqual(['nightly.json']);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(readJobState(dir, 'nightly')).toEqual(s);
    expect(JSON.parse(readFileSync(path, 'utf8'))).toEqual(s);
    expect(s).toMatchObject({
      version: 1,
      job: 'nightly',
      lastSuccess: '2026-03-01T04:01:01.500Z',
      notifyFailures: 0,
      lastRun: { result: 'ok', bytes: 2048, seconds: 61.5, startedAt: '2026-03-01T04:00:00.000Z', finishedAt: '2026-03-01T04:01:01.500Z' },
    });
    expect(s.lastRun!.datasets).toEqual([
      { source: 'tank/a', target: 'bk/a', result: 'sent', bytes: 2048, seconds: 3, newest: '@s1', newestCreation: 1772337600 },
      { source: 'tank/b', target: 'bk/b', result: 'up-to-date', seconds: 0.5, newest: '@s0' },
    ]);
    expect(s.datasets['tank/a']).toEqual({ target: 'bk/a', newest: '@s1', newestCreation: 1772337600, lastSuccess: '2026-03-01T04:01:01.500Z' });
  });

  it('keeps the last success through failed and unreachable runs, and the datasets it knew', () => {
    const dir = tmp();
    recordRun(dir, report('ok', '2026-03-01T04:01:00.000Z'));
    const failed = recordRun(dir, report('failed', '2026-03-02T04:01:00.000Z'));
    expect(failed.lastSuccess).toBe('2026-03-01T04:01:00.000Z');
    expect(failed.lastRun!.result).toBe('failed');
    expect(failed.lastRun!.datasets[0]!.error).toEqual({ code: 'PIPELINE_FAILED', message: 'zfs receive died', hint: 'look at the box' });
    expect(failed.lastRun!.warnings).toEqual(['something odd']);
    // the failed dataset keeps its own last success; the up-to-date one moves on
    expect(failed.datasets['tank/a']!.lastSuccess).toBe('2026-03-01T04:01:00.000Z');
    expect(failed.datasets['tank/b']!.lastSuccess).toBe('2026-03-02T04:01:00.000Z');

    const unreachable = recordRun(dir, report('unreachable', '2026-03-03T04:01:00.000Z'));
    expect(unreachable.lastSuccess).toBe('2026-03-01T04:01:00.000Z');
    expect(unreachable.lastRun).toMatchObject({ result: 'unreachable', datasets: [], error: { code: 'HOST_UNREACHABLE' } });
    expect(unreachable.datasets).toEqual(failed.datasets);
    expect(readJobState(dir, 'nightly')).toEqual(unreachable);
  });

  it('carries a dataset’s newest snapshot time when a run could not read it', () => {
    const first = nextJobState(undefined, report('ok', '2026-03-01T04:01:00.000Z'));
    const r = report('failed', '2026-03-02T04:01:00.000Z');
    const without = { ...r, datasets: r.datasets.map(({ newestCreation: _, newest: __, ...d }) => d) };
    const next = nextJobState(first, without);
    expect(next.lastRun!.datasets[0]!.newestCreation).toBeUndefined(); // the run summary is what this run saw
    expect(next.datasets['tank/a']).toMatchObject({ newest: '@s1', newestCreation: 1772337600 });
  });

  it('drops datasets no longer in the job once a run lists them again', () => {
    const first = nextJobState(undefined, report('ok', '2026-03-01T04:01:00.000Z'));
    const r = report('ok', '2026-03-02T04:01:00.000Z');
    const next = nextJobState(first, { ...r, datasets: [r.datasets[1]!] });
    expect(Object.keys(next.datasets)).toEqual(['tank/b']);
  });

  it('counts notification failures, only upwards', () => {
    const dir = tmp();
    expect(recordRun(dir, report('failed', '2026-03-01T04:01:00.000Z'), { notifyFailures: 2 }).notifyFailures).toBe(2);
    expect(recordRun(dir, report('ok', '2026-03-02T04:01:00.000Z')).notifyFailures).toBe(2);
    expect(recordNotifyFailures(dir, 'nightly', 1).notifyFailures).toBe(3);
    expect(recordNotifyFailures(dir, 'nightly', -5).notifyFailures).toBe(3);
    expect(readJobState(dir, 'nightly')!.notifyFailures).toBe(3);
    expect(recordNotifyFailures(dir, 'fresh', 1)).toMatchObject({ job: 'fresh', notifyFailures: 1 });
  });

  it('does not record dry runs', () => {
    const dir = tmp();
    const s = recordRun(dir, report('ok', '2026-03-01T04:01:00.000Z', { dryRun: true }));
    expect(s.lastRun).toBeUndefined();
    expect(s.lastSuccess).toBeUndefined();
    expect(readJobState(dir, 'nightly')).toBeUndefined();
  });

  it('uses the current time when the report has no finish time', () => {
    const s = nextJobState(undefined, report('ok', ''), { now: new Date('2026-05-05T05:05:05.000Z') });
    expect(s.lastSuccess).toBe('2026-05-05T05:05:05.000Z');
    expect(s.lastRun!.finishedAt).toBe('2026-05-05T05:05:05.000Z');
  });

  it('treats a damaged or foreign state file as absent and says so', () => {
    const dir = tmp();
    mkdirSync(join(dir, 'jobs'));
    const warnings: string[] = [];
    writeFileSync(jobStatePath(dir, 'nightly'), '{ not json');
    expect(readJobState(dir, 'nightly', (m) => warnings.push(m))).toBeUndefined();
    writeFileSync(jobStatePath(dir, 'nightly'), JSON.stringify({ version: 1, job: 'weekly', notifyFailures: 0, datasets: {} }));
    expect(readJobState(dir, 'nightly', (m) => warnings.push(m))).toBeUndefined();
    writeFileSync(jobStatePath(dir, 'nightly'), JSON.stringify({ version: 2, job: 'nightly' }));
    expect(readJobState(dir, 'nightly', (m) => warnings.push(m))).toBeUndefined();
    expect(warnings).toHaveLength(3);
    expect(warnings[0]).toContain('not valid JSON');
    // and a run still records over it
    expect(recordRun(dir, report('ok', '2026-03-01T04:01:00.000Z')).lastSuccess).toBe('2026-03-01T04:01:00.000Z');
  });

  it('accepts older files without the optional parts', () => {
    const dir = tmp();
    mkdirSync(join(dir, 'jobs'));
    writeFileSync(jobStatePath(dir, 'nightly'), JSON.stringify({ version: 1, job: 'nightly', lastSuccess: '2026-01-01T00:00:00Z' }));
    expect(readJobState(dir, 'nightly')).toEqual({ version: 1, job: 'nightly', lastSuccess: '2026-01-01T00:00:00Z', notifyFailures: 0, datasets: {} });
  });

  it('checks every field of the file by hand (no zod on the run path): wrong types are refused, unknown fields dropped', () => {
    const good = {
      version: 1,
      job: 'nightly',
      extra: 'dropped',
      lastRun: {
        startedAt: '2026-03-01T04:00:00Z',
        finishedAt: '2026-03-01T04:01:00Z',
        result: 'failed',
        seconds: 60,
        bytes: 5,
        datasets: [{ source: 'tank/a', target: 'backup/a', result: 'failed', seconds: 1, error: { code: 'X', message: 'm', stack: 'dropped' } }],
      },
      notifyFailures: 2,
      datasets: { 'tank/a': { target: 'backup/a', held: 's1', lastSuccess: '2026-03-01T04:01:00Z', other: 1 } },
    };
    // A "__proto__" key (JSON.parse makes it an own property) is not taken as a dataset.
    const parsed = parseJobState(JSON.parse(JSON.stringify(good).replace('"datasets":{', '"datasets":{"__proto__":{"held":"x"},')));
    expect(Object.getPrototypeOf(parsed!.datasets)).toBe(Object.prototype);
    expect(parsed).toEqual({
      version: 1,
      job: 'nightly',
      // The unknown fields gone, the default filled in.
      lastRun: { ...good.lastRun, datasets: [{ ...good.lastRun.datasets[0], error: { code: 'X', message: 'm' } }], warnings: [] },
      notifyFailures: 2,
      datasets: { 'tank/a': { target: 'backup/a', held: 's1', lastSuccess: '2026-03-01T04:01:00Z' } },
    });
    const bad: Array<(o: any) => void> = [
      (o) => (o.job = 7),
      (o) => (o.notifyFailures = -1),
      (o) => (o.notifyFailures = 1.5),
      (o) => (o.datasets = []),
      (o) => (o.datasets['tank/a'].held = 3),
      (o) => (o.datasets['tank/a'].lastSuccess = 'yesterday'),
      (o) => (o.lastRun.result = 'great'),
      (o) => (o.lastRun.datasets = {}),
      (o) => (o.lastRun.datasets[0].seconds = '1'),
      (o) => (o.lastRun.datasets[0].error.code = null),
      (o) => (o.lastRun.warnings = ['a', 2]),
      (o) => (o.lastRun.bytes = null),
    ];
    for (const [i, change] of bad.entries()) {
      const o = JSON.parse(JSON.stringify(good));
      change(o);
      expect(parseJobState(o), `case ${i}`).toBeUndefined();
    }
    expect(parseJobState(null)).toBeUndefined();
    expect(parseJobState([1])).toBeUndefined();
  });

  it('names files safely and leaves no temp files behind', () => {
    const dir = tmp();
    expect(jobStatePath(dir, 'home.daily-1')).toBe(join(dir, 'jobs', 'home.daily-1.json'));
    expect(jobStatePath(dir, '../../etc/passwd')).toBe(join(dir, 'jobs', '..%2F..%2Fetc%2Fpasswd.json'));
    expect(safeFileStem('..')).toBe('%2E%2E');
    expect(safeFileStem('')).toBe('%');
    expect(safeFileStem('ü')).toBe('%C3%BC');
    for (let i = 0; i < 5; i++) writeJobState(dir, nextJobState(undefined, report('ok', `2026-03-0${i + 1}T04:01:00.000Z`, { job: 'home.daily-1' })));
    expect(readdirSync(join(dir, 'jobs'))).toEqual(['home.daily-1.json']);
  });
});
