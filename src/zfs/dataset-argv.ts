// zfs argv for properties, listings and the dataset housekeeping around a transfer (create, mount, clone, load-key,
// the verify scratch tree), built from validated names like every builder in argv.ts: a name can never become an
// option or a second argument, and no property list is ever empty.
import { requireDataset, requireProperty, requireSnapshot, requireSome } from './argv.js';

/** A dataset or a snapshot (`dataset@name`). */
const requireName = (name: string): string => (name.includes('@') ? requireSnapshot(name) : requireDataset(name));

/** `prop=value`: the property part validated (values are ZFS's to judge: paths, sizes, words). */
function requireAssignment(assignment: string): string {
  const eq = assignment.indexOf('=');
  if (eq <= 0) throw new Error(`not a property assignment: ${JSON.stringify(assignment)}`);
  requireProperty(assignment.slice(0, eq));
  return assignment;
}

export interface GetOptions {
  /** -p: exact numbers (guids, sizes). */
  readonly parsable?: boolean;
  readonly recursive?: boolean;
  /** -t (OpenZFS; zfs-fuse has no `get -t`). */
  readonly types?: readonly ('filesystem' | 'volume' | 'snapshot')[];
  /** -o columns; default value only. */
  readonly fields?: readonly ('name' | 'property' | 'value' | 'source')[];
}

/** `zfs get -H [-p] [-r] [-t TYPES] -o FIELDS PROPS NAME…`. */
export function getArgv(props: readonly string[], names: readonly string[], opts: GetOptions = {}): string[] {
  return [
    'zfs',
    'get',
    '-H',
    ...(opts.parsable === true ? ['-p'] : []),
    ...(opts.recursive === true ? ['-r'] : []),
    ...(opts.types !== undefined ? ['-t', opts.types.join(',')] : []),
    '-o',
    (opts.fields ?? ['value']).join(','),
    requireSome(props, 'property').map(requireProperty).join(','),
    ...requireSome(names, 'dataset').map(requireName),
  ];
}

/** `zfs set PROP=VALUE… NAME`. */
export function setArgv(assignments: readonly string[], name: string): string[] {
  return ['zfs', 'set', ...requireSome(assignments, 'property').map(requireAssignment), requireName(name)];
}

export function inheritArgv(prop: string, dataset: string): string[] {
  return ['zfs', 'inherit', requireProperty(prop), requireDataset(dataset)];
}

export interface ListNamesOptions {
  readonly type?: 'filesystem' | 'snapshot';
  /** -d: how deep below `dataset` (1: its own snapshots or children). */
  readonly depth?: number;
  readonly recursive?: boolean;
}

/** `zfs list -H -o name [-t TYPE] [-d N] [-r] DATASET`: names only (exit 1 when it does not exist). */
export function listNamesArgv(dataset: string, opts: ListNamesOptions = {}): string[] {
  if (opts.depth !== undefined && !(Number.isInteger(opts.depth) && opts.depth >= 0)) throw new Error(`bad depth ${opts.depth}`);
  return [
    'zfs',
    'list',
    '-H',
    '-o',
    'name',
    ...(opts.type !== undefined ? ['-t', opts.type] : []),
    ...(opts.depth !== undefined ? ['-d', String(opts.depth)] : []),
    ...(opts.recursive === true ? ['-r'] : []),
    requireDataset(dataset),
  ];
}

export function mountArgv(dataset: string): string[] {
  return ['zfs', 'mount', requireDataset(dataset)];
}

/** `zfs create [-o PROP=VALUE]… DATASET` (no -p: the parent must exist). */
export function createArgv(dataset: string, assignments: readonly string[] = []): string[] {
  return ['zfs', 'create', ...assignments.flatMap((a) => ['-o', requireAssignment(a)]), requireDataset(dataset)];
}

/** `zfs clone [-o PROP=VALUE]… SNAPSHOT DATASET`. */
export function cloneArgv(snapshot: string, clone: string, assignments: readonly string[] = []): string[] {
  return ['zfs', 'clone', ...assignments.flatMap((a) => ['-o', requireAssignment(a)]), requireSnapshot(snapshot), requireDataset(clone)];
}

/** `zfs load-key -L LOCATION DATASET` (a restored copy's key, from where the source's key lives). */
export function loadKeyArgv(dataset: string, location: string): string[] {
  if (!/^(file:\/\/\/|prompt$|https?:\/\/)/.test(location)) throw new Error(`not a key location: ${JSON.stringify(location)}`);
  return ['zfs', 'load-key', '-L', location, requireDataset(dataset)];
}

/**
 * `zfs destroy -r [-f] DATASET`: a whole tree with its snapshots. Only for hozo's own scratch datasets on this machine
 * (job/verify.ts checks its mark property first); never built for a box's target.
 */
export function destroyTreeArgv(dataset: string, opts: { readonly force?: boolean } = {}): string[] {
  return ['zfs', 'destroy', '-r', ...(opts.force === true ? ['-f'] : []), requireDataset(dataset)];
}

/** One `zfs snapshot` of several names (OpenZFS: atomic across them), or `-r` for a whole subtree. */
export function snapshotsArgv(snapshots: readonly string[], opts: { readonly recursive?: boolean } = {}): string[] {
  if (opts.recursive === true && snapshots.length !== 1) throw new Error('zfs snapshot -r takes one name');
  return ['zfs', 'snapshot', ...(opts.recursive === true ? ['-r'] : []), ...requireSome(snapshots, 'snapshot').map(requireSnapshot)];
}
