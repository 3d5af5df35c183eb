// zpool argv (status, list, import, export), built from validated pool names like every builder in argv.ts.
import { requirePool } from './argv.js';

/** Prints "pool 'X' is healthy" or the problem; `-x` keeps healthy output to one line. */
export function poolStatusArgv(pool: string): string[] {
  return ['zpool', 'status', '-x', requirePool(pool)];
}

/** Human sizes: zfs-fuse has no `zpool list -p`. */
export function poolListArgv(pool: string): string[] {
  return poolsListArgv([pool]);
}

/** Several pools in one command (a missing one is named on stderr, the others are still listed); none: all. */
export function poolsListArgv(pools: readonly string[]): string[] {
  return ['zpool', 'list', '-H', '-o', 'name,health,size,alloc,free,cap', ...pools.map(requirePool)];
}

/** The full `zpool status POOL` (vdevs, errors, scan line) the agent's pool report parses. */
export function poolStatusFullArgv(pool: string): string[] {
  return ['zpool', 'status', requirePool(pool)];
}

/** `zpool import [-N] [-d DIR]… POOL`; -N mounts nothing (zfs-fuse has no -N). */
export function poolImportArgv(pool: string, opts: { readonly noMount: boolean; readonly directories: readonly string[] }): string[] {
  for (const d of opts.directories) if (!d.startsWith('/')) throw new Error(`zpool import -d needs an absolute directory, not ${JSON.stringify(d)}`);
  return ['zpool', 'import', ...(opts.noMount ? ['-N'] : []), ...opts.directories.flatMap((d) => ['-d', d]), requirePool(pool)];
}

export function poolExportArgv(pool: string): string[] {
  return ['zpool', 'export', requirePool(pool)];
}
