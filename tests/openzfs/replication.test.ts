// Core replication on real OpenZFS (the lab's two VMs): hozo runs in the controller VM, hozo-agent is the forced
// command of its key on the box (user hozo with delegated permissions). Full, incremental and no-op; the base held
// and bookmarked; the next incremental from the bookmark after the snapshot is gone; compressed sends; a diverged
// target; rollback where the box allows it; restore.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { VmLab } from '../../src/lab/vm/lab.js';
import { AGENT_ROOT, SRC, guids, hozoJson, labOrSkip, randomFile, reset, skipReason, writeAgentConfig, writeConfig } from './helpers.js';

const lab: VmLab | undefined = labOrSkip();
if (lab === undefined) console.warn(`SKIP: tests/openzfs/replication.test.ts: ${skipReason()}`);

describe.skipIf(lab === undefined)('replication on real OpenZFS (VMs)', () => {
  const L = lab!;
  const T = `${AGENT_ROOT}/src`;

  beforeAll(async () => {
    await reset(L);
  });
  beforeEach(async () => {
    await reset(L);
  });
  afterAll(async () => {
    await reset(L).catch(() => undefined);
  });

  it('full, then incremental, then a no-op run through the agent; guids equal on both sides', async () => {
    await L.ctl.check(`zfs create ${SRC}/a && echo hello > /tank/src/a/notes.txt`);
    await randomFile(L, '/tank/src/a/blob.bin', 6);
    await L.ctl.check(`zfs snapshot ${SRC}/a@s1`);
    // OpenSSH's default key exchange here (the other tests use the lab's faster one, helpers.ts).
    await writeConfig(L, [{ datasets: [{ source: `${SRC}/a`, target: `${T}/a` }] }], { sshOptions: [] });

    const first = await hozoJson(L, 'run', 'nightly');
    expect(first.exitCode, first.stderr).toBe(0);
    expect(first.json.datasets[0]).toMatchObject({ result: 'sent', verified: true, newest: 's1' });
    expect(first.json.datasets[0].bytes).toBeGreaterThan(6 * 1024 * 1024);

    await L.ctl.check(`echo more >> /tank/src/a/notes.txt && zfs snapshot ${SRC}/a@s2 && zfs snapshot ${SRC}/a@s3`);
    const second = await hozoJson(L, 'run', 'nightly');
    expect(second.exitCode, second.stderr).toBe(0);
    expect(second.json.datasets[0]).toMatchObject({ result: 'sent', base: 's1', newest: 's3', snapshotsSent: ['s2', 's3'] });
    expect(second.json.datasets[0].bytes).toBeLessThan(1024 * 1024);

    const third = await hozoJson(L, 'run', 'nightly');
    expect(third.exitCode).toBe(0);
    expect(third.json.datasets[0].result).toBe('up-to-date');

    expect(await guids(L.box, `${T}/a`)).toEqual(await guids(L.ctl, `${SRC}/a`));
    // A backup never mounts itself, and the agent made it unmountable by default.
    expect(await L.box.check(`zfs get -H -o value canmount,mounted ${T}/a`)).toBe('noauto\nno');
  });

  it('holds move with the base; the base is bookmarked; after the snapshot is gone the next run sends from the bookmark', async () => {
    await L.ctl.check(`zfs create ${SRC}/b && echo one > /tank/src/b/f && zfs snapshot ${SRC}/b@b1`);
    await writeConfig(L, [{ datasets: [{ source: `${SRC}/b`, target: `${T}/b` }] }]);
    expect((await hozoJson(L, 'run', 'nightly')).exitCode).toBe(0);
    expect(await L.ctl.check(`zfs holds -H ${SRC}/b@b1 | cut -f2`)).toBe('hozo:nightly');
    expect(await L.ctl.check(`zfs list -H -o name -t bookmark -r ${SRC}/b`)).toBe(`${SRC}/b#hozo:nightly:b1`);

    await L.ctl.check(`echo two >> /tank/src/b/f && zfs snapshot ${SRC}/b@b2`);
    expect((await hozoJson(L, 'run', 'nightly')).exitCode).toBe(0);
    // The hold moved to the new base and the old one was released; the bookmark followed.
    expect(await L.ctl.check(`zfs holds -H ${SRC}/b@b1 ${SRC}/b@b2 | cut -f1,2`)).toBe(`${SRC}/b@b2\thozo:nightly`);
    expect(await L.ctl.check(`zfs list -H -o name -t bookmark -r ${SRC}/b`)).toBe(`${SRC}/b#hozo:nightly:b2`);

    // The base snapshot is destroyed while the box sleeps (its hold released by hand).
    await L.ctl.check(`zfs release hozo:nightly ${SRC}/b@b2 && zfs destroy ${SRC}/b@b2`);
    await L.ctl.check(`echo three >> /tank/src/b/f && zfs snapshot ${SRC}/b@b3`);
    const r = await hozoJson(L, 'run', 'nightly');
    expect(r.exitCode, JSON.stringify(r.json.datasets)).toBe(0);
    expect(r.json.datasets[0]).toMatchObject({ result: 'sent', newest: 'b3', snapshotsSent: ['b3'] });
    expect(r.json.datasets[0].plan).toContain('#hozo:nightly:b2');
    const src = await guids(L.ctl, `${SRC}/b`);
    const dst = await guids(L.box, `${T}/b`);
    expect(dst.get('@b3')).toBe(src.get('@b3'));
    expect(dst.get('@b1')).toBe(src.get('@b1'));
  });

  it('send -c -L -e: a compressed source moves fewer bytes than its logical size', async () => {
    await L.ctl.check(
      `zfs create -o compression=lz4 ${SRC}/logs && ` +
        `for i in $(seq 1 40000); do echo "2026-12-02T04:00:00Z host=kraken service=nginx status=200 path=/api/v1/items/$i bytes=512"; done > /tank/src/logs/access.log && ` +
        `sync && zfs snapshot ${SRC}/logs@l1`,
    );
    const logical = Number(await L.ctl.check(`zfs get -H -p -o value logicalreferenced ${SRC}/logs@l1`));
    await writeConfig(L, [{ datasets: [{ source: `${SRC}/logs`, target: `${T}/logs` }] }]);
    const r = await hozoJson(L, 'run', 'nightly');
    expect(r.exitCode, r.stderr).toBe(0);
    expect(logical).toBeGreaterThan(3_000_000);
    expect(r.json.datasets[0].bytes).toBeLessThan(logical / 2);
    // Received as the compressed blocks it was sent as: the box stores the small size too.
    const [used, logicalUsed] = (await L.box.check(`zfs get -H -p -o value used,logicalused ${T}/logs`)).split('\n').map(Number);
    expect(used!).toBeLessThan(logicalUsed! / 2);
  });

  /** `ds` replicated once (@<ds>1); then someone snapshots the backup on the box (@boxlocal) and the source moves on
   *  (@<ds>2). */
  async function diverge(ds: string, job: Record<string, unknown> = {}): Promise<void> {
    await L.ctl.check(`zfs create ${SRC}/${ds} && zfs snapshot ${SRC}/${ds}@${ds}1`);
    await writeConfig(L, [{ ...job, datasets: [{ source: `${SRC}/${ds}`, target: `${T}/${ds}` }] }]);
    expect((await hozoJson(L, 'run', 'nightly')).exitCode).toBe(0);
    await L.box.check(`zfs snapshot ${T}/${ds}@boxlocal`);
    await L.ctl.check(`zfs snapshot ${SRC}/${ds}@${ds}2`);
  }

  it('a diverged target is a conflict: nothing is received and nothing on the box is destroyed', async () => {
    await diverge('c');
    const r = await hozoJson(L, 'run', 'nightly');
    expect(r.exitCode).toBe(1);
    expect(r.json.datasets[0].result).toBe('conflict');
    expect([...(await guids(L.box, `${T}/c`)).keys()]).toEqual(['@c1', '@boxlocal']);
  });

  it('rollback: true rolls a diverged target back to the common snapshot only where the box allows it (allowRollback)', async () => {
    await diverge('r', { rollback: true });
    // The box's agent config has allowRollback: false: refused, nothing destroyed, and the message says which side.
    const refused = await hozoJson(L, 'run', 'nightly');
    expect(refused.exitCode).toBe(1);
    expect(refused.json.datasets[0].result).toBe('failed');
    expect(JSON.stringify(refused.json.datasets[0].error)).toMatch(/allowRollback: true in its agent config/);
    expect([...(await guids(L.box, `${T}/r`)).keys()]).toEqual(['@r1', '@boxlocal']);
    // The box's owner allows it: the receive -F rolls back to @r1, drops @boxlocal and receives @r2.
    await writeAgentConfig(L, { allowRollback: true });
    const r = await hozoJson(L, 'run', 'nightly');
    expect(r.exitCode, r.stderr).toBe(0);
    const box = await guids(L.box, `${T}/r`);
    expect([...box.keys()]).toEqual(['@r1', '@r2']);
    expect(box.get('@r2')).toBe((await guids(L.ctl, `${SRC}/r`)).get('@r2'));
  });

  it('restore brings a dataset back from the box with the original guids', async () => {
    await L.ctl.check(`zfs create ${SRC}/d && echo precious > /tank/src/d/f && zfs snapshot ${SRC}/d@d1`);
    await writeConfig(L, [{ datasets: [{ source: `${SRC}/d`, target: `${T}/d` }] }]);
    expect((await hozoJson(L, 'run', 'nightly')).exitCode).toBe(0);
    const r = await L.hozo(['restore', 'nightly', '--dataset', `${SRC}/d`, '--to', `${SRC}/restored`]);
    expect(r.exitCode, r.stderr).toBe(0);
    expect((await guids(L.ctl, `${SRC}/restored`)).get('@d1')).toBe((await guids(L.ctl, `${SRC}/d`)).get('@d1'));
    // Received as on a box: nothing the box sends mounts or runs here until asked; the log says how.
    expect(await L.ctl.check(`zfs get -H -o value mounted,mountpoint,setuid,exec ${SRC}/restored`)).toBe('no\nnone\noff\noff');
    expect(r.stderr).toMatch(/restored unmounted; to use it: zfs inherit mountpoint/);
    // --mount: its new parent's mountpoint and exec/setuid, mounted, content intact.
    const m = await L.hozo(['restore', 'nightly', '--dataset', `${SRC}/d`, '--to', `${SRC}/restored2`, '--mount']);
    expect(m.exitCode, m.stderr).toBe(0);
    expect(await L.ctl.check(`zfs get -H -o value mounted,mountpoint,setuid ${SRC}/restored2`)).toBe('yes\n/tank/src/restored2\non');
    expect(await L.ctl.check('cat /tank/src/restored2/f')).toBe('precious');
  });
});
