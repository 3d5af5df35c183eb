// This machine and plain-SSH boxes as job endpoints (endpoint.ts): a runner, its probed capabilities, and the few ZFS operations a run needs.
import { isHozoError } from '../errors.js';
import type { Runner } from '../transport/runner.js';
import { bookmarkArgv, createParentArgv, destroyBookmarkArgv, holdArgv, receiveAbortArgv, releaseArgv, rollbackArgv } from '../zfs/argv.js';
import { checkResult } from '../zfs/errors.js';
import { poolsListArgv } from '../zfs/pool-argv.js';
import { setArgv } from '../zfs/dataset-argv.js';
import { parseZpoolList } from '../zfs/pool-list.js';
import { inventoryFromResult, listInventory, listInventoryArgv } from '../zfs/inventory.js';
import { runBatch } from '../transport/batch.js';
import type { CommandResult } from '../transport/runner.js';
import type { Capabilities } from '../zfs/types.js';
import type { PoolReport } from './report.js';
import type { ZfsHost } from './endpoint.js';
import { receiveArgvFor, sendArgvFor } from './steps.js';
import { parseSendEstimate } from '../pipeline/progress.js';
import { shellJoin } from '../transport/quote.js';

async function zfs(runner: Runner, argv: string[], action: string): Promise<string> {
  return checkResult(await runner.run(argv), { action, host: runner.name, argv });
}

export function zfsHost(runner: Runner, caps: Capabilities): ZfsHost {
  const warnings: string[] = [];
  const host: ZfsHost = {
    name: runner.name,
    runner,
    caps,
    warnings,
    wrapsItself: false,
    sendCommand: (dataset, step, _wrap, raw) => sendArgvFor(dataset, step, caps, false, raw === true),
    async estimate(dataset, step, raw) {
      if (!caps.sendFlags.has('n') || !caps.sendFlags.has('P')) return undefined;
      const r = await runner.run(sendArgvFor(dataset, step, caps, true, raw === true), { timeoutMs: 60_000 });
      return r.exitCode === 0 ? parseSendEstimate(r.stdout + '\n' + r.stderr) : undefined;
    },
    receiveCommand: (target, opts) => {
      // A backup (unmounted) on a box with receive -o/-x gets the agent's protections: whatever properties the stream
      // carries, nothing received mounts, runs setuid binaries, makes device nodes or reserves space there.
      const protect = opts.unmounted && caps.receiveFlags.has('o') && caps.receiveFlags.has('x');
      const recv = receiveArgvFor(target, opts, protect);
      const setNoauto = opts.keepUnmounted && !protect;
      if (opts.createParent === undefined && !setNoauto) return recv;
      // One session instead of three: the parent, the receive and canmount=noauto run as one `sh -c` chain, each
      // step only if the one before succeeded (stdin reaches zfs receive unchanged).
      const chain = [
        ...(opts.createParent !== undefined ? [shellJoin(createParentArgv(opts.createParent, protect))] : []),
        shellJoin(recv),
        // zfs-fuse (no receive -o): a backup must not mount itself at the box's next import or boot: that modifies
        // it (mountpoint directories for its children), and the next incremental receive would be refused.
        ...(setNoauto ? [shellJoin(setArgv(['canmount=noauto'], target))] : []),
      ];
      return ['sh', '-c', chain.join(' && ')];
    },
    inventory: (roots) => listInventory(runner, [...new Set(roots)], caps),
    async rollback(snapshot) {
      await zfs(runner, rollbackArgv(snapshot, true), `roll back to ${snapshot}`);
    },
    async hold(tag, snapshot) {
      try {
        await zfs(runner, holdArgv(tag, [snapshot]), `hold ${snapshot}`);
      } catch (e) {
        if (!isHozoError(e, 'ZFS_HOLD_EXISTS')) throw e;
      }
    },
    async release(tag, snapshot) {
      try {
        await zfs(runner, releaseArgv(tag, [snapshot]), `release ${snapshot}`);
      } catch (e) {
        if (!isHozoError(e, 'ZFS_HOLD_NOT_FOUND')) throw e;
      }
    },
    async bookmark(snapshot, bookmark) {
      try {
        await zfs(runner, bookmarkArgv(snapshot, bookmark), `bookmark ${snapshot} as ${bookmark}`);
      } catch (e) {
        if (!/exists/i.test((e as Error).message)) throw e;
      }
    },
    async destroyBookmark(bookmark) {
      await zfs(runner, destroyBookmarkArgv(bookmark), `destroy ${bookmark}`);
    },
    async abortReceive(target) {
      await zfs(runner, receiveAbortArgv(target), `discard the partial receive of ${target}`);
    },
    async releaseSendHolds(dataset, step, pid, inventory) {
      if (pid === undefined || !runner.local || step.kind !== 'incremental' || !step.intermediates) return;
      const snaps = (inventory.get(dataset)?.snapshots ?? []).filter(
        (s) => s.createtxg >= step.from.createtxg && s.createtxg <= step.to.createtxg && (s.userrefs === undefined || s.userrefs > 0),
      );
      for (const s of snaps) await host.release(`.send-${pid}-0`, `${dataset}@${s.name}`).catch(() => undefined);
    },
    async poolHealth(pools) {
      if (pools.length === 0) return [];
      return poolReports(await runner.run(poolsListArgv(pools)), pools);
    },
    async listAndHealth(roots, pools) {
      const unique = [...new Set(roots)];
      const argv = listInventoryArgv(unique, caps);
      const r = await runBatch(runner, [
        { name: 'list', argv },
        { name: 'pools', argv: poolsListArgv(pools) },
      ]);
      return {
        inventory: inventoryFromResult(r.get('list')!, unique, { action: `list ${unique.join(', ')}`, host: runner.name, argv }),
        pools: poolReports(r.get('pools')!, pools),
      };
    },
  };
  /** `zpool list` of several pools → one report each; a pool it cannot list is UNKNOWN, with a warning. */
  function poolReports(r: CommandResult, pools: readonly string[]): PoolReport[] {
    const rows = parseZpoolList(r.stdout);
    return pools.map((pool) => {
      const row = rows.find((x) => x.name === pool);
      if (row === undefined) {
        const said = r.stderr.split('\n').find((l) => l.includes(`'${pool}'`)) ?? r.stderr.trim().split('\n')[0] ?? `exit ${r.exitCode}`;
        warnings.push(`cannot read health of pool ${pool} on ${runner.name}: ${said.trim() || 'not listed'}`);
        return { name: pool, health: 'UNKNOWN' };
      }
      return { name: pool, health: row.health, ...(row.capacityRatio !== undefined ? { capacityRatio: row.capacityRatio } : {}) };
    });
  }
  return host;
}
