// `list`: the stdout of the one recursive `zfs get` the controller's parseInventory reads (inventoryArgv), so both
// sides share one format. Roots that do not exist are simply absent (listInventory's rule, reused as is).
import { isHozoError } from '../src/errors.js';
import type { CommandResult, RunOptions, Runner } from '../src/transport/runner.js';
import { listInventory } from '../src/zfs/inventory.js';
import type { Capabilities, Inventory } from '../src/zfs/types.js';
import type { AgentContext } from './context.js';

/** Passes commands through and keeps the last result, so the raw stdout can be printed after listInventory checked it. */
class RecordingRunner implements Runner {
  readonly name: string;
  readonly local: boolean;
  last: CommandResult | undefined;
  constructor(private readonly inner: Runner) {
    this.name = inner.name;
    this.local = inner.local;
  }
  async run(argv: readonly string[], opts?: RunOptions): Promise<CommandResult> {
    this.last = await this.inner.run(argv, opts);
    return this.last;
  }
  commandFor(argv: readonly string[]): string[] {
    return this.inner.commandFor(argv);
  }
  async close(): Promise<void> {}
}

function caps(resumeTokens: boolean, encryption = false): Capabilities {
  return {
    encryption,
    listParsable: false,
    resumeTokens,
    bookmarks: false,
    sendFlags: new Set(),
    receiveFlags: new Set(),
    // userrefs exists on every ZFS with holds (zfs-fuse included): prune and the controller use it.
    holds: true,
    mbuffer: false,
    pv: false,
    zstd: false,
    implementation: 'hozo-agent',
  };
}

/** The listing (stdout of `zfs get`) and its parsed form; asks for receive_resume_token only where ZFS knows it. */
export async function listRaw(ctx: AgentContext, datasets: readonly string[]): Promise<{ stdout: string; inventory: Inventory }> {
  const rec = new RecordingRunner(ctx.runner);
  let inventory: Inventory;
  try {
    // Native encryption too where ZFS knows it (the controller checks raw receives: keystatus, encryption root).
    inventory = await listInventory(rec, datasets, caps(true, true), { timeoutMs: 300_000 });
  } catch (e) {
    // zfs-fuse (and older OpenZFS) reject the whole `zfs get` for an unknown property.
    if (!isHozoError(e, 'ZFS_UNSUPPORTED')) throw e;
    inventory = await listInventory(rec, datasets, caps(false), { timeoutMs: 300_000 });
  }
  return { stdout: rec.last?.stdout ?? '', inventory };
}

export async function list(ctx: AgentContext, datasets: readonly string[]): Promise<number> {
  const { stdout } = await listRaw(ctx, datasets.length > 0 ? datasets : ctx.config.roots);
  ctx.out(stdout);
  return 0;
}
