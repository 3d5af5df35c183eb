import { describe, expect, it } from 'vitest';
import { formatProgress, parseSendEstimate, progressReporter } from '../../src/pipeline/progress.js';
import type { Logger } from '../../src/util/log.js';

describe('send size estimate (OpenZFS `zfs send -nP`)', () => {
  it('reads the total from full and incremental estimates', () => {
    expect(parseSendEstimate('full\ttank/a@s1\t1048576\nsize\t1048576\n')).toBe(1048576);
    expect(parseSendEstimate('incremental\ts1\ttank/a@s2\t5260\nincremental\ts2\ttank/a@s3\t7000\nsize\t12260\n')).toBe(12260);
  });
  it('is undefined without a size line (zfs-fuse has no -P)', () => {
    expect(parseSendEstimate("invalid option 'P'\n")).toBeUndefined();
    expect(parseSendEstimate('')).toBeUndefined();
  });
});

describe('progress', () => {
  it('shows percent and ETA when the size is known', () => {
    expect(formatProgress('tank/a', 512 * 2 ** 20, 4, 2 ** 30)).toBe('tank/a: 512.0 MiB of 1.0 GiB (50%) 128.0 MiB/s ETA 0:04');
    expect(formatProgress('tank/a', 100 * 2 ** 20, 1, undefined)).toBe('tank/a: 100.0 MiB 100.0 MiB/s');
  });
  it('without a TTY logs a plain line at most every 30 s', () => {
    const lines: string[] = [];
    const drawn: string[] = [];
    const log: Logger = { interactive: false, info: (m) => lines.push(m), progress: (m) => drawn.push(m), warn() {}, error() {}, debug() {} };
    let t = 0;
    const report = progressReporter(log, 'tank/a', undefined, () => t);
    for (let i = 1; i <= 100; i++) {
      t = i * 1000;
      report(i * 2 ** 20);
    }
    expect(drawn).toHaveLength(100);
    expect(lines).toHaveLength(3);
    expect(lines[0]).toMatch(/^tank\/a: 30\.0 MiB/);
  });
  it('takes the estimate as a promise: lines carry percent and ETA once it has arrived (the stream does not wait for it)', async () => {
    const drawn: string[] = [];
    const log: Logger = { interactive: true, info() {}, progress: (m) => drawn.push(m), warn() {}, error() {}, debug() {} };
    let t = 0;
    let arrive: (n: number | undefined) => void = () => undefined;
    const report = progressReporter(log, 'tank/a', new Promise<number | undefined>((r) => (arrive = r)), () => t);
    t = 1000;
    report(2 ** 20);
    arrive(4 * 2 ** 20);
    await Promise.resolve();
    t = 2000;
    report(2 * 2 ** 20);
    expect(drawn[0]).toBe('tank/a: 1.0 MiB 1.0 MiB/s');
    expect(drawn[1]).toBe('tank/a: 2.0 MiB of 4.0 MiB (50%) 1.0 MiB/s ETA 0:02');
  });
});
