// The two sides of a job as ZFS hosts: a runner, its probed capabilities, and the few ZFS operations a run needs.
import type { Config, JobConfig } from '../config/schema.js';
import { isHozoError } from '../errors.js';
import type { Step } from '../planner/types.js';
import { LocalRunner } from '../transport/local.js';
import type { Runner } from '../transport/runner.js';
import type { Logger } from '../util/log.js';
import { bookmarkArgv, createParentArgv, destroyBookmarkArgv, holdArgv, poolsListArgv, receiveAbortArgv, releaseArgv, requireDataset, rollbackArgv } from '../zfs/argv.js';
import { CapabilityCache } from '../zfs/capability-cache.js';
import { hello } from '../zfs/hello.js';
import { checkResult } from '../zfs/errors.js';
import { parseZpoolList } from '../zfs/pool-list.js';
import { inventoryFromResult, listInventory, listInventoryArgv } from '../zfs/inventory.js';
import { runBatch } from '../transport/batch.js';
import type { CommandResult } from '../transport/runner.js';
import type { Capabilities, Inventory } from '../zfs/types.js';
import type { PoolReport } from './report.js';
import { bringUp, type BoxSession } from './lifecycle.js';
import type { EarlyConnection } from './early.js';
import { receiveArgvFor, sendArgvFor } from './steps.js';
import { parseSendEstimate } from '../pipeline/progress.js';
import { shellJoin } from '../transport/quote.js';
import type { Wrap } from '../pipeline/transfer.js';

export interface ReceiveSetup {
  /** `zfs receive -F` (only when the user allowed rollback). */
  readonly force: boolean;
  /** `zfs receive -u`: backups stay unmounted; restores mount. */
  readonly unmounted: boolean;
  /** Create this missing parent first (`zfs create -p -o canmount=off`). */
  readonly createParent?: string;
  /** Set canmount=noauto on the new dataset afterwards (first receive of a backup). */
  readonly keepUnmounted: boolean;
  /** `zfs receive -s`: an interruption leaves a resume token (both ends can resume). */
  readonly resumable?: boolean;
  /** The source is a volume (zvol): its received-property protection differs (zfs/argv.ts receiveProtection). */
  readonly volume?: boolean;
}

export interface ZfsHost {
  readonly name: string;
  readonly runner: Runner;
  readonly caps: Capabilities;
  readonly warnings: string[];
  /**
   * true when the host puts zstd/mbuffer around its own zfs (hozo-agent: `receive --zstd --mbuffer`); false when
   * hozo builds the pipeline around plain commands (see src/pipeline/transfer.ts).
   */
  readonly wrapsItself: boolean;
  /** argv that sends one planned step of `dataset` from this host (with `wrap` applied when wrapsItself). */
  /** raw: `zfs send -w`, the encrypted blocks as stored (the receiver never sees plaintext or a key). */
  sendCommand(dataset: string, step: Step, wrap?: Wrap, raw?: boolean): string[];
  /** Size of the stream `sendCommand` would produce (OpenZFS `send -nP`), for an ETA; undefined when unknown. */
  estimate(dataset: string, step: Step, raw?: boolean): Promise<number | undefined>;
  /** argv that receives a stream into `target` on this host, with the setup around it (see ReceiveSetup). */
  receiveCommand(target: string, opts: ReceiveSetup, wrap?: Wrap): string[];
  inventory(roots: readonly string[]): Promise<Inventory>;
  rollback(snapshot: string): Promise<void>;
  /** Adds the hold; an existing hold with the same tag is fine. */
  hold(tag: string, snapshot: string): Promise<void>;
  /** Removes the hold; a snapshot without that hold is fine. */
  release(tag: string, snapshot: string): Promise<void>;
  /** `zfs bookmark snapshot ds#name` (hosts with caps.bookmarks); an existing bookmark of that name is fine. */
  bookmark(snapshot: string, bookmark: string): Promise<void>;
  /** Destroys one bookmark `ds#name`. */
  destroyBookmark(bookmark: string): Promise<void>;
  /** `zfs receive -A target`: discards an interrupted receive's partial state (never a snapshot). */
  abortReceive(target: string): Promise<void>;
  /** zfs-fuse leaves `.send-<pid>-0` holds behind when a -I send dies of SIGPIPE; drop them. */
  releaseSendHolds(dataset: string, step: Step, pid: number | undefined, inventory: Inventory): Promise<void>;
  poolHealth(pools: readonly string[]): Promise<PoolReport[]>;
  /** inventory(roots) and poolHealth(pools) together (one round trip where the host allows it). */
  listAndHealth(roots: readonly string[], pools: readonly string[]): Promise<{ inventory: Inventory; pools: PoolReport[] }>;
}

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
        ...(setNoauto ? [shellJoin(['zfs', 'set', 'canmount=noauto', requireDataset(target)])] : []),
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
      if (pid === undefined || runner.name !== 'local' || step.kind !== 'incremental' || !step.intermediates) return;
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

export interface JobHosts {
  readonly source: ZfsHost;
  readonly target: ZfsHost;
  /** The remote box's session (wake/lease/shutdown), when the job has one. */
  readonly session: BoxSession | undefined;
  /** Releases the box (lease, shutdown if this run woke it) and connections. Never throws. */
  close(): Promise<void>;
  /** The listing of OpenOptions.sourceRoots, taken while the box was being reached. */
  readonly sourceInventory?: Promise<Inventory>;
  /** The listing of the job's targets, when the box's ready check brought it along. */
  readonly targetInventory?: Promise<Inventory>;
}

export interface OpenOptions {
  /** Wake the box if it sleeps (run, restore) or only use it when awake (plan). */
  readonly wake: boolean;
  /** List these source roots while the box is being reached (result in JobHosts.sourceInventory). */
  readonly sourceRoots?: readonly string[];
  /** The box's connection, started by the CLI while hozo loaded. */
  readonly early?: EarlyConnection;
}

/** Brings the box up (wake → ready → lease) and learns what each host's ZFS can do (cached per host). */
export async function openHosts(config: Config, job: JobConfig, log: Logger, opts: OpenOptions = { wake: true }): Promise<JobHosts> {
  const local = new LocalRunner();
  // The box first: its SSH handshake is the slowest step of a small run. This machine is asked meanwhile.
  let connecting: () => void = () => undefined;
  const boxConnecting = new Promise<void>((resolve) => (connecting = resolve));
  const box =
    job.host === 'local'
      ? undefined
      : bringUp(config, job.host, job, log, {
          wake: opts.wake,
          inventoryRoots: job.datasets.map((d) => d.target),
          onConnecting: () => connecting(),
          ...(opts.early !== undefined ? { early: opts.early } : {}),
        });
  box?.catch(() => connecting());
  if (box === undefined) connecting();
  const roots = opts.sourceRoots;
  const localHello = boxConnecting.then(() => hello(local, new CapabilityCache(config.stateDirectory), { endpoint: 'local', ...(roots !== undefined ? { roots } : {}) }));
  const localCaps = localHello.then((h) => h.caps);
  const sourceInventory = roots === undefined ? undefined : localHello.then((h) => h.inventory ?? listInventory(local, [...new Set(roots)], h.caps));
  localCaps.catch(() => undefined);
  sourceInventory?.catch(() => undefined);
  let session: BoxSession | undefined;
  try {
    session = await box;
    const [caps, target] = await Promise.all([localCaps, session?.target]);
    const source = zfsHost(local, caps);
    log.debug(`source: ${caps.implementation}; target: ${(target ?? source).caps.implementation}`);
    return {
      source,
      target: target ?? source,
      session,
      ...(sourceInventory ? { sourceInventory } : {}),
      ...(session?.targetInventory ? { targetInventory: session.targetInventory } : {}),
      close: async () => {
        await session?.finish(job, log);
      },
    };
  } catch (e) {
    await session?.finish(undefined, log).catch(() => undefined);
    throw e;
  }
}
