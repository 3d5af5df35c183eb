// Transfer progress: bytes, rate and, where the sender could estimate the stream size (OpenZFS `send -nP`), percent
// and ETA. Drawn as a live line on a TTY; elsewhere (journald) one plain line at most every `plainEverySeconds`.
import { formatBytes, type Logger } from '../util/log.js';

/** The total of `zfs send -nP` output ("size\t123456", OpenZFS); undefined when absent. */
export function parseSendEstimate(stdout: string): number | undefined {
  let total: number | undefined;
  for (const line of stdout.split('\n')) {
    const m = /^size\s+(\d+)\s*$/.exec(line);
    if (m) total = Number(m[1]);
  }
  return total;
}

function clock(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const pad = (n: number) => String(n).padStart(2, '0');
  return h > 0 ? `${h}:${pad(m)}:${pad(s % 60)}` : `${m}:${pad(s % 60)}`;
}

export function formatProgress(label: string, bytes: number, seconds: number, estimate: number | undefined): string {
  const rate = seconds > 0 ? bytes / seconds : 0;
  let line = `${label}: ${formatBytes(bytes)}`;
  if (estimate !== undefined && estimate > 0) {
    const pct = Math.min(100, (bytes / estimate) * 100);
    line += ` of ${formatBytes(estimate)} (${pct.toFixed(0)}%)`;
  }
  if (rate > 0) line += ` ${formatBytes(rate)}/s`;
  if (estimate !== undefined && rate > 0 && bytes < estimate) line += ` ETA ${clock((estimate - bytes) / rate)}`;
  return line;
}

/**
 * Progress lines for one stream. `estimate` may be a promise (the sender's `send -nP` runs beside the stream rather
 * than before it, so no stream waits for its own size): lines carry percent and ETA once it has arrived.
 */
export function progressReporter(
  log: Logger,
  label: string,
  estimateOrPending: number | undefined | Promise<number | undefined>,
  now: () => number = Date.now,
  plainEverySeconds = 30,
) {
  const start = now();
  let lastPlain = start;
  let estimate: number | undefined;
  if (estimateOrPending instanceof Promise)
    estimateOrPending.then(
      (e) => (estimate = e),
      () => undefined,
    );
  else estimate = estimateOrPending;
  return (bytes: number): void => {
    const t = now();
    const line = formatProgress(label, bytes, (t - start) / 1000, estimate);
    log.progress(line);
    log.transfer?.({ dataset: label, bytes, seconds: (t - start) / 1000, ...(estimate !== undefined ? { estimate } : {}) });
    if (!log.interactive && t - lastPlain >= plainEverySeconds * 1000) {
      lastPlain = t;
      log.info(line);
    }
  };
}
