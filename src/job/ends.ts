// What runJob (run.ts) drives: both ends of a job, this machine's ZFS, and the stream of one step between the ends.
// hozo passes the real ones; the driver's tests (tests/unit/run-driver.test.ts) pass fakes.
import type { Config, JobConfig } from '../config/schema.js';
import { LocalRunner } from '../transport/local.js';
import type { Runner } from '../transport/runner.js';
import type { Logger } from '../util/log.js';
import { CapabilityCache } from '../zfs/capability-cache.js';
import { hello } from '../zfs/hello.js';
import { listInventory } from '../zfs/inventory.js';
import type { Capabilities, Inventory } from '../zfs/types.js';
import { openHosts, type JobHosts, type OpenOptions } from './open.js';
import { streamStep, type StreamStep } from './replicate.js';

/** This machine's ZFS as the job's own snapshots and their pruning need it: a runner, what it can do, a listing. */
export interface LocalZfs {
  readonly runner: Runner;
  readonly caps: Capabilities;
  readonly inventory: Inventory;
}

/** What runJob drives. */
export interface RunEnds {
  open(config: Config, job: JobConfig, log: Logger, opts: OpenOptions): Promise<JobHosts>;
  local(config: Config, roots: readonly string[]): Promise<LocalZfs>;
  readonly stream: StreamStep;
}

async function localZfs(config: Config, roots: readonly string[]): Promise<LocalZfs> {
  const runner = new LocalRunner();
  // The listing on its own, without hello's batch time limit (60 s): the prune lists after the run, and a large
  // pool's listing may take longer than that.
  const { caps } = await hello(runner, new CapabilityCache(config.stateDirectory), { endpoint: 'local' });
  return { runner, caps, inventory: await listInventory(runner, [...new Set(roots)], caps) };
}

/** The real ends: the box brought up and this machine probed (open.ts), local zfs, the transfer pipeline. */
export const realEnds: RunEnds = { open: openHosts, local: localZfs, stream: streamStep };
