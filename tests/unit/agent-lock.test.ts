// The agent's lock is broken only when its owner is gone (dead pid, or a pid that is another process now), never
// because a live owner held it long: a shutdown must not race a receive being marked.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AgentState } from '../../agent/state.js';
import { lockIsStale } from '../../src/util/proc.js';
import { procStartTime } from '../../src/util/proc.js';

describe('lockIsStale', () => {
  const rules = { alive: (pid: number) => pid === 42, startOf: () => '1000', pidOnlyMaxAgeMs: 30_000 };
  it('a dead owner is stale; a live one with the same start time is not, however old the file', () => {
    expect(lockIsStale('41 1000', 0, rules)).toBe(true);
    expect(lockIsStale('42 1000', 3_600_000, rules)).toBe(false);
  });
  it('a reused pid (another start time: another process, or a lock from before a reboot) is stale', () => {
    expect(lockIsStale('42 999', 0, rules)).toBe(true);
  });
  it('a pid-only lock of a live owner (an older build) is never stale by default (the job lock), after pidOnlyMaxAgeMs with it', () => {
    expect(lockIsStale('42', 86_400_000, { alive: rules.alive, startOf: rules.startOf })).toBe(false);
    expect(lockIsStale('41', 0, { alive: rules.alive, startOf: rules.startOf })).toBe(true);
  });
  it("no readable owner, or an older agent's pid-only lock: stale after 30 s only", () => {
    for (const text of ['', 'garbage', '42']) {
      expect(lockIsStale(text, 1_000, rules)).toBe(false);
      expect(lockIsStale(text, 31_000, rules)).toBe(true);
    }
  });
});

describe('AgentState.withLock with a real second process as the owner', () => {
  let dir: string;
  let state: AgentState;
  let lock: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'hozo-lock-'));
    state = new AgentState({ leaseDirectory: join(dir, 'leases'), stateDirectory: dir });
    lock = join(dir, 'leases', '.lock');
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('a live owner that has held the lock for an hour is waited for, not broken (the waiter gives up)', async () => {
    const owner = spawn('sleep', ['30'], { stdio: 'ignore' });
    try {
      await state.withLock(() => undefined); // creates the directory
      writeFileSync(lock, `${owner.pid} ${procStartTime(owner.pid!)}`);
      const old = Date.now() / 1000 - 3600;
      utimesSync(lock, old, old);
      let ran = false;
      await expect(state.withLock(() => (ran = true), 300)).rejects.toThrow(/held by another call/);
      expect(ran).toBe(false);
    } finally {
      owner.kill();
    }
  });

  it('the lock of an owner that died is broken at once; one claiming a live pid with another start time too', async () => {
    const owner = spawn('true', { stdio: 'ignore' });
    await new Promise((r) => owner.on('exit', r));
    await state.withLock(() => undefined);
    writeFileSync(lock, `${owner.pid} 12345`);
    expect(await state.withLock(() => 'ran', 300)).toBe('ran');
    writeFileSync(lock, `${process.pid} 1`); // this very process, but not the start time it has
    expect(await state.withLock(() => 'ran again', 300)).toBe('ran again');
  });
});
