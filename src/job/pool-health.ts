// What a run concludes from the target pools' state after it replicated: a pool that is not ONLINE or reports
// read/write/checksum errors fails the run (exit 1) — the backup landed, but on storage that cannot be trusted to keep
// it —, and a last scrub older than the host's scrubWarnAfter is a warning. Pure: the run (src/job/run.ts) applies it.
import type { PoolReport } from './report.js';

export { DEFAULT_SCRUB_WARN_AFTER } from '../config/rules.js';

export interface PoolVerdict {
  /** The pools, with scrubOverdue set where their last scrub is known. */
  readonly pools: PoolReport[];
  /** Each makes the run fail. */
  readonly failures: string[];
  readonly warnings: string[];
}

/** An age in the largest unit that keeps it at 2 or more ("50 days", "3 hours", "40 s"). */
function age(s: number): string {
  for (const [unit, n] of [
    ['days', 86_400],
    ['hours', 3600],
    ['minutes', 60],
  ] as const)
    if (s >= 2 * n) return `${Math.floor(s / n)} ${unit}`;
  return `${Math.floor(s)} s`;
}

export function judgePools(pools: readonly PoolReport[], opts: { readonly now: number; readonly scrubWarnAfter: number }): PoolVerdict {
  const failures: string[] = [];
  const warnings: string[] = [];
  const judged = pools.map((p): PoolReport => {
    // UNKNOWN: zpool did not list it (not imported, or no such pool); the host's warning says what zpool said.
    if (p.health === 'UNKNOWN') failures.push(`target pool ${p.name} could not be read (not imported, or no such pool?)`);
    else if (p.health !== 'ONLINE') failures.push(`target pool ${p.name} is ${p.health}`);
    if (p.errors !== undefined && p.errors > 0) failures.push(`target pool ${p.name} reports ${p.errors} read/write/checksum error(s)`);
    if (p.lastScrubEnd === undefined) return p;
    const scrubOverdue = opts.now - p.lastScrubEnd > opts.scrubWarnAfter;
    if (scrubOverdue)
      warnings.push(`target pool ${p.name}: its last scrub finished ${age(opts.now - p.lastScrubEnd)} ago (scrubWarnAfter: ${age(opts.scrubWarnAfter)})`);
    return { ...p, scrubOverdue };
  });
  return { pools: judged, failures, warnings };
}
