// The property, listing, housekeeping and zpool builders (src/zfs/dataset-argv.ts, pool-argv.ts): the exact argv
// each call site used to spell inline, and hostile names, properties and values refused before anything is built.
// Then the rule they exist for: no zfs/zpool argv is written outside src/zfs.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import {
  cloneArgv,
  createArgv,
  destroyTreeArgv,
  getArgv,
  inheritArgv,
  listNamesArgv,
  loadKeyArgv,
  mountArgv,
  setArgv,
  snapshotsArgv,
} from '../../src/zfs/dataset-argv.js';
import { poolExportArgv, poolImportArgv, poolStatusFullArgv, poolsListArgv } from '../../src/zfs/pool-argv.js';

const refused = (fn: () => unknown): boolean => {
  try {
    fn();
    return false;
  } catch {
    return true;
  }
};

describe('dataset argv builders', () => {
  it('build the argv the call sites spelled inline', () => {
    expect(
      getArgv(['type', 'mountpoint', 'guid'], ['backup/x'], {
        parsable: true,
        recursive: true,
        types: ['filesystem', 'volume', 'snapshot'],
        fields: ['name', 'property', 'value'],
      }),
    ).toEqual(['zfs', 'get', '-H', '-p', '-r', '-t', 'filesystem,volume,snapshot', '-o', 'name,property,value', 'type,mountpoint,guid', 'backup/x']);
    expect(getArgv(['guid'], ['backup/x'], { parsable: true, recursive: true, fields: ['name', 'value'] })).toEqual([
      'zfs',
      'get',
      '-H',
      '-p',
      '-r',
      '-o',
      'name,value',
      'guid',
      'backup/x',
    ]);
    expect(getArgv(['referenced'], ['tank/a@s1'], { parsable: true })).toEqual(['zfs', 'get', '-H', '-p', '-o', 'value', 'referenced', 'tank/a@s1']);
    expect(getArgv(['hozo:verify'], ['tank/hozo-verify-nightly'])).toEqual(['zfs', 'get', '-H', '-o', 'value', 'hozo:verify', 'tank/hozo-verify-nightly']);
    expect(setArgv(['canmount=noauto'], 'backup/x')).toEqual(['zfs', 'set', 'canmount=noauto', 'backup/x']);
    expect(setArgv(['setuid=off', 'exec=off'], 'backup/x/y')).toEqual(['zfs', 'set', 'setuid=off', 'exec=off', 'backup/x/y']);
    expect(inheritArgv('mountpoint', 'tank/r')).toEqual(['zfs', 'inherit', 'mountpoint', 'tank/r']);
    expect(listNamesArgv('backup/x')).toEqual(['zfs', 'list', '-H', '-o', 'name', 'backup/x']);
    expect(listNamesArgv('backup/x', { type: 'snapshot', depth: 1 })).toEqual(['zfs', 'list', '-H', '-o', 'name', '-t', 'snapshot', '-d', '1', 'backup/x']);
    expect(listNamesArgv('tank/v', { type: 'filesystem', recursive: true })).toEqual(['zfs', 'list', '-H', '-o', 'name', '-t', 'filesystem', '-r', 'tank/v']);
    expect(mountArgv('tank/r')).toEqual(['zfs', 'mount', 'tank/r']);
    expect(createArgv('tank/v', ['canmount=off', 'mountpoint=none', 'hozo:verify=nightly'])).toEqual([
      'zfs',
      'create',
      '-o',
      'canmount=off',
      '-o',
      'mountpoint=none',
      '-o',
      'hozo:verify=nightly',
      'tank/v',
    ]);
    expect(cloneArgv('tank/a@s', 'tank/v/c', ['readonly=on', 'mountpoint=/tmp/m/source'])).toEqual([
      'zfs',
      'clone',
      '-o',
      'readonly=on',
      '-o',
      'mountpoint=/tmp/m/source',
      'tank/a@s',
      'tank/v/c',
    ]);
    expect(loadKeyArgv('tank/v/r', 'file:///etc/keys/a')).toEqual(['zfs', 'load-key', '-L', 'file:///etc/keys/a', 'tank/v/r']);
    expect(destroyTreeArgv('tank/v')).toEqual(['zfs', 'destroy', '-r', 'tank/v']);
    expect(destroyTreeArgv('tank/v', { force: true })).toEqual(['zfs', 'destroy', '-r', '-f', 'tank/v']);
    expect(snapshotsArgv(['tank/a@n', 'tank/b@n'])).toEqual(['zfs', 'snapshot', 'tank/a@n', 'tank/b@n']);
    expect(snapshotsArgv(['tank/a@n'], { recursive: true })).toEqual(['zfs', 'snapshot', '-r', 'tank/a@n']);
  });

  it('refuse hostile names, properties and values', () => {
    for (const name of ['-r', 'tank/a b', 'tank//a', 'tank/a;rm', '', 'tank/a@', 'tank/a@b@c']) {
      expect(
        refused(() => getArgv(['guid'], [name])),
        name,
      ).toBe(true);
      expect(
        refused(() => setArgv(['canmount=off'], name)),
        name,
      ).toBe(true);
    }
    expect(refused(() => listNamesArgv('tank/a@s'))).toBe(true); // a listing root is a dataset
    expect(refused(() => destroyTreeArgv('tank/a@s'))).toBe(true);
    expect(refused(() => getArgv(['guid,-r'], ['tank/a']))).toBe(true);
    expect(refused(() => getArgv([], ['tank/a']))).toBe(true);
    expect(refused(() => getArgv(['guid'], []))).toBe(true);
    expect(refused(() => setArgv(['canmount'], 'tank/a'))).toBe(true);
    expect(refused(() => setArgv(['-o=x'], 'tank/a'))).toBe(true);
    expect(refused(() => setArgv([], 'tank/a'))).toBe(true);
    expect(refused(() => inheritArgv('-r', 'tank/a'))).toBe(true);
    expect(refused(() => createArgv('tank/a', ['=x']))).toBe(true);
    expect(refused(() => loadKeyArgv('tank/a', '-n'))).toBe(true);
    expect(refused(() => listNamesArgv('tank/a', { depth: -1 }))).toBe(true);
    expect(refused(() => snapshotsArgv(['tank/a@n', 'tank/b@n'], { recursive: true }))).toBe(true);
    expect(refused(() => snapshotsArgv([]))).toBe(true);
  });
});

describe('zpool argv builders', () => {
  it('status, import, export, list', () => {
    expect(poolStatusFullArgv('backup')).toEqual(['zpool', 'status', 'backup']);
    expect(poolImportArgv('backup', { noMount: true, directories: ['/dev/disk/by-id'] })).toEqual(['zpool', 'import', '-N', '-d', '/dev/disk/by-id', 'backup']);
    expect(poolImportArgv('backup', { noMount: false, directories: [] })).toEqual(['zpool', 'import', 'backup']);
    expect(poolExportArgv('backup')).toEqual(['zpool', 'export', 'backup']);
    expect(poolsListArgv(['a', 'b'])).toEqual(['zpool', 'list', '-H', '-o', 'name,health,size,alloc,free,cap', 'a', 'b']);
    for (const pool of ['backup/x', '-f', 'a b', '']) {
      expect(
        refused(() => poolImportArgv(pool, { noMount: true, directories: [] })),
        pool,
      ).toBe(true);
      expect(
        refused(() => poolExportArgv(pool)),
        pool,
      ).toBe(true);
    }
    expect(refused(() => poolImportArgv('backup', { noMount: true, directories: ['relative'] }))).toBe(true);
  });
});

describe('zfs and zpool argv are built only in src/zfs', () => {
  const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
  const files = (dir: string): string[] =>
    readdirSync(join(ROOT, dir)).flatMap((n) => {
      const p = join(dir, n);
      return statSync(join(ROOT, p)).isDirectory() ? files(p) : p.endsWith('.ts') ? [p] : [];
    });
  // The lab drives its own VMs and zfs-fuse boxes (test equipment, not a run's path); demo.ts inspects the lab's box;
  // agent/config.ts holds the scrub commands' defaults (data the user may replace).
  const EXEMPT = /^src\/zfs\/|^src\/lab\/|^src\/cli\/commands\/demo\.ts$|^agent\/config\.ts$/;
  const INLINE = /\[\s*'(zfs|zpool)'\s*,/;
  it('no inline argv array starting with zfs or zpool elsewhere in src/ or agent/', () => {
    const all = [...files('src'), ...files('agent')].map((p) => relative(ROOT, join(ROOT, p)));
    expect(all.length).toBeGreaterThan(100);
    const offenders = all
      .filter((p) => !EXEMPT.test(p))
      .flatMap((p) =>
        readFileSync(join(ROOT, p), 'utf8')
          .split('\n')
          .map((l, i) => [p, i + 1, l] as const)
          .filter(([, , l]) => INLINE.test(l) && !/^\s*(\/\/|\*)/.test(l))
          .map(([p, n, l]) => `${p}:${n}: ${l.trim()}`),
      );
    expect(offenders).toEqual([]);
    // The check can fail: the exempt files do have such lines.
    expect(INLINE.test(readFileSync(join(ROOT, 'src/zfs/pool-argv.ts'), 'utf8'))).toBe(true);
  });
});
