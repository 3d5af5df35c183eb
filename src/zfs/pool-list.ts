// `zpool list -H -o name,health,size,alloc,free,cap` (poolListArgv): read by the controller's ready check, pool
// health and status, and by the agent.

export interface PoolListRow {
  readonly name: string;
  readonly health: string;
  readonly size: string;
  readonly alloc: string;
  readonly free: string;
  /** alloc/size from the cap column (0..1), undefined when unparseable. */
  readonly capacityRatio?: number;
}

/** Parses `zpool list -H -o name,health,size,alloc,free,cap` (human sizes: zfs-fuse has no -p). */
export function parseZpoolList(stdout: string): PoolListRow[] {
  const out: PoolListRow[] = [];
  for (const line of stdout.split('\n')) {
    if (line.trim() === '') continue;
    const [name, health, size, alloc, free, cap] = line.split('\t');
    if (name === undefined || health === undefined) continue;
    const c = /^(\d+(?:\.\d+)?)%?$/.exec(cap?.trim() ?? '')?.[1];
    out.push({
      name,
      health,
      size: size ?? '',
      alloc: alloc ?? '',
      free: free ?? '',
      ...(c !== undefined ? { capacityRatio: Number(c) / 100 } : {}),
    });
  }
  return out;
}
