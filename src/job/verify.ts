// `hozo verify <job> [--restore-test]`: checks a job's backups without replicating. Per dataset: the newest common
// snapshot is on the box with the source's guid, the job's hold (or bookmark) protects that base on the source, and
// the box's pools are healthy. With --restore-test it also receives that snapshot back from the box into a scratch
// dataset here (the key loaded where the backup is raw), clones the source snapshot beside it, compares the two
// trees file by file (all files, or a seeded sample), and destroys the scratch datasets whatever happens — a backup
// you have restored.
import type { Config, JobConfig } from '../config/schema.js';
import { hostNamed } from '../config/lookup.js';
import { HozoError } from '../errors.js';
import { planJob } from '../planner/plan.js';
import type { Base } from '../planner/types.js';
import type { Logger } from '../util/log.js';
import { holdsArgv } from '../zfs/argv.js';
import { poolOf } from '../zfs/names.js';
import type { Dataset } from '../zfs/types.js';
import type { ZfsHost } from './endpoint.js';
import { openHosts, type JobHosts } from './open.js';
import { throwIfInterrupted } from './interrupt.js';
import { hostReportOf } from './lifecycle.js';
import type { HostReport } from './report.js';
import { acquireJobLock } from './lock.js';
import { DEFAULT_SCRUB_WARN_AFTER, judgePools } from './pool-health.js';
import { failedResult, toErrorInfo, type ErrorInfo, type PoolReport } from './report.js';
import { jobSpecs } from './run.js';
import { bookmarkName, holdTag } from './protect.js';
import { sample } from './tree-compare.js';
import { destroyScratch, prepareScratch, restoreTest, scratchRoot, type RestoreTest } from './restore-test.js';

export type { RestoreTest } from './restore-test.js';

export interface VerifyOptions {
  readonly restoreTest: boolean;
  /** Restore-test only this many datasets (a seeded sample); all when undefined. */
  readonly sampleDatasets?: number;
  /** Hash only this many files per dataset (a seeded sample); all when undefined. */
  readonly sampleFiles?: number;
  readonly seed: number;
  readonly log: Logger;
  readonly signal?: AbortSignal;
}

export interface VerifyDataset {
  readonly source: string;
  readonly target: string;
  result: 'ok' | 'failed';
  /** The newest snapshot both sides have (by guid), and its guid. */
  snapshot?: string;
  guid?: string;
  /** Source snapshots newer than it (not yet backed up: a warning, not a failure). */
  behind?: number;
  /** What keeps that base on the source: the job's hold, its bookmark. */
  protectedBy: ('hold' | 'bookmark')[];
  restoreTest?: RestoreTest;
  error?: ErrorInfo;
}

export interface VerifyReport {
  readonly version: 1;
  readonly kind: 'verify';
  readonly job: string;
  readonly host: string;
  readonly startedAt: string;
  finishedAt: string;
  seconds: number;
  result: 'ok' | 'failed' | 'unreachable' | 'error';
  readonly restoreTest: boolean;
  readonly seed: number;
  datasets: VerifyDataset[];
  targetPools: PoolReport[];
  hosts: HostReport[];
  warnings: string[];
  error?: ErrorInfo;
}

export async function verifyJob(config: Config, job: JobConfig, opts: VerifyOptions): Promise<VerifyReport> {
  const { log } = opts;
  const started = Date.now();
  const report: VerifyReport = {
    version: 1,
    kind: 'verify',
    job: job.name,
    host: job.host,
    startedAt: new Date(started).toISOString(),
    finishedAt: '',
    seconds: 0,
    result: 'ok',
    restoreTest: opts.restoreTest,
    seed: opts.seed,
    datasets: [],
    targetPools: [],
    hosts: [],
    warnings: [],
  };
  // A verify and a run (or restore) of the same job must not interleave.
  const lock = acquireJobLock(config.stateDirectory, job.name);
  let hosts: JobHosts | undefined;
  try {
    const specs = jobSpecs(job);
    hosts = await openHosts(config, job, log, { wake: true, sourceRoots: specs.map((s) => s.source) });
    const { source, target } = hosts;
    report.warnings.push(...source.warnings, ...target.warnings);
    const [srcInv, dstInv] = await Promise.all([
      hosts.sourceInventory ?? source.inventory(specs.map((s) => s.source)),
      hosts.targetInventory ?? target.inventory(specs.map((s) => s.target)),
    ]);
    const plans = planJob(specs, srcInv, dstInv, { snapshots: job.snapshots, rollback: false, resume: false });
    const bases = new Map<VerifyDataset, Base>();
    for (const p of plans) {
      const d: VerifyDataset = { source: p.source, target: p.target, result: 'ok', protectedBy: [] };
      report.datasets.push(d);
      const base = p.action === 'send' || p.action === 'up-to-date' ? p.base : undefined;
      if (base === undefined) {
        d.result = 'failed';
        const why = p.action === 'conflict' ? p.conflict.message : `${p.target} has no backup of ${p.source} yet`;
        d.error = toErrorInfo(new HozoError('VERIFY_FAILED', why, { hint: p.action === 'conflict' ? p.conflict.hint : `run \`hozo run ${job.name}\`` }));
        continue;
      }
      d.snapshot = base.name;
      d.guid = base.guid;
      bases.set(d, base);
      const src = srcInv.get(p.source)?.snapshots ?? [];
      d.behind = src.filter((s) => s.createtxg > base.createtxg).length;
      if (d.behind > 0) report.warnings.push(`${p.source}: ${d.behind} snapshot(s) newer than @${base.name} are not on the box yet`);
      d.protectedBy = await protection(source, job.name, srcInv.get(p.source), base);
      if (d.protectedBy.length === 0) {
        d.result = 'failed';
        d.error = toErrorInfo(
          new HozoError(
            'VERIFY_FAILED',
            `${p.source}@${base.name}, the base of the next incremental, carries neither the hold ${holdTag(job.name)} nor the bookmark #${bookmarkName(job.name, base.name)}: pruning may destroy it`,
            {
              hint: `the next \`hozo run ${job.name}\` protects it again`,
            },
          ),
        );
      }
    }
    const pools = [...new Set(specs.map((s) => poolOf(s.target)))];
    const verdict = judgePools(await target.poolHealth(pools), {
      now: Date.now() / 1000,
      scrubWarnAfter: hostNamed(config, job.host)?.scrubWarnAfter ?? DEFAULT_SCRUB_WARN_AFTER,
    });
    report.targetPools = verdict.pools;
    report.warnings.push(...verdict.warnings);
    for (const w of verdict.warnings) log.warn(w);
    if (verdict.failures.length > 0) {
      for (const f of verdict.failures) log.error(f);
      report.error = toErrorInfo(new HozoError('POOL_UNHEALTHY', verdict.failures.join('; '), { hint: `see \`zpool status\` on ${job.host}` }));
    }
    for (const d of report.datasets) {
      if (d.result === 'ok')
        log.info(`${d.source}: @${d.snapshot} on ${target.name}:${d.target} (guid ${d.guid}), protected by ${d.protectedBy.join(' and ')}`);
      else log.error(`${d.source}: ${d.error?.message}`);
    }

    if (opts.restoreTest) {
      const candidates = report.datasets.filter((d) => bases.has(d));
      const chosen = new Set(sample(candidates, opts.sampleDatasets, opts.seed));
      for (const d of candidates) if (!chosen.has(d)) d.restoreTest = { result: 'skipped', reason: "not in this run's sample (--datasets)" };
      const roots = new Set<string>();
      try {
        for (const d of candidates.filter((x) => chosen.has(x))) {
          throwIfInterrupted(opts.signal);
          const root = scratchRoot(poolOf(d.source), job.name);
          if (!roots.has(root)) {
            await prepareScratch(source, root, job.name, log);
            roots.add(root);
          }
          d.restoreTest = await restoreTest(
            config,
            job,
            d,
            bases.get(d)!,
            srcInv,
            dstInv,
            source,
            target,
            root,
            roots.size * 1000 + report.datasets.indexOf(d),
            opts,
          );
          if (d.restoreTest.result === 'mismatch' || d.restoreTest.result === 'failed') {
            d.result = 'failed';
            const first = d.restoreTest.mismatches
              ?.slice(0, 3)
              .map((m) => `${m.path}: ${m.problem}`)
              .join('; ');
            d.error ??= toErrorInfo(
              new HozoError(
                'VERIFY_FAILED',
                d.restoreTest.result === 'mismatch'
                  ? `${d.target}@${d.snapshot} restored from ${target.name} differs from ${d.source}@${d.snapshot}: ${d.restoreTest.mismatches?.length}${d.restoreTest.truncated ? '+' : ''} path(s), e.g. ${first}`
                  : `the restore test of ${d.target}@${d.snapshot} failed: ${d.restoreTest.reason}`,
                { hint: "the box's copy cannot be trusted: see `zpool status` there, and send the dataset anew to another target" },
              ),
            );
            log.error(d.error.message);
          } else if (d.restoreTest.result === 'ok') {
            log.info(
              `${d.source}: restore test ok — ${d.restoreTest.filesChecked} file(s), ${d.restoreTest.bytesChecked} bytes compared (${d.restoreTest.entries} paths) in ${d.restoreTest.seconds?.toFixed(1)}s`,
            );
          } else log.warn(`${d.source}: restore test skipped: ${d.restoreTest.reason}`);
        }
      } finally {
        for (const root of roots) await destroyScratch(source, root, log, report.warnings);
      }
    }
  } catch (e) {
    report.error = toErrorInfo(e);
    report.result = failedResult(e);
    const failedHost = hostReportOf(e);
    if (failedHost !== undefined) report.hosts.push(failedHost);
  } finally {
    await hosts?.close();
    lock.release();
    if (hosts?.session !== undefined) report.hosts.push(hosts.session.report);
    report.finishedAt = new Date().toISOString();
    report.seconds = (Date.now() - started) / 1000;
    if (report.result === 'ok' && (report.error !== undefined || report.datasets.some((d) => d.result === 'failed'))) report.result = 'failed';
  }
  return report;
}

/** The job's hold on the base (`zfs holds`; zfs-fuse, whose `holds` needs a missing helper: any hold) and bookmark. */
async function protection(source: ZfsHost, job: string, ds: Dataset | undefined, base: Base): Promise<('hold' | 'bookmark')[]> {
  const out: ('hold' | 'bookmark')[] = [];
  if (!base.bookmark) {
    const r = await source.runner.run(holdsArgv(`${ds?.name}@${base.name}`), { timeoutMs: 60_000 });
    const snap = ds?.snapshots.find((s) => s.name === base.name);
    if (r.exitCode === 0 ? r.stdout.split('\n').some((l) => l.split('\t')[1] === holdTag(job)) : (snap?.userrefs ?? 0) > 0) out.push('hold');
  }
  if (
    (ds?.bookmarks ?? []).some((b) => b.name === bookmarkName(job, base.name) && b.guid === base.guid) ||
    (base.bookmark === true && base.name.startsWith(bookmarkName(job, '')))
  )
    out.push('bookmark');
  return out;
}
