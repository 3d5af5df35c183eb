// SIGINT/SIGTERM during a run: the transfer is stopped (its pipeline killed through an AbortSignal), no further
// dataset starts, the run is recorded as failed ("interrupted by SIGTERM": state, metrics, notification), its lease
// released and the box put back to sleep if this run woke it — within a bounded grace time — and hozo exits 130/143.
// A second signal exits at once.
import { constants } from 'node:os';
import { HozoError } from '../errors.js';
import type { Logger } from '../util/log.js';

export interface Interrupt {
  readonly signal: AbortSignal;
  /** The first signal received, if any. */
  received(): NodeJS.Signals | undefined;
  /** 128 + the signal's number (130 for SIGINT, 143 for SIGTERM), or undefined. */
  exitCode(): number | undefined;
  dispose(): void;
}

/** How long the clean-up after a signal may take before hozo exits anyway. */
export const INTERRUPT_GRACE_MS = 120_000;

const signum = (s: NodeJS.Signals) => constants.signals[s] ?? 15;

export function onInterrupt(log: Logger, graceMs = INTERRUPT_GRACE_MS): Interrupt {
  const controller = new AbortController();
  let got: NodeJS.Signals | undefined;
  let timer: NodeJS.Timeout | undefined;
  const handler = (sig: NodeJS.Signals) => {
    if (got !== undefined) {
      log.error(`second ${sig}: exiting now`);
      process.exit(128 + signum(sig));
    }
    got = sig;
    log.warn(
      `interrupted by ${sig}: stopping the transfer, then recording the run and releasing the box (at most ${Math.round(graceMs / 1000)} s; ${sig} again exits at once)`,
    );
    controller.abort(interruptedError(sig));
    timer = setTimeout(() => {
      log.error(`clean-up after ${sig} took longer than ${Math.round(graceMs / 1000)} s: exiting`);
      process.exit(128 + signum(sig));
    }, graceMs).unref();
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
  return {
    signal: controller.signal,
    received: () => got,
    exitCode: () => (got === undefined ? undefined : 128 + signum(got)),
    dispose: () => {
      if (timer !== undefined) clearTimeout(timer);
      process.off('SIGINT', handler);
      process.off('SIGTERM', handler);
    },
  };
}

export function interruptedError(sig: NodeJS.Signals | string): HozoError {
  return new HozoError('INTERRUPTED', `interrupted by ${sig}`, {
    hint: 'the next run continues where this one stopped (a resumable receive keeps its partial state)',
  });
}

/** `p`, or the interruption as soon as `signal` aborts (a retry's wait must not hold a stopping run). */
export function unlessInterrupted<T>(p: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (signal === undefined) return p;
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason instanceof HozoError ? signal.reason : interruptedError('a signal'));
    if (signal.aborted) return onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => (signal.removeEventListener('abort', onAbort), resolve(v)),
      (e: unknown) => (signal.removeEventListener('abort', onAbort), reject(e)),
    );
  });
}

/** Throws the interruption if `signal` was aborted. */
export function throwIfInterrupted(signal: AbortSignal | undefined): void {
  if (signal?.aborted === true) throw signal.reason instanceof HozoError ? signal.reason : interruptedError('a signal');
}
