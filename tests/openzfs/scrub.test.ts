// Scrubs across power cycles on the OpenZFS lab (agent config `scrub`): the agent starts a due scrub at `prepare`,
// pauses it (`zpool scrub -p`) when it shuts the box down after the backup, the box VM really powers off (qemu exits)
// and boots again, the scrub is still paused there with its progress, the next `prepare` resumes it, and it completes;
// progress and the last completed scrub reach the run report. The agent is user hozo: the scrub commands run as root
// units (hozo-scrub@POOL, hozo-scrub-pause@POOL) it may start through sudo, as the NixOS module sets them up.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { VmLab } from '../../src/lab/vm/lab.js';
import { AGENT_ROOT, SRC, hozoJson, labOrSkip, reset, skipReason, writeAgentConfig, writeConfig } from './helpers.js';

const lab: VmLab | undefined = labOrSkip();
if (lab === undefined) console.warn(`SKIP: tests/openzfs/scrub.test.ts: ${skipReason()}`);

const SCRUB_AGENT = {
  // Any completed scrub is "due" again after 1 s: the lab's pool may have been scrubbed by an earlier test.
  scrub: {
    everyDays: 1 / 86400,
    startCommand: ['sudo', '-n', '/usr/bin/systemctl', 'start', 'hozo-scrub@%p.service'],
    pauseCommand: ['sudo', '-n', '/usr/bin/systemctl', 'start', 'hozo-scrub-pause@%p.service'],
  },
};

describe.skipIf(lab === undefined)("scrubs carried across the box's power cycles (OpenZFS lab)", () => {
  const L = lab!;
  beforeAll(async () => {
    await reset(L, SCRUB_AGENT);
    await L.box.check(
      'Z=$(command -v zpool); ' +
        `printf '[Service]\\nType=oneshot\\nExecStart=%s scrub %%i\\n' "$Z" > /etc/systemd/system/hozo-scrub@.service; ` +
        `printf '[Service]\\nType=oneshot\\nExecStart=%s scrub -p %%i\\n' "$Z" > /etc/systemd/system/hozo-scrub-pause@.service; ` +
        "printf 'hozo ALL=(root) NOPASSWD: /usr/bin/systemctl start hozo-scrub@backup.service, /usr/bin/systemctl start hozo-scrub-pause@backup.service\\n' > /etc/sudoers.d/hozo-scrub; " +
        'chmod 0440 /etc/sudoers.d/hozo-scrub; visudo -cf /etc/sudoers.d/hozo-scrub; systemctl daemon-reload; zpool scrub -s backup 2>/dev/null; true',
    );
    // Some data for the scrub to read.
    await L.box.check(
      `zfs create -o mountpoint=/var/tmp/fill ${AGENT_ROOT}/fill && dd if=/dev/urandom of=/var/tmp/fill/blob bs=1M count=200 status=none && sync`,
      { timeoutMs: 600_000 },
    );
    await L.ctl.check(`zfs create ${SRC}/sc && echo scrub > /tank/src/sc/f && zfs snapshot ${SRC}/sc@c1`);
  }, 900_000);
  afterAll(async () => {
    await L.ensureBoxUp().catch(() => undefined);
    await L.box
      .sh(
        'zpool scrub -s backup; rm -f /etc/sudoers.d/hozo-scrub /etc/systemd/system/hozo-scrub@.service /etc/systemd/system/hozo-scrub-pause@.service; systemctl daemon-reload',
      )
      .catch(() => undefined);
    await reset(L).catch(() => undefined);
  });

  it('started at prepare, paused at shutdown, still paused after a real power-off and boot, resumed at the next wake, then completes', async () => {
    // The scan makes no progress while this is 1 (OpenZFS's own test switch; a boot resets it): the scrub is
    // surely still running when the agent shuts the box down, however fast this machine scrubs 200 MiB.
    const hold = (on: boolean) => L.box.check(`echo ${on ? 1 : 0} > /sys/module/zfs/parameters/zfs_scan_suspend_progress`);
    await hold(true);
    await writeConfig(L, [{ datasets: [{ source: `${SRC}/sc`, target: `${AGENT_ROOT}/sc` }] }], { shutdown: 'agent', shutdownIfAwake: true });
    const first = await hozoJson(L, 'run', 'nightly');
    expect(first.exitCode, first.stderr).toBe(0);
    expect(first.json.hosts[0].shutdown).toBe('done');
    const pool = first.json.targetPools.find((p: { name: string }) => p.name === 'backup');
    // The run's report (from the agent's status just before the shutdown): a scrub in progress.
    expect(pool.scrub, JSON.stringify(pool)).toMatchObject({ state: 'running' });
    expect(await L.box.waitGone(180_000), 'the box VM powered off (qemu exited)').toBe(true);
    await L.box.closeSsh();
    // Cold boot: the pool comes back with the scrub paused, the same scrub (its start time) as before.
    await L.ensureBoxUp();
    const paused = await L.box.check('zpool status backup');
    expect(paused).toMatch(/scrub paused since/);
    const startedOn = /scrub started on (.+)/.exec(paused)?.[1]?.trim();
    expect(startedOn, paused).toBeDefined();
    const log = await L.box.check('cat /var/lib/hozo-agent/agent.log');
    expect(log).toMatch(/scrub of backup started \((never scrubbed|last one \d+ days ago)\)/);
    expect(log).toMatch(/scrub of backup paused \(at \d+%\)/);

    // The next run's prepare resumes that scrub (not a new one): "in progress since" its old start.
    await hold(true);
    await writeConfig(L, [{ datasets: [{ source: `${SRC}/sc`, target: `${AGENT_ROOT}/sc` }] }], { shutdown: 'agent' });
    const second = await hozoJson(L, 'run', 'nightly');
    expect(second.exitCode, second.stderr).toBe(0);
    expect(await L.box.check('cat /var/lib/hozo-agent/agent.log')).toMatch(/scrub of backup resumed \(at \d+%\)/);
    const resumed = await L.box.check('zpool status backup');
    expect(resumed).toMatch(/scrub in progress since/);
    expect(resumed).toContain(startedOn!);
    expect(second.json.targetPools.find((p: { name: string }) => p.name === 'backup').scrub).toMatchObject({ state: 'running' });
    // `hozo status` says so too.
    const st = await hozoJson(L, 'status', 'box');
    expect(st.json.hosts[0].pools).toContainEqual(expect.objectContaining({ name: 'backup', scrub: expect.stringMatching(/^scrub running( \d+%)?$/) }));
    // Let it go on: it finishes without errors.
    await hold(false);
    await L.box.check('zpool wait -t scrub backup', { timeoutMs: 600_000 });
    expect(await L.box.check('zpool status backup')).toMatch(/scrub repaired \S+ in \S+ with 0 errors on/);
    // Not due again for 30 days: the next prepare starts nothing; the report has the completed scrub.
    await writeAgentConfig(L, { scrub: { ...SCRUB_AGENT.scrub, everyDays: 30 } });
    const third = await hozoJson(L, 'run', 'nightly');
    expect(third.exitCode, third.stderr).toBe(0);
    const after = third.json.targetPools.find((p: { name: string }) => p.name === 'backup');
    expect(after.scrub).toBeUndefined();
    expect(after.lastScrubEnd).toBeGreaterThan(Date.now() / 1000 - 3600);
    console.log(`scrub started on ${startedOn}: paused at the shutdown, still paused after the power-off and boot, resumed at the next run, completed`);
  }, 1_800_000);
});
