// Decides, per dataset, what to send. Pure: the inventories were gathered before, nothing here touches a host.
// Snapshots are matched by guid only: a name can be reused for different data, a guid cannot.

import { parentOf } from '../zfs/names.js';
import type { Dataset, Inventory, Snapshot } from '../zfs/types.js';
import { expandDatasets } from './expand.js';
import type { Base, Conflict, ConflictKind, DatasetPair, DatasetPlan, DatasetSpec, Policy, Step } from './types.js';

export interface PlanOptions {
  /** The target's parent exists already or is created earlier in the same job. */
  readonly targetParentExists: boolean;
}

export function planDataset(pair: DatasetPair, source: Dataset | undefined, target: Dataset | undefined, policy: Policy, opts: PlanOptions): DatasetPlan {
  const src = byTxg(source?.snapshots ?? []);
  if (source === undefined || src.length === 0) return conflict(pair, 'source-no-snapshots', noSnapshots(pair, source));
  const oldest = src[0]!;
  const newest = src[src.length - 1]!;

  if (target === undefined) {
    const steps: Step[] =
      policy.snapshots === 'latest' || src.length === 1
        ? [{ kind: 'full', snapshot: policy.snapshots === 'latest' ? newest : oldest }]
        : [
            { kind: 'full', snapshot: oldest },
            { kind: 'incremental', from: oldest, to: newest, intermediates: true },
          ];
    const createParent = opts.targetParentExists ? undefined : parentOf(pair.target);
    return { ...pair, action: 'send', base: undefined, steps, rollbackTo: undefined, createParent };
  }

  const tgt = byTxg(target.snapshots);
  const tgtByGuid = new Map(tgt.map((s) => [s.guid, s]));
  // An interrupted `zfs receive -s` left partial state: ZFS accepts nothing else into this dataset until it is
  // resumed or discarded. Resume it (the rest is planned once it completed), or say why not.
  if (target.resumeToken !== undefined) {
    if (policy.resume === true) {
      const common = src[findLastIndex(src, (s) => tgtByGuid.has(s.guid))];
      return { ...pair, action: 'send', base: common, steps: [{ kind: 'resume', token: target.resumeToken }], rollbackTo: undefined, createParent: undefined };
    }
    return conflict(pair, 'partial-receive', {
      message: `${pair.target} holds a partially received stream (receive_resume_token is set) that cannot be resumed from ${pair.source}: ZFS refuses other streams into it until it is resumed or discarded`,
      hint: `resuming needs \`zfs send -t\` on the source and \`zfs receive -s\` on the target (OpenZFS); to discard the partial state (not a snapshot, only the interrupted transfer) run \`zfs receive -A ${pair.target}\` on the box`,
    });
  }
  const baseIndex = findLastIndex(src, (s) => tgtByGuid.has(s.guid));
  // A bookmark keeps the common point when the source snapshot itself was pruned (OpenZFS). Used only when it is
  // newer than every common snapshot: a snapshot base allows -I and is preferred at equal txg.
  const marks = byTxg(source.bookmarks ?? []);
  const mark = marks[findLastIndex(marks, (m) => tgtByGuid.has(m.guid))];
  let base: Base;
  if (mark !== undefined && (baseIndex === -1 || mark.createtxg > src[baseIndex]!.createtxg)) base = { ...mark, bookmark: true };
  else if (baseIndex !== -1) base = src[baseIndex]!;
  else return conflict(pair, 'no-common-snapshot', noCommon(pair, src, tgt));
  // The target's copy of the base: its name may differ (renamed), and rollback must use the target's name.
  const targetBase = tgtByGuid.get(base.guid)!;

  const srcGuids = new Set(src.map((s) => s.guid));
  const afterBaseOnTarget = tgt.filter((s) => s.createtxg > targetBase.createtxg);
  const targetOnly = afterBaseOnTarget.filter((s) => !srcGuids.has(s.guid));
  // Snapshots of one txg are ordered by name (byTxg's tie-break), so a snapshot base counts by position.
  const sourceNewer = base.bookmark ? src.filter((s) => s.createtxg > base.createtxg) : src.slice(src.indexOf(base) + 1);

  if (targetOnly.length > 0) {
    if (sourceNewer.length === 0) return conflict(pair, 'target-ahead', ahead(pair, base, targetOnly));
    if (!policy.rollback) {
      return conflict(pair, 'target-diverged', diverged(pair, base, targetBase, targetOnly, sourceNewer, afterBaseOnTarget));
    }
  }
  if (sourceNewer.length === 0) return { ...pair, action: 'up-to-date', base };

  // From a bookmark only -i works: one step to the first newer snapshot, then -I from there (policy all).
  const steps: Step[] =
    base.bookmark !== true
      ? [{ kind: 'incremental', from: base, to: newest, intermediates: policy.snapshots === 'all' }]
      : policy.snapshots === 'latest' || sourceNewer.length === 1
        ? [{ kind: 'incremental', from: base, to: newest, intermediates: false }]
        : [
            { kind: 'incremental', from: base, to: sourceNewer[0]!, intermediates: false },
            { kind: 'incremental', from: sourceNewer[0]!, to: newest, intermediates: true },
          ];
  // Only reached with target-only snapshots when policy.rollback allowed destroying them.
  const rollbackTo = targetOnly.length > 0 ? targetBase : undefined;
  return { ...pair, action: 'send', base, steps, rollbackTo, createParent: undefined };
}

export function planJob(specs: readonly DatasetSpec[], sourceInv: Inventory, targetInv: Inventory, policy: Policy): DatasetPlan[] {
  // Target datasets that will exist once earlier plans in this job have run.
  const created = new Set<string>();
  const plans: DatasetPlan[] = [];
  for (const spec of specs) {
    for (const pair of expandDatasets(spec, sourceInv)) {
      const target = targetInv.get(pair.target);
      const parent = parentOf(pair.target);
      const targetParentExists = parent === undefined || targetInv.has(parent) || created.has(parent);
      const plan = planDataset(pair, sourceInv.get(pair.source), target, policy, { targetParentExists });
      if (plan.action === 'send' && target === undefined) {
        created.add(pair.target);
        // `zfs create -p` makes every missing ancestor, not just the parent.
        for (let p = plan.createParent; p !== undefined; p = parentOf(p)) created.add(p);
      }
      plans.push(plan);
    }
  }
  return plans;
}

function conflict(pair: DatasetPair, kind: ConflictKind, text: Omit<Conflict, 'kind'>): DatasetPlan {
  return { ...pair, action: 'conflict', conflict: { kind, ...text } };
}

function noSnapshots(pair: DatasetPair, source: Dataset | undefined): Omit<Conflict, 'kind'> {
  const snapHint = `create a snapshot (zfs snapshot ${pair.source}@<name>) or configure sanoid to snapshot ${pair.source}; hozo sends snapshots, it does not take them`;
  if (source === undefined) {
    return {
      message: `source ${pair.source} does not exist on the source host, so nothing can be sent to ${pair.target}`,
      hint: `check the dataset name in the job; once ${pair.source} exists, ${snapHint}`,
    };
  }
  return { message: `source ${pair.source} has no snapshots, so nothing can be sent to ${pair.target}`, hint: snapHint };
}

function noCommon(pair: DatasetPair, src: readonly Snapshot[], tgt: readonly Snapshot[]): Omit<Conflict, 'kind'> {
  const found =
    tgt.length === 0
      ? `target ${pair.target} exists but has no snapshots`
      : `target ${pair.target} has ${names(pair.target, tgt)} but none has the guid of a snapshot of ${pair.source} (${names(pair.source, src)})`;
  const srcByName = new Map(src.map((s) => [s.name, s]));
  const sameName = tgt.filter((s) => srcByName.has(s.name));
  const lookalike =
    sameName.length > 0
      ? `; ${names(pair.target, sameName)} ${sameName.length === 1 ? 'has' : 'have'} the name of a source snapshot but a different guid, so ${sameName.length === 1 ? 'it is' : 'they are'} different data`
      : '';
  return {
    message: `${found}${lookalike}; hozo never overwrites an existing dataset with a full send`,
    hint: `point the job at another target dataset that does not exist yet, or, if nothing on ${pair.target} is needed, destroy it by hand (zfs destroy -r ${pair.target}) and run again for a full send`,
  };
}

function diverged(
  pair: DatasetPair,
  base: Base,
  targetBase: Snapshot,
  targetOnly: readonly Snapshot[],
  sourceNewer: readonly Snapshot[],
  destroyed: readonly Snapshot[],
): Omit<Conflict, 'kind'> {
  return {
    message: `${pair.target} diverged from ${pair.source} after their common ${base.bookmark ? 'bookmark' : 'snapshot'} ${pair.source}${base.bookmark ? '#' : '@'}${base.name}: the target has ${names(pair.target, targetOnly)} which the source lacks, and the source has ${names(pair.source, sourceNewer)} since`,
    hint: `to discard the target's changes set \`rollback: true\` in the job, which rolls ${pair.target} back to ${pair.target}@${targetBase.name} and destroys the target snapshots ${names(pair.target, destroyed, 50)}; to keep them, point the job at another target or copy them away first`,
  };
}

function ahead(pair: DatasetPair, base: Base, targetOnly: readonly Snapshot[]): Omit<Conflict, 'kind'> {
  return {
    message: `target ${pair.target} has ${names(pair.target, targetOnly)} which the source lacks, and ${pair.source} has nothing newer than the common ${base.bookmark ? 'bookmark' : 'snapshot'} ${pair.source}${base.bookmark ? '#' : '@'}${base.name}; nothing to send`,
    hint: `the source may have been rolled back or had snapshots pruned before they were sent; nothing is destroyed, and once ${pair.source} has a snapshot newer than @${base.name}, \`rollback: true\` in the job would let hozo discard the extra target snapshots (or destroy them by hand now with zfs destroy)`,
  };
}

/** `ds@a, ds@b, …` — capped so a long history does not drown the message. */
function names(dataset: string, snaps: readonly Snapshot[], cap = 6): string {
  const shown = snaps.slice(0, cap).map((s) => `${dataset}@${s.name}`);
  return snaps.length > cap ? `${shown.join(', ')} and ${snaps.length - cap} more` : shown.join(', ');
}

function byTxg<T extends { readonly createtxg: number }>(snaps: readonly T[]): T[] {
  // Inventories are sorted already; sorting again is cheap and keeps a careless caller from flipping "newest".
  return [...snaps].sort((a, b) => a.createtxg - b.createtxg);
}

function findLastIndex<T>(xs: readonly T[], pred: (x: T) => boolean): number {
  for (let i = xs.length - 1; i >= 0; i--) if (pred(xs[i]!)) return i;
  return -1;
}
