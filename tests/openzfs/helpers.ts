// Shared by the openzfs test files: attach to the lab the global setup booted, reset it between tests, write the
// controller's config in the ctl VM and run hozo there. Everything below runs on real OpenZFS in the lab's VMs.
import { inject } from 'vitest';
import { stringify } from 'yaml';
import { AGENT_ROOT, attachVmLab, labAgentConfig, type VmLab } from '../../src/lab/vm/lab.js';
import { workerLane } from './lanes.js';

export const skipReason = (): string => inject('openzfsSkip');
/** This worker's lane's lab (tests/openzfs/lanes.ts), or undefined when the project is skipped. */
export const labOrSkip = (): VmLab | undefined => {
  if (skipReason() !== '') return undefined;
  const ids = inject('openzfsLabs');
  return attachVmLab(ids[workerLane(ids.length) - 1]);
};

export { AGENT_ROOT };
export const SRC = 'tank/src';
/** The lab's ssh key exchange (see controllerConfig). */
export const LAB_KEX = 'KexAlgorithms=curve25519-sha256';

/** Destroys the test datasets on both sides, hozo's state on ctl, the agent's leases and state on the box. */
export async function reset(lab: VmLab, agent: Record<string, unknown> = {}): Promise<void> {
  await lab.ensureBoxUp();
  await Promise.all([
    lab.ctl.check(
      // A run a failed test left behind (it would hold the job lock).
      `pkill -KILL -f '[d]ist/bin/hozo/hozo[.]js' || true; ` +
        `zfs list -H -o name ${SRC} >/dev/null 2>&1 && { zfs list -H -o name -t snapshot -r ${SRC} | while read s; do zfs holds -H "$s" | awk '{print $2}' | while read t; do zfs release "$t" "$s"; done; done; zfs destroy -R ${SRC}; }; ` +
        `zfs create -o mountpoint=/tank/src ${SRC}; rm -rf /var/lib/hozo; mkdir -p /var/lib/hozo`,
    ),
    lab.box.check(
      `zfs list -H -o name -d 1 ${AGENT_ROOT} | tail -n +2 | while read d; do zfs destroy -r "$d"; done; ` +
        `rm -rf /var/lib/hozo-agent/leases/* /var/lib/hozo-agent/leases/.shutdown* /var/lib/hozo-agent/state* /var/lib/hozo-agent/capabilities; true`,
    ),
  ]);
  await writeAgentConfig(lab, agent);
}

/** The box's /etc/hozo-agent/config.json: the lab's agent config with `agent` merged in. */
export const writeAgentConfig = (lab: VmLab, agent: Record<string, unknown> = {}) =>
  lab.box.writeFile('/etc/hozo-agent/config.json', JSON.stringify(labAgentConfig(agent), null, 2));

export interface JobSpec {
  name?: string;
  datasets: { source: string; target: string; recursive?: boolean }[];
  [k: string]: unknown;
}

/** The controller's config for the lab: host `box` (agent by default, `host` merged in), the given jobs. */
export function controllerConfig(lab: VmLab, jobs: JobSpec[], host: Record<string, unknown> = {}, top: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    stateDirectory: '/var/lib/hozo',
    metrics: { textfileDirectory: '/var/lib/hozo/metrics' },
    hosts: {
      box: {
        address: lab.box.ip,
        user: 'hozo',
        sshKeyFile: '/etc/hozo/box_key',
        knownHostsFile: '/etc/hozo/known_hosts',
        wake: { method: 'wol', mac: lab.box.mac, address: lab.broadcast },
        readyTimeout: 240,
        shutdown: 'none',
        agent: true,
        // The replication tests send unencrypted datasets; tests/openzfs/encryption.test.ts is the untrusted box.
        trust: 'trusted',
        // OpenSSH's default key exchange (sntrup761x25519, post-quantum) costs 2.5–4 s of emulated CPU per connection
        // here, against ~0.3 s for curve25519 (measured in the ctl VM, ssh … version to the box); hozo opens one per
        // run. The key exchange is OpenSSH's business, not hozo's: the first test of replication.test.ts keeps the
        // default (sshOptions: []).
        sshOptions: [LAB_KEX],
        ...host,
      },
    },
    jobs: jobs.map((j) => ({ name: 'nightly', host: 'box', retries: 0, ...j })),
    ...top,
  };
}

/** Writes /etc/hozo/config.yaml on ctl: host `box` (agent by default), the given jobs. */
export async function writeConfig(lab: VmLab, jobs: JobSpec[], host: Record<string, unknown> = {}): Promise<void> {
  await lab.ctl.check('mkdir -p /var/lib/hozo/metrics');
  await lab.ctl.writeFile('/etc/hozo/config.yaml', stringify(controllerConfig(lab, jobs, host)));
}

export interface RunOutcome {
  exitCode: number | null;
  json: any;
  stderr: string;
}

/** `hozo <args> --json` in the ctl VM (as root). */
export const hozoJson = (lab: VmLab, ...args: string[]): Promise<RunOutcome> => hozoJsonWith(lab, {}, ...args);

/** `hozo <args> --json` in the ctl VM with another config file or as another user. */
export async function hozoJsonWith(lab: VmLab, opts: { config?: string; user?: string }, ...args: string[]): Promise<RunOutcome> {
  const r = await lab.hozo([...args, '--json'], opts);
  let json: any;
  try {
    json = JSON.parse(r.stdout);
  } catch {
    throw new Error(`hozo ${args.join(' ')} printed no JSON (exit ${r.exitCode}):\n${r.stdout}\n${r.stderr}`);
  }
  return { exitCode: r.exitCode, json, stderr: r.stderr };
}

/** name → guid of every snapshot under ds on a VM (empty when ds does not exist). */
export async function guids(vm: VmLab['ctl'], ds: string): Promise<Map<string, string>> {
  const out = await vm.check(`zfs list -H -p -o name,guid -t snapshot -r ${ds} 2>/dev/null || true`);
  const m = new Map<string, string>();
  for (const line of out.split('\n').filter(Boolean)) {
    const [name, guid] = line.split('\t');
    m.set(name!.slice(name!.indexOf('@')), guid!);
  }
  return m;
}

/** Writes `mb` MiB of incompressible data to a file on ctl. */
export const randomFile = (lab: VmLab, path: string, mb: number) => lab.ctl.check(`head -c ${mb}M /dev/urandom > ${path} && sync`);

/** ctl's NIC (ens4) shaped to `mbit` with tc's tbf while `body` runs, so a small stream lasts seconds. */
export async function shapeLink<T>(lab: VmLab, mbit: number, body: () => Promise<T>): Promise<T> {
  await lab.ctl.check(`tc qdisc replace dev ens4 root tbf rate ${mbit}mbit burst 64kb latency 500ms`);
  try {
    return await body();
  } finally {
    await lab.ctl.sh('tc qdisc del dev ens4 root');
  }
}

/** The pool on ctl that holds hostilePackage's source (file-backed, with an altroot: its mountpoints stay off ctl). */
export const EVIL_POOL = 'evil';
export const HOSTILE_PACKAGE = '/var/tmp/pkg.zstream';

/**
 * What a stolen controller can send: a `zfs send -R -p` package (at HOSTILE_PACKAGE on ctl) whose children carry
 * mountpoint=/root/.ssh with canmount=on, setuid/exec/devices on, a setuid shell and an authorized_keys file, a zvol
 * (EVIL_POOL/pkg/vol@s1) and reservations. Made in a file-backed pool with an altroot, so nothing mounts over ctl's
 * own /root/.ssh.
 */
export async function makeHostilePackage(lab: VmLab): Promise<void> {
  await lab.ctl.check(
    [
      `{ zpool destroy ${EVIL_POOL} 2>/dev/null; rm -f /var/tmp/evil.img; truncate -s 256M /var/tmp/evil.img; }`,
      `zpool create -f -R /var/tmp/evilroot -O compression=off ${EVIL_POOL} /var/tmp/evil.img`,
      `zfs create -o mountpoint=/srv/pkg ${EVIL_POOL}/pkg`,
      `zfs create -o mountpoint=/root/.ssh -o canmount=on -o setuid=on -o exec=on -o devices=on ${EVIL_POOL}/pkg/ssh`,
      `echo 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEVILEVILEVILEVILEVILEVILEVILEVILEVILEVILEVIL evil' > /var/tmp/evilroot/root/.ssh/authorized_keys`,
      `cp /bin/sh /var/tmp/evilroot/root/.ssh/rootshell && chmod 4755 /var/tmp/evilroot/root/.ssh/rootshell`,
      `zfs create -V 16M ${EVIL_POOL}/pkg/vol`,
      `zfs create -o mountpoint=/srv/res -o reservation=24M -o refreservation=16M ${EVIL_POOL}/pkg/res`,
      `zfs snapshot -r ${EVIL_POOL}/pkg@s1`,
      `zfs send -R -p ${EVIL_POOL}/pkg@s1 > ${HOSTILE_PACKAGE}`,
    ].join(' && '),
    { timeoutMs: 120_000 },
  );
}

export async function removeHostilePackage(lab: VmLab): Promise<void> {
  await lab.ctl.sh(`zpool destroy ${EVIL_POOL}; rm -f /var/tmp/evil.img ${HOSTILE_PACKAGE}`);
}

/** ssh from ctl with the controller's key (as user hozo: the agent is the forced command). */
export const AGENT_SSH = `ssh -i /etc/hozo/box_key -o UserKnownHostsFile=/etc/hozo/known_hosts -o BatchMode=yes -o ${LAB_KEX}`;
