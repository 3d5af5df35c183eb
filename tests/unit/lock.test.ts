import { mkdtempSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { acquireJobLock } from '../../src/job/lock.js';
import { HozoError } from '../../src/errors.js';

describe('job lock', () => {
  it('refuses a second holder while the first is alive, then allows after release', () => {
    const dir = mkdtempSync(join(tmpdir(), 'hozo-lock-'));
    const a = acquireJobLock(dir, 'nightly');
    expect(() => acquireJobLock(dir, 'nightly')).toThrow(HozoError);
    try {
      acquireJobLock(dir, 'nightly');
    } catch (e) {
      expect((e as HozoError).code).toBe('LOCKED');
      expect((e as HozoError).message).toContain('already running');
    }
    const other = acquireJobLock(dir, 'weekly');
    other.release();
    a.release();
    expect(existsSync(a.path)).toBe(false);
    acquireJobLock(dir, 'nightly').release();
  });
  it('takes over a stale lock whose owner died', () => {
    const dir = mkdtempSync(join(tmpdir(), 'hozo-lock-'));
    const first = acquireJobLock(dir, 'j');
    first.release();
    writeFileSync(first.path, '999999999\n');
    const l = acquireJobLock(dir, 'j');
    expect(l.path).toBe(first.path);
    l.release();
  });
});
