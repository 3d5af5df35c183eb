// The box's real lifecycle on the OpenZFS lab: powered off for real (the qemu process exits) and cold-booted by a
// magic packet that hozo sends from the controller VM onto the lab bridge; suspended to RAM (S3) and resumed by one;
// the pool imported at boot; the agent's shutdown exporting the pool and powering the VM off; a pool that never
// appears failing with exit 3 and the box powered off again.
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import type { VmLab } from '../../src/lab/vm/lab.js';
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
    const boots = L.wakeEvents().slice(before).filter((e) => e.vm === 'box');
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
    expect(L.wakeEvents().slice(before).map((e) => e.action)).toContain('resume');
    expect(r.json.hosts[0]).toMatchObject({ woke: true, shutdown: 'done' });
    expect(r.json.hosts[0].wakeSeconds).toBeLessThan(60);
    expect(await L.box.waitStatus('suspended', 60_000), 'the agent suspended the box again').toBe(true);
    await L.ensureBoxUp();
    const skew = Math.abs(Number(await L.box.check('date +%s')) - Number(await L.ctl.check('date +%s')));
    expect(skew).toBeLessThan(5);
  });

  it('a pool that never appears: exit 3 naming the pool', async () => {
    await reset(L, { pools: ['backup', 'usbpool'], prepareTimeoutSeconds: 5 });
    await L.ctl.check(`zfs create ${SRC}/p && zfs snapshot ${SRC}/p@p1`);
    await writeConfig(L, [{ datasets: [{ source: `${SRC}/p`, target: `${T}/p` }] }], { shutdown: 'agent', pools: ['backup', 'usbpool'], readyTimeout: 200 });
    await powerOffBox();
    const r = await hozoJson(L, 'run', 'nightly');
    expect(r.exitCode).toBe(3);
    expect(JSON.stringify(r.json)).toContain('usbpool');
    await L.ensureBoxUp();
  });

  // Found by the test above on this lab: after a ready check that never succeeds, hozo leaves the box it woke running.
  it.todo('a box hozo woke whose pool never appears is powered off again (not yet: hozo leaves it on)');
});
