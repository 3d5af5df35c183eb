// Per-controller sections on real OpenZFS, through the real forced command: two controller keys on the ctl VM
// (alice: appendOnly; bob), each authorized on the box as `hozo-agent serve --controller NAME`, own roots under the
// delegated backup/hozo. Every verb of bob's key against alice's roots and leases is refused or sees nothing of hers;
// alice's appendOnly key cannot force, prune or abort; bob's shutdown while alice holds a lease is deferred and her
// release powers the box off for real; a quota on bob's root stops his receives there. tests/integration/controllers.test.ts is the same on zfs-fuse (more cases).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { VM_AGENT, authorizeController, labSectionedAgentConfig, type VmLab } from '../../src/lab/vm/lab.js';
import { AGENT_ROOT, LAB_KEX, SRC, labOrSkip, reset, skipReason } from './helpers.js';

const lab: VmLab | undefined = labOrSkip();
if (lab === undefined) console.warn(`SKIP: tests/openzfs/controllers.test.ts: ${skipReason()}`);

const A = `${AGENT_ROOT}/alice`;
const B = `${AGENT_ROOT}/bob`;

describe.skipIf(lab === undefined)('per-controller sections of one box on real OpenZFS (two keys, forced command)', () => {
  const L = lab!;
  const ssh = (who: string) => `ssh -i /etc/hozo/key-${who} -o UserKnownHostsFile=/etc/hozo/known_hosts -o BatchMode=yes -o ${LAB_KEX} hozo@${L.box.ip}`;
  /** One request with `who`'s key, optionally fed by a `zfs send` on ctl; exit code, stdout and stderr. */
  async function as(who: string, request: string, send?: string): Promise<{ code: number; stdout: string; stderr: string }> {
    const r = await L.ctl.sh(`${send !== undefined ? `zfs send ${send} | ` : ''}${ssh(who)} '${request}'`, { timeoutMs: 180_000 });
    return { code: r.exitCode ?? -1, stdout: r.stdout, stderr: r.stderr };
  }

  beforeAll(async () => {
    await reset(L);
    await L.ctl.check(
      `zfs create ${SRC}/d && echo data > /tank/src/d/f && zfs snapshot ${SRC}/d@s1 && zfs snapshot ${SRC}/d@s2 && ` +
        `for w in alice bob; do rm -f /etc/hozo/key-$w*; ssh-keygen -q -t ed25519 -N '' -C hozo@$w -f /etc/hozo/key-$w; done`,
    );
    const keys = (await L.ctl.check('cat /etc/hozo/key-alice.pub /etc/hozo/key-bob.pub')).split('\n');
    await L.box.writeFile(
      '/home/hozo/.ssh/authorized_keys',
      ['alice', 'bob'].map((w, i) => `command="${VM_AGENT} serve --controller ${w} --config /etc/hozo-agent/config.json",restrict ${keys[i]}\n`).join(''),
      '0600',
      'hozo',
    );
    await L.box.writeFile(
      '/etc/hozo-agent/config.json',
      JSON.stringify(
        labSectionedAgentConfig(
          { alice: { roots: [A], appendOnly: true }, bob: { roots: [B], maxLeases: 2, maxReceives: 1 } },
          { retention: { daily: 7, weekly: 0, monthly: 0 } },
        ),
      ),
    );
    await L.box.check(`zfs create -o canmount=off ${A} && zfs create -o canmount=off ${B}`);
    const first = await as('alice', `receive -u ${A}/d`, `${SRC}/d@s1`);
    expect(first.code, first.stderr).toBe(0);
  }, 600_000);
  afterAll(async () => {
    await L.ensureBoxUp().catch(() => undefined);
    await authorizeController(L.ctl, L.box).catch(() => undefined);
    await reset(L).catch(() => undefined);
    await L.ctl.sh('rm -f /etc/hozo/key-alice* /etc/hozo/key-bob*').catch(() => undefined);
  });

  it("bob's key cannot list, receive into, send from, abort or prune alice's root, nor see it in list, status or prune", async () => {
    const before = await L.box.check(`zfs get -H -p -r -o name,property,value guid,userrefs ${A}`);
    const refused = [
      [`list ${A}`, await as('bob', `list ${A}`)],
      [`receive -u ${A}/d2`, await as('bob', `receive -u ${A}/d2`, `${SRC}/d@s1`)],
      [`receive -u ${A}/d (incremental)`, await as('bob', `receive -u ${A}/d`, `-i ${SRC}/d@s1 ${SRC}/d@s2`)],
      [`send ${A}/d@s1`, await as('bob', `send ${A}/d@s1`)],
      [`abort-receive ${A}/d`, await as('bob', `abort-receive ${A}/d`)],
    ] as const;
    for (const [what, r] of refused) {
      expect(r.code, `${what}: ${r.stderr}`).toBe(2);
      expect(r.stderr, what).toContain(`outside the backup roots (${B})`);
    }
    const l = await as('bob', 'list');
    expect(l.code).toBe(0);
    expect(l.stdout).not.toContain(A);
    const p = await as('bob', 'prune --dry-run');
    expect(p.code, p.stderr).toBe(0);
    expect(p.stdout).not.toContain(A);
    const st = await as('bob', 'status');
    expect(st.stdout).not.toContain('alice');
    expect(await L.box.check(`zfs get -H -p -r -o name,property,value guid,userrefs ${A}`)).toBe(before);
    expect((await L.box.sh(`zfs list ${A}/d2`)).exitCode).not.toBe(0);
    // alice's own key: her root, and an incremental on top of her newest.
    expect((await as('alice', `list ${A}`)).stdout).toContain(`${A}/d@s1`);
    const inc = await as('alice', `receive -u ${A}/d`, `-i ${SRC}/d@s1 ${SRC}/d@s2`);
    expect(inc.code, inc.stderr).toBe(0);
  }, 600_000);

  it('appendOnly (alice): receive -F, prune and abort-receive are refused by her key; nothing of hers changes', async () => {
    const before = await L.box.check(`zfs list -H -o name -t snapshot -r ${A}`);
    for (const request of [`receive -u -F ${A}/d`, 'prune', `abort-receive ${A}/d`]) {
      const r = await as('alice', request, request.startsWith('receive') ? `-i ${SRC}/d@s1 ${SRC}/d@s2` : undefined);
      expect(r.code, `${request}: ${r.stderr}`).toBe(2);
      expect(r.stderr, request).toMatch(/appendOnly/);
    }
    expect(await L.box.check(`zfs list -H -o name -t snapshot -r ${A}`)).toBe(before);
  }, 600_000);

  it("a quota on bob's root (set by root, as the NixOS module's controllers.<name>.quota does) stops his receive at the quota; alice's root and pool are untouched", async () => {
    await L.ctl.check(`zfs create ${SRC}/big && head -c 6M /dev/urandom > /tank/src/big/f && zfs snapshot ${SRC}/big@s1`);
    await L.box.check(`zfs set quota=2M ${B}`);
    try {
      const before = await L.box.check(`zfs get -H -p -r -o name,property,value guid ${A}`);
      const r = await as('bob', `receive -u ${B}/big`, `${SRC}/big@s1`);
      expect(r.code, r.stderr).not.toBe(0);
      expect(r.stderr).toMatch(/quota|space/i);
      expect((await L.box.sh(`zfs list ${B}/big`)).exitCode, 'nothing of the refused stream is left').not.toBe(0);
      expect(Number(await L.box.check(`zfs get -H -p -o value used ${B}`))).toBeLessThanOrEqual(2 * 1024 * 1024);
      expect(await L.box.check(`zfs get -H -p -r -o name,property,value guid ${A}`)).toBe(before);
      // Within the quota bob still receives.
      const small = await as('bob', `receive -u ${B}/d`, `${SRC}/d@s1`);
      expect(small.code, small.stderr).toBe(0);
    } finally {
      await L.box.check(`zfs set quota=none ${B}`);
    }
  }, 600_000);

  it("caps per key: bob's third lease is refused (maxLeases 2; alice's do not count), and a second receive while his first streams (maxReceives 1)", async () => {
    expect((await as('alice', 'hold a1 600')).code).toBe(0);
    try {
      for (const id of ['b1', 'b2']) expect((await as('bob', `hold ${id} 600`)).code).toBe(0);
      const third = await as('bob', 'hold b3 600');
      expect(third.code, third.stderr).toBe(3);
      expect(JSON.parse(third.stdout)).toMatchObject({ held: false, id: 'b3', reason: '2 leases are held already (maxLeases)' });
    } finally {
      for (const id of ['b1', 'b2']) await as('bob', `release ${id}`);
      await as('alice', 'release a1');
    }
    // bob's first receive waits for data after its first MiB (until /tmp/go); his second is refused meanwhile.
    await L.ctl.check(
      `zfs create ${SRC}/cap && head -c 4M /dev/urandom > /tank/src/cap/f && zfs snapshot ${SRC}/cap@s1 && rm -f /tmp/go /tmp/cap.* && zfs send ${SRC}/cap@s1 > /tmp/cap.stream`,
    );
    await L.ctl.check(
      `({ head -c 1M /tmp/cap.stream; while [ ! -e /tmp/go ]; do sleep 0.2; done; tail -c +1048577 /tmp/cap.stream; } | ${ssh('bob')} 'receive -u ${B}/cap' > /tmp/cap.out 2> /tmp/cap.err; echo $? > /tmp/cap.rc) > /dev/null 2>&1 &`,
    );
    try {
      await L.box.check("for i in $(seq 1 600); do pgrep -f '^zfs receive' >/dev/null && exit 0; sleep 0.2; done; exit 1", { timeoutMs: 180_000 });
      const second = await as('bob', `receive -u ${B}/cap2`, `${SRC}/cap@s1`);
      expect(second.code, second.stderr).toBe(3);
      expect(second.stderr).toMatch(/1 receive\(s\) of this controller are running already \(maxReceives 1\)/);
      expect((await L.box.sh(`zfs list ${B}/cap2`)).exitCode).not.toBe(0);
      // alice's cap is her own: she receives meanwhile.
      const hers = await as('alice', `receive -u ${A}/cap`, `${SRC}/cap@s1`);
      expect(hers.code, hers.stderr).toBe(0);
    } finally {
      await L.ctl.check('touch /tmp/go; for i in $(seq 1 300); do [ -e /tmp/cap.rc ] && exit 0; sleep 0.2; done; exit 1', { timeoutMs: 120_000 });
    }
    expect(await L.ctl.check('cat /tmp/cap.rc')).toBe('0');
  }, 600_000);

  it("leases are per key: bob cannot release alice's; bob's shutdown while she holds one is deferred, her release powers the box off for real", async () => {
    expect((await as('alice', 'hold nightly 600')).code).toBe(0);
    expect((await as('bob', 'hold nightly 600')).code).toBe(0);
    // bob's "nightly" is his own: releasing it leaves hers.
    expect(JSON.parse((await as('bob', 'release nightly')).stdout)).toMatchObject({ released: true, leases: [] });
    expect(JSON.parse((await as('alice', 'status')).stdout).leases.map((l: { id: string }) => l.id)).toEqual(['nightly']);
    const off = await as('bob', 'shutdown');
    expect(off.code, off.stderr).not.toBe(0);
    expect(off.stdout).toMatch(/"deferred":true/);
    expect(off.stderr).toMatch(/another controller's lease/);
    expect(JSON.stringify(JSON.parse((await as('bob', 'status')).stdout))).not.toContain('alice');
    // Still up; her release carries out the deferred power-off: the qemu process exits.
    expect((await L.box.sh('true')).exitCode).toBe(0);
    const rel = await as('alice', 'release nightly');
    expect(rel.code, rel.stderr).toBe(0);
    expect(JSON.parse(rel.stdout).shutdown).toBeDefined();
    expect(await L.box.waitGone(180_000), 'the box VM powered off after the last lease').toBe(true);
    await L.box.closeSsh();
  }, 900_000);
});
