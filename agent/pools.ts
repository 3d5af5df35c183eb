// The configured pools: is each imported, how healthy, is a scrub/resilver running; import (prepare) and export
// (shutdown). zpool argv comes from src/zfs/pool-argv.ts, which validates every pool name.
import { poolExportArgv, poolImportArgv, poolListArgv, poolStatusFullArgv } from '../src/zfs/pool-argv.js';
import { classify } from '../src/zfs/errors.js';
import type { AgentPoolReport } from '../src/protocol/agent.js';
import type { AgentContext } from './context.js';
import { protects } from './streams.js';
import { parseZpoolList, parseZpoolStatus, type PoolStatus } from './pool-status.js';

/** One configured pool as `status` reports it (the protocol's type). */
export type PoolReport = AgentPoolReport;

const NOT_IMPORTED = /no such pool|does not exist/i;

/** health from `zpool list`, undefined when the pool is not imported; throws for any other failure. */
export async function poolHealth(ctx: AgentContext, pool: string): Promise<{ health: string; row: ReturnType<typeof parseZpoolList>[number] } | undefined> {
  const argv = poolListArgv(pool);
  const r = await ctx.runner.run(argv, { timeoutMs: 30_000 });
  if (r.exitCode !== 0) {
    if (NOT_IMPORTED.test(r.stderr)) return undefined;
    throw classify(r.stderr || r.stdout, { action: `zpool list ${pool}`, argv, exitCode: r.exitCode });
  }
  const row = parseZpoolList(r.stdout).find((p) => p.name === pool);
  return row === undefined ? undefined : { health: row.health, row };
}

export async function poolStatus(ctx: AgentContext, pool: string): Promise<PoolStatus | undefined> {
  const argv = poolStatusFullArgv(pool);
  const r = await ctx.runner.run(argv, { timeoutMs: 30_000 });
  if (r.exitCode !== 0) {
    if (NOT_IMPORTED.test(r.stderr)) return undefined;
    throw classify(r.stderr || r.stdout, { action: `zpool status ${pool}`, argv, exitCode: r.exitCode });
  }
  return parseZpoolStatus(r.stdout).find((p) => p.name === pool);
}

export const HEALTHY = new Set(['ONLINE', 'DEGRADED']);

export function notImported(pool: string): PoolReport {
  return {
    name: pool,
    imported: false,
    health: null,
    healthy: false,
    capacityRatio: null,
    size: null,
    allocated: null,
    errors: null,
    dataErrors: null,
    scan: null,
    scrubRunning: false,
    scrubPaused: false,
    scrubProgress: null,
    resilverRunning: false,
    lastScrubEnd: null,
    disks: [],
  };
}

export async function poolReport(ctx: AgentContext, pool: string, opts: { disks?: boolean } = {}): Promise<PoolReport> {
  const h = await poolHealth(ctx, pool);
  if (h === undefined) return notImported(pool);
  const s = await poolStatus(ctx, pool);
  const leaves = (s?.vdevs ?? []).filter((v) => v.leaf && v.read !== undefined && v.depth > 0);
  // The scrub that is running or paused (the newest scan line of kind scrub).
  const current = [...(s?.scans ?? [])].reverse().find((x) => x.kind === 'scrub' && (x.state === 'running' || x.state === 'paused'));
  const disks = opts.disks === false ? [] : await Promise.all(leaves.map(async (v) => ({ name: v.name, power: await ctx.diskPower(v.name) })));
  return {
    name: pool,
    imported: true,
    health: h.health,
    healthy: h.health === 'ONLINE',
    capacityRatio: h.row.capacityRatio ?? null,
    size: h.row.size || null,
    allocated: h.row.alloc || null,
    errors: s?.errors ?? null,
    dataErrors: s?.dataErrors ?? null,
    scan: s?.scanText ?? null,
    scrubRunning: s?.scrubRunning ?? false,
    scrubPaused: current?.state === 'paused',
    scrubProgress: current?.progress ?? null,
    resilverRunning: s?.resilverRunning ?? false,
    lastScrubEnd: s?.lastScrubEnd ?? null,
    disks,
  };
}

/**
 * `zpool import -N [-d DIR]… POOL` (-N: mount nothing; zfs-fuse has no -N, and no receive -o either); returns the
 * error text, undefined on success.
 */
export async function importPool(ctx: AgentContext, pool: string): Promise<string | undefined> {
  const argv = poolImportArgv(pool, { noMount: await protects(ctx), directories: ctx.config.importDirectories });
  const r = await ctx.runner.run(argv, { timeoutMs: 120_000 });
  if (r.exitCode === 0) return undefined;
  return (r.stderr.trim() || r.stdout.trim() || `exit ${r.exitCode}`).split('\n')[0];
}

/** `zpool export POOL`, retrying "busy" for a few seconds (zfs-fuse unmounts lazily); the error text or undefined. */
export async function exportPool(ctx: AgentContext, pool: string, retryMs = 10_000): Promise<string | undefined> {
  const argv = poolExportArgv(pool);
  const deadline = Date.now() + retryMs;
  for (let i = 0; ; i++) {
    const r = await ctx.runner.run(argv, { timeoutMs: 120_000 });
    if (r.exitCode === 0 || NOT_IMPORTED.test(r.stderr)) return undefined;
    const why = (r.stderr.trim() || r.stdout.trim() || `exit ${r.exitCode}`).split('\n')[0]!;
    if (!/busy/i.test(why) || Date.now() > deadline || i > 100) return why;
    await ctx.sleep(300);
  }
}
