// Restore: replicate from the box back to this machine with the same planner and pipeline, never overwriting an
// existing local dataset unless --force (and even then only along a common snapshot, never a blind full receive).
import { inheritArgv, mountArgv, setArgv } from '../zfs/dataset-argv.js';
import type { ZfsHost } from './endpoint.js';
import { isEncrypted } from './encryption.js';
import type { Config, JobConfig } from '../config/schema.js';
import { HozoError } from '../errors.js';
import { shownName, shownPath } from '../config/shown.js';
import { planDataset } from '../planner/plan.js';
import { targetFor } from '../planner/expand.js';
import { datasetNameProblem, parentOf, snapshotNameProblem } from '../zfs/names.js';
import type { Dataset } from '../zfs/types.js';
import type { Logger } from '../util/log.js';
import { openHosts } from './open.js';
import { acquireJobLock } from './lock.js';
import { closeReport, failedResult, startReport, toErrorInfo, type JobReport } from './report.js';
import { jobBandwidth } from '../pipeline/bandwidth.js';
import { initialReport, replicate } from './replicate.js';
import { verify } from './protect.js';

export interface RestoreOptions {
  /** The source dataset as configured (or a child of a recursive one). */
  readonly dataset: string;
  readonly snapshot?: string;
  /** Local dataset to restore into; default: the original source name. */
  readonly to?: string;
  readonly force: boolean;
  /** Mount the restored dataset afterwards (it is received unmounted, with the box-side protections). */
  readonly mount?: boolean;
  readonly log: Logger;
}

/** Where `dataset` lives on the box according to the job. */
/**
 * A freshly restored dataset is unmounted with mountpoint=none and setuid/exec/devices off (OpenZFS) or
 * canmount=noauto (zfs-fuse). --mount gives it its new parent's values (zfs inherit) and mounts it; otherwise the log
 * says how. A raw one needs its key first.
 */
async function afterRestore(local: ZfsHost, dest: string, raw: boolean, mount: boolean, log: Logger): Promise<void> {
  const steps = [...['mountpoint', 'setuid', 'exec', 'devices'].map((p) => inheritArgv(p, dest)), setArgv(['canmount=on'], dest), mountArgv(dest)];
  const how = `${raw ? `zfs load-key ${dest}, then ` : ''}${steps.map((a) => a.join(' ')).join('; ')}`;
  if (!mount || raw) {
    log.info(
      `${dest}: restored unmounted${raw ? ' and still encrypted (its key is not loaded here)' : ''}; to use it: ${how}${raw ? '' : ' (or restore with --mount)'}`,
    );
    return;
  }
  const protectedHere = local.caps.receiveFlags.has('o');
  for (const argv of protectedHere ? steps : steps.slice(-2)) {
    const r = await local.runner.run(argv, { timeoutMs: 120_000 });
    // `zfs set canmount=on` mounts it already where the mountpoint is inherited: a mount after that says so.
    if (r.exitCode !== 0 && !/already mounted/.test(r.stderr)) {
      throw new HozoError('ZFS_UNKNOWN', `${dest} was restored and verified, but \`${argv.join(' ')}\` failed: ${r.stderr.trim()}`, {
        hint: `mount it by hand: ${how}`,
      });
    }
  }
  log.info(`${dest}: mounted`);
}

export function remoteNameFor(job: JobConfig, dataset: string): string {
  for (const d of job.datasets) {
    const target = targetFor(d, dataset);
    if (target !== undefined) return target;
  }
  throw new HozoError('USAGE', `job ${shownName(job.name)} does not back up ${shownPath(dataset)}`, {
    hint: `datasets of this job: ${job.datasets.map((d) => d.source + (d.recursive ? ' (recursive)' : '')).join(', ')}`,
  });
}

function truncateTo(ds: Dataset, snapshot: string): Dataset {
  const i = ds.snapshots.findIndex((s) => s.name === snapshot);
  if (i === -1) {
    throw new HozoError('USAGE', `${shownPath(`${ds.name}@${snapshot}`)} does not exist on the box`, {
      hint: `snapshots there: ${
        ds.snapshots
          .slice(-5)
          .map((s) => '@' + s.name)
          .join(' ') || '(none)'
      }`,
    });
  }
  return { ...ds, snapshots: ds.snapshots.slice(0, i + 1) };
}

export async function restore(config: Config, job: JobConfig, opts: RestoreOptions): Promise<JobReport> {
  for (const [what, name] of [
    ['--dataset', opts.dataset],
    ['--to', opts.to],
  ] as const) {
    const problem = name === undefined ? undefined : datasetNameProblem(name);
    if (problem !== undefined) throw new HozoError('INVALID_DATASET_NAME', `${what}: not a valid ZFS dataset name: ${shownName(name!)} ${problem}`);
  }
  if (opts.snapshot !== undefined && snapshotNameProblem(opts.snapshot) !== undefined) {
    throw new HozoError('INVALID_DATASET_NAME', `--snapshot: not a valid snapshot name: ${shownName(opts.snapshot)} ${snapshotNameProblem(opts.snapshot)}`);
  }
  const remote = remoteNameFor(job, opts.dataset);
  const dest = opts.to ?? opts.dataset;
  const report = startReport(job.name, job.host, false);
  // A restore and a backup of the same job must not interleave.
  const lock = acquireJobLock(config.stateDirectory, job.name);
  let hosts: Awaited<ReturnType<typeof openHosts>> | undefined;
  try {
    hosts = await openHosts(config, job, opts.log);
    const box = hosts.target;
    const local = hosts.source;
    const [boxInv, localInv] = await Promise.all([box.inventory([remote]), local.inventory([dest])]);
    let from = boxInv.get(remote);
    if (from === undefined)
      throw new HozoError('ZFS_DATASET_NOT_FOUND', `${remote} does not exist on ${box.name}`, { hint: 'has the job run yet? see `hozo plan`' });
    if (opts.snapshot !== undefined) from = truncateTo(from, opts.snapshot);
    const existing = localInv.get(dest);
    if (existing !== undefined && !opts.force) {
      throw new HozoError('RESTORE_REFUSED', `${dest} already exists on this machine; refusing to overwrite it`, {
        hint: 'restore next to it with --to <new dataset>, or pass --force to roll it forward/back along a common snapshot',
      });
    }
    const plan = planDataset(
      { source: remote, target: dest },
      from,
      existing,
      { snapshots: 'all', rollback: opts.force },
      {
        targetParentExists: existing !== undefined || parentOf(dest) === undefined,
      },
    );
    const d = initialReport(plan);
    report.datasets.push(d);
    opts.log.info(`restore ${box.name}:${remote} → ${dest}: ${d.plan}`);
    const boxSnaps = new Map([[remote, from]]);
    // A raw (encrypted) backup comes back raw: the box has no key; `zfs load-key` here opens it. A new dataset is
    // received unmounted with the same protections as on a box (the box may be the compromised one: nothing it sends
    // mounts, runs setuid binaries or makes devices here), and mounted only with --mount. An existing one (--force)
    // is rolled along as it is.
    const raw = isEncrypted(boxSnaps.get(plan.source));
    const fresh = existing === undefined;
    // The link's limit holds for the way back too.
    const limit = jobBandwidth(config, job);
    if (limit !== undefined) report.bandwidthLimit = { bytesPerSecond: limit.bytesPerSecond, from: limit.from };
    const settings = {
      compress: job.compress,
      buffer: job.buffer,
      bufferSize: job.bufferSize,
      force: opts.force,
      unmounted: fresh || raw,
      raw,
      ...(limit !== undefined ? { rateLimit: limit.limit } : {}),
    };
    await replicate(plan, d, boxSnaps, box, local, settings, opts.log);
    if (d.result === 'sent' || d.result === 'up-to-date') {
      verify(d, boxSnaps, await local.inventory([dest]));
      if (!d.verified) {
        d.result = 'failed';
        d.error = toErrorInfo(new HozoError('VERIFY_FAILED', `${dest}: @${d.newest} did not arrive with the box's guid`));
      } else if (fresh) {
        await afterRestore(local, dest, raw, opts.mount === true, opts.log);
      }
    }
  } catch (e) {
    report.error = toErrorInfo(e);
    report.result = failedResult(e);
    if (e instanceof HozoError && (e.code === 'RESTORE_REFUSED' || e.code === 'USAGE')) throw e;
  } finally {
    await hosts?.close();
    lock.release();
    closeReport(report, hosts?.session !== undefined ? [hosts.session.report] : []);
  }
  return report;
}
