// Both ends of a job, opened together: the box brought up (wake → ready → lease, lifecycle.ts) while this
// machine's ZFS is probed, and the pair handed to the driver; close() puts the box back.
import type { Config, JobConfig } from '../config/schema.js';
import { LocalRunner } from '../transport/local.js';
import type { Logger } from '../util/log.js';
import { CapabilityCache } from '../zfs/capability-cache.js';
import { hello } from '../zfs/hello.js';
import { listInventory } from '../zfs/inventory.js';
import type { Inventory } from '../zfs/types.js';
import type { ZfsHost } from './endpoint.js';
import { zfsHost } from './hosts.js';
import { bringUp, type BoxSession } from './lifecycle.js';
import type { EarlyConnection } from './early.js';

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
  /** The run's interruption (ends a wait for the box at once). */
  readonly signal?: AbortSignal;
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
          ...(opts.signal !== undefined ? { signal: opts.signal } : {}),
        });
  box?.catch(() => connecting());
  if (box === undefined) connecting();
  const roots = opts.sourceRoots;
  const localHello = boxConnecting.then(() =>
    hello(local, new CapabilityCache(config.stateDirectory), { endpoint: 'local', ...(roots !== undefined ? { roots } : {}) }),
  );
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
