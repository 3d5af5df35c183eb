// The text of a notification: a one-line title and a short plain-text body. Built only from the run report, which
// holds no secrets (tokens stay in their files and go only into request headers/bodies).
import type { DatasetReport, JobReport } from '../job/report.js';
import { formatBytes } from '../util/log.js';

export interface NotifyMessage {
  /** "hozo nightly: FAILED — 1 of 3 datasets failed" */
  readonly title: string;
  readonly body: string;
  readonly failed: boolean;
}

/** A JobReport, with or without `hosts` (extra fields such as a dataset's newestCreation reach webhooks as is). */
export type NotifyReport = Omit<JobReport, 'datasets' | 'hosts'> & { readonly datasets: readonly DatasetReport[]; readonly hosts?: readonly unknown[] };

type MessageReport = Pick<JobReport, 'job' | 'host' | 'result' | 'seconds' | 'bytes' | 'warnings' | 'error' | 'targetPools' | 'finishedAt'> & {
  readonly datasets: readonly Pick<JobReport['datasets'][number], 'source' | 'target' | 'result' | 'error'>[];
};

const MAX_BODY = 1000; // Pushover's limit is 1024 characters; the others are happy with that too
const MAX_LISTED = 10;

export function formatDuration(totalSeconds: number): string {
  const s = Math.max(0, Math.round(totalSeconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  if (h > 0) return `${h}h ${m}m`;
  if (m > 0) return `${m}m ${sec}s`;
  return `${sec}s`;
}

const plural = (n: number, one: string, many = one + 's') => `${n} ${n === 1 ? one : many}`;
const oneLine = (s: string) => s.replace(/\s*\n\s*/g, ' ').trim();

export function shorten(s: string, max: number): string {
  return s.length <= max ? s : s.slice(0, max - 1) + '…';
}

export function formatMessage(report: MessageReport): NotifyMessage {
  const bad = report.datasets.filter((d) => d.result === 'failed' || d.result === 'conflict');
  const n = report.datasets.length;
  const failed = report.result !== 'ok';
  let summary: string;
  switch (report.result) {
    case 'ok':
      summary = `OK — ${plural(n, 'dataset')}, ${formatBytes(report.bytes)} in ${formatDuration(report.seconds)}`;
      break;
    case 'failed':
      summary = `FAILED — ${bad.length} of ${plural(n, 'dataset')} failed`;
      break;
    case 'unreachable':
      summary = `FAILED — host ${report.host} unreachable`;
      break;
    default:
      summary = `FAILED — ${shorten(oneLine(report.error?.message ?? 'the run stopped with an error'), 100)}`;
  }
  const title = `hozo ${report.job}: ${summary}`;

  const lines: string[] = [];
  if (report.error !== undefined) {
    lines.push(`error ${report.error.code}: ${oneLine(report.error.message)}`);
    if (report.error.hint) lines.push(`  hint: ${oneLine(report.error.hint)}`);
  }
  for (const d of bad.slice(0, MAX_LISTED)) {
    const why = d.error !== undefined ? `${d.error.code}: ${oneLine(d.error.message)}` : d.result;
    lines.push(`✗ ${d.source} → ${d.target}: ${why}`);
    if (d.error?.hint) lines.push(`  hint: ${oneLine(d.error.hint)}`);
  }
  if (bad.length > MAX_LISTED) lines.push(`… and ${bad.length - MAX_LISTED} more failed datasets`);
  for (const p of report.targetPools) if (p.health !== 'ONLINE') lines.push(`pool ${p.name} on ${report.host} is ${p.health}`);
  for (const w of report.warnings.slice(0, 5)) lines.push(`warning: ${oneLine(w)}`);
  const ok = n - bad.length;
  lines.push(`${ok} of ${plural(n, 'dataset')} ok; ${formatBytes(report.bytes)} sent in ${formatDuration(report.seconds)} (host ${report.host}).`);
  return { title, body: shorten(lines.join('\n'), MAX_BODY), failed };
}

/**
 * RFC 2047 encoded words for a header that must stay ASCII (e-mail Subject, ntfy Title); ASCII text is returned as is.
 * `separator` joins the words: a space for HTTP, "\n " to fold a long mail header.
 */
export function encodeHeaderWord(text: string, separator = ' '): string {
  if (/^[\x20-\x7e]*$/.test(text)) return text;
  // Encoded words are at most 75 characters: split on whole characters so no UTF-8 sequence is cut.
  const words: string[] = [];
  let chunk = '';
  for (const ch of text) {
    if (Buffer.byteLength(chunk + ch, 'utf8') > 45) {
      words.push(chunk);
      chunk = '';
    }
    chunk += ch;
  }
  if (chunk !== '') words.push(chunk);
  return words.map((w) => `=?UTF-8?B?${Buffer.from(w, 'utf8').toString('base64')}?=`).join(separator);
}
