// Human-readable rendering of a run report (stdout): a short table, then problems with their hints.
import type { JobReport } from '../job/report.js';
import { formatBytes, isJournalStream } from '../util/log.js';
import { describeLimit } from '../pipeline/bandwidth.js';

/** One line of the rendered report and the syslog priority it has under journald. */
interface ReportLine {
  readonly level: 'error' | 'warn' | 'info';
  readonly text: string;
}
const PRIORITY = { error: 3, warn: 4, info: 6 } as const;

function reportLines(r: JobReport): ReportLine[] {
  const lines: ReportLine[] = [];
  const info = (text: string) => lines.push({ level: 'info', text });
  const head =
    r.mode === 'plan'
      ? `plan for job ${r.job} (host ${r.host}) — nothing was changed`
      : r.mode === 'dry-run'
        ? `dry run of job ${r.job} (host ${r.host}) — nothing was changed`
        : `job ${r.job} (host ${r.host}): ${r.result}`;
  info(head);
  if (r.bandwidthLimit !== undefined) info(`bandwidth limit ${describeLimit(r.bandwidthLimit)}`);
  if (r.window !== undefined)
    info(
      `wake window ${r.window.maxAwake} s (closed for transfers at ${r.window.deadline})${r.window.backlogDatasets > 0 ? `: ${r.window.backlogDatasets} dataset(s), ${formatBytes(r.window.backlogBytes)} deferred to the next wake` : ''}`,
    );
  const rows = r.datasets.map((d) => [
    d.source,
    d.target,
    d.result,
    d.bytes !== undefined ? formatBytes(d.bytes) : '-',
    d.seconds ? `${d.seconds.toFixed(1)}s` : '-',
    d.plan,
  ]);
  const header = ['SOURCE', 'TARGET', 'RESULT', 'BYTES', 'TIME', 'PLAN'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const fmt = (row: string[]) => row.map((c, i) => (i === row.length - 1 ? c : c.padEnd(widths[i]!))).join('  ');
  if (rows.length) for (const row of [header, ...rows]) info(fmt(row));
  // A dataset's error is a failure of the run (journalctl -p err lists exactly these); in a plan it is what a run
  // would meet, a warning.
  const failure = r.mode === 'plan' ? 'warn' : 'error';
  for (const d of r.datasets) {
    if (d.error === undefined) continue;
    lines.push({ level: failure, text: `${d.source}: ${d.error.message}` });
    if (d.error.hint) lines.push({ level: failure, text: `  hint: ${d.error.hint}` });
  }
  // A pool not ONLINE or with errors fails the run (job/pool-health.ts).
  for (const p of r.targetPools) lines.push({ level: p.health === 'ONLINE' && !p.errors ? 'info' : failure, text: `target pool ${p.name}: ${p.health}` });
  for (const w of r.warnings) lines.push({ level: 'warn', text: `warning: ${w}` });
  if (!r.dryRun) info(`total ${formatBytes(r.bytes)} in ${r.seconds.toFixed(1)}s`);
  return lines;
}

/** The report as text; `journal`: each line led by its syslog priority (`<3>`…), which journald takes off and keeps
 *  as the entry's PRIORITY, so `journalctl -u hozo@job -p err` shows the failures and nothing else. */
export function renderReport(r: JobReport, opts: { journal?: boolean } = {}): string {
  return reportLines(r)
    .flatMap((l) => l.text.split('\n').map((text) => (opts.journal ? `<${PRIORITY[l.level]}>${text}` : text)))
    .join('\n')
    .concat('\n');
}

/** The report on `out`, with priorities where `out` is this process's stdout and that is a journal stream. */
export function writeReport(out: NodeJS.WritableStream, r: JobReport): void {
  out.write(renderReport(r, { journal: out === process.stdout && isJournalStream(1) }));
}

/** A run's error, once, on stderr (the report on stdout no longer repeats it): `error:` and `hint:` lines like every
 *  other error of the CLI; under journald each line carries priority err. */
export function writeError(log: import('../util/log.js').Logger, e: { message: string; hint?: string | undefined }): void {
  log.error(e.message);
  if (e.hint) {
    if (log.hint !== undefined) log.hint(e.hint);
    else log.error(`hint: ${e.hint}`);
  }
}
