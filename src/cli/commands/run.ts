import type { Command } from 'commander';
import { shownName } from '../../config/shown.js';
import { trace } from '../../util/trace.js';
import { onInterrupt } from '../../job/interrupt.js';
import { ensureStateDirectory } from '../../state/dir.js';
import { ensureRunFiles, fileProblems, notifyFiles } from '../../config/files.js';
import { withProgressFile } from '../../state/progress.js';
import { findJob } from '../../config/lookup.js';
import { ExitCode, exitCodeForCode, HozoError, type ErrorCode } from '../../errors.js';
import { parseDuration } from '../../config/duration.js';
import type { JobReport } from '../../job/report.js';
import type { JobState } from '../../state/state.js';
import { connectEarly } from '../../job/early.js';
import type { Context } from '../context.js';
import { printJson } from '../context.js';
import { writeError, writeReport } from '../render.js';

export function reportExitCode(r: JobReport): number {
  // A run that never started (already running, a config problem found late) says so by its code.
  const code = r.error?.code as ErrorCode | undefined;
  if (code !== undefined && r.datasets.length === 0) {
    const c = exitCodeForCode(code);
    if (c === ExitCode.LOCKED || c === ExitCode.USAGE) return c;
  }
  switch (r.result) {
    case 'ok':
      return ExitCode.OK;
    case 'unreachable':
      return ExitCode.UNREACHABLE;
    default:
      return ExitCode.DATASET_FAILED;
  }
}

/** `--attempts N`: a whole number 1..100. */
function attemptsOf(v: string | undefined): number {
  if (v === undefined) return 1;
  if (!/^[0-9]{1,3}$/.test(v) || Number(v) < 1 || Number(v) > 100)
    throw new HozoError('USAGE', `--attempts: expected a whole number from 1 to 100, got ${shownName(v, 40)}`);
  return Number(v);
}

function delayOf(v: string | undefined): number {
  if (v === undefined) return 900;
  const s = parseDuration(v);
  if (s === undefined || s > 24 * 3600)
    throw new HozoError('USAGE', `--attempt-delay: expected a duration up to 24h like "15m" or "90s", got ${shownName(v, 40)}`);
  return s;
}

export function registerRun(program: Command, ctx: Context): void {
  program
    .command('run')
    .description('replicate every dataset of a job, verify, and protect the incremental base')
    .argument('<job>', 'job name')
    .option('--dry-run', 'plan and print what would be sent; change nothing (a sleeping box stays asleep unless --wake)')
    .option('--wake', 'with --dry-run: wake the box if it sleeps (and put it back to sleep afterwards)')
    .option(
      '--attempts <n>',
      'run again after a failed run (exit 1 or 3), up to n runs in all (the NixOS unit uses this instead of systemd restarts, so manual starts never use up a retry budget)',
    )
    .option('--attempt-delay <duration>', 'wait between those runs (default 15m)')
    .option('--json', 'print the run report as JSON on stdout')
    .action(async (name: string, opts: { dryRun?: boolean; wake?: boolean; attempts?: string; attemptDelay?: string; json?: boolean }) => {
      const config = await ctx.loadConfig();
      const job = findJob(config, name);
      const attempts = attemptsOf(opts.attempts);
      const delay = delayOf(opts.attemptDelay);
      if (attempts > 1 && opts.dryRun === true) throw new HozoError('USAGE', '--attempts repeats real runs; a --dry-run changes nothing to retry');
      ensureRunFiles(config, job.host, { metrics: opts.dryRun !== true });
      if (opts.dryRun !== true) ensureStateDirectory(config.stateDirectory);
      // The SSH handshake runs in its own process while the modules below load.
      trace('run: config loaded');
      // The transfer's progress as a file too (progress/<job>.json), for hozo serve; removed when the run ends.
      const progress = opts.dryRun === true ? undefined : withProgressFile(ctx.logger(config), config.stateDirectory, job.name);
      const log = progress?.log ?? ctx.logger(config);
      // A notification secret is read only at the end: a problem with it is said now, and the backup still runs.
      if (opts.dryRun !== true) for (const w of fileProblems(notifyFiles(config))) log.warn(`${w}; the notification that needs it will fail`);
      const interrupt = onInterrupt(log);
      let report: JobReport | undefined;
      for (let attempt = 1; attempt <= attempts; attempt++) {
        const early = connectEarly(config, job);
        let previous: JobState | undefined;
        let record: typeof import('../../job/record.js');
        try {
          let runJob: typeof import('../../job/run.js').runJob;
          [{ runJob }, record] = await Promise.all([import('../../job/run.js'), import('../../job/record.js')]);
          trace('run: modules loaded');
          previous = record.previousState(config, job.name, log);
          report = await runJob(config, job, {
            dryRun: opts.dryRun === true,
            wake: opts.wake === true,
            log,
            signal: interrupt.signal,
            ...(previous ? { previous } : {}),
            ...(early ? { early } : {}),
          });
        } finally {
          // Adopted by the run (and closed when it released the box), or unused: either way nothing stays open.
          await early?.runner.close();
        }
        trace('run: box closed');
        await record.recordOutcome(config, report, previous, log);
        trace('run: recorded');
        const code = reportExitCode(report);
        // Worth another run: a dataset failed (1) or the box could not be reached (3); not a config problem (2) or
        // a run already going on (4), and never after an interrupt.
        const again = attempt < attempts && (code === ExitCode.DATASET_FAILED || code === ExitCode.UNREACHABLE) && !interrupt.signal.aborted;
        if (!again) break;
        if (report.error !== undefined) writeError(log, report.error);
        log.warn(`run ${attempt} of ${attempts} failed (exit ${code}); the next in ${delay} s (--attempt-delay)`);
        // An interrupt ends the wait at once (and clears the timer: nothing keeps the process up).
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, delay * 1000);
          interrupt.signal.addEventListener('abort', () => (clearTimeout(t), resolve()), { once: true });
        });
        if (interrupt.signal.aborted) break;
      }
      progress?.done();
      if (ctx.json(opts)) printJson(ctx, report!);
      else writeReport(ctx.out, report!);
      if (report!.error !== undefined) writeError(log, report!.error);
      // Interrupted: 128 + the signal (130 SIGINT, 143 SIGTERM), as shells and systemd expect.
      ctx.exitCode = interrupt.exitCode() ?? reportExitCode(report!);
      interrupt.dispose();
    });
}

export function registerPlan(program: Command, ctx: Context): void {
  program
    .command('plan')
    .description('show what `run` would send and any conflicts; changes nothing')
    .argument('<job>', 'job name')
    .option('--json', 'print the plan as JSON on stdout')
    .option('--wake', 'wake the box if it sleeps (and put it back to sleep afterwards)')
    .action(async (name: string, opts: { json?: boolean; wake?: boolean }) => {
      const config = await ctx.loadConfig();
      const job = findJob(config, name);
      ensureRunFiles(config, job.host);
      const early = connectEarly(config, job);
      const log = ctx.logger(config);
      let report: JobReport;
      try {
        const { runJob } = await import('../../job/run.js');
        report = await runJob(config, job, { planOnly: true, wake: opts.wake === true, log, ...(early ? { early } : {}) });
      } finally {
        await early?.runner.close();
      }
      if (ctx.json(opts)) printJson(ctx, report);
      else writeReport(ctx.out, report);
      if (report.error !== undefined) writeError(log, report.error);
      // A plan with conflicts is a good plan (exit 0); one that could not be made says why by its code.
      ctx.exitCode = report.error === undefined ? ExitCode.OK : reportExitCode(report);
    });
}
