import type { Command } from 'commander';
import type { Config } from '../../config/schema.js';
import type { Context } from '../context.js';
import { printJson } from '../context.js';

/** `hozo jobs list --json` (and hozo serve's GET /api/jobs). */
export function jobsDocument(c: Config) {
  return {
    version: 1 as const,
    jobs: c.jobs.map((j) => ({ name: j.name, host: j.host, schedule: j.schedule, snapshots: j.snapshots, datasets: j.datasets })),
  };
}

export function registerJobs(program: Command, ctx: Context): void {
  const jobs = program.command('jobs').description('configured jobs');
  jobs
    .command('list')
    .description('list jobs with their host, schedule and datasets')
    .option('--json', 'machine-readable output')
    .action(async (opts: { json?: boolean }) => {
      const c = await ctx.loadConfig();
      if (ctx.json(opts)) {
        return printJson(ctx, jobsDocument(c));
      }
      for (const j of c.jobs) {
        ctx.out.write(`${j.name}  host=${j.host}  schedule=${j.schedule}  snapshots=${j.snapshots}\n`);
        for (const d of j.datasets) {
          const extra = [d.recursive ? 'recursive' : '', d.exclude.length ? `exclude ${d.exclude.join(',')}` : ''].filter(Boolean).join(', ');
          ctx.out.write(`  ${d.source} → ${d.target}${extra ? ` (${extra})` : ''}\n`);
        }
      }
    });
}
