// The restore test of `hozo verify --restore-test` (verify.ts): one backed-up snapshot received back from the box
// into a marked scratch dataset here (its key loaded where the backup is raw), the source snapshot cloned beside
// it, both mounted read-only and compared file by file (tree-compare.ts); the scratch is destroyed whatever happens,
// and a dataset of that name without hozo's mark is never touched.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Config, JobConfig } from '../config/schema.js';
import { HozoError, isHozoError } from '../errors.js';
import { jobBandwidth } from '../pipeline/bandwidth.js';
import { planDataset } from '../planner/plan.js';
import type { Base, DatasetPair } from '../planner/types.js';
import type { Logger } from '../util/log.js';
import { cloneArgv, createArgv, destroyTreeArgv, getArgv, listNamesArgv, loadKeyArgv, mountArgv, setArgv } from '../zfs/dataset-argv.js';
import type { Inventory } from '../zfs/types.js';
import { isEncrypted } from './encryption.js';
import type { ZfsHost } from './endpoint.js';
import { throwIfInterrupted } from './interrupt.js';
import { initialReport, replicate } from './replicate.js';
import { compareTrees, type Mismatch } from './tree-compare.js';

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

export interface RestoreTestOptions {
  /** Hash only this many files per dataset (a seeded sample); all when undefined. */
  readonly sampleFiles?: number;
  readonly seed: number;
  readonly log: Logger;
  readonly signal?: AbortSignal;
}

/** The scratch tree of a job's restore tests: `<pool>/hozo-verify-<job>`, marked with the user property below. */
export const scratchRoot = (pool: string, job: string) => `${pool}/hozo-verify-${job}`;
const MARK = 'hozo:verify';

async function zfsOk(host: ZfsHost, argv: string[], what: string): Promise<string> {
  const r = await host.runner.run(argv, { timeoutMs: 120_000 });
  if (r.exitCode !== 0) throw new HozoError('ZFS_UNKNOWN', `${what}: ${argv.join(' ')}: ${r.stderr.trim() || `exit ${r.exitCode}`}`);
  return r.stdout;
}

/** Creates the scratch root; one left by a killed verify (it carries our mark) is destroyed first. Refuses to touch
 *  a dataset of that name without the mark. */
export async function prepareScratch(local: ZfsHost, root: string, job: string, log: Logger): Promise<void> {
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

export async function destroyScratch(local: ZfsHost, root: string, log: Logger, warnings: string[]): Promise<void> {
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

export async function restoreTest(
  config: Config,
  job: JobConfig,
  d: DatasetPair,
  base: Base,
  srcInv: Inventory,
  dstInv: Inventory,
  local: ZfsHost,
  box: ZfsHost,
  root: string,
  k: number,
  opts: RestoreTestOptions,
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
