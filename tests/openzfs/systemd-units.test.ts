// The plain systemd units of contrib/systemd (for Debian/Ubuntu hosts without NixOS), installed as
// docs/other-distributions.md says and run under the real systemd of the lab's Debian 12 VMs: `systemctl start
// hozo@<job>` replicates as the unprivileged user hozo with the units' hardening; `journalctl -u hozo@<job> -p err`
// holds exactly the failures; hozo-timers gives each job a timer with its schedule; Debian's node-exporter serves the
// run's metrics; on the box the prune and idle units run as user hozo. The programs are the lab's build (the VM
// runtime) behind /usr/local/bin wrappers, where `npm install -g` would put them.
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { VM_NODE, VM_RUNTIME, type VmLab } from '../../src/lab/vm/lab.js';
import { CONTROLLER_PERMISSIONS } from '../../src/zfs/delegation.js';
import { AGENT_ROOT, SRC, controllerConfig, guids, labOrSkip, reset, skipReason, type JobSpec } from './helpers.js';

const lab: VmLab | undefined = labOrSkip();
if (lab === undefined) console.warn(`SKIP: tests/openzfs/systemd-units.test.ts: ${skipReason()}`);

const REPO = join(import.meta.dirname, '..', '..');
const CONTRIB = join(REPO, 'contrib', 'systemd');
const EXTRA_DEBS = join(process.env['HOZO_LAB_CACHE'] ?? '/var/cache/hozo-lab', 'debs', 'extra');
const nodeExporterDeb = (): string | undefined => {
  if (!existsSync(EXTRA_DEBS)) return undefined;
  const f = readdirSync(EXTRA_DEBS).find((n) => /^prometheus-node-exporter_.*\.deb$/.test(n));
  return f === undefined ? undefined : join(EXTRA_DEBS, f);
};
const TEXTFILES = '/var/lib/prometheus/node-exporter';
const UNITS = '/etc/systemd/system';
const KEY = '/etc/hozo/hozo_box_key';
const SCHEDULE = '*-*-* 03:17:00';

const wrapper = (bundle: string) => `#!/bin/sh\nexec ${VM_NODE} ${VM_RUNTIME}/dist/bin/${bundle} "$@"\n`;

describe.skipIf(lab === undefined)('contrib/systemd units under real systemd (OpenZFS lab, Debian 12 VMs)', () => {
  const L = lab!;
  const deb = nodeExporterDeb();
  if (deb === undefined) console.warn(`SKIP (part): node-exporter scrape: no prometheus-node-exporter .deb in ${EXTRA_DEBS} (scripts/setup.sh downloads it)`);

  async function writeControllerConfig(jobs: JobSpec[]): Promise<void> {
    const config = controllerConfig(L, jobs, { sshKeyFile: KEY }, { metrics: { textfileDirectory: TEXTFILES } });
    await L.ctl.writeFile('/etc/hozo/config.yaml', stringify(config), '0640', 'root');
    await L.ctl.check('chgrp hozo /etc/hozo/config.yaml');
  }
  /** One property of a unit (`systemctl show -P`), per name in the order asked. */
  const props = async (vm: VmLab['ctl'], unit: string, ...names: string[]) => {
    const out: string[] = [];
    for (const n of names) out.push((await vm.check(`systemctl show -P ${n} ${unit}`)).trim());
    return out;
  };
  /** Now on ctl (whole seconds), so a read after a start sees that run only. The commands between two runs take
   *  seconds here. (journalctl --after-cursor with matches skipped the first matching entry on Debian 12's systemd.) */
  const journalNow = async () => (await L.ctl.check('sleep 1; date +%s')).trim();
  /** `journalctl -u hozo@nightly [-p PRIORITY]` since `after` (message text only), after journald took in everything. */
  const journalSince = async (after: string, priority?: string) =>
    L.ctl.check(`journalctl --sync; journalctl --no-pager -o cat -u hozo@nightly.service --since @${after}${priority === undefined ? '' : ` -p ${priority}`}`);

  beforeAll(async () => {
    await reset(L);
    const put = async (vm: VmLab['ctl'], file: string, to: string, mode = '0644') => vm.writeFile(to, readFileSync(join(CONTRIB, file), 'utf8'), mode);
    // Controller: the programs, the units, hozo-timers, the delegation and key of user hozo (docs, step 3).
    await L.ctl.writeFile('/usr/local/bin/hozo', wrapper('hozo/hozo.js'), '0755');
    await L.ctl.check(`ln -sf ${VM_NODE} /usr/local/bin/node`);
    await put(L.ctl, 'controller/hozo@.service', `${UNITS}/hozo@.service`);
    await put(L.ctl, 'controller/hozo@.timer', `${UNITS}/hozo@.timer`);
    await put(L.ctl, 'controller/hozo-timers', '/usr/local/sbin/hozo-timers', '0755');
    // /etc/hozo as the guide makes it (the lab's is root's alone): group hozo may enter and read the config.
    await L.ctl.check(`chgrp hozo /etc/hozo && chmod 0750 /etc/hozo && install -o hozo -m 0600 /etc/hozo/box_key ${KEY} && systemctl daemon-reload`);
    if (deb === undefined) await L.ctl.check(`install -d -g hozo -m 0775 ${TEXTFILES}`);
    else {
      await L.ctl.check('base64 -d > /var/tmp/node-exporter.deb', { input: readFileSync(deb).toString('base64') });
      await L.ctl.check(
        `dpkg -i /var/tmp/node-exporter.deb >/dev/null && rm /var/tmp/node-exporter.deb && ` +
          `dpkg-statoverride --update --add root hozo 0775 ${TEXTFILES} && systemctl restart prometheus-node-exporter`,
        { timeoutMs: 300_000 },
      );
    }
    // Box: the programs and the agent's units (docs, step 2).
    await L.box.writeFile('/usr/local/bin/hozo-agent', wrapper('agent/hozo-agent.js'), '0755');
    for (const f of ['hozo-agent-prune.service', 'hozo-agent-prune.timer', 'hozo-agent-idle.service', 'hozo-agent-idle.timer'])
      await put(L.box, `agent/${f}`, `${UNITS}/${f}`);
    // Beside the lab's own hozo-poweroff.service (which the other tests use): the contrib one under another name.
    await put(L.box, 'agent/hozo-poweroff.service', `${UNITS}/hozo-poweroff-contrib.service`);
    await put(L.box, 'agent/hozo-import@.service', `${UNITS}/hozo-import@.service`);
    await L.box.check('systemctl daemon-reload');
  }, 900_000);

  afterAll(async () => {
    await L.ctl
      .sh(
        `systemctl stop 'hozo@*.timer'; rm -f ${UNITS}/timers.target.wants/hozo@*.timer; rm -rf ${UNITS}/hozo@.service ${UNITS}/hozo@.timer ${UNITS}/hozo@*.service.d ${UNITS}/hozo@*.timer.d ` +
          `/usr/local/sbin/hozo-timers /usr/local/bin/hozo /usr/local/bin/node ${KEY}; chgrp root /etc/hozo; chmod 0700 /etc/hozo; ` +
          `dpkg -s prometheus-node-exporter >/dev/null 2>&1 && { dpkg-statoverride --remove ${TEXTFILES}; dpkg --purge prometheus-node-exporter >/dev/null; }; ` +
          'systemctl daemon-reload; systemctl reset-failed; true',
      )
      .catch(() => undefined);
    await L.box
      .sh(
        `rm -f ${UNITS}/hozo-agent-prune.* ${UNITS}/hozo-agent-idle.* ${UNITS}/hozo-poweroff-contrib.service ${UNITS}/hozo-import@.service /usr/local/bin/hozo-agent; systemctl daemon-reload; systemctl reset-failed; true`,
      )
      .catch(() => undefined);
    await reset(L).catch(() => undefined);
  });

  it('systemd-analyze verify accepts every unit on both machines (the programs they start exist)', async () => {
    const ctl = await L.ctl.sh(`cd ${UNITS} && systemd-analyze verify --man=no hozo@nightly.service hozo@nightly.timer 2>&1`);
    expect(ctl.stdout.trim(), ctl.stdout).toBe('');
    expect(ctl.exitCode).toBe(0);
    const box = await L.box.sh(
      `cd ${UNITS} && systemd-analyze verify --man=no hozo-agent-prune.service hozo-agent-prune.timer hozo-agent-idle.service hozo-agent-idle.timer hozo-poweroff-contrib.service hozo-import@backup.service 2>&1`,
    );
    expect(box.stdout.trim(), box.stdout).toBe('');
    expect(box.exitCode).toBe(0);
  });

  it('systemctl start hozo@nightly replicates as user hozo, under the hardening; no error in the journal; node-exporter serves the metrics', async () => {
    await L.ctl.check(`zfs allow -u hozo ${CONTROLLER_PERMISSIONS.join(',')} ${SRC}`);
    await L.ctl.check(`zfs create ${SRC}/u && head -c 4M /dev/urandom > /tank/src/u/blob && zfs snapshot ${SRC}/u@s1`);
    await writeControllerConfig([{ name: 'nightly', schedule: SCHEDULE, datasets: [{ source: `${SRC}/u`, target: `${AGENT_ROOT}/u` }] }]);
    const before = await journalNow();
    const start = await L.ctl.sh('systemctl start hozo@nightly.service', { timeoutMs: 900_000 });
    const log = await journalSince(before);
    expect(start.exitCode, `${start.stderr}\n${log}`).toBe(0);
    expect(await props(L.ctl, 'hozo@nightly.service', 'Result', 'ExecMainStatus', 'User')).toEqual(['success', '0', 'hozo']);
    expect((await guids(L.box, `${AGENT_ROOT}/u`)).get('@s1')).toBe((await guids(L.ctl, `${SRC}/u`)).get('@s1'));
    expect(log).toMatch(/nightly/);
    expect(await journalSince(before, 'err')).toBe('');
    // The metrics file is user hozo's, in Debian's textfile directory.
    expect((await L.ctl.check(`stat -c %U ${TEXTFILES}/hozo_nightly.prom`)).trim()).toBe('hozo');
    if (deb === undefined) return;
    const scrape = await L.ctl.check(
      `for i in $(seq 1 30); do ${VM_NODE} -e 'fetch("http://127.0.0.1:9100/metrics").then((r) => r.text()).then((t) => process.stdout.write(t))' && exit 0; sleep 1; done; exit 1`,
      { timeoutMs: 120_000 },
    );
    const success = /^hozo_job_last_success_timestamp_seconds\{job="nightly"\} (\S+)$/m.exec(scrape);
    expect(
      success,
      scrape
        .split('\n')
        .filter((l) => l.startsWith('hozo_'))
        .join('\n') || '(no hozo_ series)',
    ).not.toBeNull();
    expect(Number(success![1])).toBeGreaterThan(Date.now() / 1000 - 3600);
  });

  it('journalctl -u hozo@nightly -p err shows exactly the failures: the diverged dataset, not the one that replicated', async () => {
    await L.ctl.check(`zfs allow -u hozo ${CONTROLLER_PERMISSIONS.join(',')} ${SRC}`);
    await L.ctl.check(
      `zfs list ${SRC}/u >/dev/null 2>&1 || { zfs create ${SRC}/u && zfs snapshot ${SRC}/u@s1; }; zfs create ${SRC}/v && echo v > /tank/src/v/f && zfs snapshot ${SRC}/v@s1 && zfs snapshot ${SRC}/u@s2`,
    );
    // A target on the box that is not a copy of the source: hozo refuses it and destroys nothing.
    await L.box.check(`zfs create ${AGENT_ROOT}/v && zfs snapshot ${AGENT_ROOT}/v@foreign`);
    await writeControllerConfig([
      {
        name: 'nightly',
        schedule: SCHEDULE,
        datasets: [
          { source: `${SRC}/u`, target: `${AGENT_ROOT}/u` },
          { source: `${SRC}/v`, target: `${AGENT_ROOT}/v` },
        ],
      },
    ]);
    // One attempt (the shipped unit tries a failed run again after 15 minutes): a drop-in, as a user would write it.
    await L.ctl.writeFile(`${UNITS}/hozo@nightly.service.d/once.conf`, '[Service]\nExecStart=\nExecStart=/usr/local/bin/hozo run %i --attempts 1\n');
    await L.ctl.check('systemctl daemon-reload');
    try {
      const before = await journalNow();
      const start = await L.ctl.sh('systemctl start hozo@nightly.service', { timeoutMs: 900_000 });
      expect(start.exitCode).not.toBe(0);
      expect(await props(L.ctl, 'hozo@nightly.service', 'Result', 'ExecMainStatus')).toEqual(['exit-code', '1']);
      // hozo's lines (the dataset that failed, then its hint) and systemd's own (the unit failed to start). journald
      // takes in the service's stdout and PID 1's messages on separate streams: read until all three are in (20 s).
      const wanted = [
        new RegExp(`^${SRC}/v: target ${AGENT_ROOT}/v has ${AGENT_ROOT}/v@foreign but none has the guid`),
        new RegExp(`^  hint: .*zfs destroy -r ${AGENT_ROOT}/v`),
        /^Failed to start hozo@nightly\.service/,
      ];
      let errors: string[] = [];
      for (let i = 0; i < 10; i++) {
        errors = (await journalSince(before, 'err')).split('\n').filter(Boolean);
        if (wanted.every((w) => errors.some((l) => w.test(l)))) break;
        await new Promise((r) => setTimeout(r, 2000));
      }
      const all = await journalSince(before);
      expect(errors.length, `${errors.join('\n')}\n--- all:\n${all}`).toBe(wanted.length);
      for (const w of wanted)
        expect(
          errors.some((l) => w.test(l)),
          `${w} in:\n${errors.join('\n')}`,
        ).toBe(true);
      expect(all).toContain(`${SRC}/u`);
      // The other dataset went on, and the foreign target is untouched.
      expect((await guids(L.box, `${AGENT_ROOT}/u`)).has('@s2')).toBe(true);
      expect([...(await guids(L.box, `${AGENT_ROOT}/v`)).keys()]).toEqual(['@foreign']);
    } finally {
      await L.ctl.check(`rm -rf ${UNITS}/hozo@nightly.service.d && systemctl daemon-reload && systemctl reset-failed`);
    }
  });

  it("hozo-timers: one timer per job with the job's schedule, stale ones disabled, a refused config changes nothing", async () => {
    await writeControllerConfig([{ name: 'nightly', schedule: SCHEDULE, datasets: [{ source: `${SRC}/u`, target: `${AGENT_ROOT}/u` }] }]);
    try {
      // A config elsewhere (--config): the job's service is pointed at it.
      await L.ctl.check('cp -p /etc/hozo/config.yaml /etc/hozo/other.yaml');
      expect(await L.ctl.check('/usr/local/sbin/hozo-timers --config /etc/hozo/other.yaml')).toContain(`hozo@nightly.timer: OnCalendar=${SCHEDULE}`);
      expect((await L.ctl.check('systemctl is-enabled hozo@nightly.timer; systemctl is-active hozo@nightly.timer')).split('\n')).toEqual(['enabled', 'active']);
      const calendar = await L.ctl.check('systemctl show -P TimersCalendar hozo@nightly.timer');
      expect(calendar).toContain(`OnCalendar=${SCHEDULE} `);
      // One entry: the drop-in's empty OnCalendar= took the template's `daily` away.
      expect(calendar.match(/OnCalendar=/g), calendar).toHaveLength(1);
      // The job's service reads the config hozo-timers read (the drop-in's assignment comes last and wins).
      expect((await L.ctl.check('systemctl show -P Environment hozo@nightly.service')).trim()).toMatch(/HOZO_CONFIG=\/etc\/hozo\/other\.yaml$/);
      // The job renamed: the old timer goes, the new one comes.
      await writeControllerConfig([{ name: 'weekly', schedule: 'Sun 04:00', datasets: [{ source: `${SRC}/u`, target: `${AGENT_ROOT}/u` }] }]);
      const out = await L.ctl.check('/usr/local/sbin/hozo-timers');
      expect(out).toContain('hozo@nightly.timer: no such job any more, disabled');
      expect((await L.ctl.sh('systemctl is-enabled hozo@nightly.timer')).stdout.trim()).not.toBe('enabled');
      expect((await L.ctl.sh(`test -e ${UNITS}/hozo@nightly.timer.d`)).exitCode).toBe(1);
      expect(await L.ctl.check('systemctl show -P TimersCalendar hozo@weekly.timer')).toContain('OnCalendar=Sun *-*-* 04:00:00 ');
      // A schedule hozo's config check refuses: exit 2, the timers as they were.
      await writeControllerConfig([{ name: 'weekly', schedule: 'someday', datasets: [{ source: `${SRC}/u`, target: `${AGENT_ROOT}/u` }] }]);
      const bad = await L.ctl.sh('/usr/local/sbin/hozo-timers');
      expect(bad.exitCode).toBe(2);
      expect(bad.stderr).toMatch(/schedule/);
      expect(await L.ctl.check('systemctl show -P TimersCalendar hozo@weekly.timer')).toContain('OnCalendar=Sun *-*-* 04:00:00 ');
    } finally {
      // No timer of this test may fire during later tests (some step the VMs' clocks).
      // (systemctl disable takes no glob; stop matches the loaded units.)
      await L.ctl.check(
        `systemctl stop 'hozo@*.timer'; rm -f ${UNITS}/timers.target.wants/hozo@*.timer; rm -rf ${UNITS}/hozo@*.timer.d ${UNITS}/hozo@*.service.d /etc/hozo/other.yaml; systemctl daemon-reload; true`,
      );
      expect((await L.ctl.check("systemctl list-timers --all --no-legend 'hozo@*'")).trim()).toBe('');
    }
  });

  it("the box's prune and idle units run hozo-agent as user hozo and succeed (the idle guard is off in the lab's agent config)", async () => {
    for (const unit of ['hozo-agent-prune.service', 'hozo-agent-idle.service']) {
      const r = await L.box.sh(`systemctl start ${unit}`, { timeoutMs: 300_000 });
      const id = (await L.box.check(`systemctl show -P InvocationID ${unit}`)).trim();
      const log = await L.box.check(`journalctl --no-pager -o cat _SYSTEMD_INVOCATION_ID=${id}`);
      expect(r.exitCode, `${unit}: ${r.stderr}\n${log}`).toBe(0);
      expect(await props(L.box, unit, 'Result', 'User')).toEqual(['success', 'hozo']);
    }
  });
});
