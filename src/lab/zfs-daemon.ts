// The host's zfs-fuse daemon (source pools live there). Shared by every lab and every engineer on the machine:
// started when missing, never stopped by the lab.
import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, rmdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { LAB_ROOT } from './pools.js';
import { LabError, commOf, nsOf, listPids, pidAlive, run, sleep, tail, waitFor } from './proc.js';

export const ZFS_SOCKET = '/var/run/zfs/zfs_socket';

export interface ZfsFuseDaemon {
  /** Pid of the daemon serving this mount namespace's /var/run/zfs socket. */
  readonly pid: number;
  /** True when this call started it. */
  readonly started: boolean;
  readonly logFile: string | undefined;
}

/**
 * zfs-fuse processes in *this* mount namespace. Box daemons are also called zfs-fuse but live in their own mount
 * namespaces (own socket), so `pgrep -x zfs-fuse` alone would mistake a box daemon for the host's.
 */
export function hostZfsFusePids(): number[] {
  const mine = nsOf('self', 'mnt');
  return listPids().filter((p) => commOf(p) === 'zfs-fuse' && pidAlive(p) && nsOf(p, 'mnt') === mine);
}

/** True when the daemon behind the socket answers `zpool list` within timeoutMs. */
export async function zfsAnswers(timeoutMs = 5000): Promise<boolean> {
  if (!existsSync(ZFS_SOCKET)) return false;
  const r = await run(['zpool', 'list', '-H', '-o', 'name'], { timeoutMs }).catch(() => undefined);
  return r?.exitCode === 0;
}

/** Ensures a host zfs-fuse daemon is running and answering; starts one (detached, logging to a file) if not. */
export async function ensureZfsFuse(opts: { logFile?: string; timeoutMs?: number } = {}): Promise<ZfsFuseDaemon> {
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const running = hostZfsFusePids()[0];
  if (running !== undefined) {
    // Someone else may have started it a moment ago: give it the same time to come up.
    await waitFor('the running host zfs-fuse daemon to answer `zpool list`', () => zfsAnswers(), {
      timeoutMs,
      intervalMs: 100,
    });
    return { pid: running, started: false, logFile: undefined };
  }
  const logFile = opts.logFile ?? join(LAB_ROOT, 'zfs-fuse.log');
  return withLock(join(LAB_ROOT, '.zfs-fuse.lock'), async () => {
    const again = hostZfsFusePids()[0];
    if (again !== undefined) {
      await waitFor('the host zfs-fuse daemon to answer', () => zfsAnswers(), { timeoutMs, intervalMs: 100 });
      return { pid: again, started: false, logFile: undefined };
    }
    mkdirSync(dirname(logFile), { recursive: true });
    const fd = openSync(logFile, 'a');
    let child: ReturnType<typeof spawn>;
    try {
      child = spawn('zfs-fuse', ['--no-daemon'], { detached: true, stdio: ['ignore', fd, fd] });
    } finally {
      closeSync(fd);
    }
    child.on('error', () => undefined);
    child.unref();
    const pid = child.pid;
    if (pid === undefined) throw new LabError('could not start zfs-fuse (is the zfs-fuse package installed?)');
    await waitFor(
      `zfs-fuse (pid ${pid}) to create ${ZFS_SOCKET} and answer \`zpool list\``,
      async () => {
        if (!pidAlive(pid)) throw new LabError(`zfs-fuse exited at start; log ${logFile}:\n${tail(logFile)}`);
        return zfsAnswers(2000);
      },
      { timeoutMs, intervalMs: 50, onTimeout: () => `log ${logFile}:\n${tail(logFile)}` },
    );
    return { pid, started: true, logFile };
  });
}

/** A mkdir lock between processes (parallel test workers), stale after 30 s; waits at most 20 s. */
async function withLock<T>(path: string, fn: () => Promise<T>): Promise<T> {
  mkdirSync(dirname(path), { recursive: true });
  const deadline = Date.now() + 20_000;
  for (;;) {
    try {
      mkdirSync(path);
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      try {
        if (Date.now() - statSync(path).mtimeMs > 30_000) rmdirSync(path);
      } catch {
        // raced with its owner
      }
      if (Date.now() > deadline) throw new LabError(`lock ${path} held for too long`);
      await sleep(50);
    }
  }
  try {
    return await fn();
  } finally {
    try {
      rmdirSync(path);
    } catch {
      // already removed as stale
    }
  }
}
