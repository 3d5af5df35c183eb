import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, utimesSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { acquireJobLock } from '../../src/job/lock.js';
import { HozoError } from '../../src/errors.js';
import { procStartTime } from '../../src/util/proc.js';

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

  it('writes "pid start-time"; a lock left from before a reboot (its pid is another process now) is taken over', () => {
    const dir = mkdtempSync(join(tmpdir(), 'hozo-lock-'));
    const l = acquireJobLock(dir, 'j');
    expect(readFileSync(l.path, 'utf8')).toBe(`${process.pid} ${procStartTime(process.pid)}\n`);
    l.release();
    writeFileSync(l.path, `${process.pid} 1\n`); // a live pid, but not the process that wrote it
    acquireJobLock(dir, 'j').release();
  });

  it('a lock just created by another run and not yet written is not broken (it is fresh for 30 s)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'hozo-lock-'));
    const first = acquireJobLock(dir, 'j');
    first.release();
    writeFileSync(first.path, '');
    expect(() => acquireJobLock(dir, 'j')).toThrow(/already running \(starting/);
    expect(existsSync(first.path)).toBe(true);
    const old = Date.now() / 1000 - 60;
    utimesSync(first.path, old, old);
    acquireJobLock(dir, 'j').release();
  });

  it('a live owner that has held the lock for a day is still the owner (a real second process)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hozo-lock-'));
    const owner = spawn('sleep', ['30'], { stdio: 'ignore' });
    try {
      const l = acquireJobLock(dir, 'j');
      l.release();
      writeFileSync(l.path, `${owner.pid} ${procStartTime(owner.pid!)}\n`);
      const old = Date.now() / 1000 - 86_400;
      utimesSync(l.path, old, old);
      expect(() => acquireJobLock(dir, 'j')).toThrow(new RegExp(`already running \\(pid ${owner.pid}`));
    } finally {
      owner.kill();
    }
  });

  it('breaking a stale lock leaves no file aside', () => {
    const dir = mkdtempSync(join(tmpdir(), 'hozo-lock-'));
    const first = acquireJobLock(dir, 'j');
    first.release();
    writeFileSync(first.path, '999999999 5\n');
    const l = acquireJobLock(dir, 'j');
    expect(readdirSync(join(dir, 'locks'))).toEqual(['j.lock']);
    l.release();
  });
});
