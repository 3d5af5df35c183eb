// The run history of each job (src/state/history.ts): newest first, bounded in count and bytes, and a file that is
// not one hozo wrote is said and started afresh (never a crash, never a hang).
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { appendRun, historyPath, MAX_HISTORY_BYTES, MAX_RUNS, readRuns } from '../../src/state/history.js';

describe('run history', () => {
  it('keeps the newest first, at most MAX_RUNS', () => {
    const dir = mkdtempSync(join(tmpdir(), 'hozo-history-'));
    expect(readRuns(dir, 'j')).toEqual([]);
    for (let i = 0; i < MAX_RUNS + 5; i++) appendRun(dir, 'j', { n: i });
    const runs = readRuns(dir, 'j') as { n: number }[];
    expect(runs).toHaveLength(MAX_RUNS);
    expect(runs[0]!.n).toBe(MAX_RUNS + 4);
    expect(runs.at(-1)!.n).toBe(5);
    expect(readRuns(dir, 'other')).toEqual([]);
  });

  it('bounded in bytes: large reports push the oldest out; the newest is kept however large', () => {
    const dir = mkdtempSync(join(tmpdir(), 'hozo-history-'));
    const big = 'x'.repeat(Math.floor(MAX_HISTORY_BYTES / 3));
    for (let i = 0; i < 5; i++) appendRun(dir, 'j', { n: i, big });
    const runs = readRuns(dir, 'j') as { n: number }[];
    expect(runs.map((r) => r.n)).toEqual([4, 3]);
    appendRun(dir, 'j', { n: 9, big: 'y'.repeat(MAX_HISTORY_BYTES + 10) });
    expect((readRuns(dir, 'j') as { n: number }[]).map((r) => r.n)).toEqual([9]);
    expect(readFileSync(historyPath(dir, 'j')).length).toBeLessThan(MAX_HISTORY_BYTES + 1000);
  });

  it('a file hozo did not write (junk, a FIFO) is warned about and started afresh; a job name cannot leave the directory', () => {
    const dir = mkdtempSync(join(tmpdir(), 'hozo-history-'));
    mkdirSync(join(dir, 'history'));
    writeFileSync(historyPath(dir, 'junk'), '{"runs": 5}');
    const warnings: string[] = [];
    expect(readRuns(dir, 'junk', (m) => warnings.push(m))).toEqual([]);
    appendRun(dir, 'junk', { n: 1 }, (m) => warnings.push(m));
    expect(readRuns(dir, 'junk')).toEqual([{ n: 1 }]);
    execFileSync('mkfifo', [historyPath(dir, 'fifo')]);
    expect(readRuns(dir, 'fifo', (m) => warnings.push(m))).toEqual([]);
    expect(warnings.join('\n')).toMatch(/not one hozo wrote[\s\S]*cannot read run history .*fifo\.json/);
    expect(historyPath(dir, '../../etc/x')).toBe(join(dir, 'history', '..%2F..%2Fetc%2Fx.json'));
  });
});
