// A remote "backup box" on this machine: a network namespace with its own veth, MAC and subnet, its own zfs-fuse
// daemon (private mount namespace with tmpfs over /var/run/zfs, /var/lib/zfs, /var/lock/zfs) and pool, and its own
// sshd. The box is THIS machine: nothing here ever powers anything off; "asleep" means "sshd stopped".
import { spawn } from 'node:child_process';
import {
  appendFileSync,
  closeSync,
  existsSync,
  lstatSync,
  mkdirSync,
  openSync,
  readFileSync,
  readlinkSync,
  rmSync,
  symlinkSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { join, resolve } from 'node:path';
import { shellJoin } from '../transport/quote.js';
import type { CommandResult, Runner } from '../transport/runner.js';
import { LAB_ROOT, createPool, destroyPool, listPools, type Pool, type ZfsExec } from './pools.js';
import { LabError, check, commOf, killAndWait, listPids, nsOf, pidAlive, portOpen, run, tail, waitFor, which, type RunOpts, type RunResult } from './proc.js';

/** Environment marker carried by every box process (daemon, sshd, wake listener): cleanup finds leftovers by it. */
export const BOX_MARKER_ENV = 'HOZO_LAB_BOX';
// "vm" is not a lab id: /tmp/hozo-lab/vm holds the OpenZFS VM labs, which a zfs-fuse cleanup must never take for a
// stale lab of its own (it removed a running CI's VM lab once).
export const LAB_ID = /^(?!vm$)[a-z0-9]{1,10}$/;
export const SSH_PORT = 22;
export const WAKE_PORT = 9;

/** Names derived from a lab id; interface names stay within Linux's 15 characters. */
export function boxNames(id: string): { namespace: string; hostIf: string; boxIf: string } {
  if (!LAB_ID.test(id)) throw new LabError(`lab id "${id}" must match ${LAB_ID} (it becomes part of interface names)`);
  return { namespace: `hzlab-${id}`, hostIf: `hzh-${id}`, boxIf: `hzb-${id}` };
}

export interface BoxOptions {
  /** Lab id: [a-z0-9]{1,10}. */
  readonly id: string;
  /** Directory for the box's files (keys, configs, logs, pool image). Default `<LAB_ROOT>/<id>/box`. */
  readonly dir?: string;
  /** Third octet of 10.77.<n>.0/24 (1-250). Default derived from the id, skipping subnets in use. */
  readonly subnet?: number;
  /** The box's pool name (in its own daemon, so it may equal a host pool's name). Default "backup". */
  readonly pool?: string;
  /** Default 512 (sparse). */
  readonly poolSizeMB?: number;
  /** Start sshd at creation (the box is awake). Default true. */
  readonly sshd?: boolean;
  /** Start the wake listener at creation. Default false. */
  readonly wakeListener?: boolean | WakeListenerOptions;
}

export interface WakeListenerOptions {
  /** Delay between the magic packet and sshd starting, to simulate a boot. Default 0. */
  readonly bootDelayMs?: number;
  /** Start sshd when woken. Default true. */
  readonly startSshd?: boolean;
}

export interface WakeEvent {
  readonly t: number;
  readonly from: string;
  readonly action: 'boot' | 'already-awake' | 'booting';
}

/** A host entry in the config file's input shape (hosts.<name>), pointing at this box. */
export interface LabHostConfig {
  address: string;
  port: number;
  user: string;
  sshKeyFile: string;
  knownHostsFile: string;
  sshOptions: string[];
  wake: { method: 'wol'; mac: string; address: string; port: number };
  /** zfs-fuse has no native encryption, so nothing could go raw: the lab box is trusted (plaintext backups). */
  trust: 'trusted';
}

export interface StopSshdOptions {
  /** Also kill open SSH sessions and everything they run (a sleeping box drops them). Default true. */
  readonly killSessions?: boolean;
}

export interface Box {
  readonly id: string;
  readonly dir: string;
  readonly namespace: string;
  /** Host-side veth (in the host namespace) and box-side veth (in the box namespace). */
  readonly hostIf: string;
  readonly boxIf: string;
  readonly subnetIndex: number;
  /** "10.77.<n>.0/24". */
  readonly subnet: string;
  readonly hostIp: string;
  readonly boxIp: string;
  readonly broadcast: string;
  /** The box NIC's MAC (52:54:00:…), the target of magic packets. */
  readonly mac: string;
  readonly pool: Pool;
  /** Pid of the box's zfs-fuse; its mount+net namespaces are the box. */
  readonly daemonPid: number;
  readonly user: 'root';
  readonly sshPort: number;
  readonly wakePort: number;
  readonly files: {
    readonly clientKey: string;
    readonly clientPublicKey: string;
    readonly knownHosts: string;
    readonly authorizedKeys: string;
    readonly hostKey: string;
    readonly sshdConfig: string;
    readonly sshdPid: string;
    readonly sshdLog: string;
    readonly zfsLog: string;
    readonly wakeLog: string;
    readonly wakeEvents: string;
    /** HOME of SSH sessions (root's own .bashrc is slow). */
    readonly home: string;
    /** Shell script that puts the box to sleep from inside it (stops its sshd); refuses to run on the host. */
    readonly sleepScript: string;
    /** Optional shell script run at each "boot" (wake listener, startSshd on a closed port) before sshd starts: what
     *  a real reboot does to state that outlives it here (installAgent puts the agent's there). */
    readonly bootHook: string;
  };
  /** Argv that puts the box to sleep when run inside the box (e.g. as the agent's power-off command). */
  readonly sleepCommand: readonly string[];
  /** `root@<boxIp>`. */
  readonly sshDestination: string;
  /** ssh options (no destination): own key, pinned known_hosts, strict checking, BatchMode, no user config. */
  sshArgs(): string[];
  /** `ssh <sshArgs> root@box '<quoted argv>'`, as an argv for the local machine. */
  sshCommand(remoteArgv: readonly string[]): string[];
  /** Runs argv on the box over real SSH; never rejects for a non-zero exit. */
  ssh(remoteArgv: readonly string[], opts?: RunOpts): Promise<RunResult>;
  /** Local argv running `argv` inside the box's namespaces (nsenter into its daemon), no SSH. */
  commandFor(argv: readonly string[]): string[];
  /** Runs argv inside the box's namespaces; never rejects for a non-zero exit. */
  exec(argv: readonly string[], opts?: RunOpts): Promise<RunResult>;
  /** `zfs …` against the box's daemon; trimmed stdout, throws on failure. */
  zfs(argv: readonly string[], opts?: RunOpts): Promise<string>;
  /** `zpool …` against the box's daemon; trimmed stdout, throws on failure. */
  zpool(argv: readonly string[], opts?: RunOpts): Promise<string>;
  /** A Runner (transport/runner.ts) executing inside the box without SSH. */
  readonly runner: Runner;
  /** Replaces authorized_keys (e.g. a forced-command line for the agent). */
  setAuthorizedKeys(lines: readonly string[]): void;
  /** The lab client key's authorized_keys line, with optional options (`command="…",restrict`). */
  clientKeyLine(options?: string): string;
  startSshd(): Promise<void>;
  stopSshd(opts?: StopSshdOptions): Promise<void>;
  /** The sshd listener's pid when running. */
  sshdPid(): number | undefined;
  sshPortOpen(timeoutMs?: number): Promise<boolean>;
  startWakeListener(opts?: WakeListenerOptions): Promise<void>;
  stopWakeListener(): Promise<void>;
  /** Magic packets for this box's MAC received so far. */
  wakeEvents(): WakeEvent[];
  hostConfig(): LabHostConfig;
  destroy(): Promise<void>;
}

const HOST_MNT = () => nsOf('self', 'mnt');
const HOST_NET = () => nsOf('self', 'net');

// --- subnet claims: LAB_ROOT/.net/<n> -> id, created atomically (symlink) so parallel labs never share a /24 ---

function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (const c of Buffer.from(s)) h = Math.imul(h ^ c, 0x01000193) >>> 0;
  return h;
}

async function subnetsInUse(): Promise<Set<number>> {
  const out = await check(['ip', '-o', '-4', 'addr', 'show']);
  const used = new Set<number>();
  for (const m of out.matchAll(/inet 10\.77\.(\d+)\./g)) used.add(Number(m[1]));
  return used;
}

function labAlive(id: string): boolean {
  if (!LAB_ID.test(id)) return false;
  const n = boxNames(id);
  return existsSync(`/run/netns/${n.namespace}`) || existsSync(`/sys/class/net/${n.hostIf}`);
}

async function claimSubnet(id: string, wanted: number | undefined): Promise<number> {
  const dir = join(LAB_ROOT, '.net');
  mkdirSync(dir, { recursive: true });
  const used = await subnetsInUse();
  const start = wanted ?? 1 + (fnv1a(id) % 250);
  for (let k = 0; k < 250; k++) {
    const n = ((start - 1 + k) % 250) + 1;
    if (wanted !== undefined && k > 0) break;
    if (used.has(n)) continue;
    const path = join(dir, String(n));
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        symlinkSync(id, path);
        return n;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
        let owner: string;
        try {
          owner = readlinkSync(path);
        } catch {
          continue;
        }
        if (owner === id) return n;
        let young = true;
        try {
          young = Date.now() - lstatSync(path).mtimeMs < 60_000;
        } catch {
          continue;
        }
        if (young || labAlive(owner)) break;
        try {
          unlinkSync(path); // a claim left by a lab that no longer exists
        } catch {
          // raced
        }
      }
    }
  }
  throw new LabError(wanted !== undefined ? `subnet 10.77.${wanted}.0/24 is in use` : 'no free 10.77.<n>.0/24 subnet for the lab');
}

/** Removes the subnet claims owned by id. */
export function releaseSubnets(id: string): void {
  const dir = join(LAB_ROOT, '.net');
  if (!existsSync(dir)) return;
  for (let n = 1; n <= 250; n++) {
    const path = join(dir, String(n));
    try {
      if (readlinkSync(path) === id) unlinkSync(path);
    } catch {
      // no claim
    }
  }
}

// --- scripts run inside the box ---

/** Runs as `ip netns exec NS unshare --mount --propagation private bash box-up.sh HOST_MNT_NS DIR`. */
const BOX_UP_SCRIPT = `#!/bin/bash
# Brings up the box's own zfs-fuse daemon in a private mount namespace (written by src/lab/box.ts).
set -euo pipefail
host_mnt="$1"; dir="$2"
if [ "$(readlink /proc/self/ns/mnt)" = "$host_mnt" ]; then
  echo "refusing: not in a private mount namespace" >&2; exit 90
fi
# Copies of the host's zfs-fuse mounts would keep host pools "busy" while the box lives: drop them here only.
umount -a -l -t fuse.zfs,fuse 2>/dev/null || true
mkdir -p /var/run/zfs /var/lib/zfs /var/lock/zfs
mount -t tmpfs -o size=4m,mode=0700 hozo-box-run /var/run/zfs
mount -t tmpfs -o size=4m,mode=0755 hozo-box-lib /var/lib/zfs
mount -t tmpfs -o size=4m,mode=0700 hozo-box-lock /var/lock/zfs
ip link set lo up
setsid zfs-fuse --no-daemon --no-kstat-mount </dev/null >>"$dir/zfs-fuse.log" 2>&1 &
pid=$!
echo "$pid" > "$dir/zfs-fuse.pid"
for _ in $(seq 1 200); do
  if [ -S /var/run/zfs/zfs_socket ] && zpool list >/dev/null 2>&1; then echo "ZFS_PID=$pid"; exit 0; fi
  kill -0 "$pid" 2>/dev/null || { echo "the box's zfs-fuse exited at start" >&2; exit 91; }
  sleep 0.05
done
echo "the box's zfs-fuse did not answer within 10 s" >&2
exit 92
`;

function sleepScript(hostNet: string, pidFile: string): string {
  return `#!/bin/sh
# The lab box's harmless "power off": stops its sshd (the box is asleep). Never touches the machine itself.
self_net=$(readlink /proc/self/ns/net)
if [ "$self_net" = '${hostNet}' ]; then echo "refusing: this is not inside the lab box" >&2; exit 1; fi
# The sessions open now (sshd processes of this namespace); a woken sshd started later must survive.
sessions=""
for d in /proc/[0-9]*; do
  c=; read -r c 2>/dev/null < "$d/comm" || continue
  [ "$c" = sshd ] || continue
  [ "$(readlink "$d/ns/net" 2>/dev/null)" = "$self_net" ] && sessions="$sessions \${d#/proc/}"
done
kill -TERM "$(cat '${pidFile}' 2>/dev/null)" 2>/dev/null || true
# Drop those sessions a moment later, as a sleeping machine would (lets this command return first).
setsid sh -c 'sleep 0.3; kill -TERM $0 2>/dev/null; exit 0' "$sessions" </dev/null >/dev/null 2>&1 &
exit 0
`;
}

/** The wake listener (node, run inside the box): on a magic packet for the box's MAC, logs it and starts sshd. */
const WAKE_LISTENER_JS = `
const dgram = require('node:dgram');
const fs = require('node:fs');
const { spawnSync } = require('node:child_process');
const c = JSON.parse(process.env.HOZO_WAKE_CONFIG);
const mac = Buffer.from(c.mac.split(':').map((h) => parseInt(h, 16)));
const isMagic = (m) => {
  for (let off = 0; off + 102 <= m.length; off++) {
    let ok = true;
    for (let i = 0; i < 6 && ok; i++) ok = m[off + i] === 0xff;
    for (let r = 0; r < 16 && ok; r++) ok = m.subarray(off + 6 + r * 6, off + 12 + r * 6).equals(mac);
    if (ok) return true;
  }
  return false;
};
const sshdAlive = () => {
  try { process.kill(Number(fs.readFileSync(c.pidFile, 'utf8').trim()), 0); return true; } catch { return false; }
};
let booting = false;
const sock = dgram.createSocket({ type: 'udp4', reuseAddr: true });
sock.on('message', (m, rinfo) => {
  if (!isMagic(m)) return;
  const action = booting ? 'booting' : sshdAlive() ? 'already-awake' : 'boot';
  fs.appendFileSync(c.events, JSON.stringify({ t: Date.now(), from: rinfo.address, action }) + '\\n');
  if (action !== 'boot' || !c.startSshd) return;
  booting = true;
  setTimeout(() => {
    if (fs.existsSync(c.bootHook)) spawnSync('/bin/sh', [c.bootHook], { stdio: 'inherit', timeout: 10000 });
    const r = spawnSync(c.sshd[0], c.sshd.slice(1), { stdio: 'inherit', timeout: 10000 });
    if (r.status !== 0) console.error('wake: sshd start failed', r.status, r.error || '');
    booting = false;
  }, c.bootDelayMs);
});
sock.on('error', (e) => { console.error('wake listener:', e.message); process.exit(1); });
sock.bind(c.port, '0.0.0.0', () => { fs.writeFileSync(c.ready, String(process.pid)); });
`;

function randomMacFor(n: number): string {
  return `52:54:00:77:${n.toString(16).padStart(2, '0')}:02`;
}

/** Processes whose network namespace is `netNs` (never the host's). */
function pidsInNet(netNs: string): number[] {
  if (netNs === HOST_NET()) throw new LabError('refusing to list the host network namespace as a box');
  return listPids().filter((p) => nsOf(p, 'net') === netNs && pidAlive(p));
}

function readPid(file: string): number | undefined {
  try {
    const n = Number(readFileSync(file, 'utf8').trim());
    return Number.isInteger(n) && n > 1 ? n : undefined;
  } catch {
    return undefined;
  }
}

export async function createBox(opts: BoxOptions): Promise<Box> {
  try {
    return await buildBox(opts);
  } catch (e) {
    await abandonBox(opts.id).catch(() => undefined);
    throw e;
  }
}

/**
 * Stops every process of box `id` (found by its environment marker and its namespace; never the host's own
 * zfs-fuse) and removes its namespace, veth and subnet claim. Idempotent; used after failures and for stale labs.
 */
export async function abandonBox(id: string, graceMs = 300): Promise<{ killed: number[]; survivors: number[] }> {
  const names = boxNames(id);
  const pids = new Set(markedBoxPids(id).keys());
  if (existsSync(`/run/netns/${names.namespace}`)) {
    const r = await run(['ip', 'netns', 'pids', names.namespace]);
    for (const p of r.stdout.split(/\s+/).filter(Boolean)) pids.add(Number(p));
  }
  const hostMnt = HOST_MNT();
  const victims = [...pids].filter((p) => !(commOf(p) === 'zfs-fuse' && nsOf(p, 'mnt') === hostMnt));
  const survivors = await killAndWait(victims, graceMs);
  await removeNetwork(id);
  releaseSubnets(id);
  return { killed: victims.filter((p) => !survivors.includes(p)), survivors };
}

async function buildBox(opts: BoxOptions): Promise<Box> {
  const id = opts.id;
  const names = boxNames(id);
  const dir = resolve(opts.dir ?? join(LAB_ROOT, id, 'box'));
  const poolName = opts.pool ?? 'backup';
  const sshdBin = which('sshd');
  if (sshdBin === undefined) throw new LabError('sshd not found (apt-get install openssh-server)');
  const hostMnt = HOST_MNT();
  const hostNet = HOST_NET();
  if (hostMnt === undefined || hostNet === undefined) throw new LabError('cannot read /proc/self/ns');

  mkdirSync(join(dir, 'home'), { recursive: true });
  mkdirSync('/run/sshd', { recursive: true });
  const files = {
    clientKey: join(dir, 'client_ed25519'),
    clientPublicKey: join(dir, 'client_ed25519.pub'),
    knownHosts: join(dir, 'known_hosts'),
    authorizedKeys: join(dir, 'authorized_keys'),
    hostKey: join(dir, 'ssh_host_ed25519_key'),
    sshdConfig: join(dir, 'sshd_config'),
    sshdPid: join(dir, 'sshd.pid'),
    sshdLog: join(dir, 'sshd.log'),
    zfsLog: join(dir, 'zfs-fuse.log'),
    wakeLog: join(dir, 'wake.log'),
    wakeEvents: join(dir, 'wake-events.jsonl'),
    home: join(dir, 'home'),
    sleepScript: join(dir, 'sleep.sh'),
    bootHook: join(dir, 'boot.sh'),
  };
  const upScript = join(dir, 'box-up.sh');
  const env = { [BOX_MARKER_ENV]: id };

  const n = await claimSubnet(id, opts.subnet);
  const hostIp = `10.77.${n}.1`;
  const boxIp = `10.77.${n}.2`;
  const broadcast = `10.77.${n}.255`;
  const mac = randomMacFor(n);

  // Keys and configs (ssh-keygen of ed25519 takes milliseconds).
  await Promise.all([
    check(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-C', `hozo-lab-${id}-host`, '-f', files.hostKey]),
    check(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-C', `hozo-lab-${id}-client`, '-f', files.clientKey]),
  ]);
  const hostPub = readFileSync(`${files.hostKey}.pub`, 'utf8').trim().split(/\s+/).slice(0, 2).join(' ');
  const clientPub = readFileSync(files.clientPublicKey, 'utf8').trim();
  writeFileSync(files.knownHosts, `${boxIp} ${hostPub}\n`);
  writeFileSync(files.authorizedKeys, `${clientPub}\n`, { mode: 0o600 });
  writeFileSync(
    files.sshdConfig,
    [
      `# sshd of lab box ${id} (written by src/lab/box.ts)`,
      `ListenAddress ${boxIp}:${SSH_PORT}`,
      `HostKey ${files.hostKey}`,
      `PidFile ${files.sshdPid}`,
      `AuthorizedKeysFile ${files.authorizedKeys}`,
      'PermitRootLogin prohibit-password',
      'PubkeyAuthentication yes',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'UsePAM no',
      'StrictModes no',
      'UseDNS no',
      'PrintMotd no',
      'PrintLastLog no',
      'PermitUserEnvironment no',
      `SetEnv HOME=${files.home}`,
      'LogLevel VERBOSE',
      'LoginGraceTime 30',
      'MaxStartups 100:30:200',
      'MaxSessions 100',
      'Subsystem sftp internal-sftp',
      '',
    ].join('\n'),
  );
  writeFileSync(upScript, BOX_UP_SCRIPT, { mode: 0o755 });
  writeFileSync(files.sleepScript, sleepScript(hostNet, files.sshdPid), { mode: 0o755 });

  // Namespace and veth pair, one `ip -batch` per side.
  await check(['ip', 'netns', 'add', names.namespace]);
  await check(['ip', '-batch', '-'], {
    input: [
      `link add ${names.hostIf} type veth peer name ${names.boxIf}`,
      `link set ${names.boxIf} netns ${names.namespace}`,
      `addr add ${hostIp}/24 broadcast ${broadcast} dev ${names.hostIf}`,
      `link set ${names.hostIf} up`,
      '',
    ].join('\n'),
  });
  await check(['ip', '-n', names.namespace, '-batch', '-'], {
    input: [
      `link set ${names.boxIf} address ${mac}`,
      `addr add ${boxIp}/24 broadcast ${broadcast} dev ${names.boxIf}`,
      `link set ${names.boxIf} up`,
      'link set lo up',
      '',
    ].join('\n'),
  });

  // The box's own zfs-fuse.
  const up = await run(['ip', 'netns', 'exec', names.namespace, 'unshare', '--mount', '--propagation', 'private', 'bash', upScript, hostMnt, dir], {
    env,
    timeoutMs: 20_000,
  });
  const daemonPid = Number(/ZFS_PID=(\d+)/.exec(up.stdout)?.[1] ?? readPid(join(dir, 'zfs-fuse.pid')) ?? NaN);
  if (up.exitCode !== 0 || !Number.isInteger(daemonPid)) {
    throw new LabError(`box ${id}: zfs-fuse did not come up: ${up.stderr.trim()}\nlog ${files.zfsLog}:\n${tail(files.zfsLog)}`);
  }
  const mntNs = nsOf(daemonPid, 'mnt');
  const netNs = nsOf(daemonPid, 'net');
  if (mntNs === undefined || netNs === undefined || mntNs === hostMnt || netNs === hostNet) {
    throw new LabError(`box ${id}: daemon ${daemonPid} is not in private namespaces`);
  }

  /** Safety: every command aimed at the box must land in the box's namespaces, never the host's. */
  const assertBox = (): string => {
    if (!pidAlive(daemonPid) || commOf(daemonPid) !== 'zfs-fuse') {
      throw new LabError(`box ${id}: its zfs-fuse daemon (pid ${daemonPid}) is gone; log:\n${tail(files.zfsLog)}`);
    }
    if (nsOf(daemonPid, 'mnt') !== mntNs || nsOf(daemonPid, 'net') !== netNs) {
      throw new LabError(`box ${id}: pid ${daemonPid} changed namespaces; refusing`);
    }
    return String(daemonPid);
  };
  const commandFor = (argv: readonly string[]): string[] => ['nsenter', '-t', assertBox(), '-m', '-n', ...argv];
  const exec = (argv: readonly string[], o: RunOpts = {}): Promise<RunResult> => run(commandFor(argv), { ...o, env: { ...env, ...(o.env ?? {}) } });
  const zfsExec: ZfsExec = (argv, o) => exec(argv, o);

  const pool = await createPool(poolName, {
    dir,
    sizeMB: opts.poolSizeMB ?? 512,
    mountpoint: join(dir, 'mnt', poolName),
    exec: zfsExec,
  });

  const sshdPid = (): number | undefined => {
    const p = readPid(files.sshdPid);
    return p !== undefined && pidAlive(p) && commOf(p) === 'sshd' && nsOf(p, 'net') === netNs ? p : undefined;
  };
  const sshPortOpen = (timeoutMs = 300) => portOpen(boxIp, SSH_PORT, timeoutMs);
  const sshdArgv = [sshdBin, '-f', files.sshdConfig, '-E', files.sshdLog];

  const startSshd = async (): Promise<void> => {
    if (sshdPid() !== undefined && (await sshPortOpen())) return;
    rmSync(files.sshdPid, { force: true });
    // A "boot": what a reboot would reset (see files.bootHook).
    if (existsSync(files.bootHook)) {
      const h = await exec(commandFor(['/bin/sh', files.bootHook]), { timeoutMs: 10_000 });
      if (h.exitCode !== 0) throw new LabError(`box ${id}: boot hook failed: ${h.stderr.trim()}`);
    }
    const r = await exec(sshdArgv, { timeoutMs: 10_000 });
    if (r.exitCode !== 0) throw new LabError(`box ${id}: sshd failed to start: ${r.stderr.trim()}\n${tail(files.sshdLog)}`);
    // sshd daemonizes before it binds: wait for the port and its pid file.
    await waitFor(`sshd of box ${id} to listen on ${boxIp}:${SSH_PORT}`, async () => sshdPid() !== undefined && (await sshPortOpen()), {
      timeoutMs: 10_000,
      intervalMs: 20,
      onTimeout: () => `log ${files.sshdLog}:\n${tail(files.sshdLog)}`,
    });
  };

  let wakePid: number | undefined;
  const stopSshd = async (o: StopSshdOptions = {}): Promise<void> => {
    const listener = sshdPid();
    const keep = new Set([daemonPid, ...(wakePid !== undefined ? [wakePid] : [])]);
    const targets = (o.killSessions ?? true) ? pidsInNet(netNs).filter((p) => !keep.has(p)) : listener !== undefined ? [listener] : [];
    const left = await killAndWait(targets, 2000);
    if (left.length > 0) throw new LabError(`box ${id}: processes ${left.join(',')} survived SIGKILL`);
    await waitFor(`port ${boxIp}:${SSH_PORT} to close`, async () => !(await sshPortOpen()), { timeoutMs: 5000, intervalMs: 20 });
    rmSync(files.sshdPid, { force: true });
  };

  const startWakeListener = async (w: WakeListenerOptions = {}): Promise<void> => {
    if (wakePid !== undefined && pidAlive(wakePid)) return;
    const ready = join(dir, 'wake.ready');
    rmSync(ready, { force: true });
    const config = {
      mac,
      port: WAKE_PORT,
      events: files.wakeEvents,
      ready,
      pidFile: files.sshdPid,
      sshd: sshdArgv,
      bootHook: files.bootHook,
      bootDelayMs: w.bootDelayMs ?? 0,
      startSshd: w.startSshd ?? true,
    };
    const fd = openSync(files.wakeLog, 'a');
    let child: ReturnType<typeof spawn>;
    try {
      const [file, ...args] = commandFor([process.execPath, '-e', WAKE_LISTENER_JS]);
      child = spawn(file!, args, {
        detached: true,
        stdio: ['ignore', fd, fd],
        env: { ...process.env, ...env, HOZO_WAKE_CONFIG: JSON.stringify(config) },
      });
    } finally {
      closeSync(fd);
    }
    child.on('error', () => undefined);
    child.unref();
    const pid = child.pid;
    if (pid === undefined) throw new LabError(`box ${id}: could not start the wake listener`);
    wakePid = pid;
    await waitFor(
      `the wake listener of box ${id}`,
      () => {
        if (!pidAlive(pid)) throw new LabError(`box ${id}: wake listener exited:\n${tail(files.wakeLog)}`);
        return existsSync(ready);
      },
      { timeoutMs: 10_000, intervalMs: 20, onTimeout: () => tail(files.wakeLog) },
    );
  };

  const stopWakeListener = async (): Promise<void> => {
    if (wakePid === undefined) return;
    if (nsOf(wakePid, 'net') === netNs) await killAndWait([wakePid], 1000);
    wakePid = undefined;
  };

  const wakeEvents = (): WakeEvent[] => {
    if (!existsSync(files.wakeEvents)) return [];
    return readFileSync(files.wakeEvents, 'utf8')
      .split('\n')
      .filter((l) => l.trim() !== '')
      .map((l) => JSON.parse(l) as WakeEvent);
  };

  const sshArgs = (): string[] => [
    '-F',
    'none',
    '-i',
    files.clientKey,
    '-o',
    'IdentitiesOnly=yes',
    '-o',
    `UserKnownHostsFile=${files.knownHosts}`,
    '-o',
    'GlobalKnownHostsFile=/dev/null',
    '-o',
    'StrictHostKeyChecking=yes',
    '-o',
    'BatchMode=yes',
    '-o',
    'ConnectTimeout=5',
    '-o',
    'LogLevel=ERROR',
    '-p',
    String(SSH_PORT),
    '-l',
    'root',
  ];
  const sshCommand = (remoteArgv: readonly string[]): string[] => ['ssh', ...sshArgs(), boxIp, shellJoin(remoteArgv)];

  let destroying: Promise<void> | undefined;
  const destroy = (): Promise<void> => (destroying ??= teardown());
  const teardown = async (): Promise<void> => {
    const problems: string[] = [];
    const attempt = async (what: string, fn: () => Promise<unknown>) => {
      const t = Date.now();
      try {
        await fn();
      } catch (e) {
        problems.push(`${what}: ${(e as Error).message}`);
      }
      if (process.env.HOZO_LAB_DEBUG) console.error(`box ${id} teardown, ${what}: ${Date.now() - t} ms`);
    };
    await attempt('wake listener', stopWakeListener);
    if (pidAlive(daemonPid) && commOf(daemonPid) === 'zfs-fuse') {
      await attempt('sshd', () => stopSshd({ killSessions: true }));
      // Destroy the box's pools inside its own daemon (only pools backed by files in the box's directory).
      await attempt('box pools', async () => {
        for (const p of await listPools(zfsExec)) await destroyPool(p, { exec: zfsExec, root: dir, timeoutMs: 5000 });
      });
    }
    await attempt('processes', async () => {
      // Only processes provably of this box (its namespace or its marker): a recorded pid may have been reused.
      const pids = new Set([...pidsInNet(netNs), ...markedBoxPids(id).keys()]);
      const left = await killAndWait([...pids], 200); // its pools are gone: nothing left to flush
      if (left.length > 0) throw new LabError(`processes ${left.join(',')} survived SIGKILL`);
    });
    await attempt('network', () => removeNetwork(id));
    releaseSubnets(id);
    rmSync(dir, { recursive: true, force: true });
    if (problems.length > 0) throw new LabError(`box ${id} teardown: ${problems.join('; ')}`);
  };

  const runner: Runner = {
    name: `lab-box-${id}`,
    local: false,
    async run(argv, o): Promise<CommandResult> {
      const r = await exec(argv, o?.timeoutMs !== undefined ? { timeoutMs: o.timeoutMs } : {});
      return { stdout: r.stdout, stderr: r.stderr, exitCode: r.exitCode };
    },
    commandFor,
    async close() {},
  };

  const box: Box = {
    id,
    dir,
    namespace: names.namespace,
    hostIf: names.hostIf,
    boxIf: names.boxIf,
    subnetIndex: n,
    subnet: `10.77.${n}.0/24`,
    hostIp,
    boxIp,
    broadcast,
    mac,
    pool,
    daemonPid,
    user: 'root',
    sshPort: SSH_PORT,
    wakePort: WAKE_PORT,
    files,
    sleepCommand: ['/bin/sh', files.sleepScript],
    sshDestination: `root@${boxIp}`,
    sshArgs,
    sshCommand,
    ssh: (remoteArgv, o) => run(sshCommand(remoteArgv), o),
    commandFor,
    exec,
    zfs: async (argv, o) => checkResult(['zfs', ...argv], await exec(['zfs', ...argv], o)),
    zpool: async (argv, o) => checkResult(['zpool', ...argv], await exec(['zpool', ...argv], o)),
    runner,
    setAuthorizedKeys: (lines) => writeFileSync(files.authorizedKeys, lines.map((l) => `${l}\n`).join(''), { mode: 0o600 }),
    clientKeyLine: (options) => (options ? `${options} ${clientPub}` : clientPub),
    startSshd,
    stopSshd,
    sshdPid,
    sshPortOpen,
    startWakeListener,
    stopWakeListener,
    wakeEvents,
    hostConfig: () => ({
      address: boxIp,
      port: SSH_PORT,
      user: 'root',
      sshKeyFile: files.clientKey,
      knownHostsFile: files.knownHosts,
      sshOptions: [],
      wake: { method: 'wol', mac, address: broadcast, port: WAKE_PORT },
      trust: 'trusted',
    }),
    destroy,
  };

  if (opts.sshd ?? true) await startSshd();
  if (opts.wakeListener) await startWakeListener(opts.wakeListener === true ? {} : opts.wakeListener);
  appendFileSync(join(dir, 'box.json'), JSON.stringify({ id, namespace: names.namespace, boxIp, mac, daemonPid }) + '\n');
  return box;
}

function checkResult(argv: readonly string[], r: RunResult): string {
  if (r.exitCode !== 0) {
    throw new LabError(`box: \`${argv.join(' ')}\` failed (exit ${r.exitCode}): ${r.stderr.trim() || r.stdout.trim()}`);
  }
  return r.stdout.trim();
}

/** Deletes the box's namespace and veth pair (idempotent) and waits until both are gone. */
export async function removeNetwork(id: string): Promise<void> {
  const n = boxNames(id);
  if (existsSync(`/run/netns/${n.namespace}`)) {
    const r = await run(['ip', 'netns', 'del', n.namespace]);
    if (r.exitCode !== 0 && existsSync(`/run/netns/${n.namespace}`)) throw new LabError(`ip netns del ${n.namespace}: ${r.stderr.trim()}`);
  }
  // The veth normally disappears with the namespace once its last process is gone; delete it explicitly anyway.
  if (existsSync(`/sys/class/net/${n.hostIf}`)) {
    const r = await run(['ip', 'link', 'del', n.hostIf]);
    if (r.exitCode !== 0 && !/Cannot find device/i.test(r.stderr) && existsSync(`/sys/class/net/${n.hostIf}`)) {
      throw new LabError(`ip link del ${n.hostIf}: ${r.stderr.trim()}`);
    }
  }
  await waitFor(`${n.namespace} and ${n.hostIf} to disappear`, () => !existsSync(`/run/netns/${n.namespace}`) && !existsSync(`/sys/class/net/${n.hostIf}`), {
    timeoutMs: 5000,
    intervalMs: 25,
  });
}

/**
 * Pids of leftover box processes of one lab id (or of every lab): by their environment marker, or, for sshd (whose
 * process title overwrites its environment), by the lab config file on its command line. Sessions are found through
 * the box's network namespace instead.
 */
export function markedBoxPids(id?: string): Map<number, string> {
  const out = new Map<number, string>();
  const hostMnt = HOST_MNT();
  const marker = new RegExp(`(?:^|\\0)${BOX_MARKER_ENV}=([^\\0]*)`);
  const root = LAB_ROOT.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const sshdConfig = new RegExp(`-f ${root}/([a-z0-9]{1,10})/box/sshd_config`);
  for (const p of listPids()) {
    if (p === process.pid) continue;
    const comm = commOf(p);
    // The host's own daemon is never a box process, whatever its environment says.
    if (comm === 'zfs-fuse' && nsOf(p, 'mnt') === hostMnt) continue;
    let v: string | undefined;
    try {
      v = marker.exec(readFileSync(`/proc/${p}/environ`, 'latin1'))?.[1];
      if (v === undefined && comm === 'sshd') v = sshdConfig.exec(readFileSync(`/proc/${p}/cmdline`, 'latin1').replace(/\0/g, ' '))?.[1];
    } catch {
      continue;
    }
    if (v !== undefined && (id === undefined || v === id)) out.set(p, v);
  }
  return out;
}
