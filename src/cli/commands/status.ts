// Last results of the local jobs and, when reachable without waking it (or with --wake), the box's own status.
import type { Command } from 'commander';
import { formatBytes } from '../../util/log.js';
import { findHost } from '../../config/lookup.js';
import type { Context } from '../context.js';
import { printJson } from '../context.js';

export function registerStatus(program: Command, ctx: Context): void {
  program
    .command('status')
    .description(
      'last run of each job, and each box: awake, asleep or (always-on hosts) unreachable, pool health (never wakes a box unless --wake); exit 1 when the last run of a shown job failed, like systemctl status',
    )
    .argument('[host]', 'only this host')
    .option('--json', 'machine-readable output')
    .option('--wake', 'wake a sleeping box to read its status (and put it back to sleep)')
    .action(async (only: string | undefined, opts: { json?: boolean; wake?: boolean }) => {
      const config = await ctx.loadConfig();
      const log = ctx.logger(config);
      if (only !== undefined) findHost(config, only);
      const { collectStatus } = await import('./status-hosts.js');
      const doc = await collectStatus(config, { ...(only !== undefined ? { only } : {}), wake: opts.wake === true, log });
      const { jobs, hosts } = doc;
      // Like systemctl status: non-zero when something shown is not well (the last run of a job failed).
      if (jobs.some((j) => j.state?.lastRun !== undefined && j.state.lastRun.result !== 'ok')) ctx.exitCode = 1;
      if (ctx.json(opts)) return printJson(ctx, doc);
      for (const j of jobs) {
        const run = j.state?.lastRun;
        ctx.out.write(
          run
            ? `job ${j.job} (${j.host}): last run ${run.finishedAt} ${run.result}, ${formatBytes(run.bytes)} in ${run.seconds.toFixed(1)}s; last success ${j.state?.lastSuccess ?? 'never'}\n`
            : `job ${j.job} (${j.host}): never run\n`,
        );
      }
      for (const h of hosts) {
        const pools = (h.pools ?? []).map((p) => `${p.name} ${p.health}${p.capacity ? ` ${p.capacity}` : ''}${p.scrub ? ` (${p.scrub})` : ''}`).join(', ');
        ctx.out.write(
          `host ${h.name}: ${h.state}${h.woken ? ' (woken for this status)' : ''}${pools ? `; pools: ${pools}` : ''}${h.error ? `; ${h.error}` : ''}\n`,
        );
      }
    });
}
