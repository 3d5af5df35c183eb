// The replication lifecycle for one job: connect → probe → inventory → plan → replicate → verify → protect base.
// Every dataset is reported; one dataset's failure never stops the others.
import { trace } from '../util/trace.js';
import { throwIfInterrupted, unlessInterrupted } from './interrupt.js';
import { crossingOf, untrusted } from './encryption.js';
import type { Config, JobConfig } from '../config/schema.js';
import { HozoError } from '../errors.js';
import { planJob } from '../planner/plan.js';
import type { DatasetPlan, DatasetSpec, Policy } from '../planner/types.js';
import { describeLimit, jobBandwidth } from '../pipeline/bandwidth.js';
import { formatBytes, type Logger } from '../util/log.js';
import type { Inventory } from '../zfs/types.js';
import type { JobHosts } from './open.js';
import { acquireJobLock } from './lock.js';
import { DEFAULT_SCRUB_WARN_AFTER, judgePools } from './pool-health.js';
import { hostNamed } from '../config/lookup.js';
import { hostReportOf } from './lifecycle.js';
import { closeReport, failedResult, startReport, toErrorInfo, type JobReport, type PoolReport } from './report.js';
import { poolOf } from '../zfs/names.js';
import { remembered, type JobState } from '../state/state.js';
import type { EarlyConnection } from './early.js';
import { describeFailure, runHook } from './hooks.js';
import { pruneOwnSnapshots, takeOwnSnapshots, type SnapshotStep } from './snapshot-step.js';
import { ownSnapshotName, snapshotCommands, snapshotPrefixOf, snapshotSets } from './snapshots.js';
import { expandDatasets } from '../planner/expand.js';
import { openWindow, windowOrder, type Window } from './window.js';
import { estimatePlan, initialReport, replicate, transferOptions, type TransferSettings } from './replicate.js';
import { entryResult, isResume, mergeFollowUp, resumedAndSent, retryable, staleResumes } from './decide.js';
import { newestCreation, verifyAndProtect } from './protect.js';
import { realEnds, type RunEnds } from './ends.js';

export type { LocalZfs, RunEnds } from './ends.js';

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
  /** The ends the job works with (default: realEnds). The driver's tests pass fakes. */
  readonly ends?: RunEnds;
}

export function jobSpecs(job: JobConfig): DatasetSpec[] {
  return job.datasets.map((d) => ({ source: d.source, target: d.target, recursive: d.recursive, exclude: d.exclude }));
}

export async function runJob(config: Config, job: JobConfig, opts: RunOptions): Promise<JobReport> {
  const { log } = opts;
  const ends = opts.ends ?? realEnds;
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
      if (!o.ok)
        throw new HozoError('HOOK_FAILED', `job ${job.name}: ${describeFailure('preRun', o)}; nothing was done`, {
          hint: "the hook's output is in the log above",
        });
    }
    if (mode === 'run' && job.snapshot?.create === true) {
      // Before the box is woken: the backup's point in time is when the run started, not when the box answered.
      const local = await ends.local(
        config,
        specs.map((s) => s.source),
      );
      snap = await takeOwnSnapshots(job, local.runner, local.caps, local.inventory, log);
      report.warnings.push(...snap.warnings);
      report.ownSnapshot = { name: snap.name, datasets: snap.taken.length, atomic: snap.atomic, taken: true, pruned: 0 };
    }
    throwIfInterrupted(opts.signal);
    hosts = await ends.open(config, job, log, {
      // Only a real run wakes a sleeping box by itself; plan and run --dry-run change nothing unless asked (--wake).
      wake: mode === 'run' || opts.wake === true,
      sourceRoots: specs.map((s) => s.source),
      ...(opts.early !== undefined ? { early: opts.early } : {}),
      ...(opts.signal !== undefined ? { signal: opts.signal } : {}),
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
      const { atomic } = snapshotCommands(
        sets,
        job.datasets.map((d) => d.recursive && d.exclude.length === 0),
        name,
        source.caps,
      );
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
      for (const [i, p] of plans.entries())
        if (!refuse(i)) report.datasets[i]!.result = p.action === 'send' ? 'planned' : p.action === 'conflict' ? 'conflict' : 'up-to-date';
      return report;
    }

    // Each dataset entry's preRun, before any transfer: failing, that entry's datasets fail, the others go on.
    for (const [e, d] of job.datasets.entries()) {
      if (d.hooks?.preRun === undefined) continue;
      const o = await runHook('preRun', d.hooks.preRun, { ...hookEnv, HOZO_DATASET: d.source }, log, d.source);
      if (!o.ok)
        entryFailure.set(
          e,
          toErrorInfo(
            new HozoError('HOOK_FAILED', `${d.source}: ${describeFailure('preRun', o)}; not sent`, { hint: "the hook's output is in the log above" }),
          ),
        );
    }

    // Replicate; datasets whose transfer failed are re-planned from fresh listings and retried.
    let pending = plans.map((_, i) => i).filter((i) => !refuse(i));
    // The wake window: estimates, order, admission, and the cut at its end (src/job/window.ts).
    if (job.window !== undefined) {
      window = openWindow(job.window.maxAwake, Date.parse(report.startedAt), limit?.bytesPerSecond, Date.now, hosts.session?.requestSeconds);
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
            if (
              policy.resume !== true &&
              d.estimatedBytes !== undefined &&
              rate !== undefined &&
              d.estimatedBytes / rate > (window.deadline - Date.parse(report.startedAt)) / 1000
            ) {
              report.warnings.push(
                `${p.source}: its stream (${formatBytes(d.estimatedBytes)}) takes longer than the whole wake window at ${formatBytes(rate)}/s, and ${target.name} cannot resume a cut receive: it will never be sent within the window (raise window.maxAwake)`,
              );
            }
            log.info(
              `${p.source}: deferred to the next wake (${parentDeferred ? 'its parent was' : d.estimatedBytes === undefined ? 'the window has closed' : `${formatBytes(d.estimatedBytes)} does not fit the ${Math.max(0, Math.round((window.deadline - Date.now()) / 1000))} s left`})`,
            );
            continue;
          }
          started++;
        }
        await replicate(p, d, srcInv, source, target, settingsFor(p), log, transferSignal, ends.stream);
        if (window !== undefined) {
          if (d.result === 'sent') window.measured(d.bytes ?? 0, d.seconds);
          if (d.error?.code === 'WINDOW_CLOSED' || (d.result === 'failed' && window.signal.aborted && opts.signal?.aborted !== true)) {
            d.result = 'deferred';
            delete d.error;
            log.warn(
              `${p.source}: cut at the end of the wake window${policy.resume === true ? '; the receive resumes there at the next wake' : '; sent again at the next wake'}`,
            );
          }
        }
      }
      throwIfInterrupted(opts.signal);
      // A resumed stream completes the snapshot it was carrying; the rest is planned from fresh listings now.
      const resumed = resumedAndSent(pending, plans, report.datasets);
      if (resumed.length > 0) {
        [srcInv, dstInv] = await Promise.all([source.inventory(specs.map((s) => s.source)), target.inventory(specs.map((s) => s.target))]);
        const next = planJob(specs, srcInv, dstInv, policy);
        for (const i of resumed) {
          const before = report.datasets[i]!;
          plans[i] = next[i]!;
          const d = (report.datasets[i] = initialReport(next[i]!));
          if (next[i]!.action === 'send' && !isResume(next[i]!))
            await replicate(next[i]!, d, srcInv, source, target, settingsFor(next[i]!), log, transferSignal, ends.stream);
          mergeFollowUp(before, d);
        }
      }
      // A resume the source refuses (stale token) would block the dataset for good: discard its partial state.
      for (const i of staleResumes(pending, plans, report.datasets)) {
        const d = report.datasets[i]!;
        try {
          await target.abortReceive(d.target);
          log.warn(`${d.target}: the interrupted receive could not be resumed; its partial state was discarded (zfs receive -A)`);
        } catch (e) {
          log.warn(`${d.target}: could not discard the partial receive: ${(e as Error).message}`);
        }
      }
      const retry = retryable(pending, report.datasets);
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
      const after = await target.listAndHealth(
        specs.map((s) => s.target),
        pools,
      );
      trace('job: verify listing done');
      dstInv = after.inventory;
      health = Promise.resolve(after.pools);
    } else {
      health = target.poolHealth(pools);
      health.catch(() => undefined);
    }
    for (const d of report.datasets) d.newestCreation = newestCreation(dstInv, d.target);
    await verifyAndProtect({
      source,
      job: job.name,
      untrusted: untrusted(config, job),
      srcInv,
      dstInv,
      plans,
      datasets: report.datasets,
      heldBefore: (ds) => remembered(opts.previous, ds)?.held,
      log,
      warnings: report.warnings,
    });
    trace('job: bases protected');
    for (const [e, d] of job.datasets.entries()) {
      if (d.hooks?.postRun === undefined) continue;
      const mine = report.datasets.filter((r) => entryOf.get(r.source) === e);
      const result = entryResult(mine);
      const o = await runHook('postRun', d.hooks.postRun, { ...hookEnv, HOZO_DATASET: d.source, HOZO_RESULT: result }, log, d.source);
      if (!o.ok) report.warnings.push(`${d.source}: ${describeFailure('postRun', o)}`);
    }
    report.targetPools = await health;
    // A backup on a pool that is not ONLINE or has errors is not one to rely on: the run fails (exit 1).
    const verdict = judgePools(report.targetPools, {
      now: Date.now() / 1000,
      scrubWarnAfter: hostNamed(config, job.host)?.scrubWarnAfter ?? DEFAULT_SCRUB_WARN_AFTER,
    });
    report.targetPools = verdict.pools;
    report.warnings.push(...verdict.warnings);
    for (const w of verdict.warnings) log.warn(w);
    if (verdict.failures.length > 0) {
      // Said once: as the run's error (printed at its end), or, when the run already has one, here.
      if (report.error !== undefined) for (const f of verdict.failures) log.error(f);
      report.result = 'failed';
      report.error ??= toErrorInfo(
        new HozoError('POOL_UNHEALTHY', verdict.failures.join('; '), {
          hint: `see \`zpool status ${report.targetPools.map((p) => p.name).join(' ')}\` on ${job.host}; ${
            report.datasets.some((d) => d.result === 'sent') ? 'the snapshots were received, but that pool may not keep them' : 'nothing was received this run'
          }`,
        }),
      );
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
    if (snap !== undefined && opts.signal?.aborted !== true) await pruneAfterRun(config, job, report, opts, ends, log);
    closeReport(report, hosts?.session !== undefined ? [hosts.session.report] : []);
    if (mode === 'run' && job.hooks?.postRun !== undefined && opts.signal?.aborted !== true) {
      const o = await runHook('postRun', job.hooks.postRun, { ...hookEnv, HOZO_RESULT: report.result }, log, `job ${job.name}`);
      if (!o.ok) report.warnings.push(`job ${job.name}: ${describeFailure('postRun', o)}`);
    }
    lock?.release();
  }
  return report;
}

async function pruneAfterRun(config: Config, job: JobConfig, report: JobReport, opts: RunOptions, ends: RunEnds, log: Logger): Promise<void> {
  try {
    const local = await ends.local(
      config,
      job.datasets.map((d) => d.source),
    );
    // This run's verified and held base is all the next incremental needs; a dataset that did not get that far
    // still needs the base it started from and the one the last run held.
    const keepAlso = (ds: string): ReadonlySet<string> => {
      const d = report.datasets.find((r) => r.source === ds);
      const names = d?.held !== undefined ? [d.held, d.newest] : [d?.base, d?.newest, remembered(opts.previous, ds)?.held];
      return new Set(names.filter((n): n is string => n !== undefined));
    };
    const n = await pruneOwnSnapshots(job, local.runner, local.inventory, keepAlso, log, report.warnings);
    if (report.ownSnapshot !== undefined) report.ownSnapshot.pruned = n;
  } catch (e) {
    const msg = `could not prune the job's own snapshots: ${(e as Error).message}`;
    report.warnings.push(msg);
    log.warn(msg);
  }
}

/** Which dataset entry (index into job.datasets) each source dataset of the listing belongs to (the first one). */
function entryIndex(job: JobConfig, inv: Inventory): Map<string, number> {
  const m = new Map<string, number>();
  job.datasets.forEach((d, i) => {
    for (const p of expandDatasets({ source: d.source, target: d.target, recursive: d.recursive, exclude: d.exclude }, inv))
      if (!m.has(p.source)) m.set(p.source, i);
  });
  return m;
}

const defaultSleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
