// The test lab: a source pool on the host's zfs-fuse plus a sleeping-capable box (see box.ts). Used by the
// integration and e2e tests, the benchmark and `hozo demo`. Everything a lab creates carries its id, so
// cleanupStaleLabs() can remove what an aborted run left behind without touching anything else.
//
//   const lab = await createLab({ id: 'e2ewake', wakeListener: true });   // ~0.3 s
//   await lab.hostZfs(['create', `${lab.source.name}/data`]);
//   const host = lab.box.hostConfig();          // hosts.<name> entry for a hozo config (key, known_hosts, WoL)
//   await lab.box.stopSshd();                   // the box is asleep; a magic packet to host.wake wakes it
//   await lab.box.zfs(['list', '-r', 'backup']); // the box's own daemon, without SSH
//   await lab.destroy();                        // ~0.5 s; idempotent
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { LAB_ID, abandonBox, boxNames, createBox, markedBoxPids, releaseSubnets, type Box, type WakeListenerOptions } from './box.js';
import { LAB_ROOT, createPool, destroyPool, listPools, poolVdevs, type Pool } from './pools.js';
import { LabError, check, pidAlive, procStartTime, sleep, which, type RunOpts } from './proc.js';
import { ensureZfsFuse } from './zfs-daemon.js';

export interface LabOptions {
  /** [a-z0-9]{1,10}; default random. Use a fixed id per test file so a rerun cleans what an aborted run left. */
  readonly id?: string;
  /** Host source pool name; default `hzsrc<id>`. */
  readonly sourcePool?: string;
  /** The box's pool name (in the box's own daemon); default "backup". */
  readonly boxPool?: string;
  /** Size of each sparse pool image; default 512. */
  readonly poolSizeMB?: number;
  /** Third octet of the lab's 10.77.<n>.0/24; default derived from the id. */
  readonly subnet?: number;
  /** Start the box's sshd (awake); default true. */
  readonly sshd?: boolean;
  /** Start the box's wake listener; default false. */
  readonly wakeListener?: boolean | WakeListenerOptions;
  /** How long to wait when another live process owns the same lab id (a parallel test run). Default 180 s. */
  readonly ownerWaitMs?: number;
}

export interface Lab {
  readonly id: string;
  /** `<LAB_ROOT>/<id>`: images, keys, configs, logs. */
  readonly dir: string;
  /** The source pool on the host's daemon. */
  readonly source: Pool;
  readonly box: Box;
  /** `zfs …` on the host; trimmed stdout, throws on failure. */
  hostZfs(argv: readonly string[], opts?: RunOpts): Promise<string>;
  /** `zpool …` on the host; trimmed stdout, throws on failure. */
  hostZpool(argv: readonly string[], opts?: RunOpts): Promise<string>;
  /** Milliseconds spent in createLab, total and per step. */
  readonly timings: { readonly createMs: number; readonly steps: Readonly<Record<string, number>> };
  /** Tears everything down (idempotent); returns how long it took. */
  destroy(): Promise<{ ms: number }>;
}

export function newLabId(): string {
  return `r${randomBytes(4).toString('hex').slice(0, 7)}`;
}

/** What this machine lacks to run a lab (empty when it can). */
export function labPrerequisites(): string[] {
  const missing: string[] = [];
  if (process.platform !== 'linux') missing.push('Linux');
  if (process.getuid?.() !== 0) missing.push('root');
  for (const t of ['zfs-fuse', 'zpool', 'zfs', 'sshd', 'ssh', 'ssh-keygen', 'ip', 'nsenter', 'unshare', 'setsid', 'umount']) {
    if (which(t) === undefined) missing.push(t);
  }
  if (!existsSync('/dev/fuse')) missing.push('/dev/fuse');
  return missing;
}

// --- ownership: one live process per lab id. A lab whose owner process is gone is stale and may be removed. ---

const ownerFile = (id: string) => join(LAB_ROOT, '.owners', `${id}.json`);

interface Owner {
  pid: number;
  start: string | undefined;
}

function readOwner(id: string): Owner | undefined {
  try {
    const o = JSON.parse(readFileSync(ownerFile(id), 'utf8')) as Owner;
    return typeof o.pid === 'number' ? o : undefined;
  } catch {
    return undefined;
  }
}

/** The live process (other than this one) that owns lab `id`, if any. */
export function labOwner(id: string): number | undefined {
  const o = readOwner(id);
  if (o === undefined || o.pid === process.pid) return undefined;
  return pidAlive(o.pid) && procStartTime(o.pid) === o.start ? o.pid : undefined;
}

/** Takes lab `id` for this process; waits (bounded) while another live process holds it. */
async function claimLabId(id: string, waitMs: number): Promise<void> {
  mkdirSync(join(LAB_ROOT, '.owners'), { recursive: true });
  const me = JSON.stringify({ pid: process.pid, start: procStartTime(process.pid) });
  const deadline = Date.now() + waitMs;
  for (let i = 0; ; i++) {
    try {
      writeFileSync(ownerFile(id), me, { flag: 'wx' });
      return;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    const other = labOwner(id);
    if (other === undefined) {
      // Owner gone (aborted run) or ourselves: take over.
      rmSync(ownerFile(id), { force: true });
      if (i < 50) continue;
    }
    if (Date.now() > deadline || i > 10_000) {
      throw new LabError(`lab id "${id}" is in use by pid ${other ?? '?'} (another test run?); waited ${waitMs} ms`);
    }
    await sleep(250);
  }
}

function releaseLabId(id: string): void {
  const o = readOwner(id);
  if (o === undefined || o.pid === process.pid || labOwner(id) === undefined) rmSync(ownerFile(id), { force: true });
}

export async function createLab(opts: LabOptions = {}): Promise<Lab> {
  const t0 = Date.now();
  const steps: Record<string, number> = {};
  const step = async <T>(name: string, fn: () => Promise<T>): Promise<T> => {
    const s = Date.now();
    try {
      return await fn();
    } finally {
      steps[name] = Date.now() - s;
    }
  };
  const id = opts.id ?? newLabId();
  boxNames(id);
  const missing = labPrerequisites();
  if (missing.length > 0) throw new LabError(`cannot create a lab here: missing ${missing.join(', ')}`);
  const dir = join(LAB_ROOT, id);

  await step('claim id', () => claimLabId(id, opts.ownerWaitMs ?? 180_000));
  let source: Pool;
  let box: Box;
  try {
    await step('cleanup', () => cleanup({ id, keepOwner: true }));
    await step('zfs-fuse', () => ensureZfsFuse());
    mkdirSync(dir, { recursive: true });
    const sourceName = opts.sourcePool ?? `hzsrc${id}`;
    // Both halves at once; wait for both to settle so a failure never races the cleanup below.
    const [s, b] = await Promise.allSettled([
      step('source pool', () => createPool(sourceName, { dir, sizeMB: opts.poolSizeMB ?? 512, mountpoint: join(dir, 'mnt', sourceName) })),
      step('box', () =>
        createBox({
          id,
          dir: join(dir, 'box'),
          pool: opts.boxPool ?? 'backup',
          poolSizeMB: opts.poolSizeMB ?? 512,
          ...(opts.subnet !== undefined ? { subnet: opts.subnet } : {}),
          ...(opts.sshd !== undefined ? { sshd: opts.sshd } : {}),
          ...(opts.wakeListener !== undefined ? { wakeListener: opts.wakeListener } : {}),
        }),
      ),
    ]);
    if (s.status === 'rejected') throw s.reason;
    if (b.status === 'rejected') throw b.reason;
    source = s.value;
    box = b.value;
  } catch (e) {
    await cleanupStaleLabs({ id }).catch(() => undefined);
    releaseLabId(id);
    throw e;
  }
  writeFileSync(
    join(dir, 'lab.json'),
    JSON.stringify({ id, sourcePool: source.name, boxIp: box.boxIp, boxPool: box.pool.name, mac: box.mac, created: new Date().toISOString() }, null, 2),
  );

  let destroyed: Promise<{ ms: number }> | undefined;
  const destroy = (): Promise<{ ms: number }> => {
    destroyed ??= (async () => {
      const s = Date.now();
      const problems: string[] = [];
      try {
        await box.destroy();
      } catch (e) {
        problems.push((e as Error).message);
      }
      try {
        await destroyPool(source.name, { root: dir });
      } catch (e) {
        problems.push((e as Error).message);
      }
      // Safety net: anything still carrying this lab's id.
      const report = await cleanupStaleLabs({ id });
      problems.push(...report.problems);
      releaseLabId(id);
      if (problems.length > 0) throw new LabError(`lab ${id} teardown: ${problems.join('; ')}`);
      return { ms: Date.now() - s };
    })();
    return destroyed;
  };

  return {
    id,
    dir,
    source,
    box,
    hostZfs: (argv, o) => check(['zfs', ...argv], o),
    hostZpool: (argv, o) => check(['zpool', ...argv], o),
    timings: { createMs: Date.now() - t0, steps },
    destroy,
  };
}

export interface CleanupReport {
  readonly ids: string[];
  /** Labs left alone because a live process owns them. */
  readonly inUse: string[];
  readonly killed: number[];
  readonly namespaces: string[];
  readonly pools: string[];
  readonly dirs: string[];
  readonly problems: string[];
}

function labIdsOnMachine(): Set<string> {
  const ids = new Set<string>();
  const add = (v: string | undefined) => {
    if (v !== undefined && LAB_ID.test(v)) ids.add(v);
  };
  const ls = (d: string) => (existsSync(d) ? readdirSync(d) : []);
  for (const n of ls('/run/netns')) add(/^hzlab-(.+)$/.exec(n)?.[1]);
  for (const n of ls('/sys/class/net')) add(/^hzh-(.+)$/.exec(n)?.[1]);
  for (const v of markedBoxPids().values()) add(v);
  for (const n of ls(LAB_ROOT)) add(n);
  for (const n of ls(join(LAB_ROOT, '.owners'))) add(n.replace(/\.json$/, ''));
  for (const n of ls(join(LAB_ROOT, '.net'))) {
    try {
      add(readlinkSync(join(LAB_ROOT, '.net', n)));
    } catch {
      // not a claim
    }
  }
  return ids;
}

/** Host pools whose vdevs are files under `<LAB_ROOT>/<id>/`, keyed by id. */
async function labPoolsOnHost(): Promise<Map<string, string[]>> {
  const out = new Map<string, string[]>();
  let pools: string[];
  try {
    pools = await listPools();
  } catch {
    return out; // no daemon: no pools
  }
  const root = resolve(LAB_ROOT) + '/';
  for (const p of pools) {
    const vdevs = await poolVdevs(p).catch(() => undefined);
    const first = vdevs?.[0];
    if (first === undefined || !first.startsWith(root)) continue;
    const id = first.slice(root.length).split('/')[0] ?? '';
    if (LAB_ID.test(id) && vdevs!.every((v) => v.startsWith(`${root}${id}/`))) out.set(id, [...(out.get(id) ?? []), p]);
  }
  return out;
}

/** Mount points (in this mount namespace) at or under dir. */
function mountsUnder(dir: string): string[] {
  const d = resolve(dir);
  const out: string[] = [];
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const mp = line.split(' ')[4];
    if (mp === undefined) continue;
    const path = mp.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
    if (path === d || path.startsWith(d + '/')) out.push(path);
  }
  return out;
}

/**
 * Removes what labs left behind: box processes (by their environment marker and network namespace), namespaces,
 * veths, host pools backed by files under the lab directory, subnet claims and the lab directory. With `id`, only
 * that lab; without, every lab on the machine (CI start, `cli.js cleanup`). Labs whose owner process is alive are left
 * alone unless `force`. Never touches the host's zfs-fuse.
 */
export async function cleanupStaleLabs(opts: { id?: string; force?: boolean; log?: (line: string) => void } = {}): Promise<CleanupReport> {
  return cleanup(opts);
}

/** keepOwner: createLab cleans its id after claiming it and must keep the claim. */
async function cleanup(opts: { id?: string; force?: boolean; log?: (line: string) => void; keepOwner?: boolean }): Promise<CleanupReport> {
  const log = opts.log ?? (() => undefined);
  const report: CleanupReport = { ids: [], inUse: [], killed: [], namespaces: [], pools: [], dirs: [], problems: [] };
  const hostPools = await labPoolsOnHost();
  const ids = opts.id !== undefined ? new Set([opts.id]) : new Set([...labIdsOnMachine(), ...hostPools.keys()]);
  for (const id of ids) {
    const names = boxNames(id);
    const owner = labOwner(id);
    if (owner !== undefined && !opts.force) {
      log(`lab ${id}: in use by live pid ${owner}, left alone`);
      report.inUse.push(id);
      continue;
    }
    const dir = join(LAB_ROOT, id);
    const nsExists = existsSync(`/run/netns/${names.namespace}`);
    if (!nsExists && !existsSync(`/sys/class/net/${names.hostIf}`) && !existsSync(dir) && !hostPools.has(id) && markedBoxPids(id).size === 0) {
      releaseSubnets(id);
      if (!opts.keepOwner) rmSync(ownerFile(id), { force: true });
      continue;
    }
    report.ids.push(id);
    // 1-2. Box processes (by marker and namespace; never the host's zfs-fuse), namespace, veth, subnet claim.
    if (nsExists) report.namespaces.push(names.namespace);
    try {
      const { killed, survivors } = await abandonBox(id, 300); // stale: nothing worth flushing
      if (killed.length > 0) log(`lab ${id}: stopped ${killed.length} box process(es)`);
      report.killed.push(...killed);
      if (survivors.length > 0) report.problems.push(`lab ${id}: pids ${survivors.join(',')} survived SIGKILL`);
    } catch (e) {
      report.problems.push(`lab ${id}: ${(e as Error).message}`);
    }
    // 3. Host pools backed by this lab's files.
    for (const p of hostPools.get(id) ?? []) {
      try {
        log(`lab ${id}: destroying host pool ${p}`);
        await destroyPool(p, { root: dir });
        report.pools.push(p);
      } catch (e) {
        report.problems.push(`lab ${id}: ${(e as Error).message}`);
      }
    }
    releaseSubnets(id);
    if (!opts.keepOwner) rmSync(ownerFile(id), { force: true });
    // 4. Files, unless something is still mounted there (rm -r would walk into a live filesystem).
    if (existsSync(dir)) {
      const mounts = mountsUnder(dir);
      if (mounts.length > 0) report.problems.push(`lab ${id}: not removing ${dir}: still mounted: ${mounts.join(', ')}`);
      else {
        rmSync(dir, { recursive: true, force: true });
        report.dirs.push(dir);
      }
    }
  }
  return report;
}
