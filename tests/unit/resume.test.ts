// Resumable receives exist on OpenZFS only (zfs-fuse has no receive -s / send -t / receive_resume_token), so these
// tests run on listings and argv, not on real ZFS: the plan for a target that holds partial state, the send that
// resumes it, and the receive that keeps a token on interruption.
import { describe, expect, it } from 'vitest';
import { describePlan } from '../../src/job/describe.js';
import { zfsHost } from '../../src/job/hosts.js';
import { sendArgvFor } from '../../src/job/steps.js';
import { planDataset } from '../../src/planner/plan.js';
import type { Policy } from '../../src/planner/types.js';
import { LocalRunner } from '../../src/transport/local.js';
import type { Dataset } from '../../src/zfs/types.js';
import { testCaps } from '../helpers/caps.js';

const TOKEN = '1-fd3f3ea61-130-789c636064000310a500c4ec50360710e72765a5269730300434';
const snap = (name: string, guid: string, txg: number) => ({ name, guid, createtxg: txg, creation: 1_700_000_000 + txg });
const source: Dataset = { name: 'tank/home', type: 'filesystem', snapshots: [snap('a', '1', 1), snap('b', '2', 2), snap('c', '3', 3)] };
const pair = { source: 'tank/home', target: 'backup/home' };
const resume: Policy = { snapshots: 'all', rollback: false, resume: true };
const noResume: Policy = { snapshots: 'all', rollback: false };

describe('resumable receives (OpenZFS only; planned from listings, zfs-fuse has no resume tokens)', () => {
  it('an interrupted incremental is resumed first; the rest is planned after it', () => {
    const target: Dataset = { name: 'backup/home', type: 'filesystem', snapshots: [snap('a', '1', 1)], resumeToken: TOKEN };
    const p = planDataset(pair, source, target, resume, { targetParentExists: true });
    expect(p).toMatchObject({ action: 'send', base: { name: 'a' }, steps: [{ kind: 'resume', token: TOKEN }] });
    expect(describePlan(p)).toBe('resume the interrupted receive (send -t)');
  });

  it('an interrupted full receive (no snapshot on the target yet) is resumed too', () => {
    const target: Dataset = { name: 'backup/home', type: 'filesystem', snapshots: [], resumeToken: TOKEN };
    expect(planDataset(pair, source, target, resume, { targetParentExists: true })).toMatchObject({
      action: 'send',
      base: undefined,
      steps: [{ kind: 'resume' }],
    });
  });

  it('without resume support on both ends the partial state is a conflict that says how to discard it', () => {
    const target: Dataset = { name: 'backup/home', type: 'filesystem', snapshots: [snap('a', '1', 1)], resumeToken: TOKEN };
    const p = planDataset(pair, source, target, noResume, { targetParentExists: true });
    expect(p.action).toBe('conflict');
    if (p.action !== 'conflict') return;
    expect(p.conflict.kind).toBe('partial-receive');
    expect(p.conflict.hint).toContain('zfs receive -A backup/home');
  });

  it('send -t carries no other stream flags (they are in the token); -n -P still estimates', () => {
    const caps = testCaps({ sendFlags: new Set(['L', 'e', 'c', 'n', 'P']) });
    expect(sendArgvFor('tank/home', { kind: 'resume', token: TOKEN }, caps)).toEqual(['zfs', 'send', '-t', TOKEN]);
    expect(sendArgvFor('tank/home', { kind: 'resume', token: TOKEN }, caps, true)).toEqual(['zfs', 'send', '-n', '-P', '-t', TOKEN]);
    expect(() => sendArgvFor('tank/home', { kind: 'resume', token: 'x; rm -rf /' }, caps)).toThrow(/malformed receive_resume_token/);
  });

  it('receives with -s where both ends can resume, so an interruption leaves a token', () => {
    const host = zfsHost(new LocalRunner(), testCaps({ receiveFlags: new Set(['s']) }));
    expect(host.receiveCommand('backup/home', { force: false, unmounted: true, keepUnmounted: false, resumable: true })).toEqual([
      'zfs',
      'receive',
      '-u',
      '-s',
      'backup/home',
    ]);
    expect(host.receiveCommand('backup/home', { force: false, unmounted: true, keepUnmounted: false })).toEqual(['zfs', 'receive', '-u', 'backup/home']);
  });
});
