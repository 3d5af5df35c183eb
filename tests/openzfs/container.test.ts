// The controller as a container image (scripts/container-image.sh, docs/container.md), run the way a Proxmox or
// TrueNAS host would run it: Debian's podman in the lab's controller VM, /dev/zfs passed in, the host's network, the
// config and state as volumes. Against the box VM powered off: the container's hozo wakes it with a magic packet,
// replicates, has the agent power it off, and `hozo verify` in the container finds the backup good. The image is
// built on this machine from Debian packages (debootstrap, umoci), podman comes from Debian's packages
// (scripts/lab-podman-debs.sh: what the VM image lacks for it), installed in the VM, which has no network of its own.
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findImage, type VmLab } from '../../src/lab/vm/lab.js';
import { check } from '../../src/lab/proc.js';
import { AGENT_ROOT, SRC, guids, labOrSkip, reset, skipReason, writeConfig } from './helpers.js';

const lab: VmLab | undefined = labOrSkip();
if (lab === undefined) console.warn(`SKIP: tests/openzfs/container.test.ts: ${skipReason()}`);

const REPO = join(import.meta.dirname, '..', '..');
/** The project as the VMs see it: the read-only 9p share, mounted only while something is copied from it. */
const SHARE = '/opt/hozo';

describe.skipIf(lab === undefined)('the controller as an OCI image under podman (OpenZFS lab, controller VM)', () => {
  const L = lab!;
  const T = `${AGENT_ROOT}/src`;
  let image = '';
  /** `podman run` of the image as docs/container.md says, with hozo's arguments. */
  const podmanRun = (args: string) =>
    'podman run --rm --network host --cap-add SYS_ADMIN --device /dev/zfs ' +
    `-v /etc/hozo:/etc/hozo:ro -v /var/lib/hozo:/var/lib/hozo ${image} --config /etc/hozo/config.yaml ${args}`;

  beforeAll(async () => {
    const archive = join(REPO, '.lab', 'container', `hozo-oci-${L.series}.tar`);
    const debs = join(REPO, '.lab', 'container', `debs-${L.series}`);
    await check(['bash', join(REPO, 'scripts', 'container-image.sh'), '--zfs', L.series, '--out', archive], { timeoutMs: 900_000 });
    const labImage = await findImage(L.series);
    if (labImage === undefined) throw new Error(`no OpenZFS ${L.series} lab image`);
    await check(['bash', join(REPO, 'scripts', 'lab-podman-debs.sh'), labImage, debs], { timeoutMs: 600_000 });
    const inShare = (p: string) => `${SHARE}/${p.slice(REPO.length + 1)}`;
    await reset(L);
    // Installed once per VM boot; loaded every time (the archive holds this checkout's build).
    const loaded = await L.ctl.check(
      `mountpoint -q ${SHARE} || mount ${SHARE}; ` +
        `{ command -v podman >/dev/null || DEBIAN_FRONTEND=noninteractive dpkg -i ${inShare(debs)}/*.deb >/tmp/podman-dpkg.log 2>&1; } && ` +
        `podman load -q -i ${inShare(archive)}; s=$?; umount ${SHARE}; exit $s`,
      { timeoutMs: 900_000 },
    );
    image = /Loaded image(?:\(s\))?: (\S+)/.exec(loaded)?.[1] ?? '';
    expect(image, loaded).toMatch(/^localhost\/hozo:/);
  }, 1_800_000);
  afterAll(async () => {
    await reset(L).catch(() => undefined);
  });

  it("the image's ZFS userland is the series of the VM's kernel module, and it is labelled with it", async () => {
    const versions = await L.ctl.check(`podman run --rm --device /dev/zfs --entrypoint zfs ${image} version`);
    const user = /^zfs-(\d+\.\d+)\./m.exec(versions)?.[1];
    const kmod = /^zfs-kmod-(\d+\.\d+)\./m.exec(versions)?.[1];
    expect(user, versions).toBe(L.series);
    expect(kmod, versions).toBe(L.series);
    expect(await L.ctl.check(`podman image inspect -f '{{index .Labels "io.hozo.zfs-series"}}' ${image}`)).toBe(L.series);
  });

  it('podman run: wakes the powered-off box with a magic packet, replicates, the agent powers it off; verify in the container passes', async () => {
    await L.ctl.check(`zfs create ${SRC}/c && head -c 8M /dev/urandom > /tank/src/c/blob && zfs snapshot ${SRC}/c@c1`);
    await writeConfig(L, [{ datasets: [{ source: `${SRC}/c`, target: `${T}/c` }] }], { shutdown: 'agent' });
    await L.box.sh('systemctl start --no-block hozo-poweroff.service');
    expect(await L.box.waitGone(180_000), 'the box VM powered off before the run').toBe(true);
    await L.box.closeSsh();
    const before = L.wakeEvents().length;

    const r = await L.ctl.sh(`${podmanRun('run nightly --json')}; echo "exit=$?" >&2`, { timeoutMs: 900_000 });
    const json = JSON.parse(r.stdout);
    expect(r.stderr, r.stdout).toContain('exit=0');
    expect(json.datasets[0]).toMatchObject({ source: `${SRC}/c`, result: 'sent' });
    expect(json.datasets[0].bytes).toBeGreaterThan(8_000_000);
    expect(json.hosts[0]).toMatchObject({ woke: true, awakeBefore: false, shutdown: 'done' });
    expect(
      L.wakeEvents()
        .slice(before)
        .filter((e) => e.vm === 'box')
        .map((e) => e.action),
    ).toContain('boot');
    expect(await L.box.waitGone(180_000), 'the box powered off after the run').toBe(true);
    // The hold that protects the incremental base is on the VM's pool (the container saw the host's /dev/zfs).
    expect(await L.ctl.check(`zfs holds -H ${SRC}/c@c1 | cut -f2`)).toBe('hozo:nightly');

    await L.ensureBoxUp();
    expect((await guids(L.box, `${T}/c`)).get('@c1')).toBe((await guids(L.ctl, `${SRC}/c`)).get('@c1'));
    const v = await L.ctl.sh(`${podmanRun('verify nightly --json')}; echo "exit=$?" >&2`, { timeoutMs: 600_000 });
    expect(v.stderr, v.stdout).toContain('exit=0');
  });

  it('without --cap-add SYS_ADMIN: the send is refused, the run fails (exit 1) with a hint naming the capability; nothing reaches the box', async () => {
    await reset(L);
    await L.ctl.check(`zfs create ${SRC}/n && zfs snapshot ${SRC}/n@n1`);
    await writeConfig(L, [{ datasets: [{ source: `${SRC}/n`, target: `${T}/n` }] }]);
    const r = await L.ctl.sh(`${podmanRun('run nightly --json').replace(' --cap-add SYS_ADMIN', '')}; echo "exit=$?" >&2`, { timeoutMs: 600_000 });
    expect(r.stderr, r.stdout).toContain('exit=1');
    const d = JSON.parse(r.stdout).datasets[0];
    expect(d.result).toBe('failed');
    expect(JSON.stringify(d)).toContain('--cap-add SYS_ADMIN');
    expect(await L.box.check(`zfs list -H -o name ${T}/n 2>/dev/null || echo none`)).toBe('none');
    expect(await L.ctl.check(`zfs holds -H ${SRC}/n@n1 | wc -l`)).toBe('0');
  });
});
