// After a transfer: is the newest snapshot on the target (by guid), and the incremental base kept on the source —
// a hold on it and, where the source has bookmarks, a bookmark of it, so the next run can still send incrementally.
import { HozoError, isHozoError } from '../errors.js';
import type { DatasetPlan } from '../planner/types.js';
import type { Logger } from '../util/log.js';
import type { Inventory } from '../zfs/types.js';
import type { ZfsHost } from './endpoint.js';
import { isEncrypted, verifyEncrypted } from './encryption.js';
import { toErrorInfo, type DatasetReport } from './report.js';

/** The tag of the hold that keeps a job's incremental base on the source. */
export const holdTag = (job: string) => `hozo:${job}`;

/** The guid of snapshot `snap` of `ds`, or of the bookmark of that name (a plan whose common point is a bookmark). */
export function guidOf(inv: Inventory, ds: string, snap: string | undefined): string | undefined {
  const d = inv.get(ds);
  return d?.snapshots.find((s) => s.name === snap)?.guid ?? d?.bookmarks?.find((b) => b.name === snap)?.guid;
}

/** The bookmark hozo keeps of a job's newest verified snapshot: `hozo:<job>:<snapshot>` (":" cannot occur in job
 *  names, so one job's prefix never matches another's bookmarks). */
export const bookmarkName = (job: string, snapshot: string) => `hozo:${job}:${snapshot}`;

export function verify(d: DatasetReport, srcInv: Inventory, dstInv: Inventory): void {
  const src = srcInv.get(d.source)?.snapshots ?? [];
  const newest = d.newest ?? src[src.length - 1]?.name;
  const guid = guidOf(srcInv, d.source, newest);
  const onTarget = new Set((dstInv.get(d.target)?.snapshots ?? []).map((s) => s.guid));
  d.verified = guid !== undefined && onTarget.has(guid);
}

export function newestCreation(inv: Inventory, dataset: string): number | undefined {
  const snaps = inv.get(dataset)?.snapshots ?? [];
  return snaps.length === 0 ? undefined : Math.max(...snaps.map((s) => s.creation));
}

export interface VerifyAndProtect {
  readonly source: ZfsHost;
  readonly job: string;
  /** The box is untrusted (raw sends): an encrypted backup must arrive still encrypted, its key not loaded there. */
  readonly untrusted: boolean;
  readonly srcInv: Inventory;
  /** The target's listing after the transfers. */
  readonly dstInv: Inventory;
  readonly plans: readonly DatasetPlan[];
  readonly datasets: readonly DatasetReport[];
  /** The snapshot of `dataset` the job held after its previous run. */
  heldBefore(dataset: string): string | undefined;
  readonly log: Logger;
  readonly warnings: string[];
}

/** After the transfers: each sent or up-to-date dataset verified by guid on the target (VERIFY_FAILED if its newest
 *  snapshot is not there), then its base protected on the source (hold and bookmark). */
export async function verifyAndProtect(o: VerifyAndProtect): Promise<void> {
  const { srcInv, dstInv, log } = o;
  for (const [i, d] of o.datasets.entries()) {
    if (d.result !== 'sent' && d.result !== 'up-to-date') continue;
    verify(d, srcInv, dstInv);
    if (!d.verified) {
      d.result = 'failed';
      d.error = toErrorInfo(
        new HozoError(
          'VERIFY_FAILED',
          `${d.target}: the newest source snapshot @${d.newest} (guid ${guidOf(srcInv, d.source, d.newest)}) is not on the target`,
          {
            hint: 'run `hozo plan` to see the state of both sides',
          },
        ),
      );
      log.error(`${d.source}: verification failed`);
      continue;
    }
    // A raw backup must still be encrypted the same way on the box, its key not loaded there.
    if (o.untrusted && isEncrypted(srcInv.get(d.source))) {
      const wrong = verifyEncrypted(srcInv.get(d.source), dstInv.get(d.target));
      if (wrong !== undefined) {
        d.verified = false;
        d.result = 'failed';
        d.error = toErrorInfo(wrong);
        log.error(wrong.message);
        continue;
      }
    }
    await protectBase(o.source, o.job, srcInv, o.plans[i]!, d, o.heldBefore(d.source), log, o.warnings);
  }
}

export async function protectBase(
  source: ZfsHost,
  job: string,
  srcInv: Inventory,
  p: DatasetPlan,
  d: DatasetReport,
  heldBefore: string | undefined,
  log: Logger,
  warnings: string[],
): Promise<void> {
  if (d.newest === undefined) return;
  // The common point is a bookmark (the snapshot was pruned on the source) and nothing newer exists: nothing to hold.
  if (p.action === 'up-to-date' && p.base.bookmark) return;
  const tag = holdTag(job);
  const snaps = srcInv.get(d.source)?.snapshots ?? [];
  // The bookmark and the hold are independent: side by side (each is a zfs command that waits for a txg).
  // keepBookmark never throws (it warns).
  const bookmarked = keepBookmark(source, job, srcInv, d, log, warnings);
  try {
    // Already held by the previous run and still carrying a hold: nothing to do (keeps no-op runs to zero commands).
    const current = snaps.find((s) => s.name === d.newest);
    if (heldBefore === d.newest && current?.userrefs !== undefined && current.userrefs > 0) {
      d.held = d.newest;
      return;
    }
    await source.hold(tag, `${d.source}@${d.newest}`);
    d.held = d.newest;
    // Release the job's hold on older snapshots (the previous base); other tags are not ours to touch.
    // Without userrefs in the listing, the plan's base is the only snapshot this job can have held.
    const base = p.action === 'send' || p.action === 'up-to-date' ? p.base : undefined;
    const previous = snaps.filter((s) => s.name !== d.newest && (s.userrefs === undefined ? s.guid === base?.guid : s.userrefs > 0));
    for (const s of previous) await source.release(tag, `${d.source}@${s.name}`);
  } catch (e) {
    const msg = `${d.source}: could not hold @${d.newest} with tag ${tag}: ${(e as Error).message}`;
    warnings.push(msg);
    log.warn(msg);
  } finally {
    await bookmarked;
  }
}

/**
 * Where the source has bookmarks (OpenZFS): bookmark the newest verified snapshot and drop the job's older
 * bookmarks, so an incremental is still possible if the snapshot itself is pruned one day. Bookmarks of other jobs
 * and the user's own are never touched. Nothing happens when the bookmark is there already (no-op runs).
 */
export async function keepBookmark(source: ZfsHost, job: string, srcInv: Inventory, d: DatasetReport, log: Logger, warnings: string[]): Promise<void> {
  if (!source.caps.bookmarks || d.newest === undefined) return;
  const ds = srcInv.get(d.source);
  const newest = ds?.snapshots.find((s) => s.name === d.newest);
  if (ds === undefined || newest === undefined) return;
  const name = bookmarkName(job, newest.name);
  const prefix = bookmarkName(job, '');
  try {
    if (!(ds.bookmarks ?? []).some((b) => b.name === name && b.guid === newest.guid))
      await source.bookmark(`${d.source}@${newest.name}`, `${d.source}#${name}`);
    for (const old of ds.bookmarks ?? []) {
      if (old.name === name || !old.name.startsWith(prefix)) continue;
      try {
        await source.destroyBookmark(`${d.source}#${old.name}`);
      } catch (e) {
        // A non-root user is not delegated `destroy` (it would reach the datasets too, see the NixOS module):
        // the old bookmarks then stay, which costs nothing but a line in `zfs list -t bookmark`.
        if (!isHozoError(e, 'ZFS_PERMISSION')) throw e;
        log.debug(`${d.source}: keeping the job's older bookmarks (no permission to destroy them)`);
        break;
      }
    }
  } catch (e) {
    const msg = `${d.source}: could not keep bookmark #${name}: ${(e as Error).message}`;
    warnings.push(msg);
    log.warn(msg);
  }
}
