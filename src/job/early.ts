// The box's SSH connection, started as soon as the config is valid and the job known, while the rest of hozo loads:
// the handshake runs in ssh's own process, so it overlaps module loading instead of following it. Nothing runs on
// the box until bringUp adopts the connection (and a box that does not answer is handled there, as before).
import type { Config, JobConfig } from '../config/schema.js';
import { findHost } from '../config/lookup.js';
import { isHozoError } from '../errors.js';
import { cipherPreference, localHasAes, rememberedAes } from '../transport/cipher.js';
import { SshRunner } from '../transport/ssh.js';
import type { HostConfig } from '../config/schema.js';
import { boxPortOpen } from '../wake/ready.js';

export interface EarlyConnection {
  readonly hostName: string;
  readonly runner: SshRunner;
  /** true: the box answered and the ControlMaster is up; false: no answer (asleep), or SSH failed for a reason that
   *  waiting may fix. Rejects with SSH_AUTH / SSH_HOST_KEY, which no waiting fixes. */
  readonly awake: Promise<boolean>;
}

/** Whether the box answers right now: one port probe (through the jump host, if any), then the ControlMaster (bringUp's "already awake?" check). */
export async function awakeCheck(runner: SshRunner, host: HostConfig, onConnecting?: () => void): Promise<boolean> {
  if (!(await boxPortOpen(host, 1500))) return false;
  try {
    const connecting = runner.connect();
    onConnecting?.();
    await connecting;
    return true;
  } catch (e) {
    if (isHozoError(e, 'SSH_AUTH') || isHozoError(e, 'SSH_HOST_KEY')) throw e;
    return false;
  }
}

/** Starts the awake check for the job's box; undefined for a local job. The caller closes `runner` when done. */
export function connectEarly(config: Config, job: JobConfig): EarlyConnection | undefined {
  if (job.host === 'local') return undefined;
  const host = findHost(config, job.host);
  const runner = new SshRunner({ name: job.host, host, ciphers: cipherPreference(localHasAes(), rememberedAes(config.stateDirectory, job.host)) });
  const awake = awakeCheck(runner, host);
  awake.catch(() => undefined);
  return { hostName: job.host, runner, awake };
}
