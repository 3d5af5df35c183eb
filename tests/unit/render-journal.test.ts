// The run report under journald: each line led by its syslog priority, so `journalctl -p err` shows the failed
// datasets (message and hint) and nothing else; on a terminal or in a file no prefix at all. isJournalStream compares
// JOURNAL_STREAM with the descriptor's own device and inode, as systemd.exec(5) says.
import { closeSync, fstatSync, mkdtempSync, openSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { renderReport } from '../../src/cli/render.js';
import { startReport, type DatasetReport, type JobReport } from '../../src/job/report.js';
import { isJournalStream } from '../../src/util/log.js';

const dataset = (source: string, extra: Partial<DatasetReport> = {}): DatasetReport => ({
  source,
  target: `backup/${source}`,
  result: 'sent',
  snapshotsSent: ['s2'],
  bytes: 1536,
  seconds: 4.3,
  verified: true,
  plan: '-I @s1 → @s2',
  ...extra,
});

function report(mode: JobReport['mode'] = 'run'): JobReport {
  const r = startReport('nightly', 'box', mode !== 'run', 0, mode);
  r.result = 'failed';
  r.datasets = [
    dataset('tank/u'),
    dataset('tank/v', {
      result: 'conflict',
      plan: 'conflict',
      error: { code: 'CONFLICT', message: 'target backup/tank/v has no common snapshot', hint: 'point the job at another target' },
    }),
  ];
  r.targetPools = [{ name: 'backup', health: 'ONLINE' }];
  r.warnings = ['scrub overdue'];
  return r;
}

const byPriority = (text: string) => {
  const lines = text.trimEnd().split('\n');
  for (const l of lines) expect(l).toMatch(/^<[346]>/);
  return (p: number) => lines.filter((l) => l.startsWith(`<${p}>`)).map((l) => l.slice(3));
};

describe('renderReport under journald', () => {
  it('gives the failed dataset and its hint priority err, warnings warning, the rest info', () => {
    const at = byPriority(renderReport(report(), { journal: true }));
    expect(at(3)).toEqual(['tank/v: target backup/tank/v has no common snapshot', '  hint: point the job at another target']);
    expect(at(4)).toEqual(['warning: scrub overdue']);
    expect(at(6).some((l) => l.startsWith('tank/u '))).toBe(true);
    expect(at(6)[0]).toBe('job nightly (host box): failed');
  });

  it('an unhealthy target pool is a failure too; in a plan a conflict is a warning, not an error', () => {
    const r = report();
    r.targetPools = [{ name: 'backup', health: 'DEGRADED' }];
    expect(byPriority(renderReport(r, { journal: true }))(3)).toContain('target pool backup: DEGRADED');
    r.targetPools = [{ name: 'backup', health: 'ONLINE', errors: 2 }];
    expect(byPriority(renderReport(r, { journal: true }))(3)).toContain('target pool backup: ONLINE');
    const plan = byPriority(renderReport(report('plan'), { journal: true }));
    expect(plan(3)).toEqual([]);
    expect(plan(4)).toContain('tank/v: target backup/tank/v has no common snapshot');
  });

  it('without journald the same text with no prefix', () => {
    const plain = renderReport(report());
    expect(plain).not.toMatch(/^<\d>/m);
    expect(plain).toBe(
      renderReport(report(), { journal: true })
        .split('\n')
        .map((l) => l.replace(/^<\d>/, ''))
        .join('\n'),
    );
  });
});

describe('isJournalStream', () => {
  it('is true only for the descriptor whose device:inode JOURNAL_STREAM names', () => {
    const dir = mkdtempSync(join(tmpdir(), 'hozo-journal-'));
    const a = openSync(join(dir, 'a'), 'w');
    const b = openSync(join(dir, 'b'), 'w');
    try {
      const st = fstatSync(a, { bigint: true });
      const env = { JOURNAL_STREAM: `${st.dev}:${st.ino}` };
      expect(isJournalStream(a, env)).toBe(true);
      expect(isJournalStream(b, env)).toBe(false);
      expect(isJournalStream(a, {})).toBe(false);
      expect(isJournalStream(a, { JOURNAL_STREAM: 'garbage' })).toBe(false);
      expect(isJournalStream(9999, env)).toBe(false);
    } finally {
      closeSync(a);
      closeSync(b);
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
