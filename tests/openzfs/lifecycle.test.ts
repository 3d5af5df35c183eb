// The box's real lifecycle on the OpenZFS lab: powered off for real (the qemu process exits) and cold-booted by a
// magic packet that hozo sends from the controller VM onto the lab bridge; suspended to RAM (S3) and resumed by one;
// the pool imported at boot; the agent's shutdown exporting the pool and powering the VM off; a pool that never
// appears failing with exit 3 and the box powered off again; a late disk; the idle guard.
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { VM_AGENT, importUnit, type VmLab } from '../../src/lab/vm/lab.js';
import { AGENT_ROOT, SRC, guids, hozoJson, labOrSkip, reset, skipReason, writeConfig } from './helpers.js';

const lab: VmLab | undefined = labOrSkip();
if (lab === undefined) console.warn(`SKIP: tests/openzfs/lifecycle.test.ts: ${skipReason()}`);

describe.skipIf(lab === undefined)('the box really sleeps: power-off, cold boot and S3 on the OpenZFS lab', () => {
  const L = lab!;
  const T = `${AGENT_ROOT}/src`;
  const SUSPEND = ['sudo', '-n', '/usr/bin/systemctl', 'start', '--no-block', 'hozo-suspend.service'];

  beforeEach(async () => {
    await reset(L);
  });
  afterAll(async () => {
    await reset(L).catch(() => undefined);
  });

  async function powerOffBox(): Promise<void> {
    await L.box.sh('systemctl start --no-block hozo-poweroff.service');
    expect(await L.box.waitGone(120_000), 'the box VM powered off').toBe(true);
    await L.box.closeSsh();
  }

  it('cold boot on a magic packet, pool imported at boot, replicate, export and power off (qemu exits)', async () => {
    await L.ctl.check(`zfs create ${SRC}/home && echo hi > /tank/src/home/f && zfs snapshot ${SRC}/home@h1`);
    await writeConfig(L, [{ datasets: [{ source: `${SRC}/home`, target: `${T}/home` }] }], { shutdown: 'agent' });
    await powerOffBox();
    const before = L.wakeEvents().length;

    const r = await hozoJson(L, 'run', 'nightly');
    expect(r.exitCode, `${r.stderr}\n${JSON.stringify(r.json.hosts)}`).toBe(0);
    const boots = L.wakeEvents()
      .slice(before)
      .filter((e) => e.vm === 'box');
    expect(boots.map((e) => e.action)).toContain('boot');
    expect(boots.every((e) => e.mac === L.box.mac)).toBe(true);
    expect(r.json.hosts[0]).toMatchObject({ woke: true, awakeBefore: false, shutdown: 'done' });
    expect(r.json.hosts[0].wakeSeconds).toBeGreaterThan(5);
    // The agent asked root's hozo-poweroff.service to export the pool and power off: the qemu process exits.
    expect(await L.box.waitGone(180_000), 'qemu exited after the agent shutdown').toBe(true);

    // Boot it again (no packet) and look: the pool came back at boot (imported, nothing mounted), the data is there.
    await L.ensureBoxUp();
    expect(await L.box.check('zpool list -H -o name,health backup')).toBe('backup\tONLINE');
    expect(await L.box.check(`zfs get -H -o value mounted ${T}/home`)).toBe('no');
    expect((await guids(L.box, `${T}/home`)).get('@h1')).toBe((await guids(L.ctl, `${SRC}/home`)).get('@h1'));
  });

  it('suspend to RAM: the agent suspends the box, a magic packet resumes it, the clock is right', async () => {
    await reset(L, { poweroffCommand: SUSPEND });
    await L.ctl.check(`zfs create ${SRC}/s && zfs snapshot ${SRC}/s@a1`);
    await writeConfig(L, [{ datasets: [{ source: `${SRC}/s`, target: `${T}/s` }] }], { shutdown: 'agent' });
    // Put it to sleep the way the agent will: its own suspend unit.
    await L.box.sh('systemctl start --no-block hozo-suspend.service');
    expect(await L.box.waitStatus('suspended', 60_000)).toBe(true);
    await L.box.closeSsh();

    const before = L.wakeEvents().length;
    const r = await hozoJson(L, 'run', 'nightly');
    expect(r.exitCode, r.stderr).toBe(0);
    expect(
      L.wakeEvents()
        .slice(before)
        .map((e) => e.action),
    ).toContain('resume');
    expect(r.json.hosts[0]).toMatchObject({ woke: true, shutdown: 'done' });
    expect(r.json.hosts[0].wakeSeconds).toBeLessThan(60);
    expect(await L.box.waitStatus('suspended', 60_000), 'the agent suspended the box again').toBe(true);
    await L.ensureBoxUp();
    const skew = Math.abs(Number(await L.box.check('date +%s')) - Number(await L.ctl.check('date +%s')));
    expect(skew).toBeLessThan(5);
  });

  it('a box it woke whose pool never appears: exit 3 naming the pool, and the box is powered off again', async () => {
    // The agent's default power-off (export, poweroff); the box sleeps in S3 before the run, so the wake is quick.
    await reset(L, { pools: ['backup', 'usbpool'], prepareTimeoutSeconds: 5 });
    await L.ctl.check(`zfs create ${SRC}/p && zfs snapshot ${SRC}/p@p1`);
    await writeConfig(L, [{ datasets: [{ source: `${SRC}/p`, target: `${T}/p` }] }], { shutdown: 'agent', pools: ['backup', 'usbpool'], readyTimeout: 40 });
    await L.box.sh('systemctl start --no-block hozo-suspend.service');
    expect(await L.box.waitStatus('suspended', 60_000)).toBe(true);
    await L.box.closeSsh();
    const r = await hozoJson(L, 'run', 'nightly');
    expect(r.exitCode, r.stderr).toBe(3);
    expect(r.json.error.message).toContain('usbpool');
    expect(r.json.hosts[0]).toMatchObject({ name: 'box', woke: true, shutdown: 'done' });
    expect(await L.box.waitGone(180_000), 'the box hozo woke powered off again (qemu exited)').toBe(true);
    await L.box.closeSsh();
  });

  it('a disk that appears after sshd does: the ready check waits for its pool, then the run succeeds', async () => {
    const POOLS = ['backup', 'late'];
    await reset(L, { pools: POOLS, prepareTimeoutSeconds: 20 });
    // A second pool on a disk that comes and goes (a USB drive): created, exported, pulled out.
    await L.box.hotplugDisk('late', 128);
    try {
      await L.box.check(
        'for i in $(seq 1 100); do [ -e /dev/disk/by-id/virtio-late ] && break; sleep 0.2; done; ' +
          'zpool create -f -O mountpoint=none -O canmount=off late /dev/disk/by-id/virtio-late && zpool export late',
      );
      // Root imports it when it appears, as NixOS's import unit waits for late disks (the agent cannot import).
      await L.box.writeFile('/etc/systemd/system/hozo-import-late.service', importUnit('late', 240));
      await L.box.check('systemctl daemon-reload && systemctl enable hozo-import-late.service 2>/dev/null');
      await L.box.unplugDisk('late');
      await L.ctl.check(`zfs create ${SRC}/late && zfs snapshot ${SRC}/late@l1`);
      await writeConfig(L, [{ datasets: [{ source: `${SRC}/late`, target: `${T}/late` }] }], { shutdown: 'none', pools: POOLS, readyTimeout: 480 });
      await powerOffBox();

      const t0 = Date.now();
      const run = hozoJson(L, 'run', 'nightly');
      // The box boots (on hozo's packet) without the disk; 15 s after its SSH answers, the disk is plugged in.
      for (let i = 0; i < 240 && !L.box.running(); i++) await new Promise((res) => setTimeout(res, 500));
      await L.box.waitSsh(420_000);
      await new Promise((res) => setTimeout(res, 15_000));
      const pluggedAfter = (Date.now() - t0) / 1000;
      await L.box.hotplugDisk('late', 128);
      const r = await run;
      expect(r.exitCode, r.stderr).toBe(0);
      expect(r.json.hosts[0]).toMatchObject({ woke: true });
      // Ready only once the pool was there, i.e. after the plug.
      expect(r.json.hosts[0].wakeSeconds).toBeGreaterThan(pluggedAfter - 3);
      expect(await L.box.check('zpool list -H -o name,health late')).toBe('late\tONLINE');
      expect((await guids(L.box, `${T}/late`)).get('@l1')).toBe((await guids(L.ctl, `${SRC}/late`)).get('@l1'));
    } finally {
      await L.ensureBoxUp();
      await L.box.sh(
        'zpool export late; systemctl disable hozo-import-late.service; rm -f /etc/systemd/system/hozo-import-late.service; systemctl daemon-reload',
      );
      await L.box.unplugDisk('late').catch(() => undefined);
    }
  });

  it('the idle guard powers off a box that was woken and then left alone', async () => {
    // services.hozo.agent's timer first fires idlePoweroffMinutes after boot; with seconds instead of minutes the
    // harness arms it (a file the unit requires) once hozo has woken the box, and the power-off disarms it again.
    const ARMED = '/var/lib/hozo-agent/idle-armed';
    await reset(L, {
      idlePoweroffMinutes: 0.75,
      logFile: '/var/lib/hozo-agent/agent.log',
      poweroffCommand: ['sh', '-c', `rm -f ${ARMED} && exec sudo -n /usr/bin/systemctl start --no-block hozo-poweroff.service`],
    });
    // As services.hozo.agent does: a timer runs `hozo-agent idle-check` as user hozo (here every 15 s, not 1 min).
    await L.box.writeFile(
      '/etc/systemd/system/hozo-agent-idle.service',
      [
        '[Unit]',
        'Description=hozo: power off when idle',
        `ConditionPathExists=${ARMED}`,
        '[Service]',
        'Type=oneshot',
        'User=hozo',
        `ExecStart=${VM_AGENT} idle-check --config /etc/hozo-agent/config.json`,
        '',
      ].join('\n'),
    );
    await L.box.writeFile(
      '/etc/systemd/system/hozo-agent-idle.timer',
      ['[Timer]', 'OnBootSec=15s', 'OnUnitActiveSec=15s', 'AccuracySec=1s', '[Install]', 'WantedBy=timers.target', ''].join('\n'),
    );
    await L.box.check(`rm -f ${ARMED} /var/lib/hozo-agent/agent.log && systemctl daemon-reload && systemctl enable hozo-agent-idle.timer 2>/dev/null`);
    try {
      await writeConfig(L, [{ datasets: [{ source: `${SRC}/none`, target: `${T}/none` }] }], { shutdown: 'agent' });
      await powerOffBox();
      const w = await L.hozo(['wake', 'box', '--wait']);
      expect(w.exitCode, w.stderr).toBe(0);
      const woke = Date.now();
      await L.box.waitSsh();
      await L.box.check(`install -o hozo /dev/null ${ARMED}`);
      // Nobody calls the box again: 45 s after hozo's last call (and at the next tick) it powers itself off.
      expect(await L.box.waitGone(300_000), 'the idle guard powered the box off (qemu exited)').toBe(true);
      expect((Date.now() - woke) / 1000).toBeGreaterThan(40);
      await L.box.closeSsh();
      await L.ensureBoxUp();
      expect(await L.box.check(`test ! -e ${ARMED} && grep -c 'idle for' /var/lib/hozo-agent/agent.log`)).toBe('1');
    } finally {
      await L.ensureBoxUp();
      await L.box.sh(`systemctl disable --now hozo-agent-idle.timer; rm -f /etc/systemd/system/hozo-agent-idle.* ${ARMED}; systemctl daemon-reload`);
    }
  });
});
