// What one end of a job can do — a source or a target, whichever kind it is: this machine and SSH boxes
// (hosts.ts, plain zfs commands) or a box behind hozo-agent (agent-host.ts, the agent's verbs). The driver (run.ts,
// restore.ts, verify.ts) sees only this interface. Types only, no imports of implementations: a leaf.
import type { Step } from '../planner/types.js';
import type { Runner } from '../transport/runner.js';
import type { Capabilities, Inventory } from '../zfs/types.js';
import type { Wrap } from '../pipeline/transfer.js';
import type { PoolReport } from './report.js';

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
