// The box never sees plaintext (the trust-boundary issue), on real OpenZFS in the lab's VMs, through the agent. The box
// is untrusted (the default): an encrypted source goes raw (`zfs send -w`), full and then a chain of incrementals; on
// the box the key is unavailable, nothing mounts, no key exists anywhere on it and the file's content is not on its
// disk (a plaintext control dataset sent with allowPlaintext is). An unencrypted dataset is refused and nothing of it
// arrives. A snapshot taken on the box is a divergence, never received into. A key change on the source, then the
// next incremental. Restore brings it back encrypted; the original key opens it; content byte-identical. A child that
// is its own encryption root (its own key and cipher) goes raw as well and restores with its own key.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { VmLab } from '../../src/lab/vm/lab.js';
import { AGENT_ROOT, SRC, guids, hozoJson, labOrSkip, reset, skipReason, writeConfig } from './helpers.js';

const lab: VmLab | undefined = labOrSkip();
if (lab === undefined) console.warn(`SKIP: tests/openzfs/encryption.test.ts: ${skipReason()}`);

const KEY = '/root/hozo-enc-test.key';
const PASS = `pass-${randomBytes(8).toString('hex')}`;
// Random (base64url: no 4-byte repeats for lz4 to fold), each written inside random data so that compression keeps it
// verbatim where it is stored in the clear: the control finds PLAIN on the box's disk, the test looks for SECRET.
const SECRET = `secret${randomBytes(30).toString('base64url')}`;
const PLAIN = `plain${randomBytes(30).toString('base64url')}`;
const markerFile = (marker: string, path: string) => `{ head -c 64K /dev/urandom; printf '%s' '${marker}'; head -c 64K /dev/urandom; } > ${path}`;
const ENC = `${SRC}/enc`;
const T = `${AGENT_ROOT}/src`;
const UNTRUSTED = { trust: 'untrusted' };

describe.skipIf(lab === undefined)('raw encrypted backups to an untrusted box on real OpenZFS (VMs)', () => {
  const L = lab!;

  beforeAll(async () => {
    await reset(L);
    await L.ctl.check(
      [
        `printf '%s' ${PASS} > ${KEY} && chmod 600 ${KEY}`,
        `zfs create -o encryption=on -o keyformat=passphrase -o keylocation=file://${KEY} ${ENC}`,
        `zfs create ${ENC}/child`,
        `${markerFile(SECRET, '/tank/src/enc/secret.txt')} && head -c 2M /dev/urandom > /tank/src/enc/blob && ${markerFile(SECRET, '/tank/src/enc/child/c.txt')}`,
        `zfs snapshot -r ${ENC}@e1`,
      ].join(' && '),
    );
  });
  afterAll(async () => {
    await reset(L).catch(() => undefined);
    await L.ctl.sh(`rm -f ${KEY} ${KEY}.2`).catch(() => undefined);
  });

  const onBox = (ds: string) => L.box.check(`zfs get -H -o value encryption,keystatus,encryptionroot,mounted ${ds}`);

  it('encrypted datasets go raw: the box cannot read them, has no key, and the content is not on its disk; a plaintext control is', async () => {
    await L.ctl.check(`zfs create ${SRC}/plain && ${markerFile(PLAIN, '/tank/src/plain/p.txt')} && zfs snapshot ${SRC}/plain@p1`);
    await writeConfig(
      L,
      [
        {
          datasets: [
            { source: ENC, target: `${T}/enc`, recursive: true },
            { source: `${SRC}/plain`, target: `${T}/plain`, allowPlaintext: true },
          ],
        },
      ],
      UNTRUSTED,
    );
    const r = await hozoJson(L, 'run', 'nightly');
    expect(r.exitCode, r.stderr).toBe(0);
    for (const d of r.json.datasets) expect(d, JSON.stringify(d)).toMatchObject({ result: 'sent', verified: true });
    expect(await onBox(`${T}/enc`)).toBe(`aes-256-gcm\nunavailable\n${T}/enc\nno`);
    // The child's own root on the box (a raw receive of one dataset makes it one), still unreadable.
    expect((await onBox(`${T}/enc/child`)).split('\n').slice(0, 2)).toEqual(['aes-256-gcm', 'unavailable']);
    // Not mountable even by root, and no key anywhere on the box.
    // (Its mountpoint is none, a receive protection; given one, the mount still fails for want of the key.)
    const mount = await L.box.sh(`zfs set mountpoint=/mnt/hozo-try ${T}/enc; zfs mount ${T}/enc; r=$?; zfs set mountpoint=none ${T}/enc; exit $r`);
    expect(mount.exitCode).not.toBe(0);
    expect(mount.stderr).toMatch(/encryption key not loaded/i);
    expect(await L.box.check(`grep -rlF ${PASS} /etc /root /home /var /tmp 2>/dev/null | head; true`)).toBe('');
    // The box's pool disk, read raw after a sync: the plaintext control's content is there, the secret is not.
    // O_DIRECT: ZFS writes its vdevs with its own bios, so the block device's page cache may hold older pages. NULs
    // become line breaks: grep holds a whole "line" in memory, and a disk has few newlines (it was OOM-killed).
    const disk = await L.box.check(
      `zpool sync backup; sync; echo 3 > /proc/sys/vm/drop_caches; dd if=/dev/disk/by-id/virtio-d1 bs=1M iflag=direct status=none | tr '\\000' '\\n' | grep -a -o -F -e '${SECRET}' -e '${PLAIN}' | sort -u; true`,
      { timeoutMs: 600_000 },
    );
    expect(disk.split('\n')).toEqual([PLAIN]);
  }, 900_000);

  it('a chain of 5 raw incrementals; every one verified and still unreadable on the box', async () => {
    await writeConfig(L, [{ datasets: [{ source: ENC, target: `${T}/enc`, recursive: true }] }], UNTRUSTED);
    for (let i = 2; i <= 6; i++) {
      await L.ctl.check(`echo ${i} >> /tank/src/enc/secret.txt && zfs snapshot -r ${ENC}@e${i}`);
      const r = await hozoJson(L, 'run', 'nightly');
      expect(r.exitCode, r.stderr).toBe(0);
      expect(r.json.datasets[0]).toMatchObject({ result: 'sent', verified: true, base: `e${i - 1}`, newest: `e${i}` });
    }
    expect([...(await guids(L.box, `${T}/enc`)).entries()]).toEqual([...(await guids(L.ctl, ENC)).entries()]);
    expect(await onBox(`${T}/enc`)).toBe(`aes-256-gcm\nunavailable\n${T}/enc\nno`);
  }, 900_000);

  it('an unencrypted dataset is refused: a clear message, nothing of it sent; the encrypted one beside it still goes', async () => {
    await L.ctl.check(
      `zfs create ${SRC}/open && echo open > /tank/src/open/f && zfs snapshot ${SRC}/open@o1 && echo x >> /tank/src/enc/secret.txt && zfs snapshot -r ${ENC}@e7`,
    );
    await writeConfig(
      L,
      [
        {
          datasets: [
            { source: `${SRC}/open`, target: `${T}/open` },
            { source: ENC, target: `${T}/enc`, recursive: true },
          ],
        },
      ],
      UNTRUSTED,
    );
    const r = await hozoJson(L, 'run', 'nightly');
    expect(r.exitCode).toBe(1);
    const open = r.json.datasets.find((d: any) => d.source === `${SRC}/open`);
    expect(open).toMatchObject({ result: 'failed', error: { code: 'PLAINTEXT_REFUSED' } });
    expect(open.error.message).toMatch(/tank\/src\/open is not encrypted and host "box" is untrusted: nothing of it was sent/);
    expect(open.error.hint).toMatch(/trust: trusted/);
    expect(r.stderr).toMatch(/PLAINTEXT|not encrypted/);
    expect(await L.box.check(`zfs list -H -o name ${T}/open 2>&1 || true`)).toMatch(/does not exist/);
    expect(r.json.datasets.find((d: any) => d.source === ENC)).toMatchObject({ result: 'sent', newest: 'e7' });
  }, 900_000);

  it('a snapshot taken on the box of a raw backup is a divergence, never received into', async () => {
    await L.box.check(`zfs snapshot ${T}/enc@boxlocal`);
    await L.ctl.check(`echo y >> /tank/src/enc/secret.txt && zfs snapshot -r ${ENC}@e8`);
    await writeConfig(L, [{ datasets: [{ source: ENC, target: `${T}/enc` }] }], UNTRUSTED);
    const r = await hozoJson(L, 'run', 'nightly');
    expect(r.exitCode).toBe(1);
    expect(r.json.datasets[0].result).toBe('conflict');
    expect([...(await guids(L.box, `${T}/enc`)).keys()].slice(-2)).toEqual(['@e7', '@boxlocal']);
    await L.box.check(`zfs destroy ${T}/enc@boxlocal`);
  }, 900_000);

  it('after a key change on the source the next raw incremental still arrives, and restore opens with the new key, byte-identical', async () => {
    await L.ctl.check(
      `printf '%s' ${PASS}-2 > ${KEY}.2 && zfs change-key -o keylocation=file://${KEY}.2 ${ENC} && echo z >> /tank/src/enc/secret.txt && zfs snapshot -r ${ENC}@e9`,
    );
    await writeConfig(L, [{ datasets: [{ source: ENC, target: `${T}/enc` }] }], UNTRUSTED);
    const r = await hozoJson(L, 'run', 'nightly');
    expect(r.exitCode, `${r.stderr}\n${JSON.stringify(r.json.datasets)}`).toBe(0);
    expect(r.json.datasets[0]).toMatchObject({ result: 'sent', verified: true, newest: 'e9' });
    expect(await onBox(`${T}/enc`)).toBe(`aes-256-gcm\nunavailable\n${T}/enc\nno`);

    const restored = await L.hozo(['restore', 'nightly', '--dataset', ENC, '--to', `${SRC}/back`]);
    expect(restored.exitCode, `${restored.stdout}\n${restored.stderr}`).toBe(0);
    expect(await L.ctl.check(`zfs get -H -o value encryption,keystatus ${SRC}/back`)).toBe('aes-256-gcm\nunavailable');
    // The backup's key is the one it was sent with at its newest snapshot: the changed one.
    await L.ctl.check(
      `zfs load-key -L file://${KEY}.2 ${SRC}/back && zfs set mountpoint=/tank/src/back canmount=on ${SRC}/back && { zfs mount ${SRC}/back 2>/dev/null; test "$(zfs get -H -o value mounted ${SRC}/back)" = yes; }`,
    );
    const sums = await L.ctl.check('cd /tank/src/enc && sha256sum secret.txt blob; cd /tank/src/back && sha256sum secret.txt blob');
    const [a, b, c, d] = sums.split('\n');
    expect([c, d]).toEqual([a, b]);
  }, 900_000);

  it('a child that is its own encryption root (its own key) goes raw too, stays its own root, and restores with its own key', async () => {
    const OWN = `${ENC}/own`;
    await L.ctl.check(
      `printf '%s' ${PASS}-own > ${KEY}.own && chmod 600 ${KEY}.own && ` +
        `zfs create -o encryption=aes-128-gcm -o keyformat=passphrase -o keylocation=file://${KEY}.own ${OWN} && ` +
        `${markerFile(SECRET, '/tank/src/enc/own/o.txt')} && zfs snapshot -r ${ENC}@e10`,
    );
    // zfs get lists by name: enc/child (inherits from enc), then enc/own (its own root).
    expect(await L.ctl.check(`zfs get -H -o value encryptionroot ${OWN} ${ENC}/child`)).toBe(`${ENC}\n${OWN}`);
    await writeConfig(L, [{ datasets: [{ source: ENC, target: `${T}/enc`, recursive: true }] }], UNTRUSTED);
    const r = await hozoJson(L, 'run', 'nightly');
    expect(r.exitCode, `${r.stderr}\n${JSON.stringify(r.json.datasets)}`).toBe(0);
    const own = r.json.datasets.find((d: any) => d.source === OWN);
    expect(own, JSON.stringify(r.json.datasets)).toMatchObject({ result: 'sent', verified: true, newest: 'e10' });
    // On the box: its own cipher and root, key unavailable; the inherited child beside it still unreadable.
    expect(await onBox(`${T}/enc/own`)).toBe(`aes-128-gcm\nunavailable\n${T}/enc/own\nno`);
    expect(await L.box.check(`zfs get -H -o value keystatus ${T}/enc/child`)).toBe('unavailable');

    const restored = await L.hozo(['restore', 'nightly', '--dataset', OWN, '--to', `${SRC}/ownback`]);
    expect(restored.exitCode, `${restored.stdout}\n${restored.stderr}`).toBe(0);
    expect(await L.ctl.check(`zfs get -H -o value encryption,keystatus,encryptionroot ${SRC}/ownback`)).toBe(`aes-128-gcm\nunavailable\n${SRC}/ownback`);
    // Its own key opens it (the parent's does not), and the content is the source's.
    const wrong = await L.ctl.sh(`zfs load-key -L file://${KEY}.2 ${SRC}/ownback`);
    expect(wrong.exitCode).not.toBe(0);
    await L.ctl.check(
      `zfs load-key -L file://${KEY}.own ${SRC}/ownback && zfs set mountpoint=/tank/src/ownback canmount=on ${SRC}/ownback && { zfs mount ${SRC}/ownback 2>/dev/null; test "$(zfs get -H -o value mounted ${SRC}/ownback)" = yes; }`,
    );
    const [a, b] = (await L.ctl.check('sha256sum /tank/src/enc/own/o.txt /tank/src/ownback/o.txt')).split('\n').map((l) => l.split(' ')[0]);
    expect(b).toBe(a);
  }, 900_000);
});
