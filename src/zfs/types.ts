// What one recursive listing of a host tells us. guids are decimal strings: they are 64-bit and must not lose precision.

export interface Snapshot {
  /** Short name, without the dataset and '@'. */
  readonly name: string;
  readonly guid: string;
  readonly createtxg: number;
  /** Unix seconds. */
  readonly creation: number;
  /** Number of user holds, when the listing included it. */
  readonly userrefs?: number;
}

/** A bookmark (OpenZFS): the guid and txg of the snapshot it was made from, usable as an incremental source (-i). */
export interface Bookmark {
  /** Short name, without the dataset and '#'. */
  readonly name: string;
  readonly guid: string;
  readonly createtxg: number;
  readonly creation: number;
}

export interface Dataset {
  readonly name: string;
  readonly type: 'filesystem' | 'volume';
  /** Sorted by createtxg ascending (oldest first). */
  readonly snapshots: readonly Snapshot[];
  /** Sorted by createtxg ascending; only in listings that asked for them (hosts with bookmarks). */
  readonly bookmarks?: readonly Bookmark[];
  /** OpenZFS `receive_resume_token` of a partially received stream, when supported and present. */
  readonly resumeToken?: string;
  /** Native encryption, where the listing asked (hosts with it): the cipher ("off" when unencrypted), the dataset
   *  whose key it uses, and whether that key is loaded ("available", "unavailable"). */
  readonly encryption?: string;
  readonly encryptionRoot?: string;
  readonly keyStatus?: string;
}

/** All datasets under the listed roots, keyed by full name. */
export type Inventory = ReadonlyMap<string, Dataset>;

/** What a host's ZFS (and tooling around it) can do; probed once per host per run. */
export interface Capabilities {
  /** `zfs list -p` (exact numbers). zfs-fuse: false. */
  readonly listParsable: boolean;
  /** `receive_resume_token` property and `zfs receive -s`. */
  readonly resumeTokens: boolean;
  readonly bookmarks: boolean;
  /** Flags `zfs send` accepts, e.g. new Set(['D','n','P','p','R','v','L','e','c','w']). */
  readonly sendFlags: ReadonlySet<string>;
  /** Flags `zfs receive` accepts. */
  readonly receiveFlags: ReadonlySet<string>;
  /** `zfs hold`/`zfs release`. */
  readonly holds: boolean;
  /** Helper programs found on PATH. */
  readonly mbuffer: boolean;
  readonly pv: boolean;
  readonly zstd: boolean;
  /** Human-readable implementation, e.g. "zfs-fuse (pool v23)" or "OpenZFS 2.2.6". */
  readonly implementation: string;
  /** The host's CPU has AES instructions (chooses the SSH cipher); undefined when the probe did not say. */
  readonly aes?: boolean;
  /** Native encryption: the `encryption` property and raw sends (`send -w`). OpenZFS ≥ 0.8; zfs-fuse: false. */
  readonly encryption?: boolean;
}
