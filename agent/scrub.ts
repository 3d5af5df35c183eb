// Scrubs on a box that is awake minutes a day (agent config `scrub`): at `prepare` a paused scrub is resumed and a
// due one (the last completed scrub older than everyDays, or none) is started; at shutdown a running scrub is paused
// (`zpool scrub -p`, OpenZFS), so its progress survives the power-off and it goes on at the next wake. A running
// scrub keeps the box up only for the first keepAwakeMinutes after boot (0: never; the shutdown pauses it instead).
// Without the `scrub` section nothing is started or paused, and a running scrub refuses shutdown as before.
import { requirePool } from '../src/zfs/argv.js';
import type { AgentContext } from './context.js';
import { poolReport, type PoolReport } from './pools.js';

export interface ScrubAction {
  readonly pool: string;
  readonly action: 'resumed' | 'started' | 'paused' | 'none';
  /** Why nothing was done, or what failed. */
  readonly detail?: string;
}

/** The configured start or pause command for `pool` (%p replaced; the name is checked to be a pool name). */
const command = (template: readonly string[], pool: string): string[] => template.map((a) => a.replaceAll('%p', requirePool(pool)));

const run = async (ctx: AgentContext, argv: string[]): Promise<string | undefined> => {
  const r = await ctx.runner.run(argv, { timeoutMs: 120_000 });
  return r.exitCode === 0 ? undefined : (r.stderr.trim() || r.stdout.trim() || `exit ${r.exitCode}`).split('\n')[0];
};

/** At prepare, for every imported pool: resume a paused scrub, or start one that is due. */
export async function maintainScrubs(ctx: AgentContext): Promise<ScrubAction[]> {
  const policy = ctx.config.scrub;
  if (policy === undefined) return [];
  const out: ScrubAction[] = [];
  for (const pool of ctx.config.pools) {
    const p = await poolReport(ctx, pool, { disks: false }).catch(() => undefined);
    if (p === undefined || !p.imported) continue;
    if (p.resilverRunning) {
      out.push({ pool, action: 'none', detail: 'a resilver is running' });
      continue;
    }
    if (p.scrubPaused) {
      const error = await run(ctx, command(policy.startCommand, pool));
      out.push(
        error === undefined
          ? { pool, action: 'resumed', detail: `at ${Math.round((p.scrubProgress ?? 0) * 100)}%` }
          : { pool, action: 'none', detail: `resume failed: ${error}` },
      );
      continue;
    }
    if (p.scrubRunning) {
      out.push({ pool, action: 'none', detail: 'a scrub is running' });
      continue;
    }
    const age = p.lastScrubEnd === null ? undefined : ctx.state.now() - p.lastScrubEnd;
    if (age !== undefined && age < policy.everyDays * 86400) continue;
    const error = await run(ctx, command(policy.startCommand, pool));
    out.push(
      error === undefined
        ? { pool, action: 'started', detail: age === undefined ? 'never scrubbed' : `last one ${Math.round(age / 86400)} days ago` }
        : { pool, action: 'none', detail: `start failed: ${error}` },
    );
  }
  for (const a of out) if (a.action !== 'none') ctx.log.write(`scrub of ${a.pool} ${a.action}${a.detail ? ` (${a.detail})` : ''}`);
  return out;
}

/** Whether a running scrub keeps the box up now (undefined: it does not; shutdown pauses it). */
export function scrubHoldsBox(ctx: AgentContext, p: PoolReport): string | undefined {
  const policy = ctx.config.scrub;
  if (!p.scrubRunning) return undefined;
  // Without a policy any scrub (also a paused one) refuses shutdown: the admin's scrub is not ours to pause.
  if (policy === undefined) return `a scrub is running (${p.scan ?? 'scrub'})`;
  if (p.scrubPaused) return undefined;
  const up = ctx.state.uptimeSeconds();
  const keep = policy.keepAwakeMinutes * 60;
  if (keep > 0 && up !== undefined && up < keep)
    return `a scrub is running (${Math.round((p.scrubProgress ?? 0) * 100)}%); the box stays up for it until ${policy.keepAwakeMinutes} min after boot (scrub.keepAwakeMinutes)`;
  if (!policy.pauseOnShutdown) return `a scrub is running (${p.scan ?? 'scrub'})`;
  return undefined;
}

/** Before the pools are exported: pause every running scrub (its progress stays on disk for the next wake). */
export async function pauseScrubs(ctx: AgentContext): Promise<ScrubAction[]> {
  const policy = ctx.config.scrub;
  if (policy === undefined || !policy.pauseOnShutdown) return [];
  const out: ScrubAction[] = [];
  for (const pool of ctx.config.pools) {
    const p = await poolReport(ctx, pool, { disks: false }).catch(() => undefined);
    if (p === undefined || !p.scrubRunning || p.scrubPaused) continue;
    const error = await run(ctx, command(policy.pauseCommand, pool));
    out.push(
      error === undefined
        ? { pool, action: 'paused', detail: `at ${Math.round((p.scrubProgress ?? 0) * 100)}%` }
        : { pool, action: 'none', detail: `pause failed: ${error}` },
    );
  }
  for (const a of out) ctx.log.write(`scrub of ${a.pool} ${a.action === 'paused' ? 'paused' : 'not paused'}${a.detail ? ` (${a.detail})` : ''}`);
  return out;
}
