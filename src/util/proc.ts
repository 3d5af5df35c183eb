// Facts about local processes from the kernel, shared by the job lock, hozo-agent's state and the test lab.
import { readFileSync } from 'node:fs';

/** The process exists (a process of another user, EPERM, exists too). A zombie counts as existing. */
export function pidExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Start time of a process (clock ticks since boot, field 22 of /proc/PID/stat): tells a live owner from a reused
 *  pid. Undefined when it is gone or /proc is unreadable. */
export function procStartTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

/** "pid start-time" of this process, for a lock file. */
export function lockOwner(): string {
  return `${process.pid} ${procStartTime(process.pid) ?? ''}`.trim();
}

export interface StaleRules {
  readonly alive?: (pid: number) => boolean;
  readonly startOf?: (pid: number) => string | undefined;
  /** A live owner written without a start time (an older build's lock) is stale after this long (default: never). */
  readonly pidOnlyMaxAgeMs?: number;
}

/**
 * Whether a lock file's owner ("pid start-time") is gone: the pid is dead, or it is another process now (another start
 * time: pid reuse, or a lock from before a reboot). A live owner is never stale however long it holds the lock. A file
 * with no owner in it yet (created, not yet written) is stale only after 30 s.
 */
export function lockIsStale(text: string, ageMs: number, rules: StaleRules = {}): boolean {
  const { alive = pidExists, startOf = procStartTime, pidOnlyMaxAgeMs = Infinity } = rules;
  const [p, st] = text.trim().split(/\s+/);
  const pid = Number(p);
  if (!Number.isInteger(pid) || pid <= 0) return ageMs > 30_000;
  if (!alive(pid)) return true;
  if (st === undefined || st === '') return ageMs > pidOnlyMaxAgeMs;
  const now = startOf(pid);
  return now !== undefined && now !== st;
}
