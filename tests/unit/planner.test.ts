// Planner cases, one line each, in the spirit of zrepl's diff_test.go.
// `@a,1` is snapshot "a" with guid "1"; createtxg is the snapshot's position on its own side.

import { describe, expect, it } from 'vitest';
import { expandDatasets } from '../../src/planner/expand.js';
import { planDataset, planJob } from '../../src/planner/plan.js';
import type { DatasetPlan, DatasetSpec, Policy } from '../../src/planner/types.js';
import type { Dataset, Inventory, Snapshot } from '../../src/zfs/types.js';

const SRC = 'tank/data';
const TGT = 'backup/data';

/** `@a,1` snapshot, `#a,1` bookmark (OpenZFS); createtxg is the position in the line (a bookmark of a listed
 *  snapshot: that snapshot's). */
function points(...specs: string[]): { snapshots: Snapshot[]; bookmarks: Snapshot[] } {
  const out = { snapshots: [] as Snapshot[], bookmarks: [] as Snapshot[] };
  specs.forEach((spec, i) => {
    const m = /^([@#])([^,]+),(\d+)$/.exec(spec);
    if (!m) throw new Error(`bad snapshot spec ${spec}`);
    (m[1] === '@' ? out.snapshots : out.bookmarks).push({ name: m[2]!, guid: m[3]!, createtxg: i + 1, creation: 1_700_000_000 + i });
  });
  // A bookmark of a snapshot that still exists has that snapshot's txg, as in ZFS.
  out.bookmarks = out.bookmarks.map((b) => ({ ...b, createtxg: out.snapshots.find((x) => x.guid === b.guid)?.createtxg ?? b.createtxg }));
  return out;
}
const ds = (name: string, line: string): Dataset => {
  const { snapshots, bookmarks } = points(...line.split(/\s+/).filter(Boolean));
  return { name, type: 'filesystem', snapshots, ...(bookmarks.length > 0 ? { bookmarks } : {}) };
};
const src = (line: string) => ds(SRC, line);
const tgt = (line: string) => ds(TGT, line);
const none = undefined;

const all: Policy = { snapshots: 'all', rollback: false };
const latest: Policy = { snapshots: 'latest', rollback: false };
const allRb: Policy = { snapshots: 'all', rollback: true };
const latestRb: Policy = { snapshots: 'latest', rollback: true };

/** One line per plan: `full @a; I @a→@c`, `rollback @x; i @a→@c`, `up-to-date @c`, `conflict target-ahead`. */
function render(p: DatasetPlan): string {
  if (p.action === 'conflict') return `conflict ${p.conflict.kind}`;
  if (p.action === 'up-to-date') return `up-to-date ${p.base.bookmark ? '#' : '@'}${p.base.name}`;
  const parts: string[] = [];
  if (p.createParent !== undefined) parts.push(`create ${p.createParent}`);
  if (p.rollbackTo !== undefined) parts.push(`rollback @${p.rollbackTo.name}`);
  for (const s of p.steps) {
    parts.push(s.kind === 'full' ? `full @${s.snapshot.name}` : `${s.intermediates ? 'I' : 'i'} ${s.from.bookmark ? '#' : '@'}${s.from.name}→@${s.to.name}`);
  }
  return parts.join('; ');
}

const want = {
  send: (s: string) => s,
  upToDate: (snap: string) => `up-to-date ${snap}`,
  conflict: (kind: string) => `conflict ${kind}`,
};

interface Case {
  readonly name: string;
  readonly source: Dataset | undefined;
  readonly target: Dataset | undefined;
  readonly policy: Policy;
  readonly want: string;
  /** Fragments the conflict message (or hint, after `hint:`) must contain. */
  readonly says: readonly string[];
}
const cases: Case[] = [];
function c(name: string, source: Dataset | undefined, target: Dataset | undefined, policy: Policy, w: string, ...says: string[]) {
  cases.push({ name, source, target, policy, want: w, says });
}

// --- source problems
c('missing source', none, none, all, want.conflict('source-no-snapshots'), `${SRC} does not exist`, 'hint:sanoid');
c('missing source, target exists', none, tgt('@a,1'), all, want.conflict('source-no-snapshots'), `${SRC} does not exist`, 'hint:check the dataset name');
c('source without snapshots', src(''), none, all, want.conflict('source-no-snapshots'), `${SRC} has no snapshots`, `hint:zfs snapshot ${SRC}@`);
c('source without snapshots, target has some', src(''), tgt('@a,1'), allRb, want.conflict('source-no-snapshots'), 'hint:sanoid');

// --- full sends to a missing target
c('full, one snapshot, all', src('@a,1'), none, all, want.send('full @a'));
c('full, one snapshot, latest', src('@a,1'), none, latest, want.send('full @a'));
c('full, many snapshots, all: oldest then -I', src('@a,1 @b,2 @c,3'), none, all, want.send('full @a; I @a→@c'));
c('full, two snapshots, all', src('@a,1 @b,2'), none, all, want.send('full @a; I @a→@b'));
c('full, many snapshots, latest: newest only', src('@a,1 @b,2 @c,3'), none, latest, want.send('full @c'));
c('full ignores rollback', src('@a,1 @b,2'), none, allRb, want.send('full @a; I @a→@b'));

// --- incrementals
c('incremental -I', src('@a,1 @b,2 @c,3'), tgt('@a,1'), all, want.send('I @a→@c'));
c('incremental -i', src('@a,1 @b,2 @c,3'), tgt('@a,1'), latest, want.send('i @a→@c'));
c('incremental from the newest common, not the oldest', src('@a,1 @b,2 @c,3'), tgt('@a,1 @b,2'), all, want.send('I @b→@c'));
c('incremental -i from the newest common', src('@a,1 @b,2 @c,3 @d,4'), tgt('@a,1 @b,2'), latest, want.send('i @b→@d'));
c('target pruned old snapshots', src('@a,1 @b,2 @c,3'), tgt('@b,2'), all, want.send('I @b→@c'));
c('source pruned old snapshots', src('@c,3 @d,4'), tgt('@a,1 @b,2 @c,3'), all, want.send('I @c→@d'));
c('target keeps a gap (sent with -i before)', src('@a,1 @b,2 @c,3 @d,4'), tgt('@a,1 @c,3'), all, want.send('I @c→@d'));
c('renamed snapshot with same guid is common', src('@a,1 @b,2'), tgt('@renamed,1'), all, want.send('I @a→@b'));
c('renamed newest is common: up to date', src('@a,1 @b,2'), tgt('@a,1 @x,2'), all, want.upToDate('@b'));

// --- up to date
c('up to date, one snapshot', src('@a,1'), tgt('@a,1'), all, want.upToDate('@a'));
c('up to date, many', src('@a,1 @b,2 @c,3'), tgt('@a,1 @b,2 @c,3'), latest, want.upToDate('@c'));
c('up to date with fewer on target', src('@a,1 @b,2 @c,3'), tgt('@c,3'), all, want.upToDate('@c'));
c('up to date, target kept snapshots the source pruned', src('@c,3'), tgt('@a,1 @b,2 @c,3'), all, want.upToDate('@c'));

// --- no common snapshot
c(
  'target exists with zero snapshots',
  src('@a,1'),
  tgt(''),
  all,
  want.conflict('no-common-snapshot'),
  `${TGT} exists but has no snapshots`,
  'never overwrites',
  `hint:zfs destroy -r ${TGT}`,
);
c(
  'target unrelated',
  src('@a,1 @b,2'),
  tgt('@x,7 @y,8'),
  all,
  want.conflict('no-common-snapshot'),
  `${TGT}@x, ${TGT}@y`,
  `${SRC}@a, ${SRC}@b`,
  'hint:another target',
);
c(
  'same name, different guid is not common',
  src('@a,1 @b,2'),
  tgt('@a,9'),
  all,
  want.conflict('no-common-snapshot'),
  `${TGT}@a has the name of a source snapshot but a different guid`,
);
c('same names everywhere, different guids', src('@a,1 @b,2'), tgt('@a,8 @b,9'), allRb, want.conflict('no-common-snapshot'), 'they are different data');
c('no common even with rollback', src('@a,1'), tgt('@z,5'), allRb, want.conflict('no-common-snapshot'));
c('no common with latest', src('@a,1 @b,2'), tgt(''), latest, want.conflict('no-common-snapshot'));

// --- divergence
c(
  'diverged, rollback refused',
  src('@a,1 @b,2'),
  tgt('@a,1 @x,5'),
  all,
  want.conflict('target-diverged'),
  `${SRC}@a`,
  `${TGT}@x which the source lacks`,
  `${SRC}@b since`,
  'hint:`rollback: true`',
  `hint:destroys the target snapshots ${TGT}@x`,
);
c('diverged, rollback allowed: -I', src('@a,1 @b,2'), tgt('@a,1 @x,5'), allRb, want.send('rollback @a; I @a→@b'));
c('diverged, rollback allowed: -i', src('@a,1 @b,2 @c,3'), tgt('@a,1 @x,5 @y,6'), latestRb, want.send('rollback @a; i @a→@c'));
c('diverged after a later base', src('@a,1 @b,2 @c,3'), tgt('@a,1 @b,2 @x,5'), allRb, want.send('rollback @b; I @b→@c'));
c(
  'diverged, hint lists every snapshot rollback destroys',
  src('@a,1 @b,2'),
  tgt('@a,1 @x,5 @y,6'),
  all,
  want.conflict('target-diverged'),
  `hint:${TGT}@x, ${TGT}@y`,
  `hint:back to ${TGT}@a`,
);
c('diverged from a renamed base: roll back to the target name', src('@a,1 @b,2'), tgt('@old,1 @x,5'), allRb, want.send('rollback @old; I @a→@b'));
c(
  'diverged from a renamed base: hint uses the target name',
  src('@a,1 @b,2'),
  tgt('@old,1 @x,5'),
  all,
  want.conflict('target-diverged'),
  `hint:back to ${TGT}@old`,
);
c(
  'target snapshot same name as newer source snapshot but different guid',
  src('@a,1 @b,2'),
  tgt('@a,1 @b,9'),
  all,
  want.conflict('target-diverged'),
  `${TGT}@b which the source lacks`,
);

// --- target ahead
c(
  'target ahead',
  src('@a,1 @b,2'),
  tgt('@a,1 @b,2 @x,5'),
  all,
  want.conflict('target-ahead'),
  `${TGT}@x`,
  `nothing newer than the common snapshot ${SRC}@b`,
  'hint:rolled back or had snapshots pruned',
);
c(
  'target ahead even with rollback: nothing to send',
  src('@a,1'),
  tgt('@a,1 @x,5 @y,6'),
  allRb,
  want.conflict('target-ahead'),
  `${TGT}@x, ${TGT}@y`,
  'nothing to send',
);
c('target ahead after the source rolled back', src('@a,1'), tgt('@a,1 @b,2'), latest, want.conflict('target-ahead'), `${TGT}@b`);

// --- bookmarks (OpenZFS; zfs-fuse has none, so these run on listings only): a bookmark keeps the common point when
// the source snapshot was pruned; only -i can start from it.
c('bookmark base: the sent snapshot was pruned on the source, -i then -I', src('#b,2 @c,3 @d,4'), tgt('@a,1 @b,2'), all, want.send('i #b→@c; I @c→@d'));
c('bookmark base, one newer snapshot', src('#b,2 @c,3'), tgt('@b,2'), all, want.send('i #b→@c'));
c('bookmark base, latest: one -i to the newest', src('#b,2 @c,3 @d,4'), tgt('@b,2'), latest, want.send('i #b→@d'));
c('a common snapshot beats a bookmark of the same snapshot', src('@b,2 #b,2 @c,3'), tgt('@b,2'), all, want.send('I @b→@c'));
c('a newer bookmark beats an older common snapshot', src('@a,1 #b,2 @c,3'), tgt('@a,1 @b,2'), all, want.send('i #b→@c'));
c('an older bookmark does not beat a newer common snapshot', src('#a,1 @b,2 @c,3'), tgt('@a,1 @b,2'), all, want.send('I @b→@c'));
c('bookmark of a snapshot the target does not have is no base', src('#x,7 @c,3'), tgt('@a,1'), all, want.conflict('no-common-snapshot'));
c('bookmark base, nothing newer: up to date', src('@a,1 #b,2'), tgt('@b,2'), all, want.upToDate('#b'));
c(
  'bookmark base, target diverged',
  src('#b,2 @c,3'),
  tgt('@b,2 @x,5'),
  all,
  want.conflict('target-diverged'),
  `common bookmark ${SRC}#b`,
  `${TGT}@x which the source lacks`,
);
c('bookmark base, target diverged, rollback allowed', src('#b,2 @c,3'), tgt('@b,2 @x,5'), allRb, want.send('rollback @b; i #b→@c'));
c('bookmark base, target ahead', src('@a,1 #b,2'), tgt('@b,2 @x,5'), all, want.conflict('target-ahead'), `common bookmark ${SRC}#b`);

describe('planDataset', () => {
  for (const k of cases) {
    it(k.name, () => {
      const target = k.target === undefined ? undefined : { ...k.target };
      const plan = planDataset({ source: SRC, target: TGT }, k.source, target, k.policy, { targetParentExists: true });
      expect(render(plan)).toBe(k.want);
      expect(plan.source).toBe(SRC);
      expect(plan.target).toBe(TGT);
      for (const s of k.says) {
        expect(plan.action).toBe('conflict');
        if (plan.action !== 'conflict') return;
        if (s.startsWith('hint:')) expect(plan.conflict.hint).toContain(s.slice(5));
        else expect(plan.conflict.message).toContain(s);
      }
    });
  }

  it('full send has no base and no rollback', () => {
    const p = planDataset({ source: SRC, target: TGT }, src('@a,1 @b,2'), none, all, { targetParentExists: true });
    expect(p.action === 'send' && p.base === undefined && p.rollbackTo === undefined).toBe(true);
  });

  it('incremental base is the source snapshot (source name) and carries its guid', () => {
    const p = planDataset({ source: SRC, target: TGT }, src('@a,1 @b,2'), tgt('@renamed,1'), all, { targetParentExists: true });
    expect(p.action === 'send' ? [p.base?.name, p.base?.guid] : p.action).toEqual(['a', '1']);
  });

  it('creates the missing parent of a new target', () => {
    const p = planDataset({ source: SRC, target: 'backup/kraken/data' }, src('@a,1'), none, all, { targetParentExists: false });
    expect(render(p)).toBe('create backup/kraken; full @a');
  });

  it('never asks to create a parent for an existing target', () => {
    const p = planDataset({ source: SRC, target: TGT }, src('@a,1 @b,2'), tgt('@a,1'), all, { targetParentExists: false });
    expect(render(p)).toBe('I @a→@b');
  });

  it('orders snapshots by createtxg even if the inventory is not sorted', () => {
    const s = src('@a,1 @b,2 @c,3');
    const shuffled: Dataset = { ...s, snapshots: [s.snapshots[2]!, s.snapshots[0]!, s.snapshots[1]!] };
    expect(render(planDataset({ source: SRC, target: TGT }, shuffled, none, all, { targetParentExists: true }))).toBe('full @a; I @a→@c');
  });

  it('caps long snapshot lists in messages', () => {
    const many = Array.from({ length: 10 }, (_, i) => `@x${i},${100 + i}`).join(' ');
    const p = planDataset({ source: SRC, target: TGT }, src('@a,1 @b,2'), tgt(`@a,1 ${many}`), all, { targetParentExists: true });
    expect(p.action === 'conflict' ? p.conflict.message : '').toContain('and 4 more');
  });

  it('every conflict kind is covered', () => {
    const kinds = new Set(cases.filter((k) => k.want.startsWith('conflict ')).map((k) => k.want.slice(9)));
    expect([...kinds].sort()).toEqual(['no-common-snapshot', 'source-no-snapshots', 'target-ahead', 'target-diverged']);
  });

  it('never plans a rollback without policy.rollback', () => {
    for (const k of cases.filter((k) => !k.policy.rollback)) {
      const p = planDataset({ source: SRC, target: TGT }, k.source, k.target, k.policy, { targetParentExists: true });
      expect(p.action === 'send' ? p.rollbackTo : undefined, k.name).toBeUndefined();
    }
  });
});

// --- trees: `name@a,1 @b,2` per dataset, or just `name` for a dataset without snapshots
function inv(...lines: string[]): Inventory {
  const m = new Map<string, Dataset>();
  for (const line of lines) {
    const [name, ...rest] = line.split(/(?=@)|\s+/).filter(Boolean);
    m.set(name!, ds(name!, rest.join(' ')));
  }
  return m;
}
const spec = (source: string, target: string, recursive = true, exclude: string[] = []): DatasetSpec => ({ source, target, recursive, exclude });
const pairs = (s: DatasetSpec, i: Inventory) => expandDatasets(s, i).map((p) => `${p.source}→${p.target}`);
const job = (specs: DatasetSpec[], s: Inventory, t: Inventory, p: Policy = all) => planJob(specs, s, t, p).map((x) => `${x.target}: ${render(x)}`);

const tank = inv(
  'tank',
  'tank/services@a,1',
  'tank/services/web@a,2',
  'tank/services/db@a,3',
  'tank/services/db/wal@a,4',
  'tank/services/db/data@a,5',
  'tank/services/dbx@a,6',
  'tank/servicesX@a,7',
);

describe('expandDatasets', () => {
  it('maps every descendant, parents first, siblings by name', () => {
    expect(pairs(spec('tank/services', 'backup/kraken/services'), tank)).toEqual([
      'tank/services→backup/kraken/services',
      'tank/services/db→backup/kraken/services/db',
      'tank/services/dbx→backup/kraken/services/dbx',
      'tank/services/web→backup/kraken/services/web',
      'tank/services/db/data→backup/kraken/services/db/data',
      'tank/services/db/wal→backup/kraken/services/db/wal',
    ]);
  });

  it('excluding a middle node removes its whole subtree but not a name-prefix sibling', () => {
    expect(pairs(spec('tank/services', 'b/s', true, ['tank/services/db']), tank)).toEqual([
      'tank/services→b/s',
      'tank/services/dbx→b/s/dbx',
      'tank/services/web→b/s/web',
    ]);
  });

  it('excluding a leaf removes only the leaf', () => {
    expect(pairs(spec('tank/services', 'b/s', true, ['tank/services/db/wal']), tank)).not.toContain('tank/services/db/wal→b/s/db/wal');
    expect(pairs(spec('tank/services', 'b/s', true, ['tank/services/db/wal']), tank)).toHaveLength(5);
  });

  it('excluding the root leaves nothing', () => {
    expect(pairs(spec('tank/services', 'b/s', true, ['tank/services']), tank)).toEqual([]);
  });

  it('non-recursive is just the root', () => {
    expect(pairs(spec('tank/services', 'b/s', false), tank)).toEqual(['tank/services→b/s']);
  });

  it('a pool root maps its children under the target', () => {
    expect(pairs(spec('tank', 'backup/tank'), tank)[0]).toBe('tank→backup/tank');
    expect(pairs(spec('tank', 'backup/tank'), tank)).toContain('tank/servicesX→backup/tank/servicesX');
  });

  it('a missing root is still returned so the plan can report it', () => {
    expect(pairs(spec('tank/gone', 'b/gone'), tank)).toEqual(['tank/gone→b/gone']);
  });
});

describe('planJob', () => {
  it('new tree: createParent only at the root when its parent is missing', () => {
    expect(job([spec('tank/services', 'backup/kraken/services', true, ['tank/services/db/wal'])], tank, inv('backup'))).toEqual([
      'backup/kraken/services: create backup/kraken; full @a',
      'backup/kraken/services/db: full @a',
      'backup/kraken/services/dbx: full @a',
      'backup/kraken/services/web: full @a',
      'backup/kraken/services/db/data: full @a',
    ]);
  });

  it('no createParent when the target parent exists', () => {
    expect(job([spec('tank/services', 'backup/services', false)], tank, inv('backup'))).toEqual(['backup/services: full @a']);
  });

  it('a child under a parent that cannot be sent gets createParent', () => {
    const s = inv('tank/p', 'tank/p/c@a,1');
    expect(job([spec('tank/p', 'backup/p')], s, inv('backup'))).toEqual(['backup/p: conflict source-no-snapshots', 'backup/p/c: create backup/p; full @a']);
  });

  it('existing tree: each dataset planned against its own target', () => {
    const s = inv('tank/p@a,1 @b,2', 'tank/p/c@x,3', 'tank/p/d@y,4 @z,5');
    const t = inv('backup', 'backup/p@a,1', 'backup/p/c@x,3', 'backup/p/d@q,9');
    expect(job([spec('tank/p', 'backup/p')], s, t)).toEqual(['backup/p: I @a→@b', 'backup/p/c: up-to-date @x', 'backup/p/d: conflict no-common-snapshot']);
  });

  it('a new child under an existing parent needs no createParent', () => {
    const s = inv('tank/p@a,1', 'tank/p/new@n,2');
    expect(job([spec('tank/p', 'backup/p')], s, inv('backup', 'backup/p@a,1'))).toEqual(['backup/p: up-to-date @a', 'backup/p/new: full @n']);
  });

  it('a parent created by an earlier spec in the job counts as existing', () => {
    const s = inv('tank/a@a,1', 'tank/b@b,2');
    expect(job([spec('tank/a', 'backup/x/a', false), spec('tank/b', 'backup/x/b', false)], s, inv('backup'))).toEqual([
      'backup/x/a: create backup/x; full @a',
      'backup/x/b: full @b',
    ]);
  });

  it('missing source root in a recursive spec is a conflict, not silence', () => {
    expect(job([spec('tank/gone', 'backup/gone')], tank, inv('backup'))).toEqual(['backup/gone: conflict source-no-snapshots']);
  });

  it('passes the policy through to every dataset', () => {
    const s = inv('tank/p@a,1 @b,2 @c,3', 'tank/p/c@a,4 @b,5');
    expect(job([spec('tank/p', 'backup/p')], s, inv('backup'), latest)).toEqual(['backup/p: full @c', 'backup/p/c: full @b']);
  });
});
