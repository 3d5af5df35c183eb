// The run's own-snapshot step (job `snapshot.create`), with its hooks: job preSnapshot → each entry's preSnapshot →
// one snapshot of every dataset whose hooks passed → each entry's postSnapshot → job postSnapshot. And, after the
// run, pruning the job's own snapshots beyond `keep`. Everything here runs on this machine (the source).
import type { JobConfig } from '../config/schema.js';
import { HozoError, isHozoError } from '../errors.js';
import type { Runner } from '../transport/runner.js';
import type { Logger } from '../util/log.js';
import { checkResult } from '../zfs/errors.js';
import type { Capabilities, Inventory } from '../zfs/types.js';
import { describeFailure, runHook, type Hook } from './hooks.js';
import { toErrorInfo, type ErrorInfo } from './report.js';
import { freshOwnSnapshotName, multiSnapshot, pruneCommands, pruneList, snapshotCommands, snapshotPrefixOf, snapshotSets } from './snapshots.js';

export interface SnapshotStep {
  /** The snapshot's short name (`hozo_nightly_20261204T215000Z`). */
  readonly name: string;
  /** Source datasets that got it. */
  readonly taken: string[];
  /** Dataset entries (index into job.datasets) that got no snapshot, and why: their datasets fail this run. */
  readonly failed: Map<number, ErrorInfo>;
  /** All in one transaction group (one point in time across the job). */
  readonly atomic: boolean;
  readonly warnings: string[];
}

export async function takeOwnSnapshots(
  job: JobConfig,
  runner: Runner,
  caps: Capabilities,
  inventory: Inventory,
  log: Logger,
  now = new Date(),
): Promise<SnapshotStep> {
  const sets = snapshotSets(job.datasets, inventory);
  const name = freshOwnSnapshotName(snapshotPrefixOf(job), now, inventory, sets.flat());
  const failed = new Map<number, ErrorInfo>();
  const warnings: string[] = [];
  const env = (extra: Record<string, string>) => ({ HOZO_JOB: job.name, HOZO_HOST: job.host, HOZO_SNAPSHOT: name, ...extra });
  const allDatasets = [...new Set(sets.flat())].join(' ');
  const hookFailed = (point: 'preSnapshot', where: string, o: Awaited<ReturnType<typeof runHook>>) =>
    toErrorInfo(
      new HozoError('HOOK_FAILED', `${where}: ${describeFailure(point, o)}; no snapshot taken`, {
        hint: "the hook's output is in the log above; fix it, or run it by hand to see why",
      }),
    );

  const jobPre = job.hooks?.preSnapshot;
  if (jobPre !== undefined) {
    const o = await runHook('preSnapshot', jobPre, env({ HOZO_DATASETS: allDatasets }), log, `job ${job.name}`);
    if (!o.ok) {
      const e = hookFailed('preSnapshot', `job ${job.name}`, o);
      for (const i of job.datasets.keys()) failed.set(i, e);
      return { name, taken: [], failed, atomic: true, warnings };
    }
  }
  // Entries whose own preSnapshot passed (or that have none): their postSnapshot runs whatever the snapshot does.
  const passed: number[] = [];
  for (const [i, d] of job.datasets.entries()) {
    const pre = d.hooks?.preSnapshot;
    if (pre !== undefined) {
      const o = await runHook('preSnapshot', pre, env({ HOZO_DATASET: d.source, HOZO_DATASETS: (sets[i] ?? []).join(' ') }), log, d.source);
      if (!o.ok) {
        failed.set(i, hookFailed('preSnapshot', d.source, o));
        continue;
      }
    }
    passed.push(i);
  }

  const chosen = job.datasets.map((_, i) => (passed.includes(i) ? sets[i]! : []));
  const whole = job.datasets.map((d) => d.recursive && d.exclude.length === 0);
  const { commands, atomic } = snapshotCommands(chosen, whole, name, caps);
  const taken: string[] = [];
  for (const argv of commands) {
    const covers = argv
      .slice(2)
      .filter((a) => a !== '-r')
      .map((a) => a.slice(0, a.indexOf('@')));
    try {
      checkResult(await runner.run(argv, { timeoutMs: 120_000 }), { action: `snapshot ${covers.join(', ')}`, host: runner.name, argv });
      // -r: the whole tree below got it.
      for (const c of covers) taken.push(...(argv.includes('-r') ? chosen.flat().filter((d) => d === c || d.startsWith(c + '/')) : [c]));
    } catch (e) {
      const info = toErrorInfo(
        isHozoError(e) ? new HozoError('SNAPSHOT_FAILED', `could not take @${name}: ${e.message}`, e.hint !== undefined ? { hint: e.hint } : {}) : e,
      );
      log.error(info.message);
      chosen.forEach((set, i) => {
        if (set.some((d) => covers.some((c) => d === c || (argv.includes('-r') && d.startsWith(c + '/'))))) failed.set(i, info);
      });
    }
  }
  if (commands.length > 0)
    log.info(`snapshot @${name} of ${taken.length} dataset(s)${atomic ? '' : ' (one by one: this ZFS cannot snapshot several trees at once)'}`);
  if (!atomic)
    warnings.push(`@${name} was taken dataset by dataset (${caps.implementation} has no multi-name zfs snapshot): not one point in time across the job`);

  const postEnv = (ok: boolean, extra: Record<string, string>) => env({ HOZO_SNAPSHOT_OK: ok ? '1' : '0', ...extra });
  for (const i of passed) {
    const d = job.datasets[i]!;
    const post = d.hooks?.postSnapshot;
    if (post === undefined) continue;
    const o = await runHook('postSnapshot', post, postEnv(!failed.has(i), { HOZO_DATASET: d.source, HOZO_DATASETS: (sets[i] ?? []).join(' ') }), log, d.source);
    if (!o.ok) warnings.push(`${d.source}: ${describeFailure('postSnapshot', o)}`);
  }
  const jobPost = job.hooks?.postSnapshot;
  if (jobPost !== undefined) {
    const o = await runHook('postSnapshot', jobPost, postEnv(failed.size === 0, { HOZO_DATASETS: allDatasets }), log, `job ${job.name}`);
    if (!o.ok) warnings.push(`job ${job.name}: ${describeFailure('postSnapshot', o)}`);
  }
  return { name, taken, failed, atomic, warnings };
}

/** Whether multi-name snapshots are possible here (for the plan's line). */
export { multiSnapshot };

/**
 * Destroys the job's own snapshots beyond `keep` on each dataset of `inventory` that the job covers. A snapshot
 * with a hold, or named in `keep` (bases), is never touched; ZFS itself refuses a held one ("dataset is busy"),
 * which is then skipped. Returns how many were destroyed; problems are warnings (a backup is not failed by them).
 */
export async function pruneOwnSnapshots(
  job: JobConfig,
  runner: Runner,
  inventory: Inventory,
  keepAlso: (dataset: string) => ReadonlySet<string>,
  log: Logger,
  warnings: string[],
): Promise<number> {
  const policy = { prefix: snapshotPrefixOf(job), keep: job.snapshot?.keep ?? 24 };
  const datasets = [...new Set(snapshotSets(job.datasets, inventory).flat())];
  let destroyed = 0;
  for (const ds of datasets) {
    const names = pruneList(inventory.get(ds)?.snapshots ?? [], policy, keepAlso(ds));
    for (const argv of pruneCommands(ds, names)) {
      try {
        checkResult(await runner.run(argv, { timeoutMs: 120_000 }), { action: `destroy ${argv[2]}`, host: runner.name, argv });
        destroyed++;
      } catch (e) {
        if (isHozoError(e, 'ZFS_DATASET_BUSY')) {
          log.debug(`${argv[2]}: held, kept`);
          continue;
        }
        const msg = `could not prune ${argv[2]}: ${(e as Error).message}`;
        warnings.push(msg);
        log.warn(msg);
        if (isHozoError(e, 'ZFS_PERMISSION')) break;
      }
    }
  }
  if (destroyed > 0) log.info(`pruned ${destroyed} of the job's own snapshot(s) beyond keep ${policy.keep}`);
  return destroyed;
}

export type { Hook };
