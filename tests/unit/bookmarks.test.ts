// Bookmarks exist on OpenZFS only; zfs-fuse (this machine) has none, so these tests use listings and a recording
// fake host instead of real ZFS. What they check: the send argv from a bookmark base, and which bookmarks a run
// creates and destroys on the source (only the job's own, never the user's or another job's).
import { describe, expect, it } from 'vitest';
import { bookmarkName, keepBookmark } from '../../src/job/protect.js';
import type { ZfsHost } from '../../src/job/endpoint.js';
import type { DatasetReport } from '../../src/job/report.js';
import { sendArgvFor } from '../../src/job/steps.js';
import { HozoError } from '../../src/errors.js';
import { createLogger } from '../../src/util/log.js';
import type { Capabilities, Inventory } from '../../src/zfs/types.js';
import { testCaps } from '../helpers/caps.js';

const caps = (bookmarks: boolean): Capabilities =>
  testCaps({ resumeTokens: true, bookmarks, sendFlags: new Set(['L', 'e', 'c']), receiveFlags: new Set(['s', 'u']), implementation: 'OpenZFS 2.2.6 (fake)' });

function fakeSource(bookmarks: boolean, fail?: RegExp): ZfsHost & { calls: string[] } {
  const calls: string[] = [];
  const record = async (c: string) => {
    calls.push(c);
    if (fail?.test(c)) throw new Error(`zfs failed: ${c}`);
  };
  return {
    calls,
    caps: caps(bookmarks),
    bookmark: (snap: string, mark: string) => record(`bookmark ${snap} ${mark}`),
    destroyBookmark: (mark: string) => record(`destroy ${mark}`),
  } as unknown as ZfsHost & { calls: string[] };
}

const DS = 'tank/home';
const inv = (marks: { name: string; guid: string }[]): Inventory =>
  new Map([
    [
      DS,
      {
        name: DS,
        type: 'filesystem' as const,
        snapshots: [
          { name: 'a', guid: '1', createtxg: 1, creation: 1 },
          { name: 'b', guid: '2', createtxg: 2, creation: 2 },
        ],
        bookmarks: marks.map((m, i) => ({ ...m, createtxg: i + 1, creation: i + 1 })),
      },
    ],
  ]);
const report = (newest: string): DatasetReport => ({
  source: DS,
  target: 'backup/home',
  result: 'sent',
  newest,
  snapshotsSent: [newest],
  seconds: 1,
  verified: true,
  plan: '',
});
const quiet = createLogger({ quiet: true });

describe('bookmarks of the base (fake OpenZFS host: zfs-fuse has no bookmarks)', () => {
  it("bookmarks the new base as hozo:<job>:<snapshot> and drops only the job's older bookmark", async () => {
    const src = fakeSource(true);
    const warnings: string[] = [];
    const marks = [
      { name: bookmarkName('nightly', 'a'), guid: '1' },
      { name: 'a', guid: '1' }, // the user's own
      { name: bookmarkName('nightly-2', 'a'), guid: '1' }, // another job whose name starts the same
      { name: bookmarkName('night', 'a'), guid: '1' },
    ];
    await keepBookmark(src, 'nightly', inv(marks), report('b'), quiet, warnings);
    expect(src.calls).toEqual([`bookmark ${DS}@b ${DS}#hozo:nightly:b`, `destroy ${DS}#hozo:nightly:a`]);
    expect(warnings).toEqual([]);
  });

  it('a no-op run whose bookmark is in place runs nothing', async () => {
    const src = fakeSource(true);
    await keepBookmark(src, 'nightly', inv([{ name: bookmarkName('nightly', 'b'), guid: '2' }]), report('b'), quiet, []);
    expect(src.calls).toEqual([]);
  });

  it('a bookmark of that name with another guid (snapshot re-created under the old name) is replaced', async () => {
    const src = fakeSource(true);
    await keepBookmark(src, 'nightly', inv([{ name: bookmarkName('nightly', 'b'), guid: '99' }]), report('b'), quiet, []);
    expect(src.calls).toEqual([`bookmark ${DS}@b ${DS}#hozo:nightly:b`]);
  });

  it('without permission to destroy (non-root user, no `destroy` delegated) old bookmarks stay, without a warning', async () => {
    const src = fakeSource(true);
    src.destroyBookmark = async (mark: string) => {
      src.calls.push(`destroy ${mark}`);
      throw new HozoError('ZFS_PERMISSION', `cannot destroy '${mark}': permission denied`);
    };
    const warnings: string[] = [];
    const marks = [
      { name: bookmarkName('nightly', 'x'), guid: '7' },
      { name: bookmarkName('nightly', 'a'), guid: '1' },
    ];
    await keepBookmark(src, 'nightly', inv(marks), report('b'), quiet, warnings);
    expect(src.calls).toEqual([`bookmark ${DS}@b ${DS}#hozo:nightly:b`, `destroy ${DS}#hozo:nightly:x`]);
    expect(warnings).toEqual([]);
  });

  it('hosts without bookmarks (zfs-fuse) are left alone', async () => {
    const src = fakeSource(false);
    await keepBookmark(src, 'nightly', inv([]), report('b'), quiet, []);
    expect(src.calls).toEqual([]);
  });

  it('a failure is a warning, never a failed run', async () => {
    const src = fakeSource(true, /^bookmark/);
    const warnings: string[] = [];
    await keepBookmark(src, 'nightly', inv([{ name: bookmarkName('nightly', 'a'), guid: '1' }]), report('b'), quiet, warnings);
    expect(warnings).toEqual([expect.stringMatching(/^tank\/home: could not keep bookmark #hozo:nightly:b: zfs failed/)]);
    expect(src.calls).toEqual([`bookmark ${DS}@b ${DS}#hozo:nightly:b`]); // the old one stays when the new one failed
  });

  it('sends from a bookmark base with -i ds#mark', () => {
    const from = { name: 'hozo:nightly:b', guid: '2', createtxg: 2, creation: 2, bookmark: true as const };
    const to = { name: 'c', guid: '3', createtxg: 3, creation: 3 };
    expect(sendArgvFor(DS, { kind: 'incremental', from, to, intermediates: false }, caps(true))).toEqual([
      'zfs',
      'send',
      '-c',
      '-L',
      '-e',
      '-i',
      `${DS}#hozo:nightly:b`,
      `${DS}@c`,
    ]);
  });
});
