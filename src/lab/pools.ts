// File-backed zfs-fuse pools for the lab. A pool is only ever destroyed when every one of its vdevs is a file under
// the lab's root directory, so a lab can never destroy a pool it did not create.
import { closeSync, ftruncateSync, mkdirSync, openSync, rmSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import { LabError, run, sleep, type RunOpts, type RunResult } from './proc.js';

/** Where labs keep their files; override with HOZO_LAB_ROOT. */
export const LAB_ROOT = resolve(process.env.HOZO_LAB_ROOT ?? '/tmp/hozo-lab');

/** Runs a zfs/zpool argv against one daemon: the host's (default) or a box's (nsenter prefix). */
export type ZfsExec = (argv: readonly string[], opts?: RunOpts) => Promise<RunResult>;
export const hostExec: ZfsExec = (argv, opts) => run(argv, opts);

export interface CreatePoolOptions {
  /** Sparse image size; zfs-fuse needs at least 64 MB. Default 512. */
  readonly sizeMB?: number;
  /** Directory for the image file (created). */
  readonly dir: string;
  /** Mountpoint of the pool's root dataset; default `<dir>/mnt/<name>`; "none" for unmounted. */
  readonly mountpoint?: string;
  /** Which daemon; default the host's. */
  readonly exec?: ZfsExec;
}

export interface Pool {
  readonly name: string;
  readonly image: string;
  readonly mountpoint: string;
  readonly sizeMB: number;
}

const POOL_NAME = /^[A-Za-z][A-Za-z0-9_.:-]{0,63}$/;

export async function createPool(name: string, opts: CreatePoolOptions): Promise<Pool> {
  if (!POOL_NAME.test(name)) throw new LabError(`invalid pool name "${name}"`);
  const sizeMB = opts.sizeMB ?? 512;
  if (!Number.isInteger(sizeMB) || sizeMB < 64) throw new LabError(`pool ${name}: sizeMB must be an integer >= 64`);
  const exec = opts.exec ?? hostExec;
  mkdirSync(opts.dir, { recursive: true });
  const image = join(resolve(opts.dir), `${name}.img`);
  // 'wx': never reuse an image that may still back a live pool somewhere.
  const fd = openSync(image, 'wx');
  try {
    ftruncateSync(fd, sizeMB * 1024 * 1024);
  } finally {
    closeSync(fd);
  }
  const mountpoint = opts.mountpoint ?? join(resolve(opts.dir), 'mnt', name);
  if (mountpoint !== 'none' && !isAbsolute(mountpoint)) throw new LabError(`pool ${name}: mountpoint must be absolute`);
  const r = await exec(['zpool', 'create', '-m', mountpoint, name, image], { timeoutMs: 30_000 });
  if (r.exitCode !== 0) {
    rmSync(image, { force: true });
    throw new LabError(`zpool create ${name} failed: ${r.stderr.trim() || r.stdout.trim()}`);
  }
  return { name, image, mountpoint, sizeMB };
}

/** Vdev paths of a pool (from `zpool status`), undefined when the pool does not exist. */
export async function poolVdevs(name: string, exec: ZfsExec = hostExec): Promise<string[] | undefined> {
  const r = await exec(['zpool', 'status', name], { timeoutMs: 15_000 });
  if (r.exitCode !== 0) {
    if (/no such pool/i.test(r.stderr)) return undefined;
    throw new LabError(`zpool status ${name} failed: ${r.stderr.trim()}`);
  }
  const out: string[] = [];
  let inConfig = false;
  for (const line of r.stdout.split('\n')) {
    if (/^\s*config:/.test(line)) inConfig = true;
    else if (/^\s*errors:/.test(line)) inConfig = false;
    else if (inConfig) {
      const first = line.trim().split(/\s+/)[0];
      if (first?.startsWith('/')) out.push(first);
    }
  }
  return out;
}

export async function listPools(exec: ZfsExec = hostExec): Promise<string[]> {
  const r = await exec(['zpool', 'list', '-H', '-o', 'name'], { timeoutMs: 15_000 });
  if (r.exitCode !== 0) throw new LabError(`zpool list failed: ${r.stderr.trim()}`);
  return r.stdout
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !/^no pools available/.test(l));
}

function under(path: string, root: string): boolean {
  const r = resolve(root);
  return resolve(path).startsWith(r.endsWith('/') ? r : r + '/');
}

/** Pools (of one daemon) all of whose vdevs are files under root. */
export async function poolsUnder(root: string, exec: ZfsExec = hostExec): Promise<string[]> {
  const out: string[] = [];
  for (const name of await listPools(exec)) {
    const vdevs = await poolVdevs(name, exec);
    if (vdevs !== undefined && vdevs.length > 0 && vdevs.every((v) => under(v, root))) out.push(name);
  }
  return out;
}

export interface DestroyPoolOptions {
  /** Refuse unless every vdev is a file under this directory. Default LAB_ROOT. */
  readonly root?: string;
  readonly exec?: ZfsExec;
  /** How long to retry "busy" (zfs-fuse reports transient busy on unmount). Default 8 s. */
  readonly timeoutMs?: number;
  /** Also delete the image files. Default true. */
  readonly removeImages?: boolean;
}

/** Destroys a lab pool; false when it did not exist. Retries "busy", then tries `export -f`, then throws. */
export async function destroyPool(name: string, opts: DestroyPoolOptions = {}): Promise<boolean> {
  const exec = opts.exec ?? hostExec;
  const root = opts.root ?? LAB_ROOT;
  const vdevs = await poolVdevs(name, exec);
  if (vdevs === undefined) return false;
  if (vdevs.length === 0 || !vdevs.every((v) => under(v, root))) {
    throw new LabError(`refusing to destroy pool "${name}": its vdevs (${vdevs.join(', ') || 'none'}) are not files under ${root}`);
  }
  const deadline = Date.now() + (opts.timeoutMs ?? 8000);
  let last = '';
  let gone = false;
  for (let i = 0; i < 200; i++) {
    const r = await exec(['zpool', 'destroy', '-f', name], { timeoutMs: 30_000 });
    if (r.exitCode === 0 || /no such pool/i.test(r.stderr)) {
      gone = true;
      break;
    }
    last = r.stderr.trim() || r.stdout.trim() || `exit ${r.exitCode}`;
    if (!/busy/i.test(last) || Date.now() > deadline) break;
    await sleep(200);
  }
  if (!gone) {
    const r = await exec(['zpool', 'export', '-f', name], { timeoutMs: 30_000 });
    if (r.exitCode !== 0 && !/no such pool/i.test(r.stderr)) {
      throw new LabError(`could not destroy pool "${name}": ${last}; export -f: ${r.stderr.trim()}`);
    }
  }
  if (opts.removeImages ?? true) for (const v of vdevs) rmSync(v, { force: true });
  return true;
}
