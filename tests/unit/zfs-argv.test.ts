import { describe, expect, it } from 'vitest';
import { isHozoError } from '../../src/errors.js';
import {
  bookmarkArgv,
  destroyBookmarkArgv,
  createParentArgv,
  destroySnapshotArgv,
  guidsArgv,
  holdArgv,
  holdsArgv,
  inventoryArgv,
  receiveAbortArgv,
  receiveArgv,
  releaseArgv,
  rollbackArgv,
  sendArgv,
  snapshotArgv,
  splitSnapshot,
} from '../../src/zfs/argv.js';
import { poolListArgv, poolStatusArgv } from '../../src/zfs/pool-argv.js';

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    return isHozoError(e) ? e.code : `not a HozoError: ${String(e)}`;
  }
  return undefined;
}

const TOKEN = '1-fd3f3ea61-130-789c636064000310a501c49c50360710';

describe('sendArgv', () => {
  it('full send carries only the snapshot', () => {
    expect(sendArgv({ kind: 'full', snapshot: 'tank/home@a' })).toEqual(['zfs', 'send', 'tank/home@a']);
  });

  it('-i and -I from → to', () => {
    expect(sendArgv({ kind: 'incremental', from: 'tank/home@a', to: 'tank/home@b' })).toEqual(['zfs', 'send', '-i', 'tank/home@a', 'tank/home@b']);
    expect(sendArgv({ kind: 'incremental', from: 'tank/home@a', to: 'tank/home@b', intermediates: true })).toEqual([
      'zfs',
      'send',
      '-I',
      'tank/home@a',
      'tank/home@b',
    ]);
  });

  it('includes exactly the flags asked for', () => {
    expect(sendArgv({ kind: 'full', snapshot: 'p/d@s' }, { props: true, verbose: true })).toEqual(['zfs', 'send', '-p', '-v', 'p/d@s']);
    const all = sendArgv(
      { kind: 'incremental', from: 'p/d@a', to: 'p/d@b' },
      { replicate: true, props: true, dedup: true, raw: true, compressed: true, largeBlock: true, embedded: true, verbose: true, dryRunParsable: true },
    );
    expect(all).toEqual(['zfs', 'send', '-R', '-p', '-D', '-w', '-c', '-L', '-e', '-v', '-n', '-P', '-i', 'p/d@a', 'p/d@b']);
    expect(sendArgv({ kind: 'full', snapshot: 'p/d@s' }, { props: false, raw: false })).toEqual(['zfs', 'send', 'p/d@s']);
  });

  it('resume: -t TOKEN, with only the flags zfs allows alongside', () => {
    expect(sendArgv({ kind: 'resume', token: TOKEN }, { verbose: true, embedded: true })).toEqual(['zfs', 'send', '-e', '-v', '-t', TOKEN]);
    expect(codeOf(() => sendArgv({ kind: 'resume', token: TOKEN }, { props: true }))).toBe('INTERNAL');
    expect(codeOf(() => sendArgv({ kind: 'resume', token: 'x; rm -rf /' }))).toBe('ZFS_RESUME_INVALID');
  });

  it('accepts a bookmark as -i source, not as -I source', () => {
    expect(sendArgv({ kind: 'incremental', from: 'p/d#a', to: 'p/d@b' })).toEqual(['zfs', 'send', '-i', 'p/d#a', 'p/d@b']);
    expect(codeOf(() => sendArgv({ kind: 'incremental', from: 'p/d#a', to: 'p/d@b', intermediates: true }))).toBe('INTERNAL');
  });

  it('validates every name before building', () => {
    expect(codeOf(() => sendArgv({ kind: 'full', snapshot: 'tank/home' }))).toBe('INVALID_DATASET_NAME');
    expect(codeOf(() => sendArgv({ kind: 'full', snapshot: '-R@x' }))).toBe('INVALID_DATASET_NAME');
    expect(codeOf(() => sendArgv({ kind: 'full', snapshot: 'tank/home@a b' }))).toBe('INVALID_DATASET_NAME');
    expect(codeOf(() => sendArgv({ kind: 'incremental', from: '@a', to: 'tank/home@b' }))).toBe('INVALID_DATASET_NAME');
    expect(codeOf(() => sendArgv({ kind: 'incremental', from: 'tank/home@a', to: 'tank/home@a' }))).toBe('INTERNAL');
  });

  it('keeps names with : . - intact as single arguments', () => {
    const snap = 'tank/backup/host-a.example:home@autosnap_2024-01-01_00:00:01_daily';
    expect(sendArgv({ kind: 'full', snapshot: snap })).toEqual(['zfs', 'send', snap]);
  });
});

describe('receiveArgv', () => {
  it('-u by default, nothing else', () => {
    expect(receiveArgv('backup/home')).toEqual(['zfs', 'receive', '-u', 'backup/home']);
    expect(receiveArgv('backup/home', { unmounted: false })).toEqual(['zfs', 'receive', 'backup/home']);
  });

  it('all options in a fixed order', () => {
    expect(
      receiveArgv('backup/home', {
        force: true,
        resumable: true,
        verbose: true,
        dryRun: true,
        setProps: { readonly: 'on', 'org.hozo:job': 'nightly' },
        excludeProps: ['mountpoint', 'sharenfs'],
      }),
    ).toEqual([
      'zfs',
      'receive',
      '-u',
      '-F',
      '-s',
      '-v',
      '-n',
      '-o',
      'readonly=on',
      '-o',
      'org.hozo:job=nightly',
      '-x',
      'mountpoint',
      '-x',
      'sharenfs',
      'backup/home',
    ]);
  });

  it('rejects bad targets and property names', () => {
    expect(codeOf(() => receiveArgv('backup/home@a'))).toBe('INVALID_DATASET_NAME');
    expect(codeOf(() => receiveArgv('/backup'))).toBe('INVALID_DATASET_NAME');
    expect(codeOf(() => receiveArgv('backup/x', { setProps: { 'Bad Prop': 'x' } }))).toBe('USAGE');
    expect(codeOf(() => receiveArgv('backup/x', { excludeProps: ['-F'] }))).toBe('USAGE');
    expect(codeOf(() => receiveArgv('backup/x', { setProps: { readonly: 'on\n' } }))).toBe('USAGE');
  });

  it('receive -A', () => {
    expect(receiveAbortArgv('backup/home')).toEqual(['zfs', 'receive', '-A', 'backup/home']);
  });
});

describe('inventoryArgv', () => {
  it('one recursive zfs get over all roots; optional properties by capability', () => {
    expect(inventoryArgv(['tank/a', 'tank/b'])).toEqual([
      'zfs',
      'get',
      '-H',
      '-p',
      '-r',
      '-o',
      'name,property,value',
      'type,guid,createtxg,creation',
      'tank/a',
      'tank/b',
    ]);
    expect(inventoryArgv(['tank'], { userrefs: true, resumeToken: true })[7]).toBe('type,guid,createtxg,creation,userrefs,receive_resume_token');
    // zfs get leaves bookmarks out unless asked (OpenZFS); zfs-fuse knows neither bookmarks nor -t.
    expect(inventoryArgv(['tank'], { bookmarks: true })).toEqual([
      'zfs',
      'get',
      '-H',
      '-p',
      '-r',
      '-t',
      'filesystem,volume,snapshot,bookmark',
      '-o',
      'name,property,value',
      'type,guid,createtxg,creation',
      'tank',
    ]);
  });

  it('never builds a listing without roots (zfs would list every dataset)', () => {
    expect(codeOf(() => inventoryArgv([]))).toBe('INTERNAL');
    expect(codeOf(() => guidsArgv([]))).toBe('INTERNAL');
    expect(codeOf(() => inventoryArgv(['tank', 'tank@snap']))).toBe('INVALID_DATASET_NAME');
  });

  it('guids of given snapshots, exact (-p)', () => {
    expect(guidsArgv(['tank/a@1', 'tank/b@2'])).toEqual(['zfs', 'get', '-H', '-p', '-o', 'name,value', 'guid', 'tank/a@1', 'tank/b@2']);
  });
});

describe('holds, snapshots, parents, pools', () => {
  it('hold / release / holds', () => {
    expect(holdArgv('hozo-nightly', ['tank/a@1', 'tank/a@2'])).toEqual(['zfs', 'hold', 'hozo-nightly', 'tank/a@1', 'tank/a@2']);
    expect(releaseArgv('.send-1234-0', ['tank/a@1'])).toEqual(['zfs', 'release', '.send-1234-0', 'tank/a@1']);
    expect(holdsArgv('tank/a@1')).toEqual(['zfs', 'holds', '-H', 'tank/a@1']);
    expect(codeOf(() => holdArgv('-r', ['tank/a@1']))).toBe('USAGE');
    expect(codeOf(() => holdArgv('tag with space', ['tank/a@1']))).toBe('USAGE');
    expect(codeOf(() => holdArgv('hozo', []))).toBe('INTERNAL');
    expect(codeOf(() => releaseArgv('hozo', ['tank/a']))).toBe('INVALID_DATASET_NAME');
  });

  it('createParent, rollback, snapshot, destroySnapshot, bookmark', () => {
    expect(createParentArgv('backup/host-a/home')).toEqual(['zfs', 'create', '-p', '-o', 'canmount=off', 'backup/host-a/home']);
    expect(rollbackArgv('backup/home@a', true)).toEqual(['zfs', 'rollback', '-r', 'backup/home@a']);
    expect(rollbackArgv('backup/home@a', false)).toEqual(['zfs', 'rollback', 'backup/home@a']);
    expect(snapshotArgv('tank/home@hozo_2024-01-01T00:00')).toEqual(['zfs', 'snapshot', 'tank/home@hozo_2024-01-01T00:00']);
    expect(destroySnapshotArgv('tank/home@a')).toEqual(['zfs', 'destroy', 'tank/home@a']);
    expect(bookmarkArgv('tank/home@a', 'tank/home#a')).toEqual(['zfs', 'bookmark', 'tank/home@a', 'tank/home#a']);
  });

  it('destroyBookmark destroys exactly one bookmark, never a snapshot or a filesystem', () => {
    expect(destroyBookmarkArgv('tank/home#hozo:nightly:a')).toEqual(['zfs', 'destroy', 'tank/home#hozo:nightly:a']);
    for (const bad of ['tank/home', 'tank/home@a', 'tank', 'tank/home#', 'tank/home#a b', 'tank/home#a,tank/home#b']) {
      expect(codeOf(() => destroyBookmarkArgv(bad))).toBe('INVALID_DATASET_NAME');
    }
  });

  it('destroySnapshot can never destroy a filesystem', () => {
    expect(codeOf(() => destroySnapshotArgv('tank/home'))).toBe('INVALID_DATASET_NAME');
    expect(codeOf(() => destroySnapshotArgv('tank'))).toBe('INVALID_DATASET_NAME');
    expect(codeOf(() => destroySnapshotArgv('tank/home@'))).toBe('INVALID_DATASET_NAME');
  });

  it('rejects malformed names everywhere', () => {
    expect(codeOf(() => createParentArgv('backup//x'))).toBe('INVALID_DATASET_NAME');
    expect(codeOf(() => createParentArgv('1pool/x'))).toBe('INVALID_DATASET_NAME');
    expect(codeOf(() => rollbackArgv('backup/home', true))).toBe('INVALID_DATASET_NAME');
    expect(codeOf(() => snapshotArgv('tank/home@a@b'))).toBe('INVALID_DATASET_NAME');
    expect(codeOf(() => bookmarkArgv('tank/home@a', 'tank/other#a'))).toBe('INVALID_DATASET_NAME');
    expect(codeOf(() => bookmarkArgv('tank/home@a', 'tank/home@a'))).toBe('INVALID_DATASET_NAME');
  });

  it('zpool status / list', () => {
    expect(poolStatusArgv('backup')).toEqual(['zpool', 'status', '-x', 'backup']);
    expect(poolListArgv('backup')).toEqual(['zpool', 'list', '-H', '-o', 'name,health,size,alloc,free,cap', 'backup']);
    expect(codeOf(() => poolStatusArgv('backup/home'))).toBe('INVALID_DATASET_NAME');
    expect(codeOf(() => poolListArgv('mirror'))).toBe('INVALID_DATASET_NAME');
  });

  it('splitSnapshot', () => {
    expect(splitSnapshot('tank/db:main@first')).toEqual({ dataset: 'tank/db:main', snapshot: 'first' });
  });
});
