// Which SSH cipher to prefer, from both ends' CPUs. AES-GCM is about twice chacha20-poly1305's speed where the CPU has
// AES instructions, and about half of it where it has none (a Raspberry Pi 4, the emulated lab VMs; see TESTBED):
// prefer AES-GCM only when both ends have them. The box's answer comes from its last capability probe (`@@ cpu`),
// remembered per host; before the first probe it is unknown and AES-GCM stays first. `sshOptions: ["Ciphers=…"]`
// overrides the choice.
import { readFileSync } from 'node:fs';
// mkdir -p that resolves the existing part first: a recursive mkdir into /proc (a symlink there) never returns.
import { ensureDirectory, readOwnFile } from '../util/safe-fs.js';
import { join } from 'node:path';
import { writeFileAtomicSync } from '../state/files.js';

export const AES_FIRST = 'aes128-gcm@openssh.com,aes256-gcm@openssh.com,chacha20-poly1305@openssh.com';
export const CHACHA_FIRST = 'chacha20-poly1305@openssh.com,aes128-gcm@openssh.com,aes256-gcm@openssh.com';

/** Whether /proc/cpuinfo text shows AES instructions (x86 `flags`, arm64 `Features`). */
export function cpuinfoHasAes(cpuinfo: string): boolean {
  return /^(flags|Features)\s*:.*\baes\b/m.test(cpuinfo);
}

let local: boolean | undefined;
/** This machine's answer (read once; unreadable /proc counts as "has AES", the old default). */
export function localHasAes(): boolean {
  if (local === undefined) {
    try {
      local = cpuinfoHasAes(readFileSync('/proc/cpuinfo', 'utf8'));
    } catch {
      local = true;
    }
  }
  return local;
}

export function cipherPreference(localAes: boolean, remoteAes: boolean | undefined): string {
  return localAes && remoteAes !== false ? AES_FIRST : CHACHA_FIRST;
}

const cpuFile = (stateDirectory: string, host: string) => join(stateDirectory, 'capabilities', `${host.replace(/[^A-Za-z0-9_.-]/g, '_')}.cpu.json`);

/** The box's AES answer from its last probe, if remembered. */
export function rememberedAes(stateDirectory: string | undefined, host: string): boolean | undefined {
  if (stateDirectory === undefined) return undefined;
  try {
    const v = (JSON.parse(readOwnFile(cpuFile(stateDirectory, host))) as { aes?: unknown }).aes;
    return typeof v === 'boolean' ? v : undefined;
  } catch {
    return undefined;
  }
}

/** Best effort: remembers the box's answer for the next run's first connection. */
export function rememberAes(stateDirectory: string | undefined, host: string, aes: boolean | undefined): void {
  if (stateDirectory === undefined || aes === undefined || rememberedAes(stateDirectory, host) === aes) return;
  try {
    ensureDirectory(join(stateDirectory, 'capabilities'), 0o755);
    writeFileAtomicSync(cpuFile(stateDirectory, host), JSON.stringify({ aes }) + '\n', 0o644);
  } catch {
    // the next run connects with the default order
  }
}
