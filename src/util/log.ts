// Diagnostics go to stderr (stdout is for data). Under systemd each line carries a <N> syslog priority so
// `journalctl -p err` shows just the failures.
import { fstatSync } from 'node:fs';
import { HozoError } from '../errors.js';
import { shownPath } from '../config/shown.js';
import { appendToFile, logFileProblem } from './safe-fs.js';

export type Level = 'error' | 'warn' | 'info' | 'debug';

/** Whether file descriptor `fd` is the journal stream systemd connected the service to: JOURNAL_STREAM is that
 *  stream's "device:inode" (systemd.exec(5)), so a descriptor redirected elsewhere (a file, a pipe) is not it. */
export function isJournalStream(fd: number, env: NodeJS.ProcessEnv = process.env): boolean {
  const m = /^(\d+):(\d+)$/.exec(env['JOURNAL_STREAM'] ?? '');
  if (m === null) return false;
  try {
    const st = fstatSync(fd, { bigint: true });
    return st.dev === BigInt(m[1]!) && st.ino === BigInt(m[2]!);
  } catch {
    return false;
  }
}
const PRIORITY: Record<Level, number> = { error: 3, warn: 4, info: 6, debug: 7 };

export interface Logger {
  error(msg: string): void;
  /** What to do about the error just reported: `hint: …` on stderr, priority err under journald. */
  hint?(msg: string): void;
  warn(msg: string): void;
  info(msg: string): void;
  debug(msg: string): void;
  /** A transient progress line (only drawn on a TTY). */
  progress(msg: string): void;
  /** true when progress lines are drawn (a TTY, not journald). */
  readonly interactive: boolean;
  /** The same progress as numbers, for a reader other than a terminal (the run's progress file, state/progress.ts). */
  transfer?(p: TransferProgress): void;
}

/** Where one stream is: its dataset, bytes so far, the sender's estimate of the total, seconds since it started. */
export interface TransferProgress {
  readonly dataset: string;
  readonly bytes: number;
  readonly estimate?: number;
  readonly seconds: number;
}

export interface LoggerOptions {
  readonly journal?: boolean;
  readonly verbose?: boolean;
  readonly quiet?: boolean;
  readonly logFile?: string;
  readonly stream?: NodeJS.WriteStream;
}

export function createLogger(opts: LoggerOptions = {}): Logger {
  // A FIFO or device as logFile would block every line (or write to a terminal): refused before anything is done.
  const logProblem = opts.logFile !== undefined ? logFileProblem(opts.logFile) : undefined;
  if (logProblem !== undefined)
    throw new HozoError('CONFIG_INVALID', `logFile: ${logProblem}`, {
      hint: 'point logFile at a regular file (or a new path in a writable directory); nothing was run',
    });
  const stream = opts.stream ?? process.stderr;
  const journal = opts.journal ?? (stream === process.stderr && isJournalStream(2));
  const tty = !journal && stream.isTTY === true;
  let progressShown = false;
  const clearProgress = () => {
    if (progressShown) {
      stream.write('\r\x1b[K');
      progressShown = false;
    }
  };
  let logFileBroken = false;
  const emit = (level: Level, msg: string, label?: string) => {
    if (level === 'debug' && !opts.verbose) return;
    if (opts.quiet && (level === 'info' || level === 'debug')) return;
    clearProgress();
    for (const [i, line] of msg.split('\n').entries()) {
      const tag = label ?? (level === 'error' ? 'error: ' : level === 'warn' ? 'warning: ' : '');
      const prefix = journal ? `<${PRIORITY[level]}>${label !== undefined && i === 0 ? label : ''}` : i === 0 ? tag : ' '.repeat(tag.length);
      stream.write(`${prefix}${line}\n`);
    }
    if (opts.logFile !== undefined) {
      try {
        appendToFile(opts.logFile, `${new Date().toISOString()} ${level.toUpperCase()} ${msg}\n`);
      } catch (e) {
        // A broken log file must not break the backup, but its lines are not lost in silence: said once, here.
        if (!logFileBroken) {
          logFileBroken = true;
          const why = (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'its directory does not exist' : ((e as NodeJS.ErrnoException).code ?? String(e));
          stream.write(
            `${journal ? `<${PRIORITY.warn}>` : 'warning: '}cannot append to logFile ${shownPath(opts.logFile)} (${why}); this run logs to stderr only\n`,
          );
        }
      }
    }
  };
  return {
    interactive: tty && !opts.quiet,
    error: (m) => emit('error', m),
    hint: (m) => emit('error', m, 'hint: '),
    warn: (m) => emit('warn', m),
    info: (m) => emit('info', m),
    debug: (m) => emit('debug', m),
    progress: (m) => {
      if (!tty || opts.quiet) return;
      stream.write(`\r\x1b[K${m}`);
      progressShown = true;
    },
  };
}

export const silentLogger: Logger = { interactive: false, error() {}, warn() {}, info() {}, debug() {}, progress() {} };

export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${v.toFixed(u === 0 ? 0 : 1)} ${units[u]}`;
}
