import type { Bookmark, Dataset, Snapshot } from '../zfs/types.js';

export type SnapshotMode = 'all' | 'latest';

export interface Policy {
  /** Both ends can resume an interrupted receive (source `send -t`, target `receive -s` and its token). */
  readonly resume?: boolean;
  /** all: `zfs send -I` (every intermediate snapshot); latest: `zfs send -i` (only the newest). */
  readonly snapshots: SnapshotMode;
  /** Allow rolling the target back to the common base when it diverged (destroys target snapshots after the base). */
  readonly rollback: boolean;
}

/** A common point of source and target: a source snapshot, or a source bookmark (OpenZFS) of a snapshot the
 *  target still has. A bookmark can only be the source of a single-step `-i`. */
export type Base = Snapshot & { readonly bookmark?: true };

export type Step =
  | { readonly kind: 'full'; readonly snapshot: Snapshot }
  | {
      readonly kind: 'incremental';
      readonly from: Base;
      readonly to: Snapshot;
      /** true: `-I` (with intermediates); false: `-i`. */
      readonly intermediates: boolean;
    }
  /** Finish an interrupted `zfs receive -s` (OpenZFS): `zfs send -t <token>`; what follows is planned afterwards. */
  | { readonly kind: 'resume'; readonly token: string };

export type ConflictKind = 'source-no-snapshots' | 'no-common-snapshot' | 'target-diverged' | 'target-ahead' | 'partial-receive';

export interface Conflict {
  readonly kind: ConflictKind;
  /** One sentence a user can act on, naming the snapshots involved. */
  readonly message: string;
  readonly hint: string;
}

export interface DatasetPair {
  readonly source: string;
  readonly target: string;
}

export type DatasetPlan =
  | (DatasetPair & {
      readonly action: 'send';
      /** Common base (guid match) or undefined for a full send. */
      readonly base: Base | undefined;
      readonly steps: readonly Step[];
      /** Roll the target back to `base` first (only when policy.rollback and the target diverged). */
      readonly rollbackTo: Snapshot | undefined;
      /** Missing parent of the target to create (`zfs create -p -o canmount=off`), if any. */
      readonly createParent: string | undefined;
    })
  | (DatasetPair & { readonly action: 'up-to-date'; readonly base: Base })
  | (DatasetPair & { readonly action: 'conflict'; readonly conflict: Conflict });

export interface DatasetSpec {
  readonly source: string;
  readonly target: string;
  readonly recursive: boolean;
  readonly exclude: readonly string[];
}

export type { Bookmark, Dataset, Snapshot };
