// One OpenZFS lab VM: a QEMU process (KVM where it really works, else TCG software emulation) booting the cached
// image's kernel with a qcow2 overlay over the read-only root, raw sparse pool disks, one NIC on the lab bridge and the
// project shared read-only over 9p. Everything needed to boot it again is in <dir>/vm.json, so the wake listener (a
// separate process inside the lab namespace) can cold-boot a powered-off VM when a magic packet for its MAC arrives.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { shellJoin } from '../../transport/quote.js';
import { LabError, check, pidAlive, run, sleep, tail, type RunOpts, type RunResult } from '../proc.js';
import { qmp, qmpStatus } from './qmp.js';

export interface VmSpec {
  readonly lab: string;
  readonly name: string;
  readonly dir: string;
  readonly namespace: string;
  readonly ip: string;
  readonly prefix: number;
  readonly mac: string;
  readonly tap: string;
  readonly image: string;
  readonly share: string;
  readonly memMB: number;
  readonly disks: readonly { readonly id: string; readonly sizeMB: number }[];
  readonly accel: 'kvm' | 'tcg';
}

/** QEMU's -name: cleanup finds a lab's VMs by it in /proc/<pid>/cmdline. */
export const qemuName = (lab: string, vm: string) => `hozo-lab-${lab}-${vm}`;

/** KVM only where it is real: kvm-pvm (a paravirtual KVM that runs only PVM guest kernels) hangs stock kernels. */
export function detectAccel(): 'kvm' | 'tcg' {
  const forced = process.env['HOZO_LAB_ACCEL'];
  if (forced === 'kvm' || forced === 'tcg') return forced;
  try {
    if (existsSync('/sys/module/kvm_pvm')) return 'tcg';
    statSync('/dev/kvm');
    return existsSync('/sys/module/kvm_intel') || existsSync('/sys/module/kvm_amd') ? 'kvm' : 'tcg';
  } catch {
    return 'tcg';
  }
}

export function qemuArgv(s: VmSpec): string[] {
  const append = ['root=/dev/vda', 'rw', 'console=ttyS0', `systemd.hostname=${s.name}`, `hozo.ip=${s.ip}/${s.prefix}`, `hozo.mac=${s.mac}`].join(' ');
  const accel = s.accel === 'kvm' ? ['-accel', 'kvm', '-cpu', 'host,-arch-capabilities'] : ['-accel', 'tcg,thread=multi', '-cpu', 'qemu64'];
  const drives = [
    '-drive',
    `file=${join(s.dir, 'overlay.qcow2')},if=none,id=root,format=qcow2,discard=unmap`,
    '-device',
    'virtio-blk-pci,drive=root,serial=root',
  ];
  for (const d of s.disks) {
    drives.push('-drive', `file=${join(s.dir, `${d.id}.img`)},if=none,id=${d.id},format=raw,discard=unmap`);
    drives.push('-device', `virtio-blk-pci,drive=${d.id},serial=${d.id},id=dev-${d.id}`);
  }
  return [
    'qemu-system-x86_64',
    '-name',
    qemuName(s.lab, s.name),
    ...accel,
    '-m',
    String(s.memMB),
    '-smp',
    '1',
    '-kernel',
    join(s.image, 'vmlinuz'),
    '-initrd',
    join(s.image, 'initrd.img'),
    '-append',
    append,
    ...drives,
    '-netdev',
    `tap,id=n0,ifname=${s.tap},script=no,downscript=no`,
    '-device',
    `virtio-net-pci,netdev=n0,mac=${s.mac}`,
    '-fsdev',
    `local,id=hozo,path=${s.share},security_model=none,readonly=on`,
    '-device',
    'virtio-9p-pci,fsdev=hozo,mount_tag=hozo',
    '-global',
    'PIIX4_PM.disable_s3=0',
    '-display',
    'none',
    '-vga',
    'none',
    '-serial',
    `file:${join(s.dir, 'serial.log')}`,
    '-monitor',
    'none',
    '-qmp',
    `unix:${join(s.dir, 'qmp.sock')},server=on,wait=off`,
    '-daemonize',
    '-pidfile',
    join(s.dir, 'qemu.pid'),
  ];
}

export const SSH_OPTS = (dir: string, key: string): string[] => [
  '-i',
  key,
  '-o',
  'StrictHostKeyChecking=no', // the lab's own root channel into its own throwaway VMs; hozo itself always pins keys
  '-o',
  'UserKnownHostsFile=/dev/null',
  '-o',
  'LogLevel=ERROR',
  '-o',
  'BatchMode=yes',
  '-o',
  'ConnectTimeout=5',
  '-o',
  'ServerAliveInterval=5',
  '-o',
  'ServerAliveCountMax=3',
  '-o',
  `ControlPath=${join(dir, 'cm')}`,
];

/** Before qemu starts: no stale QMP socket or pid file, an empty serial log, the boot time (for waitSsh). Shared
 *  with the wake listener, which cold-boots a VM from its vm.json. */
export function resetBootFiles(dir: string): void {
  rmSync(join(dir, 'qmp.sock'), { force: true });
  rmSync(join(dir, 'qemu.pid'), { force: true });
  writeFileSync(join(dir, 'serial.log'), '');
  writeFileSync(join(dir, 'booted-at'), String(Date.now()));
}

export class Vm {
  readonly spec: VmSpec;
  readonly key: string;
  constructor(spec: VmSpec, key: string) {
    this.spec = spec;
    this.key = key;
  }
  get name(): string {
    return this.spec.name;
  }
  get ip(): string {
    return this.spec.ip;
  }
  get mac(): string {
    return this.spec.mac;
  }
  get dir(): string {
    return this.spec.dir;
  }
  get qmpSocket(): string {
    return join(this.spec.dir, 'qmp.sock');
  }
  get serialLog(): string {
    return join(this.spec.dir, 'serial.log');
  }

  /** The qemu process id, if it runs. */
  pid(): number | undefined {
    try {
      const p = Number(readFileSync(join(this.spec.dir, 'qemu.pid'), 'utf8').trim());
      return p > 0 && pidAlive(p) ? p : undefined;
    } catch {
      return undefined;
    }
  }
  running(): boolean {
    return this.pid() !== undefined;
  }

  /** Creates the overlay and disks (fresh: discard the old ones) and writes vm.json. */
  prepare(fresh: boolean): void {
    const s = this.spec;
    mkdirSync(s.dir, { recursive: true });
    if (fresh) for (const f of ['overlay.qcow2', ...s.disks.map((d) => `${d.id}.img`)]) rmSync(join(s.dir, f), { force: true });
    writeFileSync(join(s.dir, 'vm.json'), JSON.stringify({ ...s, argv: qemuArgv(s) }, null, 2));
  }

  async createDisks(): Promise<void> {
    const s = this.spec;
    if (!existsSync(join(s.dir, 'overlay.qcow2'))) {
      await check(['qemu-img', 'create', '-q', '-f', 'qcow2', '-b', join(s.image, 'root.img'), '-F', 'raw', join(s.dir, 'overlay.qcow2')]);
    }
    for (const d of s.disks) {
      const f = join(s.dir, `${d.id}.img`);
      if (!existsSync(f)) await check(['truncate', '-s', `${d.sizeMB}M`, f]);
    }
  }

  /** Starts qemu (daemonized, inside the lab namespace). */
  async boot(): Promise<void> {
    if (this.running()) return;
    await this.createDisks();
    await this.closeSsh();
    resetBootFiles(this.spec.dir);
    const r = await run(['ip', 'netns', 'exec', this.spec.namespace, ...qemuArgv(this.spec)], { timeoutMs: 30_000 });
    if (r.exitCode !== 0) throw new LabError(`qemu for ${this.name} did not start: ${r.stderr.trim() || r.stdout.trim()}`);
  }

  /** ssh root@vm via the lab namespace, over the multiplexing master when one is open. */
  sshArgv(command: string): string[] {
    return ['ip', 'netns', 'exec', this.spec.namespace, 'ssh', ...SSH_OPTS(this.spec.dir, this.key), '-o', 'ControlMaster=no', `root@${this.spec.ip}`, command];
  }

  /**
   * Opens the multiplexing master (one emulated key exchange costs ~3 s) unless one is open. It is started with no
   * pipes: a master forked by a command whose output is being read would hold that pipe open for its whole life.
   */
  async master(): Promise<boolean> {
    const ns = ['ip', 'netns', 'exec', this.spec.namespace, 'ssh', ...SSH_OPTS(this.spec.dir, this.key)];
    if (existsSync(join(this.spec.dir, 'cm'))) {
      const r = await run([...ns, '-O', 'check', `root@${this.spec.ip}`], { timeoutMs: 5000 });
      if (r.exitCode === 0) return true;
      rmSync(join(this.spec.dir, 'cm'), { force: true });
    }
    const [file, ...args] = [...ns, '-o', 'ControlMaster=yes', '-o', 'ControlPersist=900', '-f', '-N', `root@${this.spec.ip}`];
    const code = await new Promise<number | null>((res) => {
      const child = spawn(file!, args, { stdio: 'ignore' });
      const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
      child.on('exit', (c) => {
        clearTimeout(timer);
        res(c);
      });
      child.on('error', () => res(null));
    });
    return code === 0;
  }

  /** Runs a shell script as root in the VM; never rejects for a non-zero exit. */
  async sh(script: string, opts: RunOpts = {}): Promise<RunResult> {
    await this.master();
    return run(this.sshArgv(shellJoin(['bash', '-c', script])), { timeoutMs: 120_000, ...opts });
  }

  /** Runs a shell script as root in the VM; trimmed stdout, throws on failure. */
  async check(script: string, opts: RunOpts = {}): Promise<string> {
    const r = await this.sh(script, opts);
    if (r.exitCode !== 0) {
      const why = r.exitCode === null ? 'was killed (timeout?)' : `exited ${r.exitCode}`;
      throw new LabError(`${this.name}: \`${script.slice(0, 300)}\` ${why}: ${r.stderr.trim() || r.stdout.trim() || '(no output)'}`);
    }
    return r.stdout.trim();
  }

  /** Writes a file in the VM (as root). */
  async writeFile(path: string, content: string, mode = '0644', owner = 'root'): Promise<void> {
    await this.check(`install -D -m ${mode} -o ${owner} /dev/stdin ${shellJoin([path])}`, { input: content });
  }

  /** Closes the multiplexing master (after a reboot or power-off it points at a dead connection). */
  async closeSsh(): Promise<void> {
    if (!existsSync(join(this.spec.dir, 'cm'))) return;
    await run(['ip', 'netns', 'exec', this.spec.namespace, 'ssh', ...SSH_OPTS(this.spec.dir, this.key), '-O', 'exit', `root@${this.spec.ip}`], {
      timeoutMs: 5000,
    }).catch(() => undefined);
    rmSync(join(this.spec.dir, 'cm'), { force: true });
  }

  /** A real reboot of the guest (systemd's, the VM keeps running); resolves once SSH answers from the new boot. */
  async reboot(timeoutMs = 420_000): Promise<void> {
    const bootId = await this.check('cat /proc/sys/kernel/random/boot_id');
    await this.sh('systemctl reboot');
    await this.closeSsh();
    const deadline = Date.now() + timeoutMs;
    for (let i = 0; i < 1000 && Date.now() < deadline; i++) {
      await sleep(2000);
      if (!(await this.master())) continue;
      const now = await run(this.sshArgv('cat /proc/sys/kernel/random/boot_id'), { timeoutMs: 10_000 });
      if (now.exitCode === 0 && now.stdout.trim() !== bootId) return;
      await this.closeSsh();
    }
    throw new LabError(`VM ${this.name}: not back from a reboot within ${timeoutMs} ms; serial log:\n${tail(this.serialLog, 30)}`);
  }

  /** Waits until `ssh true` works; returns ms since the last boot. */
  async waitSsh(timeoutMs = 240_000): Promise<number> {
    const deadline = Date.now() + timeoutMs;
    for (let i = 0; i < 2000; i++) {
      if (!this.running() && (await this.status().catch(() => 'gone')) === 'gone') {
        throw new LabError(`VM ${this.name}: qemu exited while booting; serial log:\n${tail(this.serialLog, 30)}`);
      }
      if (await this.master()) return Date.now() - Number(readFileSync(join(this.spec.dir, 'booted-at'), 'utf8'));
      if (Date.now() > deadline) break;
      await this.closeSsh();
      await sleep(1000);
    }
    throw new LabError(`VM ${this.name}: no SSH within ${timeoutMs} ms; serial log:\n${tail(this.serialLog, 30)}`);
  }

  /** QMP status ('running', 'suspended', …) or 'gone' when qemu is not running. */
  async status(): Promise<string> {
    if (!this.running()) return 'gone';
    return qmpStatus(this.qmpSocket);
  }

  qmp(execute: string, args?: Record<string, unknown>): Promise<unknown> {
    return qmp(this.qmpSocket, execute, args);
  }

  /** Waits until qemu has exited (the guest powered itself off). */
  async waitGone(timeoutMs = 120_000): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (!this.running()) return true;
      await sleep(250);
    }
    return false;
  }

  /** Waits for a QMP status (e.g. 'suspended'). */
  async waitStatus(want: string, timeoutMs = 60_000): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if ((await this.status().catch(() => 'error')) === want) return true;
      await sleep(250);
    }
    return false;
  }

  /** Hard stop (QMP quit, then SIGKILL). */
  async kill(): Promise<void> {
    await this.closeSsh();
    const pid = this.pid();
    if (pid === undefined) return;
    await this.qmp('quit').catch(() => undefined);
    for (let i = 0; i < 40 && this.running(); i++) await sleep(100);
    if (this.running()) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone
      }
      for (let i = 0; i < 40 && this.running(); i++) await sleep(100);
    }
  }

  /** Attaches a pool disk after boot (a USB drive that appears late). */
  async hotplugDisk(id: string, sizeMB: number): Promise<void> {
    const f = join(this.spec.dir, `${id}.img`);
    if (!existsSync(f)) await check(['truncate', '-s', `${sizeMB}M`, f]);
    await this.qmp('blockdev-add', { driver: 'raw', 'node-name': `node-${id}`, file: { driver: 'file', filename: f } });
    await this.qmp('device_add', { driver: 'virtio-blk-pci', drive: `node-${id}`, serial: id, id: `dev-${id}` });
  }

  /** Detaches a disk hotplugDisk attached (the USB drive pulled): the guest releases it, then QEMU forgets it. */
  async unplugDisk(id: string, timeoutMs = 60_000): Promise<void> {
    await this.qmp('device_del', { id: `dev-${id}` });
    const deadline = Date.now() + timeoutMs;
    const present = async () => ((await this.qmp('qom-list', { path: '/machine/peripheral' })) as { name: string }[]).some((p) => p.name === `dev-${id}`);
    while (await present()) {
      if (Date.now() > deadline) throw new LabError(`${this.name}: the guest did not release disk ${id} within ${timeoutMs} ms`);
      await sleep(250);
    }
    // The device leaves /machine/peripheral before QEMU drops its reference to the block node (the unrealize
    // finishes later), so blockdev-del can still say "is in use" for a moment: retry that one answer, bounded.
    for (;;) {
      try {
        await this.qmp('blockdev-del', { 'node-name': `node-${id}` });
        return;
      } catch (e) {
        if (!(e instanceof LabError) || !/is in use/.test(e.message) || Date.now() > deadline) throw e;
        await sleep(250);
      }
    }
  }

  describe(): string {
    return `${this.name} ${this.ip} ${this.mac} ssh: ${shellJoin(this.sshArgv(''))}`;
  }
}
