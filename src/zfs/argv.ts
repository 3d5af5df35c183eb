// Pure argv builders for zfs/zpool. Every name is validated before anything is built, so a bad name can never
// become an option (names never start with '-': pools start with a letter) or a second argument.
import { HozoError } from '../errors.js';
import { datasetNameProblem, snapshotNameProblem } from './names.js';

/** The properties one inventory listing asks for; optional ones only where the host has them. */
export const INVENTORY_BASE_PROPERTIES = ['type', 'guid', 'createtxg', 'creation'] as const;

// ---------------------------------------------------------------------------------------------------------------
// Name checks

function invalid(what: string, name: string, problem: string): HozoError {
  return new HozoError('INVALID_DATASET_NAME', `invalid ${what} "${name}": ${problem}`, {
    hint: 'ZFS names are pool/dataset[/child…], snapshots dataset@name; letters, digits and _ - : . only',
  });
}

export function requireDataset(name: string): string {
  const p = datasetNameProblem(name);
  if (p !== undefined) throw invalid('dataset name', name, p);
  return name;
}

export function requirePool(name: string): string {
  if (name.includes('/')) throw invalid('pool name', name, 'must not contain "/"');
  const p = datasetNameProblem(name);
  if (p !== undefined) throw invalid('pool name', name, p);
  return name;
}

/** Splits and validates a full snapshot name `dataset@name`. */
export function splitSnapshot(full: string): { dataset: string; snapshot: string } {
  return splitAt(full, '@', 'snapshot');
}

/** Splits and validates a full bookmark name `dataset#name`. */
export function splitBookmark(full: string): { dataset: string; snapshot: string } {
  return splitAt(full, '#', 'bookmark');
}

function splitAt(full: string, sep: '@' | '#', what: string): { dataset: string; snapshot: string } {
  const i = full.indexOf(sep);
  if (i <= 0) throw invalid(`${what} name`, full, `must be dataset${sep}name`);
  const dataset = full.slice(0, i);
  const snapshot = full.slice(i + 1);
  const dp = datasetNameProblem(dataset);
  if (dp !== undefined) throw invalid(`${what} name`, full, `dataset part ${dp}`);
  const sp = snapshotNameProblem(snapshot);
  if (sp !== undefined) throw invalid(`${what} name`, full, `${what} part ${sp}`);
  return { dataset, snapshot };
}

export function requireSnapshot(full: string): string {
  splitSnapshot(full);
  return full;
}

export function requireSome<T>(items: readonly T[], what: string): readonly T[] {
  // zfs get/hold with no operand would act on everything (or fail obscurely): never build that.
  if (items.length === 0) throw new HozoError('INTERNAL', `no ${what} given`);
  return items;
}

// Hold tags are free text to ZFS; we keep them to name characters and forbid a leading '-' (would be an option).
// A leading '.' is allowed so leaked zfs-fuse temporary holds (".send-<pid>-0") can be released.
const TAG = /^[A-Za-z0-9_.:][A-Za-z0-9_.:-]{0,254}$/;

function requireTag(tag: string): string {
  if (!TAG.test(tag)) {
    throw new HozoError('USAGE', `invalid hold tag "${tag}"`, {
      hint: 'use 1-255 letters, digits, _ . : - not starting with "-"',
    });
  }
  return tag;
}

// Native names are lowercase words; user properties need a ':' (module:name).
const PROPERTY = /^[a-z][a-z0-9_]*$|^[A-Za-z0-9_.+-]*:[A-Za-z0-9_.:+-]*$/;

export function requireProperty(name: string): string {
  if (name.length === 0 || name.length > 255 || !PROPERTY.test(name)) {
    throw new HozoError('USAGE', `invalid ZFS property name "${name}"`, {
      hint: 'native properties are lowercase words (compression); user properties contain ":" (org.example:tag)',
    });
  }
  return name;
}

// ---------------------------------------------------------------------------------------------------------------
// send / receive

export type SendSpec =
  | { readonly kind: 'full'; readonly snapshot: string }
  /** `from` is a full snapshot (or, for -i only, a bookmark `ds#name`) on the same dataset or its origin. */
  | { readonly kind: 'incremental'; readonly from: string; readonly to: string; readonly intermediates?: boolean }
  | { readonly kind: 'resume'; readonly token: string };

export interface SendOptions {
  /** -R: replication stream of the dataset and its descendants. */
  readonly replicate?: boolean;
  /** -p: include properties. */
  readonly props?: boolean;
  /** -D: deduplicated stream (a no-op with a warning on OpenZFS ≥ 2.1). */
  readonly dedup?: boolean;
  /** -v: progress/summary on stderr. */
  readonly verbose?: boolean;
  /** -w: raw (encrypted blocks as stored). */
  readonly raw?: boolean;
  /** -c: compressed blocks as stored. */
  readonly compressed?: boolean;
  /** -L: large blocks. */
  readonly largeBlock?: boolean;
  /** -e: embedded data blocks. */
  readonly embedded?: boolean;
  /** -n -P: print a parsable size estimate, send nothing. */
  readonly dryRunParsable?: boolean;
}

// OpenZFS rejects these with -t ("invalid flags combined with -t"); the stream flags come from the token.
const NOT_WITH_RESUME: readonly (keyof SendOptions)[] = ['replicate', 'props', 'dedup', 'raw', 'compressed', 'largeBlock'];

const RESUME_TOKEN = /^[0-9]+-[0-9a-f]+-[0-9a-f]+-[0-9a-f]+$/i;

export function sendArgv(spec: SendSpec, opts: SendOptions = {}): string[] {
  const argv = ['zfs', 'send'];
  if (spec.kind === 'resume') {
    const bad = NOT_WITH_RESUME.filter((k) => opts[k] === true);
    if (bad.length > 0) throw new HozoError('INTERNAL', `send options ${bad.join(', ')} cannot be combined with a resume token`);
    if (!RESUME_TOKEN.test(spec.token)) {
      throw new HozoError('ZFS_RESUME_INVALID', 'malformed receive_resume_token', {
        hint: 'read the token again from the target (zfs get -H -o value receive_resume_token DATASET)',
      });
    }
  }
  if (opts.replicate === true) argv.push('-R');
  if (opts.props === true) argv.push('-p');
  if (opts.dedup === true) argv.push('-D');
  if (opts.raw === true) argv.push('-w');
  if (opts.compressed === true) argv.push('-c');
  if (opts.largeBlock === true) argv.push('-L');
  if (opts.embedded === true) argv.push('-e');
  if (opts.verbose === true) argv.push('-v');
  if (opts.dryRunParsable === true) argv.push('-n', '-P');
  switch (spec.kind) {
    case 'full':
      argv.push(requireSnapshot(spec.snapshot));
      break;
    case 'incremental': {
      const to = splitSnapshot(spec.to);
      const fromIsBookmark = spec.from.includes('#');
      if (fromIsBookmark && spec.intermediates === true) {
        throw new HozoError('INTERNAL', `-I needs a snapshot as its source, not the bookmark "${spec.from}"`);
      }
      const from = fromIsBookmark ? splitBookmark(spec.from) : splitSnapshot(spec.from);
      if (from.dataset === to.dataset && from.snapshot === to.snapshot && !fromIsBookmark) {
        throw new HozoError('INTERNAL', `incremental send from "${spec.from}" to itself`);
      }
      argv.push(spec.intermediates === true ? '-I' : '-i', spec.from, spec.to);
      break;
    }
    case 'resume':
      argv.push('-t', spec.token);
      break;
  }
  return argv;
}

export interface ReceiveOptions {
  /** -u: do not mount what is received (default true: a backup box has no business mounting it). */
  readonly unmounted?: boolean;
  /** -F: roll back / destroy on the target so the stream applies. */
  readonly force?: boolean;
  /** -s: keep partial state and a resume token on interruption. */
  readonly resumable?: boolean;
  readonly verbose?: boolean;
  /** -n: check the stream without receiving. */
  readonly dryRun?: boolean;
  /** -o name=value, in the given order. */
  readonly setProps?: Readonly<Record<string, string>>;
  /** -x name. */
  readonly excludeProps?: readonly string[];
}

/**
 * What a received dataset may not bring onto a backup box (OpenZFS `receive -o/-x`; zfs-fuse has neither). `-o` sets a
 * local value that beats the stream's (with `send -R` every descendant inherits it); `-x` makes the stream's value not
 * take effect. The stream's own values stay recorded as "received" (zfs get -o received), so nothing of the source is
 * lost for a restore. A filesystem never mounts (mountpoint=none for it and, inherited, for every child of a `-R`
 * package; canmount=noauto), and if it ever were mounted it could not carry setuid binaries, executables or device
 * nodes; zvols get no device node (volmode=none, so udev probes nothing); no reservation takes the box's space.
 * `-o` of a filesystem-only property fails a volume's receive ("does not apply to datasets of this type"), so a volume
 * gets `-x` for those (inherited from the parents the agent made) and is checked after the receive.
 */
export function receiveProtection(kind: 'filesystem' | 'volume'): Pick<ReceiveOptions, 'setProps' | 'excludeProps'> {
  return kind === 'filesystem'
    ? {
        setProps: { mountpoint: 'none', canmount: 'noauto', setuid: 'off', exec: 'off', devices: 'off', volmode: 'none' },
        excludeProps: ['reservation', 'refreservation'],
      }
    : {
        setProps: { volmode: 'none' },
        excludeProps: ['mountpoint', 'canmount', 'setuid', 'exec', 'devices', 'reservation', 'refreservation'],
      };
}

export function receiveArgv(target: string, opts: ReceiveOptions = {}): string[] {
  requireDataset(target);
  const argv = ['zfs', 'receive'];
  if (opts.unmounted ?? true) argv.push('-u');
  if (opts.force === true) argv.push('-F');
  if (opts.resumable === true) argv.push('-s');
  if (opts.verbose === true) argv.push('-v');
  if (opts.dryRun === true) argv.push('-n');
  for (const [k, v] of Object.entries(opts.setProps ?? {})) {
    if (v.includes('\0') || v.includes('\n')) throw new HozoError('USAGE', `invalid value for ZFS property "${k}"`);
    argv.push('-o', `${requireProperty(k)}=${v}`);
  }
  for (const k of opts.excludeProps ?? []) argv.push('-x', requireProperty(k));
  argv.push(target);
  return argv;
}

/** `zfs receive -A`: discard a partially received stream (and its resume token). OpenZFS only. */
export function receiveAbortArgv(target: string): string[] {
  return ['zfs', 'receive', '-A', requireDataset(target)];
}

// ---------------------------------------------------------------------------------------------------------------
// inventory and guids

export interface InventoryArgvOptions {
  /** Add `userrefs` (number of holds): every ZFS with holds has it. */
  readonly userrefs?: boolean;
  /** Add `receive_resume_token`: unknown to zfs-fuse, whose `zfs get` then fails as a whole. */
  readonly resumeToken?: boolean;
  /** List bookmarks too (`-t filesystem,volume,snapshot,bookmark`; `zfs get` leaves them out by default, and
   *  zfs-fuse has neither bookmarks nor `get -t`). */
  readonly bookmarks?: boolean;
  /** Add `encryption,encryptionroot,keystatus` (native encryption; unknown to zfs-fuse). */
  readonly encryption?: boolean;
}

/** One recursive `zfs get` over several roots; works on zfs-fuse and OpenZFS alike (unlike `zfs list -p`). */
export function inventoryArgv(roots: readonly string[], opts: InventoryArgvOptions = {}): string[] {
  requireSome(roots, 'dataset roots to list').forEach(requireDataset);
  const props: string[] = [...INVENTORY_BASE_PROPERTIES];
  if (opts.userrefs === true) props.push('userrefs');
  if (opts.resumeToken === true) props.push('receive_resume_token');
  if (opts.encryption === true) props.push('encryption', 'encryptionroot', 'keystatus');
  const types = opts.bookmarks === true ? ['-t', 'filesystem,volume,snapshot,bookmark'] : [];
  return ['zfs', 'get', '-H', '-p', '-r', ...types, '-o', 'name,property,value', props.join(','), ...roots];
}

/** Exact guids of given snapshots (without -p zfs-fuse prints them lossy, e.g. "5.19E"). */
export function guidsArgv(snapshots: readonly string[]): string[] {
  requireSome(snapshots, 'snapshots').forEach(requireSnapshot);
  return ['zfs', 'get', '-H', '-p', '-o', 'name,value', 'guid', ...snapshots];
}

// ---------------------------------------------------------------------------------------------------------------
// holds, snapshots, bookmarks, parents

export function holdArgv(tag: string, snapshots: readonly string[]): string[] {
  requireTag(tag);
  requireSome(snapshots, 'snapshots to hold').forEach(requireSnapshot);
  return ['zfs', 'hold', tag, ...snapshots];
}

export function releaseArgv(tag: string, snapshots: readonly string[]): string[] {
  requireTag(tag);
  requireSome(snapshots, 'snapshots to release').forEach(requireSnapshot);
  return ['zfs', 'release', tag, ...snapshots];
}

/** Lists holds (OpenZFS; zfs-fuse's `holds` needs a missing python helper — read `userrefs` there instead). */
export function holdsArgv(snapshot: string): string[] {
  return ['zfs', 'holds', '-H', requireSnapshot(snapshot)];
}

/**
 * Creates the parent a first full receive needs. canmount=off so the backup tree never mounts over anything;
 * note `-o` applies to the leaf only: intermediate parents made by -p keep the default.
 */
export function createParentArgv(name: string, protect = false): string[] {
  // protect (OpenZFS boxes): what a volume received below inherits through its `-x` (receiveProtection).
  const more = protect ? ['-o', 'mountpoint=none', '-o', 'setuid=off', '-o', 'exec=off', '-o', 'devices=off', '-o', 'volmode=none'] : [];
  return ['zfs', 'create', '-p', '-o', 'canmount=off', ...more, requireDataset(name)];
}

/** destroyNewer adds -r, which destroys every snapshot newer than `snapshot`. */
export function rollbackArgv(snapshot: string, destroyNewer: boolean): string[] {
  requireSnapshot(snapshot);
  return destroyNewer ? ['zfs', 'rollback', '-r', snapshot] : ['zfs', 'rollback', snapshot];
}

/** One snapshot per call: zfs-fuse accepts only one name per `zfs snapshot`. */
export function snapshotArgv(snapshot: string): string[] {
  return ['zfs', 'snapshot', requireSnapshot(snapshot)];
}

/** Destroys exactly one snapshot; refuses anything that is not `dataset@name` so a filesystem can never be hit. */
export function destroySnapshotArgv(snapshot: string): string[] {
  return ['zfs', 'destroy', requireSnapshot(snapshot)];
}

/** Destroys exactly one bookmark; refuses anything that is not `dataset#name`. */
export function destroyBookmarkArgv(bookmark: string): string[] {
  splitBookmark(bookmark);
  return ['zfs', 'destroy', bookmark];
}

/** `zfs bookmark ds@snap ds#mark` (OpenZFS only); ZFS requires both on the same dataset. */
export function bookmarkArgv(snapshot: string, bookmark: string): string[] {
  const s = splitSnapshot(snapshot);
  const b = splitBookmark(bookmark);
  if (s.dataset !== b.dataset) {
    throw new HozoError('INVALID_DATASET_NAME', `bookmark "${bookmark}" must be on the dataset of "${snapshot}"`);
  }
  return ['zfs', 'bookmark', snapshot, bookmark];
}
