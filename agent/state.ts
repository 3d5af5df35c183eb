// What the agent remembers between SSH calls, all as small files so separate processes (one per SSH call, the idle
// timer) agree without a daemon: leases, running receives, the last activity, a pending shutdown, and a lock.
import { closeSync, openSync, readFileSync, readdirSync, rmSync, statSync, unlinkSync, utimesSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
// mkdir -p that resolves the existing part first: a recursive mkdir into /proc (a symlink there) never returns.
import { ensureDirectory } from '../src/util/safe-fs.js';
import { writeFileAtomicSync } from '../src/state/files.js';
import { LEASE_ID } from './command.js';

/** A lease id as stored: the request's id, behind "<controller>:" for a per-controller section (agent/scope.ts). */
const STORED_LEASE_ID = new RegExp(`^(?:[a-z][a-z0-9_-]{0,31}:)?${LEASE_ID.source.slice(1)}`);
import { lockIsStale, lockOwner, pidExists, procStartTime } from '../src/util/proc.js';

/** Unix seconds. */
export type Clock = () => number;
export const systemClock: Clock = () => Date.now() / 1000;

export interface Lease {
  readonly id: string;
  /** Unix seconds. */
  readonly created: number;
  readonly expires: number;
}

export interface ReceiveMarker {
  readonly pid: number;
  /** /proc/<pid>/stat start time, so a reused pid is not mistaken for the receive. */
  readonly start?: string;
  readonly dataset: string;
  readonly started: number;
}

export interface ShutdownPending {
  readonly at: number;
  /** After this the marker is ignored (the power-off evidently did not happen). */
  readonly until: number;
}

// --- small file helpers ---------------------------------------------------------------------------------------

/** The agent's state files (leases, markers, receive times), written atomically and fsynced (the core's
 *  writeFileAtomicSync): a power-off right after a lease or a receive time is recorded must not lose it. */
export const writeAtomic = (path: string, text: string): void => writeFileAtomicSync(path, text, 0o640);

function readJson(path: string): unknown {
  try {
    return JSON.parse(readFileSync(path, 'utf8'));
  } catch {
    return undefined;
  }
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null;
}

/** Seconds since boot (/proc/uptime), undefined when unreadable. */
export function readUptime(): number | undefined {
  try {
    const v = Number(readFileSync('/proc/uptime', 'utf8').split(/\s+/)[0]);
    return Number.isFinite(v) ? v : undefined;
  } catch {
    return undefined;
  }
}

// --- the store ------------------------------------------------------------------------------------------------

export interface StateOptions {
  readonly leaseDirectory: string;
  readonly stateDirectory: string;
  readonly clock?: Clock;
  /** Seconds since boot; injected by tests. */
  readonly uptime?: () => number | undefined;
}

export class AgentState {
  readonly leaseDirectory: string;
  readonly stateDirectory: string;
  private readonly clock: Clock;
  private readonly uptime: () => number | undefined;

  constructor(opts: StateOptions) {
    this.leaseDirectory = opts.leaseDirectory;
    this.stateDirectory = opts.stateDirectory;
    this.clock = opts.clock ?? systemClock;
    this.uptime = opts.uptime ?? readUptime;
  }

  now(): number {
    return this.clock();
  }

  /** Seconds since boot, when known. */
  uptimeSeconds(): number | undefined {
    return this.uptime();
  }

  /** Unix seconds of the last boot, when known. */
  bootTime(): number | undefined {
    const up = this.uptime();
    return up === undefined ? undefined : this.now() - up;
  }

  private get receivesDir(): string {
    return join(this.stateDirectory, 'receives');
  }
  private get activityFile(): string {
    return join(this.stateDirectory, 'last-activity');
  }
  // The lock and the pending marker live beside the leases: the idle timer's sandbox may write only there.
  private get lockFile(): string {
    return join(this.leaseDirectory, '.lock');
  }
  private get pendingFile(): string {
    return join(this.leaseDirectory, '.shutdown-pending');
  }
  private get requestFile(): string {
    return join(this.leaseDirectory, '.shutdown-requested');
  }
  get shutdownPendingPath(): string {
    return this.pendingFile;
  }

  // --- lock ---

  /**
   * Runs fn holding an exclusive lock (a file with our pid and its start time). A lock is broken only when its owner
   * is gone: the pid does not exist, or it is another process now (its start time differs: pid reuse, or a lock left
   * from before a reboot). A live owner is never broken however long it holds the lock (a receive being marked must
   * not be raced by a shutdown); waiters give up after waitMs instead (60 s: ten controllers' sessions on a slow box
   * queue here, and a release that gave up left its lease holding the box up for hours). A lock file without a readable owner (a crash
   * between creating and writing it) is broken after 30 s.
   */
  async withLock<T>(fn: () => Promise<T> | T, waitMs = 60_000): Promise<T> {
    ensureDirectory(this.leaseDirectory, 0o750);
    const deadline = Date.now() + waitMs;
    const me = lockOwner();
    for (let i = 0; ; i++) {
      try {
        const fd = openSync(this.lockFile, 'wx', 0o640);
        writeSync(fd, me);
        closeSync(fd);
        break;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      }
      let stale = false;
      try {
        // An older agent's pid-only lock keeps the 30 s rule it was written under.
        stale = lockIsStale(readFileSync(this.lockFile, 'utf8'), Date.now() - statSync(this.lockFile).mtimeMs, { pidOnlyMaxAgeMs: 30_000 });
      } catch {
        continue; // released meanwhile
      }
      if (stale) {
        rmSync(this.lockFile, { force: true });
        continue;
      }
      if (Date.now() > deadline || i > 100_000) throw new Error(`the agent's lock ${this.lockFile} is held by another call`);
      // Back off (20 ms doubling to 250 ms, with jitter) so that many waiters do not spin against each other.
      await new Promise((r) => setTimeout(r, Math.min(250, 20 * 2 ** Math.min(i, 4)) * (0.5 + Math.random())));
    }
    try {
      return await fn();
    } finally {
      rmSync(this.lockFile, { force: true });
    }
  }

  // --- leases ---

  private leasePath(id: string): string {
    if (!STORED_LEASE_ID.test(id)) throw new Error(`invalid lease id ${JSON.stringify(id)}`);
    return join(this.leaseDirectory, `${id}.lease`);
  }

  /** Active leases, oldest first; expired ones are removed (best effort: a read-only sandbox only reads). */
  leases(): Lease[] {
    let names: string[];
    try {
      names = readdirSync(this.leaseDirectory);
    } catch {
      return [];
    }
    const now = this.now();
    const out: Lease[] = [];
    for (const n of names) {
      const m = /^(.+)\.lease$/.exec(n);
      if (m === null || !STORED_LEASE_ID.test(m[1]!)) continue;
      const v = readJson(join(this.leaseDirectory, n));
      if (!isRecord(v) || typeof v['expires'] !== 'number' || typeof v['created'] !== 'number') continue;
      if (v['expires'] <= now) {
        rmSync(join(this.leaseDirectory, n), { force: true });
        continue;
      }
      out.push({ id: m[1]!, created: v['created'], expires: v['expires'] });
    }
    return out.sort((a, b) => a.created - b.created || (a.id < b.id ? -1 : 1));
  }

  /** Takes or renews a lease; a renewal keeps its creation time. */
  hold(id: string, ttlSeconds: number): Lease {
    ensureDirectory(this.leaseDirectory, 0o750);
    const now = this.now();
    const existing = this.leases().find((l) => l.id === id);
    const lease: Lease = { id, created: existing?.created ?? now, expires: now + ttlSeconds };
    writeAtomic(this.leasePath(id), JSON.stringify({ created: lease.created, expires: lease.expires }) + '\n');
    return lease;
  }

  /** true when a lease was removed. */
  release(id: string): boolean {
    const path = this.leasePath(id);
    const had = this.leases().some((l) => l.id === id);
    rmSync(path, { force: true });
    return had;
  }

  // --- running receives ---

  /** Records that this process runs a receive; returns a function that removes the marker. */
  markReceive(dataset: string): () => void {
    ensureDirectory(this.receivesDir, 0o750);
    const start = procStartTime(process.pid);
    const marker: ReceiveMarker = { pid: process.pid, ...(start !== undefined ? { start } : {}), dataset, started: this.now() };
    const path = join(this.receivesDir, `${process.pid}.json`);
    writeAtomic(path, JSON.stringify(marker) + '\n');
    return () => rmSync(path, { force: true });
  }

  /** Receives whose process is still alive; markers of dead processes are removed. */
  receives(): ReceiveMarker[] {
    let names: string[];
    try {
      names = readdirSync(this.receivesDir);
    } catch {
      return [];
    }
    const out: ReceiveMarker[] = [];
    for (const n of names) {
      if (!/^\d+\.json$/.test(n)) continue;
      const path = join(this.receivesDir, n);
      const v = readJson(path);
      const ok = isRecord(v) && typeof v['pid'] === 'number' && typeof v['dataset'] === 'string' && typeof v['started'] === 'number';
      if (!ok) {
        // Half-written or foreign: a marker younger than a minute may be being written; leave it.
        continue;
      }
      const m: ReceiveMarker = {
        pid: v['pid'] as number,
        dataset: v['dataset'] as string,
        started: v['started'] as number,
        ...(typeof v['start'] === 'string' ? { start: v['start'] } : {}),
      };
      const alive = pidExists(m.pid) && (m.start === undefined || procStartTime(m.pid) === undefined || procStartTime(m.pid) === m.start);
      if (!alive) {
        try {
          unlinkSync(path);
        } catch {
          // read-only sandbox or raced
        }
        continue;
      }
      out.push(m);
    }
    return out;
  }

  // --- activity ---

  /** Records that a controller just talked to the agent. */
  touchActivity(): void {
    try {
      ensureDirectory(this.stateDirectory, 0o750);
      const t = this.now();
      writeFileSync(this.activityFile, `${new Date(t * 1000).toISOString()}\n`);
      utimesSync(this.activityFile, t, t);
    } catch {
      // Activity is advisory; never fail a request for it.
    }
  }

  /** Unix seconds of the last serve call, undefined if none was recorded. */
  lastActivity(): number | undefined {
    try {
      return statSync(this.activityFile).mtimeMs / 1000;
    } catch {
      return undefined;
    }
  }

  // --- pending shutdown ---

  shutdownPending(): ShutdownPending | undefined {
    const v = readJson(this.pendingFile);
    if (!isRecord(v) || typeof v['at'] !== 'number' || typeof v['until'] !== 'number') return undefined;
    const boot = this.bootTime();
    // Left over from before a reboot, or the power-off never came: ignore.
    if ((boot !== undefined && v['at'] < boot - 5) || this.now() > v['until']) return undefined;
    return { at: v['at'], until: v['until'] };
  }

  setShutdownPending(graceSeconds: number): ShutdownPending {
    ensureDirectory(this.leaseDirectory, 0o750);
    const at = this.now();
    const p = { at, until: at + graceSeconds };
    writeAtomic(this.pendingFile, JSON.stringify(p) + '\n');
    return p;
  }

  // --- deferred shutdown request: a controller asked while others still held leases ---

  /** A shutdown asked for while something still needed the box, since this boot. */
  shutdownRequested(): number | undefined {
    const v = readJson(this.requestFile);
    if (!isRecord(v) || typeof v['at'] !== 'number') return undefined;
    const boot = this.bootTime();
    if (boot !== undefined && v['at'] < boot - 5) return undefined;
    return v['at'];
  }

  requestShutdown(): void {
    ensureDirectory(this.leaseDirectory, 0o750);
    writeAtomic(this.requestFile, JSON.stringify({ at: this.now() }) + '\n');
  }

  clearShutdownRequest(): void {
    rmSync(this.requestFile, { force: true });
  }

  clearShutdownPending(): void {
    try {
      rmSync(this.pendingFile, { force: true });
    } catch {
      // expires on its own
    }
  }
}
