import type { Command } from 'commander';
import { ensureStateDirectory } from '../../state/dir.js';
import { ensureRunFiles } from '../../config/files.js';
import { findJob } from '../../config/lookup.js';
import { ExitCode, HozoError } from '../../errors.js';
import { onInterrupt } from '../../job/interrupt.js';
import type { VerifyReport } from '../../job/verify.js';
import { formatBytes } from '../../util/log.js';
import type { Context } from '../context.js';
import { printJson } from '../context.js';
import { writeError } from '../render.js';

function count(what: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  if (!/^[0-9]{1,9}$/.test(v) || Number(v) < 1) throw new HozoError('USAGE', `${what}: expected a whole number ≥ 1, got "${v}"`);
  return Number(v);
}

export function renderVerify(r: VerifyReport): string {
  const lines = [`verify of job ${r.job} (host ${r.host})${r.restoreTest ? `, with restore test (seed ${r.seed})` : ''}: ${r.result}`];
  for (const d of r.datasets) {
    const t = d.restoreTest;
    const test =
      t === undefined
        ? ''
        : t.result === 'ok'
          ? `, restored: ${t.filesChecked} file(s), ${formatBytes(t.bytesChecked ?? 0)} identical`
          : `, restore test ${t.result}${t.reason ? ` (${t.reason})` : ''}`;
    lines.push(
      `${d.source} → ${d.target}: ${d.result}${d.snapshot ? ` @${d.snapshot}` : ''}${d.protectedBy.length ? ` [${d.protectedBy.join(', ')}]` : ''}${test}`,
    );
    for (const m of t?.mismatches ?? []) lines.push(`  ${d.source}: ${m.path}: ${m.problem}`);
    if (d.error !== undefined) lines.push(`  ${d.error.message}${d.error.hint ? `\n  hint: ${d.error.hint}` : ''}`);
  }
  for (const p of r.targetPools) lines.push(`target pool ${p.name}: ${p.health}`);
  for (const w of r.warnings) lines.push(`warning: ${w}`);
  lines.push(`done in ${r.seconds.toFixed(1)}s`);
  return lines.join('\n') + '\n';
}

export function registerVerify(program: Command, ctx: Context): void {
  program
    .command('verify')
    .description(
      "check a job's backups without replicating: the base on the box by guid, its hold/bookmark, pool health; --restore-test restores and compares them",
    )
    .argument('<job>', 'job name')
    .option('--restore-test', 'receive the newest backup of each dataset back into a scratch dataset here and compare every file with the source snapshot')
    .option('--datasets <n>', 'with --restore-test: only a seeded sample of n datasets')
    .option('--files <n>', 'with --restore-test: hash a seeded sample of n files per dataset (every path is still compared by type, size and mode)')
    .option('--seed <n>', "the sample's seed (default: a new one, printed in the report)")
    .option('--json', 'print the report as JSON on stdout')
    .action(async (name: string, opts: { restoreTest?: boolean; datasets?: string; files?: string; seed?: string; json?: boolean }) => {
      const config = await ctx.loadConfig();
      const job = findJob(config, name);
      const sampleDatasets = count('--datasets', opts.datasets);
      const sampleFiles = count('--files', opts.files);
      const seed = opts.seed === undefined ? Math.floor(Math.random() * 2 ** 31) : count('--seed', opts.seed)!;
      if ((sampleDatasets !== undefined || sampleFiles !== undefined) && opts.restoreTest !== true)
        throw new HozoError('USAGE', '--datasets and --files choose what a restore test covers: add --restore-test');
      ensureRunFiles(config, job.host, { metrics: true });
      ensureStateDirectory(config.stateDirectory);
      const log = ctx.logger(config);
      const interrupt = onInterrupt(log);
      const [{ verifyJob }, { writeVerifyMetrics }] = await Promise.all([import('../../job/verify.js'), import('../../metrics/verify.js')]);
      const report = await verifyJob(config, job, {
        restoreTest: opts.restoreTest === true,
        ...(sampleDatasets !== undefined ? { sampleDatasets } : {}),
        ...(sampleFiles !== undefined ? { sampleFiles } : {}),
        seed,
        log,
        signal: interrupt.signal,
      });
      if (config.metrics?.textfileDirectory !== undefined) {
        try {
          await writeVerifyMetrics(config.metrics.textfileDirectory, report);
        } catch (e) {
          log.warn((e as Error).message);
        }
      }
      if (ctx.json(opts)) printJson(ctx, report);
      else ctx.out.write(renderVerify(report));
      if (report.error !== undefined && report.datasets.length === 0) writeError(log, report.error);
      ctx.exitCode =
        interrupt.exitCode() ?? (report.result === 'ok' ? ExitCode.OK : report.result === 'unreachable' ? ExitCode.UNREACHABLE : ExitCode.DATASET_FAILED);
      interrupt.dispose();
    });
}
