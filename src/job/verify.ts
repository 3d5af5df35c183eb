// `hozo verify <job> [--restore-test]`: checks a job's backups without replicating. Per dataset: the newest common
// snapshot is on the box with the source's guid, the job's hold (or bookmark) protects that base on the source, and
// the box's pools are healthy. With --restore-test it also receives that snapshot back from the box into a scratch
// dataset here (the key loaded where the backup is raw), clones the source snapshot beside it, compares the two
// trees file by file (all files, or a seeded sample), and destroys the scratch datasets whatever happens — a backup
// you have restored.
import { cloneArgv, createArgv, destroyTreeArgv, getArgv, listNamesArgv, loadKeyArgv, mountArgv, setArgv } from '../zfs/dataset-argv.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Config, JobConfig } from '../config/schema.js';
import { hostNamed } from '../config/lookup.js';
import { HozoError, isHozoError } from '../errors.js';
import { jobBandwidth } from '../pipeline/bandwidth.js';
import { planDataset, planJob } from '../planner/plan.js';
import type { Base } from '../planner/types.js';
import type { Logger } from '../util/log.js';
import { holdsArgv } from '../zfs/argv.js';
import { poolOf } from '../zfs/names.js';
import type { Dataset, Inventory } from '../zfs/types.js';
import { isEncrypted } from './encryption.js';
import type { ZfsHost } from './endpoint.js';
import { openHosts, type JobHosts } from './open.js';
import { throwIfInterrupted } from './interrupt.js';
import { hostReportOf } from './lifecycle.js';
import type { HostReport } from './report.js';
import { acquireJobLock } from './lock.js';
import { DEFAULT_SCRUB_WARN_AFTER, judgePools } from './pool-health.js';
import { failedResult, toErrorInfo, type ErrorInfo, type PoolReport } from './report.js';
import { jobSpecs } from './run.js';
import { initialReport, replicate } from './replicate.js';
import { bookmarkName, holdTag } from './protect.js';
import { compareTrees, sample, type Mismatch } from './tree-compare.js';

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

export interface RestoreTest {
  result: 'ok' | 'mismatch' | 'failed' | 'skipped';
  /** Why skipped or failed. */
  reason?: string;
  entries?: number;
  filesChecked?: number;
  bytesChecked?: number;
  mismatches?: Mismatch[];
  truncated?: boolean;
  seconds?: number;
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

/** The scratch tree of a job's restore tests: `<pool>/hozo-verify-<job>`, marked with the user property below. */
export const scratchRoot = (pool: string, job: string) => `${pool}/hozo-verify-${job}`;
const MARK = 'hozo:verify';

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

async function zfsOk(host: ZfsHost, argv: string[], what: string): Promise<string> {
  const r = await host.runner.run(argv, { timeoutMs: 120_000 });
  if (r.exitCode !== 0) throw new HozoError('ZFS_UNKNOWN', `${what}: ${argv.join(' ')}: ${r.stderr.trim() || `exit ${r.exitCode}`}`);
  return r.stdout;
}

/** Creates the scratch root; one left by a killed verify (it carries our mark) is destroyed first. Refuses to touch
 *  a dataset of that name without the mark. */
async function prepareScratch(local: ZfsHost, root: string, job: string, log: Logger): Promise<void> {
  const r = await local.runner.run(getArgv([MARK], [root]), { timeoutMs: 60_000 });
  if (r.exitCode === 0) {
    if (r.stdout.trim() !== job) {
      throw new HozoError('VERIFY_FAILED', `${root} exists and was not made by hozo verify (no ${MARK}=${job}): not touching it`, {
        hint: 'rename or destroy it yourself; hozo uses that name for restore tests',
      });
    }
    log.warn(`${root}: left by an interrupted verify; destroying it first`);
    await unmountAll(local, root);
    await zfsOk(local, destroyTreeArgv(root), 'remove the old scratch datasets');
  }
  await zfsOk(local, createArgv(root, ['canmount=off', 'mountpoint=none', `${MARK}=${job}`]), 'create the scratch dataset');
}

/** mountpoint=none on every dataset below the scratch root (it unmounts them; destroy then finds nothing busy). */
async function unmountAll(local: ZfsHost, root: string): Promise<void> {
  const r = await local.runner.run(listNamesArgv(root, { type: 'filesystem', recursive: true }), { timeoutMs: 60_000 });
  for (const ds of r.stdout.split('\n').filter((n) => n.startsWith(root + '/'))) {
    await local.runner.run(setArgv(['mountpoint=none'], ds), { timeoutMs: 120_000 });
  }
}

async function destroyScratch(local: ZfsHost, root: string, log: Logger, warnings: string[]): Promise<void> {
  await unmountAll(local, root);
  for (const argv of [destroyTreeArgv(root), destroyTreeArgv(root, { force: true })]) {
    const r = await local.runner.run(argv, { timeoutMs: 300_000 });
    if (r.exitCode === 0 || /does not exist/.test(r.stderr)) {
      log.debug(`${root}: destroyed`);
      return;
    }
    log.debug(`${argv.join(' ')}: ${r.stderr.trim()}`);
  }
  const msg = `could not destroy the scratch datasets ${root}; the next verify does (or: zfs destroy -r ${root})`;
  warnings.push(msg);
  log.warn(msg);
}

async function restoreTest(
  config: Config,
  job: JobConfig,
  d: VerifyDataset,
  base: Base,
  srcInv: Inventory,
  dstInv: Inventory,
  local: ZfsHost,
  box: ZfsHost,
  root: string,
  k: number,
  opts: VerifyOptions,
): Promise<RestoreTest> {
  const started = Date.now();
  const src = srcInv.get(d.source);
  if (base.bookmark === true)
    return { result: 'skipped', reason: `@${base.name} was pruned on the source (only its bookmark is left): nothing to compare the backup with` };
  if (src?.type === 'volume') return { result: 'skipped', reason: 'a volume: its blocks are not compared (only file systems are)' };
  const onBox = dstInv.get(d.target);
  const i = onBox?.snapshots.findIndex((s) => s.guid === base.guid) ?? -1;
  if (onBox === undefined || i === -1) return { result: 'failed', reason: `@${base.name} is not on the box` };
  const raw = isEncrypted(onBox) || isEncrypted(src);
  const restored = `${root}/r${k}`;
  const clone = `${root}/s${k}`;
  const mnt = mkdtempSync(join(tmpdir(), 'hozo-verify-'));
  try {
    // The backup, back: a full stream of that one snapshot (raw when encrypted), received unmounted with the
    // protections a restore gets, then mounted read-only under a private directory.
    const plan = planDataset(
      { source: d.target, target: restored },
      { ...onBox, snapshots: [onBox.snapshots[i]!] },
      undefined,
      { snapshots: 'latest', rollback: false },
      { targetParentExists: true },
    );
    const rep = initialReport(plan);
    const limit = jobBandwidth(config, job);
    await replicate(
      plan,
      rep,
      new Map([[d.target, onBox]]),
      box,
      local,
      {
        compress: job.compress,
        buffer: job.buffer,
        bufferSize: job.bufferSize,
        force: false,
        unmounted: true,
        raw,
        ...(limit !== undefined ? { rateLimit: limit.limit } : {}),
      },
      opts.log,
      opts.signal,
    );
    if (rep.result !== 'sent')
      return { result: 'failed', reason: `receiving it back failed: ${rep.error?.message ?? rep.result}`, seconds: (Date.now() - started) / 1000 };
    if (raw) {
      const rootOf = src?.encryptionRoot ?? d.source;
      const loc = (await zfsOk(local, getArgv(['keylocation'], [rootOf]), 'read the key location')).trim();
      if (!loc.startsWith('file://'))
        return {
          result: 'skipped',
          reason: `the backup is raw-encrypted and the key of ${rootOf} is not in a file (keylocation=${loc}): it cannot be loaded unattended`,
          seconds: (Date.now() - started) / 1000,
        };
      await zfsOk(local, loadKeyArgv(restored, loc), 'load the key of the restored copy');
    }
    for (const p of ['readonly=on', 'exec=off', 'setuid=off', 'devices=off', `mountpoint=${join(mnt, 'backup')}`])
      await zfsOk(local, setArgv([p], restored), 'prepare the restored copy');
    await zfsOk(local, mountArgv(restored), 'mount the restored copy');
    await zfsOk(local, cloneArgv(`${d.source}@${base.name}`, clone, ['readonly=on', `mountpoint=${join(mnt, 'source')}`]), 'clone the source snapshot');
    const mounted = await local.runner.run(mountArgv(clone), { timeoutMs: 60_000 });
    if (mounted.exitCode !== 0 && !/already mounted/.test(mounted.stderr)) throw new HozoError('ZFS_UNKNOWN', `mount ${clone}: ${mounted.stderr.trim()}`);
    throwIfInterrupted(opts.signal);
    const c = await compareTrees(join(mnt, 'source'), join(mnt, 'backup'), {
      ...(opts.sampleFiles !== undefined ? { sampleFiles: opts.sampleFiles } : {}),
      seed: opts.seed,
    });
    return {
      result: c.mismatches.length === 0 ? 'ok' : 'mismatch',
      entries: c.entries,
      filesChecked: c.filesChecked,
      bytesChecked: c.bytesChecked,
      mismatches: c.mismatches,
      truncated: c.truncated,
      seconds: (Date.now() - started) / 1000,
    };
  } catch (e) {
    if (isHozoError(e, 'INTERRUPTED')) throw e;
    return { result: 'failed', reason: (e as Error).message, seconds: (Date.now() - started) / 1000 };
  } finally {
    // Unmount and destroy this pair now (the root goes at the end): a sampled run over many datasets holds one copy.
    // mountpoint=none unmounts first: zfs-fuse's destroy of a mounted dataset can say "busy" where this works.
    for (const ds of [clone, restored]) {
      await Promise.resolve()
        .then(() => local.runner.run(setArgv(['mountpoint=none'], ds), { timeoutMs: 120_000 }))
        .catch(() => undefined);
      await Promise.resolve()
        .then(() => local.runner.run(destroyTreeArgv(ds, { force: true }), { timeoutMs: 300_000 }))
        .catch(() => undefined);
    }
    rmSync(mnt, { recursive: true, force: true });
  }
}
