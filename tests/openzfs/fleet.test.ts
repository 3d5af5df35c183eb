// The fleet on real OpenZFS with the box's real power cycle: 4 controllers (4 configs, 4 keys, 4 state
// directories, one section each in the box's agent config, chosen by `serve --controller cN` in each key's command=)
// start their jobs within the same second against the powered-off box VM. A magic packet boots it (the qemu process
// was gone), every run succeeds, the box is powered off for real exactly once, after the last release (its qemu
// process exits), and each controller saw only its own root. tests/e2e/fleet.test.ts is the same with 10 controllers on
// the zfs-fuse lab; here 4 (10 took ~8 minutes of a CI run on these emulated CPUs, where every run waits for the one
// box CPU, and the power cycle's claims do not grow with the count).
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { VM_AGENT, VM_HOZO, authorizeController, labSectionedAgentConfig, type VmLab } from '../../src/lab/vm/lab.js';
import { AGENT_ROOT, LAB_KEX, SRC, controllerConfig, guids, labOrSkip, reset, skipReason } from './helpers.js';

const lab: VmLab | undefined = labOrSkip();
if (lab === undefined) console.warn(`SKIP: tests/openzfs/fleet.test.ts: ${skipReason()}`);

const N = 4;
const names = Array.from({ length: N }, (_, i) => `c${i}`);
const rootOf = (c: string) => `${AGENT_ROOT}/${c}`;
const POWEROFFS = '/var/lib/hozo-agent/poweroffs';
const KNOWN = `-o UserKnownHostsFile=/etc/hozo/known_hosts -o BatchMode=yes -o ${LAB_KEX}`;

describe.skipIf(lab === undefined)(`a fleet of ${N} controllers against one powered-off box VM (OpenZFS)`, () => {
  const L = lab!;

  beforeAll(async () => {
    await reset(L);
    await L.ctl.check(
      names
        .map(
          (c) =>
            `zfs create ${SRC}/${c} && echo ${c} > /tank/src/${c}/data && zfs snapshot ${SRC}/${c}@f1 && ` +
            `rm -f /etc/hozo/key-${c}* && ssh-keygen -q -t ed25519 -N '' -C hozo@${c} -f /etc/hozo/key-${c} && mkdir -p /var/lib/hozo/${c}`,
        )
        .join(' && '),
      { timeoutMs: 300_000 },
    );
    const keys = (await L.ctl.check(names.map((c) => `cat /etc/hozo/key-${c}.pub`).join('; '))).split('\n');
    await L.box.writeFile(
      '/home/hozo/.ssh/authorized_keys',
      names.map((c, i) => `command="${VM_AGENT} serve --controller ${c} --config /etc/hozo-agent/config.json",restrict ${keys[i]}\n`).join(''),
      '0600',
      'hozo',
    );
    // The lab's agent config with one section per controller instead of top-level roots; each power-off is counted
    // (on the box's clock, synced to its disk) before root's unit exports the pool and powers off.
    await L.box.writeFile(
      '/etc/hozo-agent/config.json',
      JSON.stringify(
        labSectionedAgentConfig(Object.fromEntries(names.map((c) => [c, { roots: [rootOf(c)] }])), {
          poweroffCommand: ['sh', '-c', `date +%s.%N >> ${POWEROFFS} && sync && exec sudo -n /usr/bin/systemctl start --no-block hozo-poweroff.service`],
        }),
      ),
    );
    await L.box.check(`rm -f ${POWEROFFS} /var/lib/hozo-agent/agent.log`);
    for (const c of names) {
      const config = controllerConfig(
        L,
        [{ name: c, retries: 1, retryDelay: 5, datasets: [{ source: `${SRC}/${c}`, target: `${rootOf(c)}/d` }] }],
        { sshKeyFile: `/etc/hozo/key-${c}`, shutdown: 'agent', readyTimeout: 300 },
        { stateDirectory: `/var/lib/hozo/${c}`, metrics: { textfileDirectory: `/var/lib/hozo/${c}` } },
      );
      await L.ctl.writeFile(`/etc/hozo/${c}.yaml`, stringify(config));
    }
    // Each controller has run before (a fleet's nightly): its capability cache holds what both ZFSes can do. Without
    // it, 10 first-ever probes of the one ctl VM's ZFS at once (one emulated CPU for all 10 "controllers") overran
    // the probe's 60 s bound: an artefact of sharing one VM, not of the fleet.
    await L.ctl.check(names.map((c) => `${VM_HOZO} --config /etc/hozo/${c}.yaml plan ${c} >/dev/null`).join(' && '), { timeoutMs: 600_000 });
  }, 1_200_000);
  afterAll(async () => {
    await L.ensureBoxUp().catch(() => undefined);
    await authorizeController(L.ctl, L.box).catch(() => undefined);
    await reset(L).catch(() => undefined);
    await L.ctl
      .sh(`rm -rf /etc/hozo/key-c* /etc/hozo/c*.yaml /var/lib/hozo/c*; ${names.map((c) => `zfs destroy -r ${SRC}/${c}`).join('; ')}`)
      .catch(() => undefined);
  });

  it(`${N} runs started together: one cold boot, all succeed, one real power-off after the last release, each saw only its own root`, async () => {
    await L.box.sh('systemctl start --no-block hozo-poweroff.service');
    expect(await L.box.waitGone(180_000), 'the box VM powered off before the runs').toBe(true);
    await L.box.closeSsh();
    const before = L.wakeEvents().length;

    // All N start in the same second inside the ctl VM, each with its own config, key and state directory.
    const out = await L.ctl.check(
      `cd /var/lib/hozo && for c in ${names.join(' ')}; do (${VM_HOZO} --config /etc/hozo/$c.yaml run $c --json > $c/out.json 2> $c/err.txt; echo $? > $c/rc) & done; wait; ` +
        `for c in ${names.join(' ')}; do echo "$c $(cat $c/rc) $(date -r $c/rc +%s)"; done`,
      { timeoutMs: 1_500_000 },
    );
    const rows = out.split('\n').map((l) => l.split(' '));
    for (const [c, rc] of rows) {
      const err = rc === '0' ? '' : await L.ctl.check(`tail -c 3000 /var/lib/hozo/${c}/err.txt; cat /var/lib/hozo/${c}/out.json`);
      expect(rc, `${c}: ${err}`).toBe('0');
    }
    const reports = await Promise.all(names.map(async (c) => JSON.parse(await L.ctl.check(`cat /var/lib/hozo/${c}/out.json`))));
    const logs = await L.ctl.check(`cd /var/lib/hozo && for c in ${names.join(' ')}; do echo "== $c"; cat $c/err.txt; done`);
    console.log(`fleet: the ${N} runs' stderr:\n${logs}`);
    // Sent by this run (or, after a retry of a late step, found up to date by its second attempt): either way verified.
    for (const r of reports) {
      expect(['sent', 'up-to-date'], JSON.stringify(r.datasets[0])).toContain(r.datasets[0].result);
      expect(r.datasets[0].verified).toBe(true);
    }
    expect(
      reports.filter((r) => r.hosts[0].shutdown === 'done' && !/already powering off/.test(r.hosts[0].shutdownDetail ?? '')),
      'exactly one run carried out the shutdown',
    ).toHaveLength(1);
    expect(reports.filter((r) => r.hosts[0].woke === true).length, 'some run woke the box').toBeGreaterThanOrEqual(1);

    // Powered off for real: the qemu process exits. It had booted exactly once, from a magic packet.
    expect(await L.box.waitGone(240_000), 'the box VM powered off after the last release').toBe(true);
    const boots = L.wakeEvents()
      .slice(before)
      .filter((e) => e.vm === 'box' && e.action === 'boot');
    expect(boots, JSON.stringify(L.wakeEvents().slice(before))).toHaveLength(1);

    // Boot it again without a packet and look: one power-off, after every release; each backup in its own root.
    await L.ensureBoxUp();
    const offs = (await L.box.check(`cat ${POWEROFFS}`)).split('\n');
    expect(offs).toHaveLength(1);
    const log = await L.box.check('cat /var/lib/hozo-agent/agent.log');
    const releases = log.split('\n').filter((l) => /"release \S+" → exit 0/.test(l));
    // Every controller released its own lease (a session logs each request it answers; ids are per controller).
    expect(new Set(releases.map((l) => /"release (\S+)"/.exec(l)![1])).size, releases.join('\n')).toBe(N);
    const lastRelease = Math.max(...releases.map((l) => Date.parse(l.slice(0, 24))));
    expect(Number(offs[0]) * 1000).toBeGreaterThanOrEqual(lastRelease);
    for (const c of names) {
      expect((await L.box.check(`zfs list -H -o name -r ${rootOf(c)}`)).split('\n')).toEqual([rootOf(c), `${rootOf(c)}/d`]);
      expect((await guids(L.box, `${rootOf(c)}/d`)).get('@f1')).toBe((await guids(L.ctl, `${SRC}/${c}`)).get('@f1'));
    }
    // Each controller's own view through its key: its root only.
    const views = await L.ctl.check(names.map((c) => `echo "== ${c}"; ssh -i /etc/hozo/key-${c} ${KNOWN} hozo@${L.box.ip} list`).join('; '), {
      timeoutMs: 300_000,
    });
    const byController = new Map(
      views
        .split(/^== /m)
        .filter(Boolean)
        .map((b) => [b.slice(0, b.indexOf('\n')), b.slice(b.indexOf('\n') + 1)]),
    );
    for (const c of names) {
      const view = byController.get(c) ?? '';
      expect(view).toContain(`${rootOf(c)}/d`);
      for (const o of names.filter((x) => x !== c)) expect(view).not.toContain(`${rootOf(o)}`);
    }
  }, 1_800_000);
});
