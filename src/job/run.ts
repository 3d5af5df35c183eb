// The replication lifecycle for one job: connect → probe → inventory → plan → replicate → verify → protect base.
// Every dataset is reported; one dataset's failure never stops the others.
import { getArgv } from '../zfs/dataset-argv.js';
import { trace } from '../util/trace.js';
import { throwIfInterrupted, unlessInterrupted } from './interrupt.js';
import { crossingOf, isEncrypted, untrusted, verifyEncrypted } from './encryption.js';
import type { Config, JobConfig } from '../config/schema.js';
import { HozoError, isHozoError } from '../errors.js';
import { planJob } from '../planner/plan.js';
import type { DatasetPlan, DatasetSpec, Policy } from '../planner/types.js';
import { PipelineError, blameStage, runPipeline } from '../pipeline/pipeline.js';
import { buildTransfer } from '../pipeline/transfer.js';
import { describeLimit, jobBandwidth } from '../pipeline/bandwidth.js';
import { progressReporter } from '../pipeline/progress.js';
import { formatBytes, type Logger } from '../util/log.js';
import type { Inventory } from '../zfs/types.js';
import { definitiveStageError } from '../zfs/errors.js';
import { describePlan, snapshotsOf } from './describe.js';
import type { ZfsHost } from './endpoint.js';
import { openHosts, type JobHosts } from './open.js';
import { acquireJobLock } from './lock.js';
import { DEFAULT_SCRUB_WARN_AFTER, judgePools } from './pool-health.js';
import { hostNamed } from '../config/lookup.js';
import { hostReportOf } from './lifecycle.js';
import { closeReport, failedResult, startReport, toErrorInfo, type DatasetReport, type JobReport, type PoolReport } from './report.js';
import { poolOf } from '../zfs/names.js';
import { remembered, type JobState } from '../state/state.js';
import type { EarlyConnection } from './early.js';
import { describeFailure, runHook } from './hooks.js';
import { pruneOwnSnapshots, takeOwnSnapshots, type SnapshotStep } from './snapshot-step.js';
import { ownSnapshotName, snapshotCommands, snapshotPrefixOf, snapshotSets } from './snapshots.js';
import { LocalRunner } from '../transport/local.js';
import { CapabilityCache } from '../zfs/capability-cache.js';
import { hello } from '../zfs/hello.js';
import { listInventory } from '../zfs/inventory.js';
import { expandDatasets } from '../planner/expand.js';
import { openWindow, windowOrder, type Window } from './window.js';
import type { ZfsHost as Host } from './endpoint.js';

export interface RunOptions {
  readonly dryRun?: boolean;
  /** Plan only (for `hozo plan`): no lock, no transfer, no holds. */
  readonly planOnly?: boolean;
  /** With planOnly or dryRun: wake a sleeping box (they otherwise only look at an awake one). */
  readonly wake?: boolean;
  readonly log: Logger;
  /** The job's state from the previous run (which snapshots we hold), so a no-op run touches nothing. */
  readonly previous?: JobState;
  /** The box's connection, started by the CLI while hozo loaded (src/job/early.ts). The caller closes it. */
  readonly early?: EarlyConnection;
  /** Injected for tests: how long to wait between retries. */
  readonly sleep?: (ms: number) => Promise<void>;
  /** Aborted by SIGINT/SIGTERM (src/job/interrupt.ts): the transfer stops, nothing more starts, the box is released. */
  readonly signal?: AbortSignal;
}

export const holdTag = (job: string) => `hozo:${job}`;

export function jobSpecs(job: JobConfig): DatasetSpec[] {
  return job.datasets.map((d) => ({ source: d.source, target: d.target, recursive: d.recursive, exclude: d.exclude }));
}

export async function runJob(config: Config, job: JobConfig, opts: RunOptions): Promise<JobReport> {
  const { log } = opts;
  const mode = opts.planOnly === true ? 'plan' : opts.dryRun === true ? 'dry-run' : 'run';
  const report = startReport(job.name, job.host, mode !== 'run', Date.now(), mode);
  const lock = report.dryRun ? undefined : acquireJobLock(config.stateDirectory, job.name);
  let hosts: JobHosts | undefined;
  let snap: SnapshotStep | undefined;
  let window: Window | undefined;
  const hookEnv = { HOZO_JOB: job.name, HOZO_HOST: job.host };
  try {
    const specs = jobSpecs(job);
    // Hooks and own snapshots belong to real runs: plan and --dry-run change nothing (not even by a hook).
    if (mode === 'run' && job.hooks?.preRun !== undefined) {
      const o = await runHook('preRun', job.hooks.preRun, hookEnv, log, `job ${job.name}`);
      if (!o.ok) throw new HozoError('HOOK_FAILED', `job ${job.name}: ${describeFailure('preRun', o)}; nothing was done`, { hint: "the hook's output is in the log above" });
    }
    if (mode === 'run' && job.snapshot?.create === true) {
      // Before the box is woken: the backup's point in time is when the run started, not when the box answered.
      const local = new LocalRunner();
      const roots = specs.map((s) => s.source);
      const h = await hello(local, new CapabilityCache(config.stateDirectory), { endpoint: 'local', roots });
      snap = await takeOwnSnapshots(job, local, h.caps, await (h.inventory ?? listInventory(local, [...new Set(roots)], h.caps)), log);
      report.warnings.push(...snap.warnings);
      report.ownSnapshot = { name: snap.name, datasets: snap.taken.length, atomic: snap.atomic, taken: true, pruned: 0 };
    }
    throwIfInterrupted(opts.signal);
    hosts = await openHosts(config, job, log, {
      // Only a real run wakes a sleeping box by itself; plan and run --dry-run change nothing unless asked (--wake).
      wake: mode === 'run' || opts.wake === true,
      sourceRoots: specs.map((s) => s.source),
      ...(opts.early !== undefined ? { early: opts.early } : {}),
    });
    const { source, target } = hosts;
    trace('job: hosts open');
    report.warnings.push(...source.warnings, ...target.warnings);
    // Resumable receives where both ends can (OpenZFS: send -t, receive -s and the token property).
    const policy: Policy = { snapshots: job.snapshots, rollback: job.rollback, resume: source.caps.resumeTokens && target.caps.resumeTokens };

    const entryFailure = new Map<number, ReturnType<typeof toErrorInfo>>();
    let [srcInv, dstInv] = await Promise.all([
      hosts.sourceInventory ?? source.inventory(specs.map((s) => s.source)),
      hosts.targetInventory ?? target.inventory(specs.map((s) => s.target)),
    ]);
    trace('job: inventories');
    let plans = planJob(specs, srcInv, dstInv, policy);
    report.datasets = plans.map((p) => initialReport(p));
    if (mode !== 'run' && job.snapshot?.create === true) {
      const name = ownSnapshotName(snapshotPrefixOf(job), new Date());
      const sets = snapshotSets(job.datasets, srcInv);
      const { atomic } = snapshotCommands(sets, job.datasets.map((d) => d.recursive && d.exclude.length === 0), name, source.caps);
      report.ownSnapshot = { name, datasets: new Set(sets.flat()).size, atomic, taken: false, pruned: 0 };
      log.info(`a run takes snapshot @${name} of ${report.ownSnapshot.datasets} dataset(s) first (snapshot.create), then sends it too`);
    }
    const entryOf = entryIndex(job, srcInv);
    // A dataset whose own snapshot was not taken (its preSnapshot hook failed, or zfs snapshot did) fails this run.
    const snapFailure = (i: number) => {
      const e = entryOf.get(plans[i]!.source);
      return e === undefined ? undefined : snap?.failed.get(e);
    };
    // An untrusted box never sees plaintext: unencrypted datasets are refused before anything is sent.
    const refuse = (i: number): boolean => {
      const p = plans[i]!;
      const failure = snapFailure(i) ?? entryFailure.get(entryOf.get(p.source) ?? -1);
      if (failure !== undefined) {
        const d = report.datasets[i]!;
        d.result = 'failed';
        d.error = failure;
        return true;
      }
      const c = p.action === 'send' ? crossingOf(config, job, p, srcInv) : undefined;
      if (c?.refused === undefined) return false;
      const d = report.datasets[i]!;
      d.result = 'failed';
      d.error = toErrorInfo(c.refused);
      log.error(`${p.source}: ${c.refused.message}\n  hint: ${c.refused.hint ?? ''}`);
      return true;
    };
    const limit = jobBandwidth(config, job);
    if (limit !== undefined) {
      report.bandwidthLimit = { bytesPerSecond: limit.bytesPerSecond, from: limit.from };
      log.info(`bandwidth limit ${describeLimit(limit)}`);
    }
    const settingsFor = (p: DatasetPlan): TransferSettings => ({
      ...transferOptions(job, p, policy),
      raw: crossingOf(config, job, p, srcInv).raw === true,
      ...(limit !== undefined ? { rateLimit: limit.limit } : {}),
    });
    for (const d of report.datasets) log.info(`${d.source} → ${target.name}:${d.target}: ${d.plan}`);
    if (report.dryRun) {
      for (const [i, p] of plans.entries()) if (!refuse(i)) report.datasets[i]!.result = p.action === 'send' ? 'planned' : p.action === 'conflict' ? 'conflict' : 'up-to-date';
      return report;
    }

    // Each dataset entry's preRun, before any transfer: failing, that entry's datasets fail, the others go on.
    for (const [e, d] of job.datasets.entries()) {
      if (d.hooks?.preRun === undefined) continue;
      const o = await runHook('preRun', d.hooks.preRun, { ...hookEnv, HOZO_DATASET: d.source }, log, d.source);
      if (!o.ok) entryFailure.set(e, toErrorInfo(new HozoError('HOOK_FAILED', `${d.source}: ${describeFailure('preRun', o)}; not sent`, { hint: "the hook's output is in the log above" })));
    }

    // Replicate; datasets whose transfer failed are re-planned from fresh listings and retried.
    let pending = plans.map((_, i) => i).filter((i) => !refuse(i));
    // The wake window: estimates, order, admission, and the cut at its end (src/job/window.ts).
    if (job.window !== undefined) {
      window = openWindow(job.window.maxAwake, Date.parse(report.startedAt), limit?.bytesPerSecond);
      report.window = { maxAwake: job.window.maxAwake, deadline: new Date(window.deadline).toISOString(), backlogBytes: 0, backlogDatasets: 0, unknownSize: 0 };
    }
    const transferSignal = window === undefined ? opts.signal : opts.signal === undefined ? window.signal : AbortSignal.any([opts.signal, window.signal]);
    let started = 0;
    for (let attempt = 0; ; attempt++) {
      let order = pending;
      let waitsFor: (i: number) => number | undefined = () => undefined;
      if (window !== undefined) {
        const estimates = new Map<number, number | undefined>();
        for (const i of pending) {
          const p = plans[i]!;
          const e = p.action === 'send' ? await estimatePlan(source, p, settingsFor(p).raw === true) : undefined;
          estimates.set(i, e);
          if (e !== undefined) report.datasets[i]!.estimatedBytes = e;
        }
        ({ order, waitsFor } = windowOrder(pending, plans, srcInv, dstInv, estimates));
      }
      for (const i of order) {
        throwIfInterrupted(opts.signal);
        const p = plans[i]!;
        const d = report.datasets[i]!;
        if (window !== undefined && p.action === 'send') {
          const parent = waitsFor(i);
          const parentDeferred = parent !== undefined && report.datasets[parent]!.result === 'deferred';
          if (parentDeferred || !window.admits(d.estimatedBytes, { first: started === 0, resumable: policy.resume === true })) {
            d.result = 'deferred';
            const rate = window.rate();
            if (policy.resume !== true && d.estimatedBytes !== undefined && rate !== undefined && d.estimatedBytes / rate > (window.deadline - Date.parse(report.startedAt)) / 1000) {
              report.warnings.push(`${p.source}: its stream (${formatBytes(d.estimatedBytes)}) takes longer than the whole wake window at ${formatBytes(rate)}/s, and ${target.name} cannot resume a cut receive: it will never be sent within the window (raise window.maxAwake)`);
            }
            log.info(`${p.source}: deferred to the next wake (${parentDeferred ? 'its parent was' : d.estimatedBytes === undefined ? 'the window has closed' : `${formatBytes(d.estimatedBytes)} does not fit the ${Math.max(0, Math.round((window.deadline - Date.now()) / 1000))} s left`})`);
            continue;
          }
          started++;
        }
        await replicate(p, d, srcInv, source, target, settingsFor(p), log, transferSignal);
        if (window !== undefined) {
          if (d.result === 'sent') window.measured(d.bytes ?? 0, d.seconds);
          if (d.error?.code === 'WINDOW_CLOSED' || (d.result === 'failed' && window.signal.aborted && opts.signal?.aborted !== true)) {
            d.result = 'deferred';
            delete d.error;
            log.warn(`${p.source}: cut at the end of the wake window${policy.resume === true ? '; the receive resumes there at the next wake' : '; sent again at the next wake'}`);
          }
        }
      }
      throwIfInterrupted(opts.signal);
      // A resumed stream completes the snapshot it was carrying; the rest is planned from fresh listings now.
      const resumed = pending.filter((i) => isResume(plans[i]!) && report.datasets[i]!.result === 'sent');
      if (resumed.length > 0) {
        [srcInv, dstInv] = await Promise.all([source.inventory(specs.map((s) => s.source)), target.inventory(specs.map((s) => s.target))]);
        const next = planJob(specs, srcInv, dstInv, policy);
        for (const i of resumed) {
          const before = report.datasets[i]!;
          plans[i] = next[i]!;
          const d = (report.datasets[i] = initialReport(next[i]!));
          d.plan = `${before.plan}, then ${d.plan}`;
          if (next[i]!.action === 'send' && !isResume(next[i]!)) await replicate(next[i]!, d, srcInv, source, target, settingsFor(next[i]!), log, transferSignal);
          if (d.result === 'up-to-date') d.result = 'sent';
          d.bytes = (d.bytes ?? 0) + (before.bytes ?? 0);
          d.seconds += before.seconds;
        }
      }
      // A resume the source refuses (stale token: the snapshot it started from is gone) would block the dataset
      // for good: discard the partial state (never a snapshot) so the retry plans a normal send.
      for (const i of pending) {
        const d = report.datasets[i]!;
        if (!isResume(plans[i]!) || d.result !== 'failed' || !UNUSABLE_TOKEN.test(d.error?.message ?? '')) continue;
        try {
          await target.abortReceive(d.target);
          log.warn(`${d.target}: the interrupted receive could not be resumed; its partial state was discarded (zfs receive -A)`);
        } catch (e) {
          log.warn(`${d.target}: could not discard the partial receive: ${(e as Error).message}`);
        }
      }
      const retry = pending.filter((i) => report.datasets[i]!.result === 'failed' && report.datasets[i]!.error?.code === 'PIPELINE_FAILED');
      if (retry.length === 0 || attempt >= job.retries) break;
      log.warn(`retrying ${retry.length} dataset(s) in ${job.retryDelay}s (attempt ${attempt + 2} of ${job.retries + 1})`);
      await unlessInterrupted((opts.sleep ?? defaultSleep)(job.retryDelay * 1000), opts.signal);
      [srcInv, dstInv] = await Promise.all([source.inventory(specs.map((s) => s.source)), target.inventory(specs.map((s) => s.target))]);
      plans = planJob(specs, srcInv, dstInv, policy);
      for (const i of retry) report.datasets[i] = initialReport(plans[i]!);
      pending = retry.filter((i) => !refuse(i));
    }

    // Verify with one fresh listing of the target (only needed if something was received), taken with the target
    // pools' health in the same round trip; then protect each verified base on the source.
    const pools = [...new Set(specs.map((s) => poolOf(s.target)))];
    let health: Promise<PoolReport[]>;
    if (report.datasets.some((d) => d.result === 'sent' || d.result === 'failed')) {
      trace('job: verify listing…');
      const after = await target.listAndHealth(specs.map((s) => s.target), pools);
      trace('job: verify listing done');
      dstInv = after.inventory;
      health = Promise.resolve(after.pools);
    } else {
      health = target.poolHealth(pools);
      health.catch(() => undefined);
    }
    for (const d of report.datasets) d.newestCreation = newestCreation(dstInv, d.target);
    for (const [i, d] of report.datasets.entries()) {
      if (d.result !== 'sent' && d.result !== 'up-to-date') continue;
      verify(d, srcInv, dstInv);
      if (!d.verified) {
        d.result = 'failed';
        d.error = toErrorInfo(new HozoError('VERIFY_FAILED', `${d.target}: the newest source snapshot @${d.newest} (guid ${guidOf(srcInv, d.source, d.newest)}) is not on the target`, {
          hint: 'run `hozo plan` to see the state of both sides',
        }));
        log.error(`${d.source}: verification failed`);
        continue;
      }
      // A raw backup must still be encrypted the same way on the box, its key not loaded there.
      if (untrusted(config, job) && isEncrypted(srcInv.get(d.source))) {
        const wrong = verifyEncrypted(srcInv.get(d.source), dstInv.get(d.target));
        if (wrong !== undefined) {
          d.verified = false;
          d.result = 'failed';
          d.error = toErrorInfo(wrong);
          log.error(wrong.message);
          continue;
        }
      }
      await protectBase(source, job.name, srcInv, plans[i]!, d, remembered(opts.previous, d.source)?.held, log, report.warnings);
    }
    trace('job: bases protected');
    for (const [e, d] of job.datasets.entries()) {
      if (d.hooks?.postRun === undefined) continue;
      const mine = report.datasets.filter((r) => entryOf.get(r.source) === e);
      const result = mine.some((r) => r.result === 'failed' || r.result === 'conflict') ? 'failed' : mine.some((r) => r.result === 'sent') ? 'sent' : 'up-to-date';
      const o = await runHook('postRun', d.hooks.postRun, { ...hookEnv, HOZO_DATASET: d.source, HOZO_RESULT: result }, log, d.source);
      if (!o.ok) report.warnings.push(`${d.source}: ${describeFailure('postRun', o)}`);
    }
    report.targetPools = await health;
    // A backup on a pool that is not ONLINE or has errors is not one to rely on: the run fails (exit 1).
    const verdict = judgePools(report.targetPools, { now: Date.now() / 1000, scrubWarnAfter: hostNamed(config, job.host)?.scrubWarnAfter ?? DEFAULT_SCRUB_WARN_AFTER });
    report.targetPools = verdict.pools;
    report.warnings.push(...verdict.warnings);
    for (const w of verdict.warnings) log.warn(w);
    if (verdict.failures.length > 0) {
      for (const f of verdict.failures) log.error(f);
      report.result = 'failed';
      report.error ??= toErrorInfo(new HozoError('POOL_UNHEALTHY', verdict.failures.join('; '), {
        hint: `see \`zpool status ${report.targetPools.map((p) => p.name).join(' ')}\` on ${job.host}; the snapshots were received, but that pool may not keep them`,
      }));
    }
  } catch (e) {
    report.error = toErrorInfo(e);
    report.result = failedResult(e);
    // The box bringUp woke (and maybe powered off again) before it failed: still part of the run's record.
    const failedHost = hostReportOf(e);
    if (failedHost !== undefined) report.hosts.push(failedHost);
  } finally {
    window?.dispose();
    if (report.window !== undefined) {
      const deferred = report.datasets.filter((d) => d.result === 'deferred');
      report.window.backlogDatasets = deferred.length;
      report.window.backlogBytes = deferred.reduce((n, d) => n + (d.estimatedBytes ?? 0), 0);
      report.window.unknownSize = deferred.filter((d) => d.estimatedBytes === undefined).length;
      if (deferred.length > 0) {
        const msg = `wake window: ${deferred.length} dataset(s) (${formatBytes(report.window.backlogBytes)}${report.window.unknownSize > 0 ? ' and some of unknown size' : ''}) deferred to the next wake`;
        report.warnings.push(msg);
        log.warn(msg);
      }
    }
    trace('job: closing');
    await hosts?.close();
    trace('job: closed');
    // The job's own snapshots beyond keep, from a fresh listing (holds placed by this run included), also when the
    // box could not be reached: the held base and the newest `keep` stay.
    if (snap !== undefined && opts.signal?.aborted !== true) await pruneAfterRun(config, job, report, opts, log);
    closeReport(report, hosts?.session !== undefined ? [hosts.session.report] : []);
    if (mode === 'run' && job.hooks?.postRun !== undefined && opts.signal?.aborted !== true) {
      const o = await runHook('postRun', job.hooks.postRun, { ...hookEnv, HOZO_RESULT: report.result }, log, `job ${job.name}`);
      if (!o.ok) report.warnings.push(`job ${job.name}: ${describeFailure('postRun', o)}`);
    }
    lock?.release();
  }
  return report;
}

async function pruneAfterRun(config: Config, job: JobConfig, report: JobReport, opts: RunOptions, log: Logger): Promise<void> {
  try {
    const local = new LocalRunner();
    const caps = (await hello(local, new CapabilityCache(config.stateDirectory), { endpoint: 'local' })).caps;
    const inv = await listInventory(local, [...new Set(job.datasets.map((d) => d.source))], caps);
    // This run's verified and held base is all the next incremental needs; a dataset that did not get that far
    // still needs the base it started from and the one the last run held.
    const keepAlso = (ds: string): ReadonlySet<string> => {
      const d = report.datasets.find((r) => r.source === ds);
      const names = d?.held !== undefined ? [d.held, d.newest] : [d?.base, d?.newest, remembered(opts.previous, ds)?.held];
      return new Set(names.filter((n): n is string => n !== undefined));
    };
    const n = await pruneOwnSnapshots(job, local, inv, keepAlso, log, report.warnings);
    if (report.ownSnapshot !== undefined) report.ownSnapshot.pruned = n;
  } catch (e) {
    const msg = `could not prune the job's own snapshots: ${(e as Error).message}`;
    report.warnings.push(msg);
    log.warn(msg);
  }
}

/**
 * The size of a plan's stream: the sum of `send -nP` over its steps where the source has it; else, for one full
 * step, the snapshot's `referenced`; else undefined (unknown: it is admitted while the window is open).
 */
async function estimatePlan(source: Host, p: DatasetPlan, raw: boolean): Promise<number | undefined> {
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

/** Which dataset entry (index into job.datasets) each source dataset of the listing belongs to (the first one). */
function entryIndex(job: JobConfig, inv: Inventory): Map<string, number> {
  const m = new Map<string, number>();
  job.datasets.forEach((d, i) => {
    for (const p of expandDatasets({ source: d.source, target: d.target, recursive: d.recursive, exclude: d.exclude }, inv)) if (!m.has(p.source)) m.set(p.source, i);
  });
  return m;
}

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
    ...(p.action === 'conflict' ? { error: { code: `CONFLICT_${p.conflict.kind.toUpperCase().replace(/-/g, '_')}`, message: p.conflict.message, hint: p.conflict.hint } } : {}),
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

function transferOptions(job: JobConfig, p: DatasetPlan, policy: Policy): TransferSettings {
  const rolledBack = p.action === 'send' && p.rollbackTo !== undefined;
  return { compress: job.compress, buffer: job.buffer, bufferSize: job.bufferSize, force: job.rollback || rolledBack, unmounted: true, resumable: policy.resume === true };
}

const isResume = (p: DatasetPlan): boolean => p.action === 'send' && p.steps[0]?.kind === 'resume';

/** What OpenZFS says when a resume token cannot be used (see src/zfs/errors.ts, ZFS_RESUME_INVALID). */
const UNUSABLE_TOKEN = /resume token is corrupt|resume token does not match|cannot resume send|used in the initial send no longer exists|kind of stream|Resuming recv on existing/i;

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
      const setup = {
        force: settings.force && step.kind === 'incremental',
        unmounted: settings.unmounted,
        ...(step === p.steps[0] && p.createParent !== undefined ? { createParent: p.createParent } : {}),
        // A resumed full receive (no common base) still needs the canmount=noauto its first attempt never set.
        keepUnmounted: (step.kind === 'full' || (step.kind === 'resume' && p.base === undefined)) && settings.unmounted,
        resumable: settings.resumable === true,
        volume: srcInv.get(p.source)?.type === 'volume',
      };
      const transfer = buildTransfer({
        sendArgv: (wrap) => source.sendCommand(p.source, step, wrap, settings.raw === true),
        receiveArgv: (wrap) => target.receiveCommand(p.target, setup, wrap),
        senderWraps: source.wrapsItself,
        receiverWraps: target.wrapsItself,
        sender: source.runner,
        receiver: target.runner,
        senderCaps: source.caps,
        receiverCaps: target.caps,
        localCaps: source.runner.name === 'local' ? source.caps : target.caps,
        compress: settings.compress,
        buffer: settings.buffer,
        bufferSize: settings.bufferSize,
        ...(settings.rateLimit !== undefined ? { rateLimit: settings.rateLimit } : {}),
      });
      for (const w of transfer.degraded) log.warn(w);
      let last = 0;
      // The size estimate (send -nP on the source) runs beside the stream, not before it.
      const report = progressReporter(log, p.source, source.estimate(p.source, step, settings.raw === true).catch(() => undefined));
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
        bytes += r.bytes ?? last;
        trace(`${p.source}: pipeline done`);
      } catch (e) {
        const pid = e instanceof PipelineError ? e.stages[0]?.pid : undefined;
        await source.releaseSendHolds(p.source, step, pid, srcInv);
        const culprit = e instanceof PipelineError ? blameStage(e.stages) : undefined;
        throw (culprit !== undefined && definitiveStageError(culprit.stderr, (e as Error).message, e)) || e;
      }
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

/** The guid of snapshot `snap` of `ds`, or of the bookmark of that name (a plan whose common point is a bookmark). */
function guidOf(inv: Inventory, ds: string, snap: string | undefined): string | undefined {
  const d = inv.get(ds);
  return d?.snapshots.find((s) => s.name === snap)?.guid ?? d?.bookmarks?.find((b) => b.name === snap)?.guid;
}

/** The bookmark hozo keeps of a job's newest verified snapshot: `hozo:<job>:<snapshot>` (":" cannot occur in job
 *  names, so one job's prefix never matches another's bookmarks). */
export const bookmarkName = (job: string, snapshot: string) => `hozo:${job}:${snapshot}`;

export function verify(d: DatasetReport, srcInv: Inventory, dstInv: Inventory): void {
  const src = srcInv.get(d.source)?.snapshots ?? [];
  const newest = d.newest ?? src[src.length - 1]?.name;
  const guid = guidOf(srcInv, d.source, newest);
  const onTarget = new Set((dstInv.get(d.target)?.snapshots ?? []).map((s) => s.guid));
  d.verified = guid !== undefined && onTarget.has(guid);
}

function newestCreation(inv: Inventory, dataset: string): number | undefined {
  const snaps = inv.get(dataset)?.snapshots ?? [];
  return snaps.length === 0 ? undefined : Math.max(...snaps.map((s) => s.creation));
}

async function protectBase(
  source: ZfsHost,
  job: string,
  srcInv: Inventory,
  p: DatasetPlan,
  d: DatasetReport,
  heldBefore: string | undefined,
  log: Logger,
  warnings: string[],
): Promise<void> {
  if (d.newest === undefined) return;
  // The common point is a bookmark (the snapshot was pruned on the source) and nothing newer exists: nothing to hold.
  if (p.action === 'up-to-date' && p.base.bookmark) return;
  const tag = holdTag(job);
  const snaps = srcInv.get(d.source)?.snapshots ?? [];
  // The bookmark and the hold are independent: side by side (each is a zfs command that waits for a txg).
  // keepBookmark never throws (it warns).
  const bookmarked = keepBookmark(source, job, srcInv, d, log, warnings);
  try {
    // Already held by the previous run and still carrying a hold: nothing to do (keeps no-op runs to zero commands).
    const current = snaps.find((s) => s.name === d.newest);
    if (heldBefore === d.newest && current?.userrefs !== undefined && current.userrefs > 0) {
      d.held = d.newest;
      return;
    }
    await source.hold(tag, `${d.source}@${d.newest}`);
    d.held = d.newest;
    // Release the job's hold on older snapshots (the previous base); other tags are not ours to touch.
    // Without userrefs in the listing, the plan's base is the only snapshot this job can have held.
    const base = p.action === 'send' || p.action === 'up-to-date' ? p.base : undefined;
    const previous = snaps.filter((s) => s.name !== d.newest && (s.userrefs === undefined ? s.guid === base?.guid : s.userrefs > 0));
    for (const s of previous) await source.release(tag, `${d.source}@${s.name}`);
  } catch (e) {
    const msg = `${d.source}: could not hold @${d.newest} with tag ${tag}: ${(e as Error).message}`;
    warnings.push(msg);
    log.warn(msg);
  } finally {
    await bookmarked;
  }
}

/**
 * Where the source has bookmarks (OpenZFS): bookmark the newest verified snapshot and drop the job's older
 * bookmarks, so an incremental is still possible if the snapshot itself is pruned one day. Bookmarks of other jobs
 * and the user's own are never touched. Nothing happens when the bookmark is there already (no-op runs).
 */
export async function keepBookmark(source: ZfsHost, job: string, srcInv: Inventory, d: DatasetReport, log: Logger, warnings: string[]): Promise<void> {
  if (!source.caps.bookmarks || d.newest === undefined) return;
  const ds = srcInv.get(d.source);
  const newest = ds?.snapshots.find((s) => s.name === d.newest);
  if (ds === undefined || newest === undefined) return;
  const name = bookmarkName(job, newest.name);
  const prefix = bookmarkName(job, '');
  try {
    if (!(ds.bookmarks ?? []).some((b) => b.name === name && b.guid === newest.guid)) await source.bookmark(`${d.source}@${newest.name}`, `${d.source}#${name}`);
    for (const old of ds.bookmarks ?? []) {
      if (old.name === name || !old.name.startsWith(prefix)) continue;
      try {
        await source.destroyBookmark(`${d.source}#${old.name}`);
      } catch (e) {
        // A non-root user is not delegated `destroy` (it would reach the datasets too, see the NixOS module):
        // the old bookmarks then stay, which costs nothing but a line in `zfs list -t bookmark`.
        if (!isHozoError(e, 'ZFS_PERMISSION')) throw e;
        log.debug(`${d.source}: keeping the job's older bookmarks (no permission to destroy them)`);
        break;
      }
    }
  } catch (e) {
    const msg = `${d.source}: could not keep bookmark #${name}: ${(e as Error).message}`;
    warnings.push(msg);
    log.warn(msg);
  }
}

const defaultSleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
