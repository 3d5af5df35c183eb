// The test lab itself: a real source pool on the host's zfs-fuse, a box in a network namespace with its own
// zfs-fuse and sshd, a real `zfs send | ssh | zfs receive` between them, sleep/wake, and a leak-free teardown.
import { createSocket } from 'node:dgram';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { markedBoxPids } from '../../src/lab/box.js';
import { cleanupStaleLabs, createLab, labPrerequisites, type Lab } from '../../src/lab/lab.js';
import { pidAlive, waitFor } from '../../src/lab/proc.js';

const missing = labPrerequisites();
if (missing.length > 0) console.warn(`SKIP: tests/integration/lab.test.ts needs ${missing.join(', ')}`);

function magicPacket(mac: string): Buffer {
  const m = Buffer.from(mac.split(':').map((h) => parseInt(h, 16)));
  return Buffer.concat([Buffer.alloc(6, 0xff), ...Array.from({ length: 16 }, () => m)]);
}

async function sendMagic(mac: string, address: string, port: number, count = 3): Promise<void> {
  const sock = createSocket('udp4');
  await new Promise<void>((res) => sock.bind(0, res));
  sock.setBroadcast(true);
  for (let i = 0; i < count; i++) {
    await new Promise<void>((res, rej) => sock.send(magicPacket(mac), port, address, (e) => (e ? rej(e) : res())));
  }
  sock.close();
}

describe.skipIf(missing.length > 0)('test lab (real zfs-fuse, netns box, OpenSSH)', () => {
  let lab: Lab;
  let src: string;

  beforeAll(async () => {
    lab = await createLab({ id: 'labtest' });
    src = lab.source.name;
    console.info(`lab ${lab.id} up in ${lab.timings.createMs} ms ${JSON.stringify(lab.timings.steps)}`);
  });

  afterAll(async () => {
    await lab?.destroy();
  });

  it('has a box with its own addresses, MAC and zfs daemon', async () => {
    const b = lab.box;
    expect(b.namespace).toBe('hzlab-labtest');
    expect(b.hostIf.length).toBeLessThanOrEqual(15);
    expect(b.boxIp).toMatch(/^10\.77\.\d+\.2$/);
    expect(b.mac).toMatch(/^52:54:00(:[0-9a-f]{2}){3}$/);
    const link = await b.exec(['ip', '-br', 'link', 'show', b.boxIf]);
    expect(link.stdout.toLowerCase()).toContain(b.mac);
    // Two independent daemons: neither sees the other's pool.
    expect(await b.zpool(['list', '-H', '-o', 'name'])).toBe(b.pool.name);
    expect((await b.exec(['zfs', 'list', src])).exitCode).not.toBe(0);
    expect(await lab.hostZpool(['list', '-H', '-o', 'name', src])).toBe(src);
  });

  it('replicates a snapshot with zfs send | ssh | zfs receive and keeps its guid', async () => {
    await lab.hostZfs(['create', `${src}/data`]);
    writeFileSync(join(lab.source.mountpoint, 'data', 'hello.txt'), 'hello from the source\n');
    await lab.hostZfs(['snapshot', `${src}/data@s1`]);
    const b = lab.box;
    const t = Date.now();
    await execa('zfs', ['send', `${src}/data@s1`]).pipe('ssh', [...b.sshArgs(), b.boxIp, 'zfs receive -u backup/data']);
    console.info(`send | ssh | receive of a small dataset: ${Date.now() - t} ms`);
    const srcGuid = await lab.hostZfs(['get', '-H', '-p', '-o', 'value', 'guid', `${src}/data@s1`]);
    const boxGuid = await b.zfs(['get', '-H', '-p', '-o', 'value', 'guid', 'backup/data@s1']);
    expect(srcGuid).toMatch(/^\d+$/);
    expect(boxGuid).toBe(srcGuid);
    // The same is visible through SSH (the sshd runs in the box's mount namespace).
    const viaSsh = await b.ssh(['zfs', 'get', '-H', '-p', '-o', 'value', 'guid', 'backup/data@s1']);
    expect(viaSsh.exitCode).toBe(0);
    expect(viaSsh.stdout.trim()).toBe(srcGuid);
  });

  it('pins the box host key (a different known_hosts is refused)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hozo-kh-'));
    try {
      const other = join(dir, 'known_hosts');
      writeFileSync(other, '');
      const args = lab.box.sshArgs().map((a) => (a.startsWith('UserKnownHostsFile=') ? `UserKnownHostsFile=${other}` : a));
      const r = await execa('ssh', [...args, lab.box.boxIp, 'true'], { reject: false });
      expect(r.exitCode).toBe(255);
      expect(r.stderr).toMatch(/Host key verification failed|No ED25519 host key is known/i);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('sleeps (sshd stopped, port closed) and is started again', async () => {
    const b = lab.box;
    await b.stopSshd();
    expect(b.sshdPid()).toBeUndefined();
    expect(await b.sshPortOpen()).toBe(false);
    const r = await b.ssh(['true']);
    expect(r.exitCode).toBe(255);
    expect(r.stderr).toMatch(/Connection refused/);
    const t = Date.now();
    await b.startSshd();
    console.info(`sshd restart: ${Date.now() - t} ms`);
    expect(await b.sshPortOpen()).toBe(true);
    // Restarted sshd still sees the box's pools.
    expect((await b.ssh(['zpool', 'list', '-H', '-o', 'name'])).stdout.trim()).toBe('backup');
  });

  it('goes to sleep with its own sleep command and wakes on a magic packet to the subnet broadcast', async () => {
    const b = lab.box;
    await b.startWakeListener({ bootDelayMs: 200 });
    const r = await b.ssh(b.sleepCommand);
    expect(r.exitCode).toBe(0);
    await waitFor('the box to fall asleep', async () => !(await b.sshPortOpen()), { timeoutMs: 5000 });
    const before = b.wakeEvents().length;
    await sendMagic(b.mac, b.broadcast, b.wakePort);
    await waitFor('the box to wake', () => b.sshPortOpen(), { timeoutMs: 10_000, intervalMs: 50 });
    const events = b.wakeEvents().slice(before);
    expect(events.some((e) => e.action === 'boot' && e.from === b.hostIp)).toBe(true);
    expect((await b.ssh(['zfs', 'list', '-H', '-o', 'name', 'backup/data'])).stdout.trim()).toBe('backup/data');
  });

  it('tears down without leaving anything behind', async () => {
    const b = lab.box;
    const daemon = b.daemonPid;
    const sshd = b.sshdPid();
    const { ms } = await lab.destroy();
    console.info(`lab destroy: ${ms} ms`);
    expect(existsSync(`/run/netns/${b.namespace}`)).toBe(false);
    expect(existsSync(`/sys/class/net/${b.hostIf}`)).toBe(false);
    expect(pidAlive(daemon)).toBe(false);
    if (sshd !== undefined) expect(pidAlive(sshd)).toBe(false);
    expect(markedBoxPids('labtest').size).toBe(0);
    const pools = await execa('zpool', ['list', '-H', '-o', 'name'], { reject: false });
    expect(pools.stdout.split('\n')).not.toContain(src);
    expect(existsSync(lab.dir)).toBe(false);
    // Idempotent.
    await lab.destroy();
  });
});

describe.skipIf(missing.length > 0)('stale lab cleanup', () => {
  afterAll(async () => {
    await cleanupStaleLabs({ id: 'labstale' });
  });

  it('removes a lab that was never destroyed (aborted run) by its id', async () => {
    const lab = await createLab({ id: 'labstale', wakeListener: true });
    const b = lab.box;
    // Leave an SSH session open and a dataset mounted on the host, as an interrupted test would.
    await lab.hostZfs(['create', `${lab.source.name}/busy`]);
    const session = execa('ssh', [...b.sshArgs(), b.boxIp, 'sleep 60'], { reject: false });
    const inBox = async () => (await execa('ip', ['netns', 'pids', b.namespace])).stdout.split('\n').filter(Boolean).length;
    await waitFor('the SSH session to start', async () => (await inBox()) >= 5, { timeoutMs: 5000 });
    expect(markedBoxPids('labstale').size).toBeGreaterThanOrEqual(3); // daemon, sshd listener, wake listener
    const t = Date.now();
    const report = await cleanupStaleLabs({ id: 'labstale' });
    console.info(`stale cleanup: ${Date.now() - t} ms, killed ${report.killed.length} process(es)`);
    expect(report.problems).toEqual([]);
    expect(report.pools).toEqual([lab.source.name]);
    expect(pidAlive(b.daemonPid)).toBe(false);
    expect(markedBoxPids('labstale').size).toBe(0);
    expect(existsSync(`/run/netns/${b.namespace}`)).toBe(false);
    expect(existsSync(`/sys/class/net/${b.hostIf}`)).toBe(false);
    expect(existsSync(lab.dir)).toBe(false);
    expect((await execa('zpool', ['list', lab.source.name], { reject: false })).exitCode).not.toBe(0);
    expect((await session).exitCode).not.toBe(0);
    // Nothing left to do the second time.
    expect((await cleanupStaleLabs({ id: 'labstale' })).ids).toEqual([]);
  });
});
