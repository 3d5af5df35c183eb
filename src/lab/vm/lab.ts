// The OpenZFS lab: two QEMU VMs with their own kernels and OpenZFS modules (the image from scripts/lab-image.sh), on a
// bridge inside a network namespace the lab creates (10.78.<n>.0/24, nothing else reachable from it):
//   ctl  the source/controller host: pool `tank`, runs `hozo` (the project over 9p, the host's node binary)
//   box  the backup box: pool `backup`, user `hozo` with hozo-agent as the forced command of the controller's key
//        (delegated zfs permissions, as services.hozo.agent sets up), root reachable for `shutdown: ssh` boxes
// plus the wake listener (wake-listener.ts) that cold-boots or resumes a VM on a real magic packet.
//
//   const lab = await createVmLab({ id: 'oz' });     // boots both VMs (TCG: ~1 min)
//   await lab.ctl.check('zfs list');                  // root shell in a VM
//   const r = await lab.hozo(['run', 'nightly', '--json']);
//   await lab.destroy();
import { AGENT_BIN, HOZO_BIN, PROJECT_ROOT } from '../root.js';
import { closeSync, copyFileSync, existsSync, openSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { shellJoin } from '../../transport/quote.js';
import { AGENT_PERMISSIONS } from '../../zfs/delegation.js';
import { LAB_ROOT } from '../pools.js';
import { LabError, check, killAndWait, listPids, run, sleep, which, type RunOpts, type RunResult } from '../proc.js';
import { Vm, detectAccel, qemuName, type VmSpec } from './vm.js';

export { PROJECT_ROOT };
const VM_LAB_ID = /^[a-z0-9]{1,8}$/;
// The runtime (node, dist, production node_modules) is copied from the 9p share onto each VM's own disk: the share
// does not survive a suspend to RAM (processes reading it stay in D state after the resume), and a local copy also
// keeps a running suite on the code it started with while the checkout is rebuilt.
export const VM_RUNTIME = '/opt/hozo-rt';
export const VM_NODE = `${VM_RUNTIME}/node`;
// The programs as they ship (package.json "bin", the bundles of scripts/bundle.mjs).
export const VM_HOZO = `${VM_NODE} ${VM_RUNTIME}/dist/bin/hozo/hozo.js`;
export const VM_AGENT = `${VM_NODE} ${VM_RUNTIME}/dist/bin/agent/hozo-agent.js`;
const STAGE = join(PROJECT_ROOT, '.lab', 'vm-runtime');
export const AGENT_ROOT = 'backup/hozo';

export type Series = '2.3' | '2.1';

export interface VmLabOptions {
  readonly id?: string;
  readonly series?: Series;
  /** Third octet of 10.78.<n>.0/24; default 1. */
  readonly subnet?: number;
  readonly memMB?: number;
  readonly poolDiskMB?: number;
  /** The runtime was staged already (stageRuntime()), e.g. once for several labs booted together. */
  readonly staged?: boolean;
}

export interface VmLab {
  readonly id: string;
  readonly dir: string;
  readonly series: Series;
  readonly zfsVersion: string;
  readonly accel: 'kvm' | 'tcg';
  readonly namespace: string;
  readonly broadcast: string;
  readonly ctl: Vm;
  readonly box: Vm;
  /** Runs the built hozo in the controller VM: `hozo --config /etc/hozo/config.yaml …`, as root unless `user`. */
  hozo(args: readonly string[], opts?: RunOpts & { config?: string; user?: string }): Promise<RunResult>;
  /** Wake events logged by the listener. */
  wakeEvents(): { t: number; mac: string; vm?: string; action: string }[];
  /** Boots the box if it is off or suspended (without a magic packet) and waits for SSH. */
  ensureBoxUp(): Promise<void>;
  readonly timings: Readonly<Record<string, number>>;
  destroy(): Promise<void>;
}

const namesFor = (id: string) => ({ namespace: `hzvm-${id}`, bridge: 'br0' });

/** The cached image directory for a series, or undefined (run scripts/lab-image.sh to build it). */
export async function findImage(series: Series = '2.3'): Promise<string | undefined> {
  const r = await run(['bash', join(PROJECT_ROOT, 'scripts', 'lab-image.sh'), '--check', series], {
    timeoutMs: 120_000,
    env: { ...process.env, HOZO_LAB_FSCK: process.env['HOZO_LAB_FSCK'] ?? '0' } as Record<string, string>,
  });
  const dir = r.stdout.trim().split('\n').pop();
  return r.exitCode === 0 && dir !== undefined && existsSync(join(dir, 'manifest')) ? dir : undefined;
}

/** What this machine lacks for the OpenZFS lab (empty when it can run it). */
export function vmLabPrerequisites(): string[] {
  const missing: string[] = [];
  if (process.getuid?.() !== 0) missing.push('root');
  for (const t of ['qemu-system-x86_64', 'qemu-img', 'ip', 'ssh', 'ssh-keygen']) if (which(t) === undefined) missing.push(t);
  if (!existsSync(HOZO_BIN) || !existsSync(AGENT_BIN)) missing.push('a built project (npm run build)');
  return missing;
}

function manifestField(image: string, key: string): string {
  const line = readFileSync(join(image, 'manifest'), 'utf8')
    .split('\n')
    .find((l) => l.startsWith(`${key} `));
  return line?.slice(key.length + 1).trim() ?? '?';
}

/** Kills every qemu, listener and ssh master of lab `id` (or of all VM labs), removes namespaces and directories. */
export async function cleanupVmLabs(id?: string): Promise<string[]> {
  const done: string[] = [];
  const ids = new Set<string>();
  if (id !== undefined) ids.add(id);
  else {
    const netns = existsSync('/run/netns') ? readdirSync('/run/netns') : [];
    for (const n of netns) if (n.startsWith('hzvm-')) ids.add(n.slice(5));
    const root = join(LAB_ROOT, 'vm');
    if (existsSync(root)) for (const n of readdirSync(root)) ids.add(n);
  }
  for (const lab of ids) {
    const { namespace } = namesFor(lab);
    const victims: number[] = [];
    for (const pid of listPids()) {
      let cmd = '';
      try {
        cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      } catch {
        continue;
      }
      if (cmd.includes(`\0${qemuName(lab, '')}`) || cmd.includes(`${join(LAB_ROOT, 'vm', lab)}/`)) victims.push(pid);
    }
    if (existsSync(`/run/netns/${namespace}`)) {
      const r = await run(['ip', 'netns', 'pids', namespace]).catch(() => undefined);
      for (const p of r?.stdout.split(/\s+/).filter(Boolean).map(Number) ?? []) victims.push(p);
    }
    const killed = [...new Set(victims)].filter((p) => p !== process.pid);
    if (killed.length > 0) await killAndWait(killed, 2000);
    if (existsSync(`/run/netns/${namespace}`)) await run(['ip', 'netns', 'del', namespace]);
    rmSync(join(LAB_ROOT, 'vm', lab), { recursive: true, force: true });
    done.push(`${lab}: ${killed.length} process(es)`);
  }
  return done;
}

/** The box's agent config as the lab installs it (tests may write another). */
export function labAgentConfig(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    roots: [AGENT_ROOT],
    retention: { daily: 7, weekly: 4, monthly: 6 },
    idlePoweroffMinutes: null,
    // As on a NixOS box: user hozo cannot export or power off; a root unit does both (hozo-poweroff.service).
    poweroffCommand: ['sudo', '-n', '/usr/bin/systemctl', 'start', '--no-block', 'hozo-poweroff.service'],
    exportOnShutdown: false,
    poweroffDelaySeconds: 1,
    leaseDirectory: '/var/lib/hozo-agent/leases',
    stateDirectory: '/var/lib/hozo-agent',
    prepareTimeoutSeconds: 60,
    ...extra,
  };
}

/** The lab's agent config with one section per controller (`controllers`) in place of the top-level roots. */
export function labSectionedAgentConfig(controllers: Record<string, unknown>, extra: Record<string, unknown> = {}): Record<string, unknown> {
  const { roots: _roots, ...box } = labAgentConfig(extra);
  return { controllers, ...box };
}

export async function createVmLab(opts: VmLabOptions = {}): Promise<VmLab> {
  const id = opts.id ?? 'oz';
  if (!VM_LAB_ID.test(id)) throw new LabError(`VM lab id "${id}" must match ${VM_LAB_ID}`);
  const series = opts.series ?? '2.3';
  const missing = vmLabPrerequisites();
  if (missing.length > 0) throw new LabError(`cannot create the OpenZFS lab here: missing ${missing.join(', ')}`);
  const timings: Record<string, number> = {};
  const t0 = Date.now();
  const step = async <T>(name: string, fn: () => Promise<T>): Promise<T> => {
    const s = Date.now();
    try {
      return await fn();
    } finally {
      timings[name] = Date.now() - s;
    }
  };
  const image = await step('image', () => findImage(series));
  if (image === undefined) throw new LabError(`no OpenZFS ${series} lab image; build it with: bash scripts/lab-image.sh ${series}`);
  await step('cleanup', () => cleanupVmLabs(id));

  const subnet = opts.subnet ?? 1;
  if (!Number.isInteger(subnet) || subnet < 1 || subnet > 254)
    throw new LabError(`VM lab subnet must be an integer 1..254 (10.78.<subnet>.0/24), not ${subnet}`);
  const { namespace, bridge } = namesFor(id);
  const dir = join(LAB_ROOT, 'vm', id);
  mkdirSync(join(dir, 'vms'), { recursive: true });
  const accel = detectAccel();
  const net = `10.78.${subnet}`;
  const broadcast = `${net}.255`;

  if (opts.staged !== true) await step('stage runtime', () => stageRuntime());

  const key = join(dir, 'root_key');
  copyFileSync(join(image, 'id_ed25519'), key);
  await check(['chmod', '600', key]);

  await step('network', async () => {
    await check(['ip', 'netns', 'add', namespace]);
    const ns = (...a: string[]) => check(['ip', '-n', namespace, ...a]);
    await ns('link', 'set', 'lo', 'up');
    await ns('link', 'add', bridge, 'type', 'bridge');
    await ns('addr', 'add', `${net}.1/24`, 'brd', broadcast, 'dev', bridge);
    await ns('link', 'set', bridge, 'up');
    for (const t of ['tap1', 'tap2']) {
      await ns('tuntap', 'add', 'dev', t, 'mode', 'tap');
      await ns('link', 'set', t, 'master', bridge, 'up');
    }
  });

  const spec = (name: string, k: number): VmSpec => ({
    lab: id,
    name,
    dir: join(dir, 'vms', name),
    namespace,
    ip: `${net}.${10 + k}`,
    prefix: 24,
    mac: `52:54:00:78:${subnet.toString(16).padStart(2, '0')}:${(10 + k).toString(16).padStart(2, '0')}`,
    tap: `tap${k}`,
    image,
    share: PROJECT_ROOT,
    memMB: opts.memMB ?? 1536,
    disks: [{ id: 'd1', sizeMB: opts.poolDiskMB ?? 2048 }],
    accel,
  });
  const ctl = new Vm(spec('ctl', 1), key);
  const box = new Vm(spec('box', 2), key);
  let listener: ReturnType<typeof spawn> | undefined;

  const destroy = async () => {
    listener?.kill('SIGTERM');
    await Promise.all([ctl.kill(), box.kill()]);
    await cleanupVmLabs(id);
  };

  try {
    ctl.prepare(true);
    box.prepare(true);
    await step('wake listener', async () => {
      const script = join(PROJECT_ROOT, 'dist', 'src', 'lab', 'vm', 'wake-listener.js');
      // Its own log, never our stdio: a pipe it inherited would stay open as long as it lives.
      const logFd = openSync(join(dir, 'wake-listener.log'), 'a');
      listener = spawn('ip', ['netns', 'exec', namespace, process.execPath, script, dir], { stdio: ['ignore', logFd, logFd], detached: true });
      closeSync(logFd);
      listener.unref();
      for (let i = 0; i < 100 && !existsSync(join(dir, 'wake-listener.ready')); i++) await sleep(100);
      if (!existsSync(join(dir, 'wake-listener.ready'))) throw new LabError('the lab wake listener did not start');
    });
    await step('boot', async () => {
      await Promise.all([ctl.boot(), box.boot()]);
      await Promise.all([ctl.waitSsh(), box.waitSsh()]);
    });
    await step('setup', () => setupVms(ctl, box));
  } catch (e) {
    await destroy().catch(() => undefined);
    throw e;
  }
  const zfsVersion = await ctl.check('zfs version | head -1').catch(() => manifestField(image, 'zfs'));
  writeFileSync(
    join(dir, 'lab.json'),
    JSON.stringify(
      { id, series, zfsVersion, accel, namespace, broadcast, ctl: ctl.describe(), box: box.describe(), created: new Date().toISOString() },
      null,
      2,
    ),
  );
  timings['total'] = Date.now() - t0;

  return labObject({ id, dir, series, zfsVersion, accel, namespace, broadcast, ctl, box, timings, destroy });
}

interface LabParts {
  id: string;
  dir: string;
  series: Series;
  zfsVersion: string;
  accel: 'kvm' | 'tcg';
  namespace: string;
  broadcast: string;
  ctl: Vm;
  box: Vm;
  timings: Record<string, number>;
  destroy: () => Promise<void>;
}

function labObject(p: LabParts): VmLab {
  const { ctl, box, dir } = p;
  return {
    ...p,
    hozo: (args, o = {}) =>
      ctl.sh(
        `${o.user === undefined ? '' : `runuser -u ${shellJoin([o.user])} -- `}${VM_HOZO} --config ${o.config ?? '/etc/hozo/config.yaml'} ${shellJoin(args)}`,
        {
          timeoutMs: 600_000,
          ...o,
        },
      ),
    wakeEvents: () => {
      try {
        return readFileSync(join(dir, 'wake-events.jsonl'), 'utf8')
          .split('\n')
          .filter(Boolean)
          .map((l) => JSON.parse(l) as { t: number; mac: string; vm?: string; action: string });
      } catch {
        return [];
      }
    },
    ensureBoxUp: async () => {
      const st = await box.status().catch(() => 'gone');
      if (st === 'suspended') await box.qmp('system_wakeup');
      else if (st === 'paused') await box.qmp('cont');
      else if (st === 'gone') await box.boot();
      await box.closeSsh();
      await box.waitSsh();
    },
  };
}

/** A lab booted by another process (the test suite's global setup): VMs, keys and listener are found by id. */
export function attachVmLab(id = 'oz'): VmLab {
  const dir = join(LAB_ROOT, 'vm', id);
  const info = JSON.parse(readFileSync(join(dir, 'lab.json'), 'utf8')) as {
    series: Series;
    zfsVersion: string;
    accel: 'kvm' | 'tcg';
    namespace: string;
    broadcast: string;
  };
  const vm = (name: string) => {
    const { argv: _argv, ...spec } = JSON.parse(readFileSync(join(dir, 'vms', name, 'vm.json'), 'utf8')) as VmSpec & { argv: string[] };
    return new Vm(spec, join(dir, 'root_key'));
  };
  const ctl = vm('ctl');
  const box = vm('box');
  return labObject({
    id,
    dir,
    series: info.series,
    zfsVersion: info.zfsVersion,
    accel: info.accel,
    namespace: info.namespace,
    broadcast: info.broadcast,
    ctl,
    box,
    timings: {},
    destroy: async () => {
      await cleanupVmLabs(id);
    },
  });
}

/**
 * <project>/.lab/vm-runtime: the host's node binary (same glibc: both are Debian 12), dist/, package.json and the
 * production dependencies (`npm ls --omit=dev`), for installRuntime() to copy into the VMs.
 */
export async function stageRuntime(): Promise<void> {
  rmSync(STAGE, { recursive: true, force: true });
  mkdirSync(STAGE, { recursive: true });
  copyFileSync(process.execPath, join(STAGE, 'node'));
  await check(['chmod', '755', join(STAGE, 'node')]);
  const ls = await run(['npm', 'ls', '--omit=dev', '--all', '--parseable'], { timeoutMs: 60_000 });
  const dirs = ls.stdout
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l.startsWith(PROJECT_ROOT + '/node_modules/'))
    .map((l) => l.slice(PROJECT_ROOT.length + 1));
  if (dirs.length === 0) throw new LabError(`npm ls listed no production dependencies: ${ls.stderr.trim()}`);
  await check(['tar', '-C', PROJECT_ROOT, '-cf', join(STAGE, 'runtime.tar'), 'package.json', 'dist', ...dirs], { timeoutMs: 120_000 });
}

/** Copies the staged runtime onto the VM's disk (atomically replacing an older copy). */
export async function installRuntime(vm: Vm): Promise<void> {
  const r = VM_RUNTIME;
  // The share is mounted only for the copy: after a suspend to RAM a mounted 9p share hangs whatever touches it,
  // the shutdown's unmount included (minutes of "Job opt-hozo.mount/stop running").
  await vm.check(
    `grep -q '^hozo /opt/hozo 9p .*noauto' /etc/fstab || sed -i 's#^hozo /opt/hozo 9p \\([^ ]*\\)#hozo /opt/hozo 9p noauto,\\1#' /etc/fstab; ` +
      `mountpoint -q /opt/hozo || mount /opt/hozo; rm -rf ${r}.new && mkdir -p ${r}.new && ` +
      `tar -C ${r}.new -xf /opt/hozo/.lab/vm-runtime/runtime.tar && cp /opt/hozo/.lab/vm-runtime/node ${r}.new/node && ` +
      `umount /opt/hozo && rm -rf ${r} && mv ${r}.new ${r} && ${VM_NODE} --version && grep '^hozo ' /etc/fstab`,
    { timeoutMs: 300_000 },
  );
}

/** The controller's key on the box: hozo-agent as its forced command for user hozo, and plain root for ssh boxes. */
export async function authorizeController(ctl: Vm, box: Vm): Promise<void> {
  const ctlPub = await ctl.check('cat /etc/hozo/box_key.pub');
  await box.writeFile(
    '/home/hozo/.ssh/authorized_keys',
    `command="${VM_AGENT} serve --config /etc/hozo-agent/config.json",restrict ${ctlPub}\n`,
    '0600',
    'hozo',
  );
  const rootKeys = (await box.check('cat /root/.ssh/authorized_keys')).split('\n').filter((l) => l.trim() !== '' && !l.endsWith(' hozo@ctl'));
  await box.writeFile('/root/.ssh/authorized_keys', [...rootKeys, ctlPub, ''].join('\n'), '0600');
}

/** A root unit that imports `pool` by name at boot, unmounted, waiting up to `seconds` for its disk to appear. */
export function importUnit(pool: string, seconds: number): string {
  return [
    '[Unit]',
    `Description=hozo: import the ${pool} pool (unmounted)`,
    'After=zfs-import.target systemd-udev-settle.service',
    '[Service]',
    'Type=oneshot',
    'RemainAfterExit=yes',
    `ExecStart=/bin/sh -c 'for i in $(seq 1 ${seconds}); do zpool list ${pool} >/dev/null 2>&1 && exit 0; zpool import -N -d /dev/disk/by-id ${pool} && exit 0; sleep 1; done; exit 1'`,
    '[Install]',
    'WantedBy=multi-user.target',
    '',
  ].join('\n');
}

/** Pools, users, keys, the agent and the power-off unit, the way a user sets up a Debian box. */
async function setupVms(ctl: Vm, box: Vm): Promise<void> {
  // Both: the runtime on the VM's own disk.
  await Promise.all([ctl, box].map((vm) => installRuntime(vm)));
  // ctl: the source pool and the controller's key for the box (agent: user hozo; plain SSH: root).
  await ctl.check(
    [
      'zpool create -f -o cachefile=/etc/zfs/zpool.cache -O mountpoint=/tank -O compression=off tank /dev/disk/by-id/virtio-d1',
      'install -d -m 700 /etc/hozo',
      "ssh-keygen -q -t ed25519 -N '' -C hozo@ctl -f /etc/hozo/box_key",
      'mkdir -p /var/lib/hozo',
    ].join(' && '),
  );
  const boxHostKey = await box.check('cat /etc/ssh/ssh_host_ed25519_key.pub');
  await ctl.writeFile('/etc/hozo/known_hosts', `${box.ip} ${boxHostKey.split(' ').slice(0, 2).join(' ')}\n`);
  // box: pool, root dataset with delegation, agent, sudo for the power-off unit only.
  await box.check(
    [
      'zpool create -f -o cachefile=/etc/zfs/zpool.cache -O mountpoint=none -O canmount=off backup /dev/disk/by-id/virtio-d1',
      `zfs create -o canmount=off ${AGENT_ROOT}`,
      `zfs allow -u hozo ${AGENT_PERMISSIONS.join(',')} ${AGENT_ROOT}`,
      'install -d -o hozo -m 755 /var/lib/hozo-agent /var/lib/hozo-agent/leases /etc/hozo-agent',
      'install -d -m 700 /home/hozo/.ssh && chown hozo /home/hozo/.ssh',
    ].join(' && '),
  );
  await box.writeFile('/etc/hozo-agent/config.json', JSON.stringify(labAgentConfig(), null, 2));
  await authorizeController(ctl, box);
  await box.writeFile(
    '/etc/sudoers.d/hozo',
    [
      'hozo ALL=(root) NOPASSWD: /usr/bin/systemctl start --no-block hozo-poweroff.service',
      'hozo ALL=(root) NOPASSWD: /usr/bin/systemctl start --no-block hozo-suspend.service',
      '',
    ].join('\n'),
    '0440',
  );
  // As services.hozo.agent does: root exports the backup pool, then powers off. The suspend variant keeps it imported.
  await box.writeFile(
    '/etc/systemd/system/hozo-poweroff.service',
    [
      '[Unit]',
      'Description=hozo: export the backup pool and power off',
      '[Service]',
      'Type=oneshot',
      "ExecStart=/bin/sh -c 'zpool export backup || echo could not export backup >&2; systemctl poweroff'",
      '',
    ].join('\n'),
  );
  await box.writeFile(
    '/etc/systemd/system/hozo-suspend.service',
    ['[Unit]', 'Description=hozo: suspend to RAM', '[Service]', 'Type=oneshot', "ExecStart=/bin/sh -c 'sync; systemctl suspend'", ''].join('\n'),
  );
  // An exported pool leaves zpool.cache, so Debian's zfs-import-cache does not bring it back: import it by name at
  // boot (as NixOS's boot.zfs.extraPools does), without mounting anything, waiting up to a minute for a late disk.
  await box.writeFile('/etc/systemd/system/hozo-import-backup.service', importUnit('backup', 60));
  await box.check('systemctl daemon-reload && systemctl enable hozo-import-backup.service 2>/dev/null');
}
