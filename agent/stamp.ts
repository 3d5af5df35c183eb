// The box's own record of when it received each snapshot: <stateDirectory>/received.json, snapshot guid → unix
// seconds by the box's clock, written right after each receive for every snapshot at or below the target it does not
// know yet. Retention (agent/retention.ts) buckets by it instead of `creation`, which the sender's clock wrote.
// It lives on the box's own disk, not in the pool: no stream can set or clear it (a property on the snapshots could
// not be trusted: a `zfs send -R -p` package sets snapshot properties and, for a replication stream, clears the local
// ones of every snapshot it does not carry them for). Keyed by guid, so renames do not matter.
import { getArgv } from '../src/zfs/dataset-argv.js';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { checkResult } from '../src/zfs/errors.js';
import type { AgentContext } from './context.js';
import { writeAtomic } from './state.js';

export const RECEIPTS_FILE = 'received.json';

const receiptsPath = (ctx: AgentContext) => join(ctx.config.stateDirectory, RECEIPTS_FILE);

/** guid → the box's receive time (unix seconds); empty when there is no record yet or it is unreadable. */
export function readReceipts(ctx: AgentContext): Map<string, number> {
  let data: unknown;
  try {
    data = JSON.parse(readFileSync(receiptsPath(ctx), 'utf8'));
  } catch {
    return new Map();
  }
  const out = new Map<string, number>();
  if (typeof data !== 'object' || data === null) return out;
  for (const [guid, t] of Object.entries(data as Record<string, unknown>)) {
    if (/^[0-9]{1,20}$/.test(guid) && typeof t === 'number' && Number.isFinite(t)) out.set(guid, t);
  }
  return out;
}

function writeReceipts(ctx: AgentContext, receipts: ReadonlyMap<string, number>): void {
  writeAtomic(receiptsPath(ctx), JSON.stringify(Object.fromEntries(receipts)) + '\n');
}

/** Records every snapshot at or below `dataset` the box has no receive time for, at the box's clock; returns them.
 *  `snapshots` (name, guid): read already by the caller (agent/streams.ts readReceived), else listed here. */
export async function recordReceived(ctx: AgentContext, dataset: string, snapshots?: readonly (readonly [string, string])[]): Promise<string[]> {
  const snaps = snapshots ?? (await listSnapshotGuids(ctx, dataset));
  return ctx.state.withLock(() => {
    const receipts = readReceipts(ctx);
    const now = Math.floor(ctx.state.now());
    const added = snaps.filter(([, guid]) => !receipts.has(guid));
    if (added.length === 0) return [];
    for (const [, guid] of added) receipts.set(guid, now);
    writeReceipts(ctx, receipts);
    return added.map(([name]) => name);
  });
}

async function listSnapshotGuids(ctx: AgentContext, dataset: string): Promise<[string, string][]> {
  // `get -r` lists the snapshots too (zfs-fuse has no `get -t`); guids need -p (zfs-fuse prints them lossy without).
  const argv = getArgv(['guid'], [dataset], { parsable: true, recursive: true, fields: ['name', 'value'] });
  const r = await ctx.runner.run(argv, { timeoutMs: 300_000 });
  checkResult(r, { action: `read the guids received into ${dataset}`, argv });
  return r.stdout
    .split('\n')
    .map((l) => l.split('\t'))
    .filter(([name, guid]) => name?.includes('@') && guid !== undefined && /^[0-9]+$/.test(guid)) as [string, string][];
}

/** Drops the records of destroyed snapshots (prune). Only those: a pool not imported now keeps its records. */
export async function forgetReceipts(ctx: AgentContext, guids: ReadonlySet<string>): Promise<void> {
  if (guids.size === 0) return;
  await ctx.state.withLock(() => {
    const receipts = readReceipts(ctx);
    const before = receipts.size;
    for (const guid of guids) receipts.delete(guid);
    if (receipts.size !== before) writeReceipts(ctx, receipts);
  });
}
