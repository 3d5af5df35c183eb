// A small child-process runner for the hot path (every zfs and ssh call): collects stdout/stderr as text and
// enforces a timeout. Plain node:child_process keeps hozo's start-up lean (see bench/).
import { spawn } from 'node:child_process';

export interface ExecResult {
  readonly stdout: string;
  readonly stderr: string;
  /** null when killed by a signal or never started. */
  readonly exitCode: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly timedOut: boolean;
  /** Set when the program could not be started (ENOENT, EACCES). */
  readonly spawnError?: Error;
}

export interface ExecOptions {
  readonly timeoutMs?: number;
  readonly env?: NodeJS.ProcessEnv;
}

export function exec(file: string, args: readonly string[], opts: ExecOptions = {}): Promise<ExecResult> {
  return new Promise((resolve) => {
    const child = spawn(file, args, { stdio: ['ignore', 'pipe', 'pipe'], ...(opts.env ? { env: opts.env } : {}) });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let timedOut = false;
    let spawnError: Error | undefined;
    const timer =
      opts.timeoutMs === undefined
        ? undefined
        : setTimeout(() => {
            timedOut = true;
            child.kill('SIGTERM');
            setTimeout(() => child.exitCode === null && child.kill('SIGKILL'), 2000).unref();
          }, opts.timeoutMs);
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    const finish = (exitCode: number | null, signal: NodeJS.Signals | null) => {
      if (timer) clearTimeout(timer);
      resolve({
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
        exitCode: spawnError ? null : exitCode,
        signal,
        timedOut,
        ...(spawnError ? { spawnError } : {}),
      });
    };
    child.on('error', (e) => {
      spawnError = e;
      if (child.pid === undefined) finish(null, null);
    });
    let done = false;
    const finishOnce = (code: number | null, signal: NodeJS.Signals | null) => {
      if (done) return;
      done = true;
      finish(code, signal);
    };
    child.on('close', (code, signal) => {
      if (child.pid !== undefined || spawnError === undefined) finishOnce(code, signal);
    });
    // A killed command's own children (a `sh -c` batch's `sleep`) can keep its pipes open: after a timeout, the
    // command's exit is enough.
    child.on('exit', (code, signal) => {
      if (!timedOut) return;
      setTimeout(() => {
        child.stdout.destroy();
        child.stderr.destroy();
        finishOnce(code, signal);
      }, 100).unref();
    });
  });
}
