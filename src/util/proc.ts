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
