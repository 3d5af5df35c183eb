// Received properties cannot take over the box (the trust-boundary issue), on real OpenZFS in the lab's VMs. A stolen
// controller can send anything through the agent's receive; here it sends a crafted `zfs send -R -p` package whose
// children carry mountpoint=/root/.ssh with canmount=on, setuid/exec/devices on, a zvol and reservations. After the
// receive, and after a real reboot of the box VM (its pool is in the cachefile, so boot imports it and
// zfs-mount.service runs `zfs mount -a`), nothing received is mounted, /root/.ssh is unchanged, no zvol device exists
// and no reservation is held. A control package received by root without hozo's flags (outside the roots) does mount
// at that reboot: the check would see a takeover if the protections were missing.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { VmLab } from '../../src/lab/vm/lab.js';
import {
  AGENT_ROOT,
  AGENT_SSH,
  EVIL_POOL,
  HOSTILE_PACKAGE,
  SRC,
  hozoJson,
  labOrSkip,
  makeHostilePackage,
  removeHostilePackage,
  reset,
  skipReason,
  writeConfig,
} from './helpers.js';

const lab: VmLab | undefined = labOrSkip();
if (lab === undefined) console.warn(`SKIP: tests/openzfs/received-props.test.ts: ${skipReason()}`);

const CONTROL_MOUNT = '/var/tmp/hozo-control';

describe.skipIf(lab === undefined)('received properties on real OpenZFS (VMs)', () => {
  const L = lab!;

  beforeAll(async () => {
    await reset(L);
    await L.box.sh('zfs destroy -r backup/control 2>/dev/null; true');
    await makeHostilePackage(L);
    // The control: a filesystem that mounts somewhere harmless.
    await L.ctl.check(
      `zfs create -o mountpoint=${CONTROL_MOUNT} -o canmount=on ${EVIL_POOL}/ctrl && zfs snapshot ${EVIL_POOL}/ctrl@s1 && zfs send -p ${EVIL_POOL}/ctrl@s1 > /var/tmp/ctrl.zstream`,
    );
  });
  afterAll(async () => {
    await removeHostilePackage(L).catch(() => undefined);
    await L.ctl.sh('rm -f /var/tmp/ctrl.zstream').catch(() => undefined);
    await L.box.sh(`zfs destroy -r backup/control 2>/dev/null; rmdir ${CONTROL_MOUNT} 2>/dev/null; true`).catch(() => undefined);
    await reset(L).catch(() => undefined);
  });

  /** Everything a takeover would show on the box, as one comparable record. */
  async function boxFacts() {
    const [mounted, zvols, reservations, sshKeys] = await Promise.all([
      L.box.check(`zfs get -H -r -t filesystem -o name,value mounted ${AGENT_ROOT} | awk '$2 == "yes" { print $1 }'`),
      L.box.check(`ls /dev/zvol/backup 2>/dev/null | head; ls /dev/zd* 2>/dev/null | head; true`),
      L.box.check(`zfs get -H -p -r -t filesystem,volume -o name,property,value reservation,refreservation ${AGENT_ROOT} | awk '$3 != 0 { print }'`),
      L.box.check('sha256sum /root/.ssh/authorized_keys; ls -a /root/.ssh | tr "\\n" " "'),
    ]);
    const mounts = await L.box.check(`findmnt -rn -o TARGET,SOURCE | awk '$2 ~ /^backup\\/hozo/ { print }'; true`);
    return { mounted, zvols, reservations, sshKeys, mounts };
  }

  it('a hostile send -R -p package through the agent: nothing mounts, no setuid/exec/devices, no zvol device, no reservation, also after a real reboot', async () => {
    const before = await L.box.check('sha256sum /root/.ssh/authorized_keys; ls -a /root/.ssh | tr "\\n" " "');
    const target = `${AGENT_ROOT}/stolen`;
    const r = await L.ctl.sh(`${AGENT_SSH} hozo@${L.box.ip} receive -u ${target} < ${HOSTILE_PACKAGE}`, { timeoutMs: 300_000 });
    expect(r.exitCode, r.stderr).toBe(0);
    // What the stream asked for is recorded as received (a restore can have it back), and overridden.
    const props = await L.box.check(
      `zfs get -H -r -t filesystem,volume -o name,property,value,received,source mountpoint,canmount,setuid,exec,devices,volmode,reservation,refreservation ${target}`,
    );
    const rows = props.split('\n').map((l) => l.split('\t'));
    const get = (ds: string, p: string) => rows.find((x) => x[0] === ds && x[1] === p);
    expect(get(`${target}/ssh`, 'mountpoint')?.slice(2, 4), props).toEqual(['none', '/root/.ssh']);
    for (const p of ['setuid', 'exec', 'devices']) expect(get(`${target}/ssh`, p)?.[2], `${p}: ${props}`).toBe('off');
    expect(get(`${target}/vol`, 'volmode')?.[2], props).toBe('none');
    expect(get(`${target}`, 'canmount')?.[2], props).toBe('noauto');
    const afterReceive = await boxFacts();
    expect(afterReceive).toEqual({ mounted: '', zvols: '', reservations: '', sshKeys: before, mounts: '' });

    // The control: received by root with plain `zfs receive -u` (what the agent did before), outside the roots.
    await L.box.check(`zfs create -o canmount=off backup/control`);
    const c = await L.ctl.sh(
      `ssh -i /etc/hozo/box_key -o UserKnownHostsFile=/etc/hozo/known_hosts root@${L.box.ip} zfs receive -u backup/control/c < /var/tmp/ctrl.zstream`,
    );
    expect(c.exitCode, c.stderr).toBe(0);

    // Export and import the way the agent's prepare does (-N), then a real reboot: boot imports the pool from the
    // cachefile and zfs-mount.service runs `zfs mount -a`.
    await L.box.check('zpool export backup && zpool import -N backup');
    expect(await boxFacts()).toEqual({ ...afterReceive });
    await L.box.reboot();
    await L.box.check('for i in $(seq 1 60); do systemctl is-active -q zfs-mount.service && break; sleep 2; done; systemctl is-active zfs-mount.service');
    const afterReboot = await boxFacts();
    expect(afterReboot).toEqual({ mounted: '', zvols: '', reservations: '', sshKeys: before, mounts: '' });
    // The control did mount at boot: without the protections, the package above would have been mounted too.
    expect(await L.box.check(`zfs get -H -o value mounted backup/control/c; findmnt -rn -o TARGET ${CONTROL_MOUNT}`)).toBe(`yes\n${CONTROL_MOUNT}`);
  }, 900_000);

  it('a volume through the agent (--volume): volmode=none, no device node; a filesystem sent as --volume is caught and fails', async () => {
    const vol = await L.ctl.sh(`zfs send ${EVIL_POOL}/pkg/vol@s1 | ${AGENT_SSH} hozo@${L.box.ip} receive -u --volume ${AGENT_ROOT}/v`, { timeoutMs: 300_000 });
    expect(vol.exitCode, vol.stderr).toBe(0);
    expect(await L.box.check(`zfs get -H -o value type,volmode ${AGENT_ROOT}/v; ls /dev/zvol/backup 2>/dev/null; true`)).toBe('volume\nnone');
    // The controller lied: a filesystem with its properties, called a volume (so only -x, no -o, for the mount props).
    await L.box.check(`zfs set mountpoint=/srv/hozo-lied ${AGENT_ROOT}`);
    try {
      const lie = await L.ctl.sh(`zfs send -p ${EVIL_POOL}/pkg/ssh@s1 | ${AGENT_SSH} hozo@${L.box.ip} receive -u --volume ${AGENT_ROOT}/lie`, {
        timeoutMs: 300_000,
      });
      expect(lie.exitCode).toBe(1);
      expect(lie.stderr).toMatch(/not protected on this box/);
      const p = await L.box.check(`zfs get -H -o value mountpoint,canmount,setuid,exec,devices,mounted ${AGENT_ROOT}/lie`);
      expect(p.split('\n')).toEqual(['none', 'noauto', 'off', 'off', 'off', 'no']);
    } finally {
      await L.box.check(`zfs inherit mountpoint ${AGENT_ROOT}`);
    }
  }, 600_000);

  it('hozo run over plain SSH (root, no agent) receives with the same protections', async () => {
    await L.ctl.check(`zfs create -o setuid=on ${SRC}/p && echo data > /tank/src/p/f && zfs snapshot ${SRC}/p@s1`);
    await writeConfig(L, [{ datasets: [{ source: `${SRC}/p`, target: `backup/plain/p` }] }], { agent: false, user: 'root' });
    try {
      const run = await hozoJson(L, 'run', 'nightly');
      expect(run.exitCode, run.stderr).toBe(0);
      expect(await L.box.check('zfs get -H -o value mountpoint,canmount,setuid,exec,devices,volmode,mounted backup/plain/p')).toBe(
        ['none', 'noauto', 'off', 'off', 'off', 'none', 'no'].join('\n'),
      );
    } finally {
      await L.box.sh('zfs destroy -r backup/plain');
    }
  }, 600_000);
});
