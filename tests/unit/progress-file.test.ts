// A run's progress file (src/state/progress.ts): written at most once per interval, read back by another process,
// stale once its writer is gone, removed when the run ends; the progress reporter feeds it.
import { existsSync, mkdtempSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { progressReporter } from '../../src/pipeline/progress.js';
import { progressPath, readProgress, withProgressFile } from '../../src/state/progress.js';
import { silentLogger } from '../../src/util/log.js';

describe('the progress file', () => {
  it('the reporter feeds it; at most one write per interval; done() removes it', () => {
    const dir = mkdtempSync(join(tmpdir(), 'hozo-progress-'));
    const p = withProgressFile(silentLogger, dir, 'nightly', 60_000);
    let t = 1_000_000;
    const report = progressReporter(p.log, 'tank/a', 4096, () => t);
    t += 2000;
    report(1024);
    expect(readProgress(dir, 'nightly')).toMatchObject({ job: 'nightly', pid: process.pid, dataset: 'tank/a', bytes: 1024, estimate: 4096, seconds: 2 });
    t += 1000;
    report(2048); // within the interval: not written
    expect(readProgress(dir, 'nightly')?.bytes).toBe(1024);
    p.done();
    expect(existsSync(progressPath(dir, 'nightly'))).toBe(false);
    expect(readProgress(dir, 'nightly')).toBeUndefined();
  });

  it('a file whose writer is gone, or junk, is no progress', () => {
    const dir = mkdtempSync(join(tmpdir(), 'hozo-progress-'));
    mkdirSync(join(dir, 'progress'));
    writeFileSync(progressPath(dir, 'a'), JSON.stringify({ job: 'a', pid: 2 ** 22 + 12345, dataset: 'x', bytes: 1, seconds: 1, at: 'now' }));
    expect(readProgress(dir, 'a')).toBeUndefined();
    writeFileSync(progressPath(dir, 'b'), '{"bytes": "many"');
    expect(readProgress(dir, 'b')).toBeUndefined();
  });
});
