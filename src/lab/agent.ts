// Puts hozo-agent on a lab box as the forced command of the lab's client key, with a harmless power-off (the box
// is this machine: "off" stops the box's sshd). Used by `hozo demo`, the e2e tests and the benchmark.
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Box } from './box.js';
import { shellJoin } from '../transport/quote.js';
import { AGENT_BIN } from './root.js';

/** The agent as it ships (package.json "bin"). */
export const AGENT_MAIN = AGENT_BIN;

export interface LabAgentOptions {
  readonly roots: readonly string[];
  readonly idlePoweroffMinutes?: number | null;
  readonly poweroffDelaySeconds?: number;
  /** Extra agent config fields. */
  readonly extra?: Record<string, unknown>;
}

export interface LabAgent {
  readonly configPath: string;
  readonly dir: string;
}

export function agentBuilt(): boolean {
  return AGENT_MAIN.endsWith('.js') && existsSync(AGENT_MAIN);
}

/**
 * The agent keeps a pending power-off until the box reboots (it compares the marker with the boot time). The lab
 * box's "power-off" only stops its sshd and its "boot" only starts it again, so its boot hook drops what a reboot
 * would make stale: the pending marker and a deferred shutdown request.
 */
export function writeAgentBootHook(box: Box, leaseDirectory: string): void {
  const files = [join(leaseDirectory, '.shutdown-pending'), join(leaseDirectory, '.shutdown-requested')];
  writeFileSync(box.files.bootHook, `#!/bin/sh\n# hozo lab: what a reboot makes stale for hozo-agent.\nrm -f ${shellJoin(files)}\n`, { mode: 0o755 });
}

export function installAgent(box: Box, opts: LabAgentOptions): LabAgent {
  const dir = join(box.dir, 'agent');
  mkdirSync(dir, { recursive: true });
  const configPath = join(dir, 'config.json');
  writeFileSync(
    configPath,
    JSON.stringify(
      {
        roots: opts.roots,
        retention: { daily: 7, weekly: 4, monthly: 6 },
        idlePoweroffMinutes: opts.idlePoweroffMinutes === undefined ? 30 : opts.idlePoweroffMinutes,
        poweroffCommand: box.sleepCommand,
        leaseDirectory: join(dir, 'leases'),
        stateDirectory: dir,
        poweroffDelaySeconds: opts.poweroffDelaySeconds ?? 1,
        // The box exports its pool on shutdown; its disk is a file, so `prepare` must know where to look.
        importDirectories: [dirname(box.pool.image)],
        ...opts.extra,
      },
      null,
      2,
    ),
  );
  const extraLeases = opts.extra?.['leaseDirectory'];
  writeAgentBootHook(box, typeof extraLeases === 'string' ? extraLeases : join(dir, 'leases'));
  box.setAuthorizedKeys([box.clientKeyLine(`command="${process.execPath} ${AGENT_MAIN} serve --config ${configPath}",restrict`)]);
  return { configPath, dir };
}
