// Own snapshots (job `snapshot: {create, prefix, keep}`): before planning, one snapshot of every dataset the job
// sends, taken at once, named `<prefix>_YYYYMMDDTHHMMSSZ` (UTC: names sort by time); after the run, the job's own
// snapshots beyond `keep` are destroyed on the source — never one that carries a hold (the incremental base), never
// one whose name this job did not make.
import { snapshotsArgv } from '../zfs/dataset-argv.js';
import type { DatasetConfig } from '../config/schema.js';
import { expandDatasets } from '../planner/expand.js';
import type { Capabilities, Inventory } from '../zfs/types.js';
import { destroySnapshotArgv } from '../zfs/argv.js';

export interface OwnSnapshotPolicy {
  readonly prefix: string;
  readonly keep: number;
}

export { snapshotPrefixOf } from '../config/rules.js';

/** `hozo_nightly_20261204T215000Z`: the prefix, then the UTC time to the second. */
export function ownSnapshotName(prefix: string, at: Date): string {
  const iso = at.toISOString(); // 2026-12-04T21:50:00.123Z
  return `${prefix}_${iso.slice(0, 4)}${iso.slice(5, 7)}${iso.slice(8, 10)}T${iso.slice(11, 13)}${iso.slice(14, 16)}${iso.slice(17, 19)}Z`;
}

/**
 * The name for a snapshot taken now that none of `datasets` has yet: a run within the same second as the last one
 * (or a clock that went back onto an existing name) moves on by a second, a bounded number of times.
 */
export function freshOwnSnapshotName(prefix: string, now: Date, inventory: Inventory, datasets: readonly string[]): string {
  for (let k = 0; k < 120; k++) {
    const name = ownSnapshotName(prefix, new Date(now.getTime() + k * 1000));
    if (!datasets.some((d) => inventory.get(d)?.snapshots.some((s) => s.name === name))) return name;
  }
  return ownSnapshotName(prefix, now); // zfs snapshot then says the name exists (the datasets fail, clearly)
}

/** Whether `name` is one of the snapshots ownSnapshotName makes with this prefix (and nothing else). */
export function isOwnSnapshot(prefix: string, name: string): boolean {
  return name.length === prefix.length + 17 && name.startsWith(prefix + '_') && /^\d{8}T\d{6}Z$/.test(name.slice(prefix.length + 1));
}

/** Per dataset entry, the source datasets its snapshot covers (a recursive entry: the tree minus its excludes). */
export function snapshotSets(datasets: readonly DatasetConfig[], inventory: Inventory): string[][] {
  return datasets.map((d) =>
    expandDatasets({ source: d.source, target: d.target, recursive: d.recursive, exclude: d.exclude }, inventory)
      .map((p) => p.source)
      .filter((s) => inventory.has(s)),
  );
}

/**
 * The `zfs snapshot` commands for those sets. OpenZFS takes several names in one command, all in one transaction
 * group (one consistent point in time across every tree of the job). zfs-fuse takes one name (and -r): a recursive
 * entry without excludes is one `snapshot -r`, everything else one command per dataset — then `atomic` is false.
 */
export function snapshotCommands(
  sets: readonly (readonly string[])[],
  recursiveWhole: readonly boolean[],
  name: string,
  caps: Capabilities,
): { commands: string[][]; atomic: boolean } {
  const all = [...new Set(sets.flat())];
  if (all.length === 0) return { commands: [], atomic: true };
  if (multiSnapshot(caps)) return { commands: [snapshotsArgv(all.map((d) => `${d}@${name}`))], atomic: true };
  const commands: string[][] = [];
  sets.forEach((set, i) => {
    if (set.length === 0) return;
    if (recursiveWhole[i] === true) commands.push(snapshotsArgv([`${set[0]!}@${name}`], { recursive: true }));
    else for (const d of set) commands.push(snapshotsArgv([`${d}@${name}`]));
  });
  return { commands, atomic: commands.length <= 1 };
}

/** Several `dataset@name` in one `zfs snapshot` (OpenZFS; zfs-fuse takes one). Bookmarks came with the same era. */
export const multiSnapshot = (caps: Capabilities): boolean => caps.bookmarks;

/**
 * The job's own snapshots of one dataset to destroy: all but the newest `keep` of them, minus any that carries a
 * hold (userrefs > 0; a job's base is held) or is named in `keepAlso` (the bases this run and the last one used,
 * for hosts that do not list userrefs). Oldest first.
 */
export function pruneList(
  snapshots: readonly { name: string; createtxg: number; userrefs?: number }[],
  policy: OwnSnapshotPolicy,
  keepAlso: ReadonlySet<string>,
): string[] {
  // By createtxg, not by name: a clock that went back makes a newer snapshot's name sort first.
  const own = snapshots.filter((s) => isOwnSnapshot(policy.prefix, s.name)).sort((a, b) => a.createtxg - b.createtxg);
  const excess = own.slice(0, Math.max(0, own.length - policy.keep));
  return excess.filter((s) => !(s.userrefs !== undefined && s.userrefs > 0) && !keepAlso.has(s.name)).map((s) => s.name);
}

/** argv that destroys these snapshots of one dataset (each checked to be `dataset@name`, never a filesystem). */
export function pruneCommands(dataset: string, names: readonly string[]): string[][] {
  return names.map((n) => destroySnapshotArgv(`${dataset}@${n}`));
}
