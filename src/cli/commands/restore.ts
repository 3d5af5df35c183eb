import type { Command } from 'commander';
import { ensureStateDirectory } from '../../state/dir.js';
import { ensureRunFiles } from '../../config/files.js';
import { findJob } from '../../config/lookup.js';
import type { Context } from '../context.js';
import { printJson } from '../context.js';
import { writeReport } from '../render.js';
import { reportExitCode } from './run.js';

export function registerRestore(program: Command, ctx: Context): void {
  program
    .command('restore')
    .description('replicate a dataset back from the box to this machine')
    .argument('<job>', 'job whose backup to restore from')
    .requiredOption('--dataset <source-dataset>', 'the source dataset as configured (or a child of a recursive one)')
    .option('--snapshot <name>', 'restore up to this snapshot (default: the newest on the box)')
    .option('--to <local-dataset>', 'restore into this local dataset instead of the original name')
    .option('--force', 'allow rolling an existing local dataset to the box state along a common snapshot')
    .option('--mount', 'mount the restored dataset (it arrives unmounted, with mountpoint=none and setuid/exec/devices off)')
    .option('--json', 'print the report as JSON on stdout')
    .action(async (name: string, opts: { dataset: string; snapshot?: string; to?: string; force?: boolean; mount?: boolean; json?: boolean }) => {
      const config = await ctx.loadConfig();
      const job = findJob(config, name);
      ensureRunFiles(config, job.host);
      ensureStateDirectory(config.stateDirectory);
      const log = ctx.logger(config);
      const { restore } = await import('../../job/restore.js');
      const report = await restore(config, job, {
        dataset: opts.dataset,
        ...(opts.snapshot !== undefined ? { snapshot: opts.snapshot } : {}),
        ...(opts.to !== undefined ? { to: opts.to } : {}),
        force: opts.force === true,
        mount: opts.mount === true,
        log,
      });
      if (ctx.json(opts)) printJson(ctx, report);
      else writeReport(ctx.out, report);
      ctx.exitCode = reportExitCode(report);
    });
}
