// Human-readable rendering of a run report (stdout): a short table, then problems with their hints.
import type { JobReport } from '../job/report.js';
import { formatBytes } from '../util/log.js';
import { describeLimit } from '../pipeline/bandwidth.js';

export function renderReport(r: JobReport): string {
  const lines: string[] = [];
  const head =
    r.mode === 'plan'
      ? `plan for job ${r.job} (host ${r.host}) — nothing was changed`
      : r.mode === 'dry-run'
        ? `dry run of job ${r.job} (host ${r.host}) — nothing was changed`
        : `job ${r.job} (host ${r.host}): ${r.result}`;
  lines.push(head);
  if (r.bandwidthLimit !== undefined) lines.push(`bandwidth limit ${describeLimit(r.bandwidthLimit)}`);
  if (r.window !== undefined)
    lines.push(
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
  if (rows.length) lines.push(fmt(header), ...rows.map(fmt));
  for (const d of r.datasets) {
    if (d.error !== undefined) lines.push(`${d.source}: ${d.error.message}${d.error.hint ? `\n  hint: ${d.error.hint}` : ''}`);
  }
  for (const p of r.targetPools) lines.push(`target pool ${p.name}: ${p.health}`);
  for (const w of r.warnings) lines.push(`warning: ${w}`);
  if (!r.dryRun) lines.push(`total ${formatBytes(r.bytes)} in ${r.seconds.toFixed(1)}s`);
  return lines.join('\n') + '\n';
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
