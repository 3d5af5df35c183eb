// Issue 13's features where they need real OpenZFS (the lab's VMs: hozo in ctl, hozo-agent on the box): an own
// snapshot of two trees is one `zfs snapshot` (every dataset's snapshot has the same createtxg: one transaction
// group); `hozo verify --restore-test` of a raw-encrypted backup on an untrusted box loads the key from the source's
// keylocation and finds every file identical; a wake window that closes during a transfer cuts it, and the next run
// resumes the receive from its token (nothing sent twice) and completes it.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { VmLab } from '../../src/lab/vm/lab.js';
import { AGENT_ROOT, SRC, hozoJson, labOrSkip, randomFile, reset, shapeLink, skipReason, writeConfig } from './helpers.js';

const lab: VmLab | undefined = labOrSkip();
if (lab === undefined) console.warn(`SKIP: tests/openzfs/operator.test.ts: ${skipReason()}`);

const T = `${AGENT_ROOT}/op`;
const KEY = '/root/op.key';

describe.skipIf(lab === undefined)('own snapshots, restore-tested verify and the wake window on real OpenZFS', () => {
  const L = lab!;
  beforeAll(async () => {
    await reset(L);
  }, 600_000);
  afterAll(async () => {
    await reset(L).catch(() => undefined);
    await L.ctl.sh(`rm -f ${KEY}`).catch(() => undefined);
  });

  it('an own snapshot of two trees is one zfs snapshot: one createtxg for every dataset, atomic in the report', async () => {
    await L.ctl.check(`zfs create ${SRC}/a && zfs create ${SRC}/a/x && zfs create ${SRC}/b && echo 1 > /tank/src/a/x/f && echo 2 > /tank/src/b/f`);
    // With hooks around it (argv, no shell string from hozo): each run appends its points and the snapshot name.
    const hook = (tag: string) => ['sh', '-c', `echo "${tag} $HOZO_HOOK \${HOZO_SNAPSHOT:-} \${HOZO_RESULT:-}" >> /var/tmp/op-hooks`];
    await L.ctl.check('rm -f /var/tmp/op-hooks');
    await writeConfig(L, [
      {
        snapshot: { create: true, keep: 2 },
        hooks: { preSnapshot: hook('job'), postRun: hook('job') },
        datasets: [
          { source: `${SRC}/a`, target: `${T}/a`, recursive: true, hooks: { postSnapshot: hook('a') } },
          { source: `${SRC}/b`, target: `${T}/b` },
        ],
      },
    ]);
    const names: string[] = [];
    for (let i = 0; i < 3; i++) {
      const r = await hozoJson(L, 'run', 'nightly');
      expect(r.exitCode, r.stderr).toBe(0);
      expect(r.json.ownSnapshot).toMatchObject({ datasets: 3, atomic: true, taken: true });
      expect(r.json.warnings.filter((w: string) => w.includes('dataset by dataset'))).toEqual([]);
      names.push(r.json.ownSnapshot.name);
    }
    expect((await L.ctl.check('cat /var/tmp/op-hooks')).split('\n')).toEqual(
      names.flatMap((n) => [`job preSnapshot ${n} `, `a postSnapshot ${n} `, 'job postRun  ok']),
    );
    const last = names[2]!;
    const txgs = await L.ctl.check(`zfs get -H -p -o value createtxg ${SRC}/a@${last} ${SRC}/a/x@${last} ${SRC}/b@${last}`);
    expect(new Set(txgs.split('\n')).size, txgs).toBe(1);
    // keep 2 on the source: the oldest pruned (by the job's delegation-free root run), the box keeps all three.
    expect((await L.ctl.check(`zfs list -H -o name -t snapshot ${SRC}/b`)).split('\n').map((n) => n.split('@')[1])).toEqual(names.slice(1));
    expect((await L.box.check(`zfs list -H -o name -t snapshot ${T}/b`)).split('\n').map((n) => n.split('@')[1])).toEqual(names);
  });

  it("verify --restore-test of a raw-encrypted backup on an untrusted box: key loaded from the source's keylocation, every file identical, scratch gone", async () => {
    await L.ctl.check(
      `printf '%s' 'operator-test-passphrase' > ${KEY} && chmod 600 ${KEY} && ` +
        `zfs create -o encryption=on -o keyformat=passphrase -o keylocation=file://${KEY} ${SRC}/enc && ` +
        `mkdir -p /tank/src/enc/d && head -c 3M /dev/urandom > /tank/src/enc/d/blob && echo secret > /tank/src/enc/s.txt && ln -s d/blob /tank/src/enc/link && zfs snapshot ${SRC}/enc@e1`,
    );
    await writeConfig(L, [{ datasets: [{ source: `${SRC}/enc`, target: `${T}/enc` }] }], { trust: 'untrusted' });
    const run = await hozoJson(L, 'run', 'nightly');
    expect(run.exitCode, run.stderr).toBe(0);
    expect(await L.box.check(`zfs get -H -o value keystatus ${T}/enc`)).toBe('unavailable');
    const v = await hozoJson(L, 'verify', 'nightly', '--restore-test');
    expect(v.exitCode, v.stderr).toBe(0);
    const d = v.json.datasets[0];
    expect(d).toMatchObject({ result: 'ok', snapshot: 'e1', protectedBy: ['hold', 'bookmark'] });
    expect(d.restoreTest).toMatchObject({ result: 'ok', filesChecked: 2, mismatches: [] });
    expect(d.restoreTest.bytesChecked).toBe(3 * 1024 * 1024 + 'secret\n'.length);
    expect(await L.ctl.check(`zfs list -H -o name -r tank | grep -c hozo-verify || true`)).toBe('0');
    // The box still has no key (the restore test loaded it on ctl, into the scratch copy, now destroyed).
    expect(await L.box.check(`zfs get -H -o value keystatus ${T}/enc`)).toBe('unavailable');
  });

  it('a wake window that closes during a transfer cuts it and the box sleeps; the next wake resumes the receive from its token, completes, and the box sleeps again', async () => {
    await L.ctl.check(`zfs create ${SRC}/big`);
    await randomFile(L, '/tank/src/big/blob', 40);
    await L.ctl.check(`zfs snapshot ${SRC}/big@w1`);
    // 8 Mbit/s: 40 MiB take ~45 s; the window closes for transfers after 25 s (30 s less its 5 s margin).
    await writeConfig(L, [{ window: { maxAwake: 30 }, datasets: [{ source: `${SRC}/big`, target: `${T}/big` }] }], {
      shutdown: 'agent',
      shutdownIfAwake: true,
    });
    const first = await shapeLink(L, 8, () => hozoJson(L, 'run', 'nightly'));
    expect(first.exitCode, first.stderr).toBe(0);
    expect(first.json.datasets[0]).toMatchObject({ result: 'deferred' });
    expect(first.json.datasets[0].estimatedBytes).toBeGreaterThan(40 << 20);
    expect(first.json.window).toMatchObject({ maxAwake: 30, backlogDatasets: 1 });
    // The whole run, the wake check before and the release after included, within the window.
    expect(first.json.seconds).toBeLessThan(30);
    expect(first.stderr).toMatch(/cut at the end of the wake window; the receive resumes there at the next wake/);
    expect(first.json.hosts[0].shutdown).toBe('done');
    expect(await L.box.waitGone(180_000), 'asleep (powered off) after the first run').toBe(true);
    await L.box.closeSsh();
    // The next wake: a cold boot by magic packet counts into the window too, so this one is longer.
    await writeConfig(L, [{ window: { maxAwake: 240 }, datasets: [{ source: `${SRC}/big`, target: `${T}/big` }] }], { shutdown: 'agent' });
    const second = await hozoJson(L, 'run', 'nightly');
    expect(second.exitCode, second.stderr).toBe(0);
    expect(second.json.hosts[0]).toMatchObject({ woke: true, shutdown: 'done' });
    expect(second.json.datasets[0]).toMatchObject({ result: 'sent', verified: true, newest: 'w1' });
    expect(second.json.datasets[0].plan).toMatch(/^resume/);
    // The resumed part only: less than the whole stream went over the second time.
    expect(second.json.datasets[0].bytes).toBeLessThan(40 << 20);
    expect(second.json.window.backlogDatasets).toBe(0);
    expect(await L.box.waitGone(180_000), 'asleep again after the second run').toBe(true);
    await L.box.closeSsh();
  });
});
