// ZFS naming rules (zfs(8) "Naming"), checked before any name reaches a command line.
// Components: alphanumerics plus _ - : . ; a pool name starts with a letter and is not a reserved word.
import { shownName } from '../config/shown.js';

const COMPONENT = /^[A-Za-z0-9_\-:.]+$/;
const SNAPSHOT_NAME = /^[A-Za-z0-9_\-:.]+$/;
const RESERVED_POOL = /^(mirror|raidz|raidz1|raidz2|raidz3|draid|spare|log|cache|special|dedup)$/;
const MAX_NAME = 255;

/** Returns undefined if `name` is a valid filesystem/volume name, else why not. */
export function datasetNameProblem(name: string): string | undefined {
  if (name.length === 0) return 'is empty';
  if (name.length > MAX_NAME) return `is longer than ${MAX_NAME} characters`;
  if (name.includes('@') || name.includes('#')) return 'must name a dataset, not a snapshot or bookmark';
  if (name.startsWith('/') || name.endsWith('/')) return 'must not start or end with "/"';
  const parts = name.split('/');
  for (const part of parts) {
    if (part.length === 0) return 'has an empty component ("//")';
    if (part === '.' || part === '..') return `has a "${part}" component`;
    if (!COMPONENT.test(part)) {
      return `has a character ZFS does not allow in ${shownName(part)} (allowed: letters, digits, _ - : .)`;
    }
  }
  const pool = parts[0]!;
  if (!/^[A-Za-z]/.test(pool)) return `pool name ${shownName(pool)} must start with a letter`;
  if (RESERVED_POOL.test(pool) || /^c[0-9]/.test(pool)) return `pool name ${shownName(pool)} is reserved`;
  return undefined;
}

export function isValidDatasetName(name: string): boolean {
  return datasetNameProblem(name) === undefined;
}

/** Returns undefined if `name` is a valid short snapshot name (the part after '@'). */
export function snapshotNameProblem(name: string): string | undefined {
  if (name.length === 0) return 'is empty';
  if (name.length > MAX_NAME) return `is longer than ${MAX_NAME} characters`;
  if (!SNAPSHOT_NAME.test(name)) return 'has a character ZFS does not allow (allowed: letters, digits, _ - : .)';
  return undefined;
}

export function poolOf(dataset: string): string {
  const i = dataset.indexOf('/');
  return i === -1 ? dataset : dataset.slice(0, i);
}

export function parentOf(dataset: string): string | undefined {
  const i = dataset.lastIndexOf('/');
  return i === -1 ? undefined : dataset.slice(0, i);
}

/** true if `name` is `root` or below it. */
export function isWithin(name: string, root: string): boolean {
  return name === root || name.startsWith(root + '/');
}
