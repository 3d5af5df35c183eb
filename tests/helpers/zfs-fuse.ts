// For the integration tests that run the agent on throw-away zfs-fuse pools: why they cannot run here, and destroying
// their pools despite zfs-fuse's lazy unmount.
import { existsSync } from 'node:fs';
import { execa } from 'execa';

/** Why the zfs-fuse suites cannot run here (undefined: they can); `needs` are files that must exist (a built binary). */
export async function zfsFuseUnusable(needs: readonly string[] = []): Promise<string | undefined> {
  if (process.getuid?.() !== 0) return 'not root (the zfs-fuse daemon serves root only)';
  for (const f of needs) if (!existsSync(f)) return `${f} is missing: run \`npm run build\` first`;
  const r = await execa('zpool', ['list', '-H', '-o', 'name'], { reject: false }).catch((e: unknown) => ({ exitCode: -1, stderr: String(e), stdout: '' }));
  if (r.exitCode !== 0)
    return `zfs-fuse is not usable: ${String(r.stderr || r.stdout)
      .trim()
      .replace(/\n/g, ' ')}; start it with zfs-fuse --no-daemon >/tmp/zfs-fuse.log 2>&1 &`;
  return undefined;
}

/** `zpool destroy -f`, retried: zfs-fuse reports "pool is busy" for a moment after the last command. */
export async function destroyTestPool(name: string): Promise<void> {
  for (let i = 0; i < 40; i++) {
    const r = await execa('zpool', ['destroy', '-f', name], { reject: false });
    if (r.exitCode === 0 || /no such pool/.test(String(r.stderr))) return;
    await new Promise((res) => setTimeout(res, 250));
  }
}
