// Delegation on real OpenZFS: hozo runs in the controller VM as the unprivileged user `hozo` with exactly
// CONTROLLER_PERMISSIONS delegated on its sources (what services.hozo.controller grants), and hozo-agent on the box as
// `hozo` with exactly AGENT_PERMISSIONS on its root (what services.hozo.agent grants). With the full sets everything
// a user does works; with any one permission taken away the test sees the failure that permission prevents, so the
// lists are complete and minimal.
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { VM_AGENT, type VmLab } from '../../src/lab/vm/lab.js';
import { AGENT_PERMISSIONS, CONTROLLER_PERMISSIONS, OWN_SNAPSHOT_PERMISSIONS } from '../../src/zfs/delegation.js';
import {
  AGENT_ROOT,
  AGENT_SSH,
  HOSTILE_PACKAGE,
  SRC,
  guids,
  makeHostilePackage,
  removeHostilePackage,
  hozoJson,
  hozoJsonWith,
  labOrSkip,
  randomFile,
  reset,
  skipReason,
  writeAgentConfig,
  writeConfig,
  type JobSpec,
} from './helpers.js';

const lab: VmLab | undefined = labOrSkip();
if (lab === undefined) console.warn(`SKIP: tests/openzfs/delegation.test.ts: ${skipReason()}`);

const MB = 1024 * 1024;
const STATE = '/var/lib/hozo';
/** The controller's config, key and known hosts where user hozo can read them. */
const AS_HOZO = { user: 'hozo', config: `${STATE}/config.yaml` };
const HOST_AS_HOZO = { sshKeyFile: `${STATE}/box_key`, knownHostsFile: `${STATE}/known_hosts` };
const without = (list: readonly string[], p: string) => list.filter((x) => x !== p).join(',');
/** The agent permissions a normal run shows the need for; the rest protect what is received (the last test). */
const PROTECTION_PERMISSIONS = ['mountpoint', 'setuid', 'exec', 'devices', 'volmode'];
const BASE_AGENT_PERMISSIONS = AGENT_PERMISSIONS.filter((p) => !PROTECTION_PERMISSIONS.includes(p));

describe.skipIf(lab === undefined)("delegation: both sides as non-root users with exactly the modules' zfs allow sets (VMs)", () => {
  const L = lab!;
  const T = `${AGENT_ROOT}/src`;

  beforeEach(async () => {
    await reset(L);
  });
  afterAll(async () => {
    await L.box.sh(`zfs allow -u hozo ${AGENT_PERMISSIONS.join(',')} ${AGENT_ROOT}`);
    await reset(L).catch(() => undefined);
  });

  /** The config for `jobs`, readable by user hozo, with the state directory its own. */
  async function configAsHozo(jobs: JobSpec[]): Promise<void> {
    await writeConfig(L, jobs, HOST_AS_HOZO);
    await L.ctl.check(
      `install -o hozo -m 600 /etc/hozo/box_key ${STATE}/box_key && install -o hozo -m 644 /etc/hozo/known_hosts ${STATE}/known_hosts && ` +
        `install -o hozo -m 644 /etc/hozo/config.yaml ${STATE}/config.yaml && chown -R hozo ${STATE}`,
    );
  }

  /** A partly received stream on the box (root sends, `head` cuts it): `target` holds a resume token. */
  async function partialReceive(snapshot: string, target: string, bytes: number): Promise<void> {
    await L.ctl.sh(
      `zfs send ${snapshot} | head -c ${bytes} | ssh -i /etc/hozo/box_key -o UserKnownHostsFile=/etc/hozo/known_hosts -o BatchMode=yes root@${L.box.ip} zfs receive -s -u ${target}`,
    );
    expect(await L.box.check(`zfs get -H -o value receive_resume_token ${target}`)).not.toBe('-');
  }

  /** An agent verb run on the box the way its own timers run it: as hozo, SSH_ORIGINAL_COMMAND set. */
  const agentVerb = (verb: string) =>
    L.box.sh(`runuser -u hozo -- env SSH_ORIGINAL_COMMAND=${JSON.stringify(verb)} ${VM_AGENT} serve --config /etc/hozo-agent/config.json`);

  it('with the full sets: full, incremental, hold moved, bookmark after the base is gone, resume, stale-token discard, restore, prune', async () => {
    await L.ctl.check(`zfs create ${SRC}/d && echo one > /tank/src/d/f && zfs snapshot ${SRC}/d@d1`);
    await L.ctl.check(`zfs allow -u hozo ${CONTROLLER_PERMISSIONS.join(',')} ${SRC}/d`);
    await configAsHozo([{ datasets: [{ source: `${SRC}/d`, target: `${T}/d` }] }]);
    // Not root: without the delegation a send is refused (checked on a snapshot of a dataset that has none; a real
    // send: the `-n -P` estimate succeeded here without any delegation).
    await L.ctl.check(`zfs snapshot ${SRC}@undelegated`);
    expect(await L.ctl.check(`runuser -u hozo -- zfs send ${SRC}@undelegated 2>&1 >/dev/null || true`)).toMatch(/permission denied/i);

    const full = await hozoJsonWith(L, AS_HOZO, 'run', 'nightly');
    expect(full.exitCode, `${full.stderr}\n${JSON.stringify(full.json.datasets)}`).toBe(0);
    expect(full.json.datasets[0]).toMatchObject({ result: 'sent', verified: true, newest: 'd1', held: 'd1' });
    expect(full.json.warnings ?? []).toEqual([]);
    expect(await L.ctl.check(`zfs holds -H ${SRC}/d@d1 | cut -f2`)).toBe('hozo:nightly');
    expect(await L.ctl.check(`zfs list -H -o name -t bookmark -r ${SRC}/d`)).toBe(`${SRC}/d#hozo:nightly:d1`);

    // Incremental with intermediates (-I: temporary holds), the hold moves to the new base.
    await L.ctl.check(`echo two >> /tank/src/d/f && zfs snapshot ${SRC}/d@d2 && echo three >> /tank/src/d/f && zfs snapshot ${SRC}/d@d3`);
    const incr = await hozoJsonWith(L, AS_HOZO, 'run', 'nightly');
    expect(incr.exitCode, `${incr.stderr}\n${JSON.stringify(incr.json.datasets)}`).toBe(0);
    expect(incr.json.datasets[0]).toMatchObject({ result: 'sent', base: 'd1', snapshotsSent: ['d2', 'd3'], held: 'd3' });
    expect(await L.ctl.check(`zfs holds -H ${SRC}/d@d1 ${SRC}/d@d3 | cut -f1,2`)).toBe(`${SRC}/d@d3\thozo:nightly`);
    // No `destroy` on the source (it would reach the data too): the older bookmark stays.
    expect((await L.ctl.check(`zfs list -H -o name -t bookmark -r ${SRC}/d`)).split('\n')).toEqual([`${SRC}/d#hozo:nightly:d1`, `${SRC}/d#hozo:nightly:d3`]);

    // The base is pruned on the source while the box sleeps: the next run sends from the bookmark.
    await L.ctl.check(`zfs release hozo:nightly ${SRC}/d@d3 && zfs destroy ${SRC}/d@d3 && echo four >> /tank/src/d/f && zfs snapshot ${SRC}/d@d4`);
    const fromBookmark = await hozoJsonWith(L, AS_HOZO, 'run', 'nightly');
    expect(fromBookmark.exitCode, `${fromBookmark.stderr}\n${JSON.stringify(fromBookmark.json.datasets)}`).toBe(0);
    expect(fromBookmark.json.datasets[0].plan).toContain('#hozo:nightly:d3');
    expect((await guids(L.box, `${T}/d`)).get('@d4')).toBe((await guids(L.ctl, `${SRC}/d`)).get('@d4'));

    // Resume (send -t as hozo) and discard (the agent's abort-receive as hozo): two datasets cut off part-way, one of
    // them stale (its snapshot destroyed on the source and a new one taken).
    for (const x of ['r', 's']) {
      await L.ctl.check(`zfs create ${SRC}/${x}`);
      await randomFile(L, `/tank/src/${x}/blob.bin`, 16);
      await L.ctl.check(`zfs snapshot ${SRC}/${x}@${x}1 && zfs allow -u hozo ${CONTROLLER_PERMISSIONS.join(',')} ${SRC}/${x}`);
      await partialReceive(`${SRC}/${x}@${x}1`, `${T}/${x}`, 8 * MB);
    }
    await L.ctl.check(`zfs destroy ${SRC}/s@s1 && zfs snapshot ${SRC}/s@s2`);
    await configAsHozo([{ datasets: ['d', 'r', 's'].map((x) => ({ source: `${SRC}/${x}`, target: `${T}/${x}` })), retries: 1, retryDelay: 1 }]);
    const resumed = await hozoJsonWith(L, AS_HOZO, 'run', 'nightly');
    expect(resumed.exitCode, `${resumed.stderr}\n${JSON.stringify(resumed.json.datasets)}`).toBe(0);
    const byName = new Map<string, any>(resumed.json.datasets.map((d: any) => [d.source, d]));
    expect(byName.get(`${SRC}/d`).result).toBe('up-to-date');
    expect(byName.get(`${SRC}/r`).plan).toMatch(/resume/);
    expect(byName.get(`${SRC}/r`).bytes).toBeLessThan(12 * MB);
    expect(byName.get(`${SRC}/s`)).toMatchObject({ result: 'sent', newest: 's2' });
    for (const x of ['r', 's']) expect(await L.box.check(`zfs get -H -o value receive_resume_token ${T}/${x}`)).toBe('-');

    // Restore (as the admin, root, on the controller; the box's side is the agent's `send` as hozo, with -I).
    const restore = await L.hozo(['restore', 'nightly', '--dataset', `${SRC}/d`, '--to', `${SRC}/restored`]);
    expect(restore.exitCode, restore.stderr).toBe(0);
    expect([...(await guids(L.ctl, `${SRC}/restored`)).values()]).toEqual([...(await guids(L.box, `${T}/d`)).values()]);

    // The box's own retention as hozo: one daily keeps only the newest of today's snapshots (d3 is gone on the
    // source but was received before).
    await writeAgentConfig(L, { retention: { hourly: 0, daily: 1, weekly: 0, monthly: 0, yearly: 0 } });
    const pruned = await agentVerb('prune');
    expect(pruned.exitCode, pruned.stderr).toBe(0);
    expect(JSON.parse(pruned.stdout).destroyed).toEqual([`${T}/d@d1`, `${T}/d@d2`, `${T}/d@d3`]);
    expect(await L.box.check(`zfs list -H -o name -t snapshot -r ${T}/d`)).toBe(`${T}/d@d4`);
  });

  it('each controller permission taken away shows the failure it causes', async () => {
    // One dataset per permission, each delegated the whole set but that one; one job over all of them.
    const ds = (p: string) => `${SRC}/c-${p}`;
    for (const p of CONTROLLER_PERMISSIONS) {
      await L.ctl.check(`zfs create ${ds(p)} && echo x > /tank/src/c-${p}/f && zfs snapshot ${ds(p)}@x1`);
      await L.ctl.check(`zfs allow -u hozo ${without(CONTROLLER_PERMISSIONS, p)} ${ds(p)}`);
    }
    await configAsHozo([{ datasets: CONTROLLER_PERMISSIONS.map((p) => ({ source: ds(p), target: `${T}/c-${p}` })) }]);
    const first = await hozoJsonWith(L, AS_HOZO, 'run', 'nightly');
    for (const p of CONTROLLER_PERMISSIONS)
      await L.ctl.check(`echo y >> /tank/src/c-${p}/f && zfs snapshot ${ds(p)}@x2 && echo z >> /tank/src/c-${p}/f && zfs snapshot ${ds(p)}@x3`);
    const second = await hozoJsonWith(L, AS_HOZO, 'run', 'nightly');
    const report = (r: typeof first, p: string) => r.json.datasets.find((d: any) => d.source === ds(p));
    const warned = (r: typeof first, p: string) => (r.json.warnings ?? []).filter((w: string) => w.startsWith(`${ds(p)}:`)).join('\n');
    const ctx = `first: ${JSON.stringify(first.json)}\nsecond: ${JSON.stringify(second.json)}`;

    // send: nothing reaches the box.
    expect(report(first, 'send').result, ctx).toBe('failed');
    expect(report(first, 'send').error, ctx).toMatchObject({ code: 'ZFS_PERMISSION', message: expect.stringMatching(/permission denied/i) });
    expect(await L.box.sh(`zfs list ${T}/c-send`).then((r) => r.exitCode)).not.toBe(0);
    // hold: the base is not protected (a warning), and the incremental with intermediates fails (send -I holds).
    expect(report(first, 'hold').result, ctx).toBe('sent');
    expect(warned(first, 'hold'), ctx).toMatch(/could not hold/);
    expect(await L.ctl.check(`zfs holds -H ${ds('hold')}@x1 | wc -l`)).toBe('0');
    expect(report(second, 'hold').result, ctx).toBe('failed');
    // release: the new base is held but the old hold cannot be moved off.
    expect(report(second, 'release').result, ctx).toBe('sent');
    expect(warned(second, 'release'), ctx).toMatch(/permission denied/i);
    expect(await L.ctl.check(`zfs holds -H ${ds('release')}@x1 | cut -f2`)).toBe('hozo:nightly');
    // bookmark: no bookmark of the base (a warning).
    expect(report(first, 'bookmark').result, ctx).toBe('sent');
    expect(warned(first, 'bookmark'), ctx).toMatch(/could not keep bookmark/);
    expect(await L.ctl.check(`zfs list -H -o name -t bookmark -r ${ds('bookmark')} | wc -l`)).toBe('0');
    // A failed dataset fails the run.
    expect(first.exitCode).not.toBe(0);
  });

  it('each agent permission taken away shows the failure it causes', async () => {
    // The root's own delegation is lifted for this test; each target parent below it gets the whole set but one.
    const parent = (p: string) => `${AGENT_ROOT}/m-${p}`;
    await L.box.check(`zfs unallow -u hozo ${AGENT_PERMISSIONS.join(',')} ${AGENT_ROOT}`);
    try {
      for (const p of BASE_AGENT_PERMISSIONS) {
        await L.box.check(`zfs create -o canmount=off ${parent(p)} && zfs allow -u hozo ${without(AGENT_PERMISSIONS, p)} ${parent(p)}`);
        await L.ctl.check(
          `zfs create ${SRC}/m-${p} && echo x > /tank/src/m-${p}/f && zfs snapshot ${SRC}/m-${p}@m1 && echo y >> /tank/src/m-${p}/f && zfs snapshot ${SRC}/m-${p}@m2`,
        );
      }
      // canmount: the agent must create a missing parent (canmount=off) for this one.
      const targetOf = (p: string) => (p === 'canmount' ? `${parent(p)}/x/d` : `${parent(p)}/d`);
      await writeConfig(L, [{ datasets: BASE_AGENT_PERMISSIONS.map((p) => ({ source: `${SRC}/m-${p}`, target: targetOf(p) })) }]);
      const run = await hozoJson(L, 'run', 'nightly');
      const report = (p: string) => run.json.datasets.find((d: any) => d.source === `${SRC}/m-${p}`);
      const ctx = JSON.stringify(run.json);
      // create, mount, receive: every receive needs all three; canmount: creating a missing parent (canmount=off).
      for (const p of ['create', 'mount', 'receive', 'canmount']) {
        expect(report(p).result, `${p}: ${ctx}`).toBe('failed');
        expect(report(p).error, `${p}: ${ctx}`).toMatchObject({ code: 'ZFS_PERMISSION', message: expect.stringMatching(/permission denied/i) });
      }
      for (const p of ['send', 'hold', 'destroy']) expect(report(p).result, `${p}: ${ctx}`).toBe('sent');
      expect(await L.box.check(`zfs list -H -o name ${parent('canmount')}/x 2>&1 || true`)).toMatch(/does not exist/);
      expect(await L.box.check(`zfs get -H -o value canmount,mountpoint,setuid ${parent('send')}/d`)).toBe('noauto\nnone\noff');
      // send: no restore; hold: no restore with intermediates (send -I on the box).
      for (const p of ['send', 'hold']) {
        const r = await L.hozo(['restore', 'nightly', '--dataset', `${SRC}/m-${p}`, '--to', `${SRC}/back-${p}`]);
        expect(r.exitCode, `restore without ${p}: ${r.stdout}\n${r.stderr}`).not.toBe(0);
        expect(r.stderr, `restore without ${p}`).toMatch(/permission denied/i);
      }
      const restored = await L.hozo(['restore', 'nightly', '--dataset', `${SRC}/m-destroy`, '--to', `${SRC}/back-destroy`]);
      expect(restored.exitCode, `restore with send and hold: ${restored.stderr}`).toBe(0);
      // destroy: prune cannot destroy the older snapshot there (the others go), and a partial receive cannot be discarded.
      await writeAgentConfig(L, { retention: { hourly: 0, daily: 1, weekly: 0, monthly: 0, yearly: 0 } });
      const pruned = await agentVerb('prune');
      expect(pruned.exitCode).not.toBe(0);
      const pr = JSON.parse(pruned.stdout);
      expect(pr.failed.map((f: any) => f.snapshot)).toEqual([`${parent('destroy')}/d@m1`]);
      expect(pr.destroyed).toContain(`${parent('send')}/d@m1`);
      await L.ctl.check(`zfs create ${SRC}/p && head -c 4M /dev/urandom > /tank/src/p/b && zfs snapshot ${SRC}/p@p1`);
      await partialReceive(`${SRC}/p@p1`, `${parent('destroy')}/p`, 2 * MB);
      await partialReceive(`${SRC}/p@p1`, `${parent('send')}/p`, 2 * MB);
      const refused = await agentVerb(`abort-receive ${parent('destroy')}/p`);
      expect(refused.exitCode, refused.stdout).not.toBe(0);
      expect(refused.stderr).toMatch(/permission denied/i);
      const discarded = await agentVerb(`abort-receive ${parent('send')}/p`);
      expect(discarded.exitCode, discarded.stderr).toBe(0);
    } finally {
      await L.box.check(`zfs allow -u hozo ${AGENT_PERMISSIONS.join(',')} ${AGENT_ROOT}`);
    }
  });

  it('each protection permission taken away: a hostile package is received but left unprotected, so the receive fails and says what to delegate', async () => {
    expect([...AGENT_PERMISSIONS].sort()).toEqual([...BASE_AGENT_PERMISSIONS, ...PROTECTION_PERMISSIONS].sort());
    await makeHostilePackage(L);
    await L.box.check(`zfs unallow -u hozo ${AGENT_PERMISSIONS.join(',')} ${AGENT_ROOT}`);
    try {
      for (const p of PROTECTION_PERMISSIONS) {
        // A parent with a mountpoint of its own, so an inherited value does not hide a missing mountpoint=none.
        const parent = `${AGENT_ROOT}/n-${p}`;
        await L.box.check(`zfs create -o canmount=off -o mountpoint=/srv/n-${p} ${parent} && zfs allow -u hozo ${without(AGENT_PERMISSIONS, p)} ${parent}`);
        const r = await L.ctl.sh(`${AGENT_SSH} hozo@${L.box.ip} receive -u ${parent}/d < ${HOSTILE_PACKAGE}`, { timeoutMs: 300_000 });
        expect(r.exitCode, `${p}: ${r.stderr}`).toBe(1);
        expect(r.stderr, p).toMatch(/not protected on this box .*Delegate mountpoint,canmount,setuid,exec,devices,volmode to/);
        expect(r.stderr, p).toMatch(
          new RegExp(p === 'mountpoint' ? 'ssh: mountpoint=/srv/n-mountpoint/d/ssh' : p === 'volmode' ? 'vol: volmode=default' : `d: ${p}=on`),
        );
        // Nothing of it is mounted, and the agent could not fix it either (setting failed too).
        expect(r.stderr, p).toMatch(/setting them failed too/);
        expect(await L.box.check(`zfs get -H -r -o value mounted ${parent}/d | sort -u`), p).toMatch(/^(-\n)?no$/);
      }
    } finally {
      await L.box.check(`zfs allow -u hozo ${AGENT_PERMISSIONS.join(',')} ${AGENT_ROOT}`);
      await removeHostilePackage(L).catch(() => undefined);
    }
  }, 900_000);

  it('own snapshots as user hozo: with OWN_SNAPSHOT_PERMISSIONS added it snapshots and prunes; without snapshot no snapshot (SNAPSHOT_FAILED), without destroy nothing pruned (a warning)', async () => {
    await L.ctl.check(`zfs create ${SRC}/o && echo o > /tank/src/o/f`);
    const allow = (perms: readonly string[]) => L.ctl.check(`zfs unallow -u hozo ${SRC}/o; zfs allow -u hozo ${perms.join(',')} ${SRC}/o`);
    await configAsHozo([{ snapshot: { create: true, keep: 1 }, datasets: [{ source: `${SRC}/o`, target: `${T}/o` }] }]);
    const own = async () => (await L.ctl.check(`zfs list -H -o name -t snapshot ${SRC}/o || true`)).split('\n').filter(Boolean).length;
    await allow([...CONTROLLER_PERMISSIONS, ...OWN_SNAPSHOT_PERMISSIONS]);
    for (let i = 0; i < 2; i++) {
      const r = await hozoJsonWith(L, AS_HOZO, 'run', 'nightly');
      expect(r.exitCode, r.stderr).toBe(0);
      expect(r.json.ownSnapshot).toMatchObject({ taken: true, atomic: true, datasets: 1 });
    }
    // keep 1: the second run pruned the first (its hold moved to the second first).
    expect(await own()).toBe(1);
    await allow([...CONTROLLER_PERMISSIONS, ...OWN_SNAPSHOT_PERMISSIONS.filter((p) => p !== 'snapshot')]);
    const noSnap = await hozoJsonWith(L, AS_HOZO, 'run', 'nightly');
    expect(noSnap.exitCode).toBe(1);
    expect(noSnap.json.datasets[0].error.code).toBe('SNAPSHOT_FAILED');
    await allow([...CONTROLLER_PERMISSIONS, ...OWN_SNAPSHOT_PERMISSIONS.filter((p) => p !== 'destroy')]);
    const noDestroy = await hozoJsonWith(L, AS_HOZO, 'run', 'nightly');
    expect(noDestroy.exitCode, noDestroy.stderr).toBe(0);
    expect(noDestroy.json.warnings.join('\n')).toMatch(/could not prune \S+@\S+: .*permission/i);
    expect(await own()).toBe(2);
  }, 600_000);
});
