// `prune`: the box's own retention for what it received, configured on the box so a controller's key cannot delete
// backups. Only snapshots under the roots, never the newest of a dataset by createtxg (the next incremental's base),
// never a held one; bucketed by when this box received them (agent/stamp.ts), never by the sender's clock. The decision is the pure selectRetention; this file only lists and destroys.
import { destroySnapshotArgv } from '../src/zfs/argv.js';
import { classify } from '../src/zfs/errors.js';
import { rootOf } from './command.js';
import { AgentExit, type AgentContext } from './context.js';
import { listRaw } from './list.js';
import { selectRetention, type KeepReason } from './retention.js';
import { forgetReceipts, readReceipts } from './stamp.js';

export interface PruneReport {
  readonly dryRun: boolean;
  readonly datasets: number;
  /** Destroyed (or, with --dry-run, would be destroyed), full names. */
  readonly destroyed: readonly string[];
  readonly kept: readonly { readonly snapshot: string; readonly reasons: readonly KeepReason[] }[];
  readonly failed: readonly { readonly snapshot: string; readonly error: string }[];
}

export async function prune(ctx: AgentContext, dryRun: boolean): Promise<number> {
  const running = ctx.state.receives();
  if (running.length > 0 && !dryRun) {
    ctx.err(`hozo-agent: prune refused: a receive into ${running.map((r) => r.dataset).join(', ')} is running; prune afterwards\n`);
    return AgentExit.BUSY;
  }
  const { inventory } = await listRaw(ctx, ctx.config.roots);
  const receipts = readReceipts(ctx);
  const now = ctx.state.now();
  const destroyed: string[] = [];
  const kept: { snapshot: string; reasons: readonly KeepReason[] }[] = [];
  const failed: { snapshot: string; error: string }[] = [];
  for (const ds of inventory.values()) {
    if (rootOf(ds.name, ctx.config.roots) === undefined) continue; // never outside the roots
    const snapshots = ds.snapshots.map((s) => {
      const received = receipts.get(s.guid);
      return received === undefined ? s : { ...s, received };
    });
    const d = selectRetention(snapshots, ctx.config.retention, { now });
    for (const k of d.keep) kept.push({ snapshot: `${ds.name}@${k.name}`, reasons: k.reasons });
    for (const name of d.destroy) {
      const full = `${ds.name}@${name}`;
      if (dryRun) {
        destroyed.push(full);
        continue;
      }
      const argv = destroySnapshotArgv(full);
      const r = await ctx.runner.run(argv, { timeoutMs: 120_000 });
      if (r.exitCode === 0) destroyed.push(full);
      else failed.push({ snapshot: full, error: classify(r.stderr || r.stdout, { action: `destroy ${full}`, argv, exitCode: r.exitCode }).message });
    }
  }
  if (!dryRun && destroyed.length > 0) {
    const gone = new Set(destroyed);
    const guids = new Set<string>();
    for (const ds of inventory.values()) for (const s of ds.snapshots) if (gone.has(`${ds.name}@${s.name}`)) guids.add(s.guid);
    await forgetReceipts(ctx, guids);
  }
  if (!dryRun && destroyed.length > 0) ctx.log.write(`prune destroyed ${destroyed.length}: ${destroyed.join(' ')}`);
  const report: PruneReport = { dryRun, datasets: inventory.size, destroyed, kept, failed };
  ctx.out(JSON.stringify(report) + '\n');
  if (failed.length > 0) {
    ctx.err(`hozo-agent: prune: ${failed.length} snapshot(s) could not be destroyed: ${failed.map((f) => f.error).join('; ')}\n`);
    return AgentExit.FAILED;
  }
  return AgentExit.OK;
}
