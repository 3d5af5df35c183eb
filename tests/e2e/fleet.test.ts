// The way users outgrow one controller: 10 controllers (10 configs, 10 keys, 10 roots, one section each in the box's
// agent config) start their jobs within the same second against one sleeping zfs-fuse lab box. Every run succeeds,
// the box is "powered off" (its sshd stopped by the lab's sleep script) exactly once, after the last release, and
// each controller saw only its own root. Real magic packets to the lab's listener, real OpenSSH with one forced
// command per key (`serve --controller cN`), real zfs-fuse.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AGENT_MAIN, agentBuilt, writeAgentBootHook } from '../../src/lab/agent.js';
import { createLab, labPrerequisites, type Lab } from '../../src/lab/lab.js';
import { startHozo, writeConfig } from '../helpers/hozo.js';

const missing = [...labPrerequisites(), ...(agentBuilt() ? [] : ['a built agent (npm run build)'])];
if (missing.length > 0) console.warn(`SKIP: tests/e2e/fleet.test.ts needs ${missing.join(', ')}`);

const N = 10;

describe.skipIf(missing.length > 0)('a fleet of 10 controllers against one sleeping box (zfs-fuse lab)', () => {
  let lab: Lab;
  let poweroffs: string;
  const names = Array.from({ length: N }, (_, i) => `c${i}`);
  const rootOf = (c: string) => `${lab.box.pool.name}/${c}`;

  beforeAll(async () => {
    lab = await createLab({ id: 'fleet', poolSizeMB: 512, sshd: false, wakeListener: { startSshd: true, bootDelayMs: 800 } });
    const dir = join(lab.box.dir, 'agent');
    mkdirSync(dir, { recursive: true });
    poweroffs = join(lab.dir, 'poweroffs');
    const keys: string[] = [];
    for (const c of names) {
      await lab.hostZfs(['create', `${lab.source.name}/${c}`]);
      writeFileSync(join(lab.source.mountpoint, c, 'data'), `${c}\n`);
      await lab.hostZfs(['snapshot', `${lab.source.name}/${c}@f1`]);
      await execa('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', `hozo@${c}`, '-f', join(lab.dir, `key-${c}`)]);
      keys.push(readFileSync(join(lab.dir, `key-${c}.pub`), 'utf8').trim());
    }
    const configPath = join(dir, 'config.json');
    writeFileSync(
      configPath,
      JSON.stringify({
        controllers: Object.fromEntries(names.map((c) => [c, { roots: [rootOf(c)] }])),
        retention: { daily: 7, weekly: 4, monthly: 6 },
        idlePoweroffMinutes: null,
        // Counts each power-off, then the lab's harmless sleep (stops the box's sshd).
        poweroffCommand: ['sh', '-c', `echo "$(date +%s.%N)" >> ${poweroffs}; exec ${lab.box.sleepCommand.join(' ')}`],
        leaseDirectory: join(dir, 'leases'),
        stateDirectory: dir,
        poweroffDelaySeconds: 1,
        importDirectories: [join(lab.box.pool.image, '..')],
      }),
    );
    writeAgentBootHook(lab.box, join(dir, 'leases'));
    lab.box.setAuthorizedKeys(
      names.map((c, i) => `command="${process.execPath} ${AGENT_MAIN} serve --controller ${c} --config ${configPath}",restrict ${keys[i]}`),
    );
  });
  afterAll(async () => {
    await lab?.destroy();
  });

  it('10 runs started together: all succeed, one power-off after the last release, each saw only its own root', async () => {
    expect(await lab.box.sshPortOpen(300)).toBe(false);
    const runs = names.map((c) => {
      const cfg = writeConfig(
        lab.dir,
        {
          stateDirectory: join(lab.dir, `state-${c}`),
          hosts: { box: { ...lab.box.hostConfig(), sshKeyFile: join(lab.dir, `key-${c}`), readyTimeout: 60, shutdown: 'agent' } },
          jobs: [{ name: c, host: 'box', retries: 1, retryDelay: 2, datasets: [{ source: `${lab.source.name}/${c}`, target: `${rootOf(c)}/d` }] }],
        },
        `${c}.yaml`,
      );
      return startHozo(cfg, ['run', c, '--json']);
    });
    const results = await Promise.all(runs);
    const reports = results.map((r) => JSON.parse(String(r.stdout)));
    for (const [i, r] of results.entries()) {
      expect(r.exitCode, `${names[i]}: ${String(r.stderr).slice(-2000)}`).toBe(0);
      expect(reports[i].datasets[0]).toMatchObject({ result: 'sent', verified: true });
    }
    // Powered off once per boot, after every release of that boot: no lease is left and the last run's release
    // carried it out. Nearly always one boot; on a loaded machine a run that reaches the box only while it powers
    // down for the others wakes it again (README: "lets it go down and wakes it again"), and that boot has its own
    // power-off.
    const bootsSoFar = () => lab.box.wakeEvents().filter((e) => e.action === 'boot').length;
    const offsSoFar = () => (existsSync(poweroffs) ? readFileSync(poweroffs, 'utf8').trim().split('\n') : []);
    // Until every boot has had its power-off (bounded: 20 s), then 2 s more for one that should not come.
    for (let i = 0; i < 200 && offsSoFar().length < Math.max(bootsSoFar(), 1); i++) await new Promise((res) => setTimeout(res, 100));
    await new Promise((res) => setTimeout(res, 2000));
    const boots = bootsSoFar();
    expect(boots).toBeGreaterThanOrEqual(1);
    const offs = offsSoFar();
    // A second boot only after the first power-off (a run that found the box going down woke it again).
    const bootTimes = lab.box
      .wakeEvents()
      .filter((e) => e.action === 'boot')
      .map((e) => e.t);
    for (let k = 1; k < bootTimes.length; k++) expect(bootTimes[k]! / 1000).toBeGreaterThanOrEqual(Number(offs[k - 1]));
    expect(offs, `${boots} boot(s)`).toHaveLength(boots);
    expect(await lab.box.sshPortOpen(300)).toBe(false);
    const log = readFileSync(join(lab.box.dir, 'agent', 'agent.log'), 'utf8');
    const lastRelease = Math.max(
      ...log
        .split('\n')
        .filter((l) => /"release \S+" → exit 0/.test(l))
        .map((l) => Date.parse(l.slice(0, 24))),
    );
    const poweroffAt = Number(offs.at(-1)) * 1000;
    expect(poweroffAt).toBeGreaterThanOrEqual(lastRelease);
    expect(reports.filter((r) => r.hosts[0].shutdown === 'done' && !/already powering off/.test(r.hosts[0].shutdownDetail ?? ''))).toHaveLength(boots);
    // The agent exported the pool on its way down: import it again (as the next wake's prepare would).
    const imp = await lab.box.exec(['zpool', 'import', '-d', join(lab.box.pool.image, '..'), lab.box.pool.name]);
    expect(imp.exitCode, imp.stderr).toBe(0);
    // Each backup is where its controller put it, and nothing else is under its root.
    for (const c of names) {
      const listed = (await lab.box.zfs(['list', '-H', '-o', 'name', '-r', rootOf(c)])).split('\n');
      expect(listed).toEqual([rootOf(c), `${rootOf(c)}/d`]);
    }
    // Each controller's own view through its key: only its root.
    await lab.box.startSshd();
    const views = await Promise.all(
      names.map((c) => {
        const args = lab.box.sshArgs();
        const k = args.indexOf('-i');
        if (k >= 0) args[k + 1] = join(lab.dir, `key-${c}`);
        return execa('ssh', [...args, lab.box.boxIp, 'list'], { reject: false });
      }),
    );
    for (const [i, v] of views.entries()) {
      expect(v.exitCode, String(v.stderr)).toBe(0);
      const others = names.filter((c) => c !== names[i]).map(rootOf);
      expect(String(v.stdout)).toContain(`${rootOf(names[i]!)}/d`);
      for (const o of others) expect(String(v.stdout)).not.toContain(`${o}\t`);
    }
  }, 300_000);
});
