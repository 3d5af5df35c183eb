// One dataset's plan carried out: the transfer pipeline (send | compress | buffer | ssh | receive), its retries,
// resuming from a token and discarding an unusable one; the dataset's report records the outcome.
import { trace } from '../util/trace.js';
import type { JobConfig } from '../config/schema.js';
import type { DatasetPlan, Policy } from '../planner/types.js';
import { PipelineError, blameStage, runPipeline } from '../pipeline/pipeline.js';
import { buildTransfer } from '../pipeline/transfer.js';
import { progressReporter } from '../pipeline/progress.js';
import { formatBytes, type Logger } from '../util/log.js';
import type { Inventory } from '../zfs/types.js';
import { definitiveStageError } from '../zfs/errors.js';
import { describePlan, snapshotsOf } from './describe.js';
import type { ReceiveSetup, ZfsHost } from './endpoint.js';
import type { Step } from '../planner/types.js';
import { toErrorInfo, type DatasetReport } from './report.js';
import { getArgv } from '../zfs/dataset-argv.js';

export function initialReport(p: DatasetPlan): DatasetReport {
  return {
    source: p.source,
    target: p.target,
    result: p.action === 'up-to-date' ? 'up-to-date' : p.action === 'conflict' ? 'conflict' : 'planned',
    ...(p.action !== 'conflict' && p.base !== undefined ? { base: p.base.name } : {}),
    ...(p.action === 'up-to-date' ? { newest: p.base.name } : {}),
    snapshotsSent: [],
    seconds: 0,
    verified: false,
    plan: describePlan(p),
    ...(p.action === 'conflict'
      ? { error: { code: `CONFLICT_${p.conflict.kind.toUpperCase().replace(/-/g, '_')}`, message: p.conflict.message, hint: p.conflict.hint } }
      : {}),
  };
}

export interface TransferSettings {
  readonly compress: JobConfig['compress'];
  /** pv -L for the local pv stage (bandwidthLimit), e.g. "20M". */
  readonly rateLimit?: string;
  readonly buffer: JobConfig['buffer'];
  readonly bufferSize: JobConfig['bufferSize'];
  /** `zfs receive -F`: only when the user allowed rollback. */
  readonly force: boolean;
  /** `zfs receive -u`: backups stay unmounted; restores mount. */
  readonly unmounted: boolean;
  /** `zfs receive -s`: an interruption leaves a resume token (both ends can resume). */
  readonly resumable?: boolean;
  /** `zfs send -w`: the encrypted blocks as stored (to an untrusted host; restores of raw backups). */
  readonly raw?: boolean;
}

export function transferOptions(job: JobConfig, p: DatasetPlan, policy: Policy): TransferSettings {
  const rolledBack = p.action === 'send' && p.rollbackTo !== undefined;
  return {
    compress: job.compress,
    buffer: job.buffer,
    bufferSize: job.bufferSize,
    force: job.rollback || rolledBack,
    unmounted: true,
    resumable: policy.resume === true,
  };
}

/** Runs one dataset's plan from `source` (sender) to `target` (receiver); records the outcome in `d`. */
export async function replicate(
  p: DatasetPlan,
  d: DatasetReport,
  srcInv: Inventory,
  source: ZfsHost,
  target: ZfsHost,
  settings: TransferSettings,
  log: Logger,
  signal?: AbortSignal,
  stream: StreamStep = streamStep,
): Promise<void> {
  if (p.action !== 'send') return;
  const started = Date.now();
  const srcSnaps = srcInv.get(p.source)?.snapshots ?? [];
  try {
    if (p.rollbackTo !== undefined) {
      log.warn(`${p.target}: rolling back to @${p.rollbackTo.name} (rollback: true), destroying newer target snapshots`);
      await target.rollback(`${p.target}@${p.rollbackTo.name}`);
    }
    let bytes = 0;
    for (const step of p.steps) {
      const setup: ReceiveSetup = {
        force: settings.force && step.kind === 'incremental',
        unmounted: settings.unmounted,
        ...(step === p.steps[0] && p.createParent !== undefined ? { createParent: p.createParent } : {}),
        // A resumed full receive (no common base) still needs the canmount=noauto its first attempt never set.
        keepUnmounted: (step.kind === 'full' || (step.kind === 'resume' && p.base === undefined)) && settings.unmounted,
        resumable: settings.resumable === true,
        volume: srcInv.get(p.source)?.type === 'volume',
      };
      bytes += await stream({ plan: p, step, setup, srcInv, source, target, settings, log, ...(signal !== undefined ? { signal } : {}) });
    }
    d.bytes = bytes;
    d.snapshotsSent = snapshotsOf(p, srcSnaps);
    const last = p.steps[p.steps.length - 1]!;
    // A resumed stream's snapshot is inside its token; the re-plan after it names the newest.
    const newest = last.kind === 'full' ? last.snapshot.name : last.kind === 'incremental' ? last.to.name : undefined;
    if (newest !== undefined) d.newest = newest;
    d.result = 'sent';
    d.seconds = (Date.now() - started) / 1000;
    log.info(`${p.source}: ${d.snapshotsSent.length} snapshot(s), ${formatBytes(bytes)} in ${d.seconds.toFixed(1)}s`);
  } catch (e) {
    d.result = 'failed';
    d.seconds = (Date.now() - started) / 1000;
    d.error = toErrorInfo(e);
    log.error(`${p.source} → ${p.target}: ${d.error.message}${d.error.hint ? `\n  hint: ${d.error.hint}` : ''}`);
  }
}

/** One step of a plan on the wire, as replicate() hands it over. */
export interface StreamRequest {
  readonly plan: DatasetPlan & { readonly action: 'send' };
  readonly step: Step;
  readonly setup: ReceiveSetup;
  readonly srcInv: Inventory;
  readonly source: ZfsHost;
  readonly target: ZfsHost;
  readonly settings: TransferSettings;
  readonly log: Logger;
  readonly signal?: AbortSignal;
}

/** Streams one step from source to target; resolves to the bytes moved, throws a HozoError (PIPELINE_FAILED or a
 *  definitive zfs error) when the stream fails. The driver's tests pass a fake (tests/unit/run-driver.test.ts). */
export type StreamStep = (r: StreamRequest) => Promise<number>;

/** The real stream: send | compress | buffer | ssh | receive (src/pipeline/transfer.ts), progress from `send -nP`. */
export async function streamStep({ plan: p, step, setup, srcInv, source, target, settings, log, signal }: StreamRequest): Promise<number> {
  const transfer = buildTransfer({
    sendArgv: (wrap) => source.sendCommand(p.source, step, wrap, settings.raw === true),
    receiveArgv: (wrap) => target.receiveCommand(p.target, setup, wrap),
    senderWraps: source.wrapsItself,
    receiverWraps: target.wrapsItself,
    sender: source.runner,
    receiver: target.runner,
    senderCaps: source.caps,
    receiverCaps: target.caps,
    localCaps: source.runner.local ? source.caps : target.caps,
    compress: settings.compress,
    buffer: settings.buffer,
    bufferSize: settings.bufferSize,
    ...(settings.rateLimit !== undefined ? { rateLimit: settings.rateLimit } : {}),
  });
  for (const w of transfer.degraded) log.warn(w);
  let last = 0;
  // The size estimate (send -nP on the source) runs beside the stream, not before it.
  const report = progressReporter(
    log,
    p.source,
    source.estimate(p.source, step, settings.raw === true).catch(() => undefined),
  );
  try {
    trace(`${p.source}: pipeline starts`);
    let first = true;
    const r = await runPipeline(transfer.stages, {
      ...(transfer.counterStage !== undefined ? { counterStage: transfer.counterStage } : {}),
      ...(signal !== undefined ? { signal } : {}),
      onBytes: (n) => {
        if (first) trace(`${p.source}: first bytes counted`);
        first = false;
        last = n;
        report(n);
      },
    });
    trace(`${p.source}: pipeline done`);
    return r.bytes ?? last;
  } catch (e) {
    const pid = e instanceof PipelineError ? e.stages[0]?.pid : undefined;
    await source.releaseSendHolds(p.source, step, pid, srcInv);
    const culprit = e instanceof PipelineError ? blameStage(e.stages) : undefined;
    throw (culprit !== undefined && definitiveStageError(culprit.stderr, (e as Error).message, e)) || e;
  }
}

/**
 * The size of a plan's stream: the sum of `send -nP` over its steps where the source has it; else, for one full
 * step, the snapshot's `referenced`; else undefined (unknown: it is admitted while the window is open).
 */
export async function estimatePlan(source: ZfsHost, p: DatasetPlan, raw: boolean): Promise<number | undefined> {
  if (p.action !== 'send') return 0;
  let total = 0;
  for (const step of p.steps) {
    const e = await source.estimate(p.source, step, raw).catch(() => undefined);
    if (e === undefined) {
      if (p.steps.length !== 1 || step.kind !== 'full') return undefined;
      const r = await source.runner.run(getArgv(['referenced'], [`${p.source}@${step.snapshot.name}`], { parsable: true }), { timeoutMs: 60_000 });
      const n = Number(r.stdout.trim());
      return r.exitCode === 0 && Number.isFinite(n) && n >= 0 ? n : undefined;
    }
    total += e;
  }
  return total;
}
