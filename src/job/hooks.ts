// Hooks: a user's argv run on this machine at a point of the run (preRun, preSnapshot, postSnapshot, postRun), with
// a timeout and its output in the log. Never a shell string: the argv is executed as given (the user writes
// ["sh", "-c", "…"] when they want a shell). A hook runs in its own process group, so a timeout ends what it started.
import { spawn } from 'node:child_process';
import type { Logger } from '../util/log.js';

export type HookPoint = 'preRun' | 'postRun' | 'preSnapshot' | 'postSnapshot';

export interface Hook {
  readonly command: readonly string[];
  /** Seconds. */
  readonly timeout: number;
}

export interface HookOutcome {
  readonly ok: boolean;
  /** Why it failed, in one line: "exit 3", "timed out after 5 s", "could not start: ENOENT". */
  readonly failure?: string;
  /** The last lines it printed (for the error message). */
  readonly tail: readonly string[];
  readonly seconds: number;
}

/** Lines of a hook's output kept for the error message; every line goes to the log as it comes. */
const TAIL_LINES = 5;
/** A line longer than this is cut in the log (a hook printing a binary blob must not flood the journal). */
const MAX_LINE = 2000;
/** After the timeout's SIGTERM, how long the process group has before SIGKILL. */
const KILL_GRACE_MS = 5000;

/**
 * Runs one hook and waits for it (bounded by its timeout plus the kill grace). `env` is added to this process's
 * environment (HOZO_JOB, HOZO_HOOK, …). Never throws.
 */
export function runHook(point: HookPoint, hook: Hook, env: Record<string, string>, log: Logger, label: string): Promise<HookOutcome> {
  const started = Date.now();
  const [file, ...args] = hook.command;
  log.info(`${label}: ${point} hook: ${hook.command.join(' ')}`);
  return new Promise((resolve) => {
    const tail: string[] = [];
    let timedOut = false;
    let settled = false;
    const later: NodeJS.Timeout[] = [];
    const child = spawn(file!, args, { stdio: ['ignore', 'pipe', 'pipe'], cwd: '/', detached: true, env: { ...process.env, ...env, HOZO_HOOK: point } });
    const lines = (stream: 'out' | 'err') => {
      let rest = '';
      return (b: Buffer) => {
        rest += b.toString('utf8');
        let i: number;
        while ((i = rest.indexOf('\n')) !== -1) {
          emit(rest.slice(0, i), stream);
          rest = rest.slice(i + 1);
        }
        if (rest.length > MAX_LINE) {
          emit(rest, stream);
          rest = '';
        }
      };
    };
    const emit = (raw: string, stream: 'out' | 'err') => {
      // Control characters would break the one-line-per-message log: shown escaped.
      const line = raw
        .replace(/\r$/, '')
        .slice(0, MAX_LINE)
        .replace(/[\u0000-\u0008\u000b-\u001f\u007f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
      tail.push(line);
      if (tail.length > TAIL_LINES) tail.shift();
      (stream === 'err' ? log.warn : log.info).call(log, `${label}: ${point}: ${line}`);
    };
    child.stdout.on('data', lines('out'));
    child.stderr.on('data', lines('err'));
    const killGroup = (signal: NodeJS.Signals) => {
      try {
        if (child.pid !== undefined) process.kill(-child.pid, signal);
      } catch {
        // gone already
      }
    };
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup('SIGTERM');
      later.push(setTimeout(() => killGroup('SIGKILL'), KILL_GRACE_MS));
      // Whatever still holds its output open (a daemon it started in another session): not waited for.
      later.push(setTimeout(() => finish({ ok: false, failure: `timed out after ${hook.timeout} s (killed)` }), KILL_GRACE_MS + 1000));
    }, hook.timeout * 1000);
    const finish = (outcome: Omit<HookOutcome, 'seconds' | 'tail'>) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      // The SIGKILL stays due when the group was told to stop: a hook that ignores SIGTERM is still ended.
      if (!timedOut) for (const t of later) clearTimeout(t);
      child.stdout.destroy();
      child.stderr.destroy();
      const seconds = (Date.now() - started) / 1000;
      if (!outcome.ok) log.error(`${label}: ${point} hook failed: ${outcome.failure}`);
      else log.debug(`${label}: ${point} hook done in ${seconds.toFixed(1)}s`);
      resolve({ ...outcome, tail, seconds });
    };
    const ended = (code: number | null, signal: NodeJS.Signals | null) => {
      if (timedOut) finish({ ok: false, failure: `timed out after ${hook.timeout} s (killed)` });
      else if (code === 0) finish({ ok: true });
      else finish({ ok: false, failure: code !== null ? `exit ${code}` : `killed by ${signal}` });
    };
    child.on('error', (e) => finish({ ok: false, failure: `could not start ${file}: ${(e as NodeJS.ErrnoException).code ?? e.message}` }));
    child.on('close', ended);
    // The hook itself has ended but something it left behind keeps its output open: read on briefly, then go on.
    child.on('exit', (code, signal) => later.push(setTimeout(() => ended(code, signal), 2000)));
  });
}

/** "preSnapshot hook failed: exit 3 (last output: …)". */
export function describeFailure(point: HookPoint, o: HookOutcome): string {
  const last = o.tail.length > 0 ? ` (last output: ${o.tail.join(' | ')})` : '';
  return `${point} hook failed: ${o.failure ?? 'unknown'}${last}`;
}
