// Probed capabilities, remembered per host. The probe (PROBE_SCRIPT) starts about 30 zfs processes, about 0.1 s on
// zfs-fuse and one SSH round trip; what it finds changes only when ZFS or the tools around it change. A fingerprint of
// those programs (path after symlinks, size, mtime, inode) and of the loaded kernel module decides whether the stored
// probe output still holds. The raw output is stored, not the parsed result, so a newer hozo re-reads it its own way.
// mkdir -p that resolves the existing part first: a recursive mkdir into /proc (a symlink there) never returns.
import { ensureDirectory, readOwnFile } from '../util/safe-fs.js';
import { join } from 'node:path';
import { safeFileStem, writeFileAtomicSync } from '../state/files.js';
import { PROBE_SECTIONS } from './capabilities.js';

const TOOLS = 'zfs zpool mbuffer pv zstd zfs-fuse';

/**
 * POSIX sh plus coreutils' stat and readlink: the programs are found on PATH without forking (this runs on every
 * run), then one stat and one readlink (a NixOS store path changes with every upgrade; store mtimes do not).
 * Without stat or readlink the fingerprint is shorter, and a change still shows as a new fingerprint.
 */
export const FINGERPRINT_SCRIPT = `set --
for t in ${TOOLS}; do
  IFS=:
  for d in $PATH; do
    if [ -f "$d/$t" ] && [ -x "$d/$t" ]; then set -- "$@" "$d/$t"; break; fi
  done
  unset IFS
done
[ $# -gt 0 ] && stat -L -c '%n %s %Y %i' "$@" 2>/dev/null
[ $# -gt 0 ] && readlink -f "$@" 2>/dev/null
cat /sys/module/zfs/version 2>/dev/null
true`;

export function fingerprintArgv(): string[] {
  return ['sh', '-c', FINGERPRINT_SCRIPT];
}

/** A fingerprint that does not name a zfs program (no zfs on PATH, no stat) is never trusted. */
export function usableFingerprint(fp: string): boolean {
  return /^\S*\/zfs \d+ \d+ \d+$/m.test(fp);
}

/** Re-probe at least this often, whatever the fingerprint says. */
export const MAX_AGE_MS = 7 * 24 * 3600 * 1000;

export interface CachedProbe {
  readonly fingerprint: string;
  /** PROBE_SCRIPT's output, for parseCapabilities. */
  readonly probe: string;
  /** Unix ms. */
  readonly probedAt: number;
  /** Which host this was: user@address:port, or "local". */
  readonly endpoint: string;
}

export class CapabilityCache {
  /** undefined: remember nothing (no state directory). */
  constructor(
    private readonly dir: string | undefined,
    private readonly now: () => number = Date.now,
  ) {}

  private path(name: string): string | undefined {
    return this.dir === undefined ? undefined : join(this.dir, 'capabilities', `${safeFileStem(name)}.json`);
  }

  /** The stored probe of host `name` at `endpoint`, if there is one, it is well-formed and not too old. */
  get(name: string, endpoint: string): CachedProbe | undefined {
    const path = this.path(name);
    if (path === undefined) return undefined;
    try {
      const c = JSON.parse(readOwnFile(path)) as Partial<CachedProbe>;
      if (typeof c.fingerprint !== 'string' || typeof c.probe !== 'string' || typeof c.probedAt !== 'number' || c.endpoint !== endpoint) return undefined;
      const age = this.now() - c.probedAt;
      if (age < 0 || age > MAX_AGE_MS || !usableFingerprint(c.fingerprint)) return undefined;
      // Probed by an older hozo whose probe lacked a section this one reads: probe again.
      if (!PROBE_SECTIONS.every((name) => c.probe!.includes(`@@ ${name}\n`))) return undefined;
      return c as CachedProbe;
    } catch {
      return undefined;
    }
  }

  /** Best effort: a state directory that cannot be written only costs the next run a probe. */
  put(name: string, endpoint: string, fingerprint: string, probe: string): boolean {
    const path = this.path(name);
    if (path === undefined || !usableFingerprint(fingerprint)) return false;
    try {
      ensureDirectory(join(this.dir!, 'capabilities'), 0o755);
      const entry: CachedProbe = { fingerprint, probe, probedAt: this.now(), endpoint };
      writeFileAtomicSync(path, JSON.stringify(entry, null, 2) + '\n', 0o644);
      return true;
    } catch {
      return false;
    }
  }
}
