// Evaluates modules/{controller,agent}.nix with nixpkgs' lib (tests/nix/eval.nix, stubbed NixOS
// options) and checks what they generate. Needs `nix-instantiate` and NIXPKGS_LIB pointing at a
// nixpkgs lib directory (e.g. an unpacked nix-community/nixpkgs.lib: NIXPKGS_LIB=/tmp/nixpkgs-lib/lib).
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig, validateConfig } from '../../src/config/load.js';
import { agentConfigSchema, validateAgentConfig } from '../../agent/config.js';
import { scopedConfig } from '../../agent/scope.js';
import { AGENT_PERMISSIONS, CONTROLLER_PERMISSIONS, OWN_SNAPSHOT_PERMISSIONS } from '../../src/zfs/delegation.js';
import { LIMITED_BROADCAST } from '../../src/config/addresses.js';

const NIXPKGS_LIB = process.env['NIXPKGS_LIB'];
const repo = resolve(import.meta.dirname, '../..');

if (!NIXPKGS_LIB) {
  console.warn(
    'SKIP: NIXPKGS_LIB unset — the NixOS module evaluation tests (tests/unit/nix-modules.test.ts) did not run. ' +
      'Point NIXPKGS_LIB at a nixpkgs lib directory (see docs/nixos.md, "Tests") to run them.',
  );
}

type Unit = {
  after: string[];
  wants: string[];
  wantedBy: string[];
  bindsTo: string[];
  path: string[];
  environment: Record<string, string>;
  restartIfChanged: boolean;
  script: string;
  preStop: string;
  serviceConfig: Record<string, unknown>;
  unitConfig: Record<string, unknown>;
};
type Timer = { wantedBy: string[]; timerConfig: Record<string, unknown> };
type Stub = { name: string; path: string; text?: string; value?: unknown; script?: string };
type Eval = {
  controller: {
    services: Record<string, Unit>;
    timers: Record<string, Timer>;
    etc: Record<string, { source: Stub }>;
    checks: Stub[];
    knownHosts: Record<
      string,
      { hostNames: string[]; extraHostNames: string[]; publicKey: string | null; publicKeyFile: string | null; certAuthority: boolean }
    >;
    tmpfiles: Record<string, Record<string, Record<string, Record<string, string>>>>;
    logrotate: Record<string, Record<string, unknown>>;
    nodeExporterFlags: string[];
    sanoid: { enable: boolean; templates: Record<string, Record<string, unknown>>; datasets: Record<string, Record<string, unknown>> };
    users: Record<string, { isSystemUser: boolean; group: string; home: string }>;
    groups: string[];
    renderedConfig: unknown;
    renderedJobConfigs: Record<string, unknown>;
    failedAssertions: string[];
  };
  controllerPlain: Eval['controller'];
  agent: {
    services: Record<string, Unit>;
    timers: Record<string, Timer>;
    etc: Record<string, { source: Stub }>;
    users: Record<string, { useDefaultShell: boolean; openssh: { authorizedKeys: { keys: string[] } } }>;
    groups: string[];
    tmpfiles: Record<string, Record<string, Record<string, Record<string, string>>>>;
    polkit: { enable: boolean; extraConfig: string };
    extraPools: string[];
    interfaces: Record<string, { wakeOnLan: { enable: boolean } }>;
    systemPackages: string[];
    opensshEnabled: boolean;
    checks: Stub[];
    renderedConfig: unknown;
    failedAssertions: string[];
  };
  agentNoIdle: Eval['agent'];
  agentMinimal: Eval['agent'];
  agentElsewhere: Eval['agent'];
  both: { failedAssertions: string[]; user: Record<string, unknown> };
  controllerAssertions: Record<string, string[]>;
  agentAssertions: Record<string, string[]>;
  flake: {
    inputs: Record<string, string>;
    packages: Record<string, string[]>;
    defaultIsHozo: string;
    nixosModules: string[];
    checks: Record<string, string[]>;
    devShells: string[];
    formatter: string[];
    overlay: string;
    controllerPackage: string;
    agentPackage: string;
    overriddenPackage: string;
    failedAssertions: string[];
  };
  package: {
    pname: string;
    version: string;
    postInstall: string;
    doInstallCheck: boolean;
    installCheckPhase: string;
    mainProgram: string;
    npmRebuildFlags: string[];
    makeWrapperArgs: string[];
    sourceRoots: string[];
    usesConfigHook: boolean;
    hashed: { npmDepsHash: string; npmDeps: boolean; npmConfigHook: boolean };
  };
};

/** A systemd.tmpfiles.settings `d` entry as NixOS completes it: type from the attribute name, age "-", no argument. */
const tmpfilesDir = (user: string, group: string, mode: string) => ({ d: { type: 'd', user, group, mode, age: '-', argument: '' } });
/** The options of a NixOS submodule that are set (its unset typed options are null). */
const setOnly = (o: Record<string, unknown>) => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== null));

/**
 * Runs a generated unit script as systemd does (bash -e), with a logging stand-in for zfs and zpool (zfs-fuse has no
 * `zfs allow`, and the real delegation runs in the OpenZFS lab): every call is logged, `zfs <verb> … <dataset>` with
 * the given verb and dataset exits 1, everything else 0 (so every dataset exists).
 */
function runWithFakeZfs(script: string, fail: { verb: string; dataset: string }): { code: number | null; calls: string[]; stderr: string } {
  const dir = mkdtempSync(join(tmpdir(), 'hozo-fake-zfs-'));
  try {
    const log = join(dir, 'calls');
    for (const tool of ['zfs', 'zpool']) {
      writeFileSync(
        join(dir, tool),
        `#!/bin/sh\necho "${tool} $*" >> ${log}\n[ "$1" = ${fail.verb} ] && case " $* " in *" ${fail.dataset} "*) exit 1;; esac\nexit 0\n`,
        { mode: 0o755 },
      );
    }
    const text = script.replace(/\S*\/bin\/(zfs|zpool)(?=\s)/g, (_, tool: string) => join(dir, tool));
    const r = spawnSync('bash', ['-e', '-c', text], { encoding: 'utf8', timeout: 10_000 });
    const calls = (() => {
      try {
        return readFileSync(log, 'utf8').trim().split('\n');
      } catch {
        return [];
      }
    })();
    return { code: r.status, calls, stderr: r.stderr };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe.skipIf(!NIXPKGS_LIB)('NixOS modules (lib.evalModules with stubbed NixOS options)', () => {
  let ev: Eval;
  let tmp: string;

  beforeAll(() => {
    const out = execFileSync('nix-instantiate', ['--eval', '--strict', '--json', join(repo, 'tests/nix/eval.nix'), '--argstr', 'nixpkgsLib', NIXPKGS_LIB!], {
      encoding: 'utf8',
      maxBuffer: 64 * 1024 * 1024,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    ev = JSON.parse(out) as Eval;
    tmp = mkdtempSync(join(tmpdir(), 'hozo-nix-'));
  }, 120_000);

  afterAll(() => {
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  describe('controller', () => {
    it('evaluates the examples without failed assertions', () => {
      expect(ev.controller.failedAssertions).toEqual([]);
      expect(ev.controllerPlain.failedAssertions).toEqual([]);
      expect(ev.both.failedAssertions).toEqual([]);
    });

    it("renders one oneshot service per job running `hozo run <job>` with that job's config", () => {
      const unit = ev.controller.services['hozo-offsite']!;
      const sc = unit.serviceConfig;
      expect(sc['Type']).toBe('oneshot');
      expect(sc['ExecStart']).toMatch(/^\/nix\/store\/[^ ]+-hozo-0\.1\.0\/bin\/hozo run offsite --attempts \d+ --attempt-delay \S+$/);
      expect(unit.environment['HOZO_CONFIG']).toBe('/etc/hozo/jobs/offsite.json');
      expect(sc['User']).toBe('hozo');
      expect(sc['Group']).toBe('hozo');
      expect(sc['TimeoutStartSec']).toBe('12h');
      expect(unit.restartIfChanged).toBe(false);
      expect(unit.after).toEqual(expect.arrayContaining(['network-online.target', 'zfs.target', 'hozo-zfs-delegation.service']));
      expect(unit.wants).toEqual(expect.arrayContaining(['network-online.target']));
      // The booted system's zfs first: it matches the loaded kernel module also after a switch that upgraded ZFS.
      expect(unit.path).toEqual(['/run/booted-system/sw', expect.objectContaining({ name: 'zfs-user-2.3.4' })]);
      expect(
        Object.keys(ev.controller.services)
          .filter((n) => n !== 'hozo-zfs-delegation')
          .sort(),
      ).toEqual(['hozo-far', 'hozo-local-copy', 'hozo-offsite', 'hozo-verify-far', 'hozo-weekly']);
    });

    it('runs hozo verify --restore-test on its own timer for a job with verify.schedule, as root with mount and read caps only', () => {
      const unit = ev.controller.services['hozo-verify-far']!;
      const sc = unit.serviceConfig;
      expect(sc['ExecStart']).toMatch(/\/bin\/hozo verify far --restore-test --files 500$/);
      expect(sc['User']).toBe('root');
      expect(sc['CapabilityBoundingSet']).toEqual(['CAP_SYS_ADMIN', 'CAP_DAC_READ_SEARCH']);
      expect(sc['SystemCallFilter']).toEqual(['@system-service', '~@privileged', '~@keyring', '~@memlock', '@mount']);
      expect(sc['PrivateMounts']).toBe(true);
      expect(sc['LoadCredential']).toEqual(ev.controller.services['hozo-far']!.serviceConfig['LoadCredential']);
      expect(unit.environment['HOZO_CONFIG']).toBe('/etc/hozo/jobs/far.json');
      expect(ev.controller.timers['hozo-verify-far']!.timerConfig).toEqual({ OnCalendar: 'monthly', Persistent: true, RandomizedDelaySec: '1h' });
      expect(Object.keys(ev.controller.timers).filter((n) => n.startsWith('hozo-verify-'))).toEqual(['hozo-verify-far']);
    });

    it("merges several definitions of a job's `service` (attrsOf anything, not attrs)", () => {
      expect(ev.controller.services['hozo-weekly']!.serviceConfig).toMatchObject({ Nice: 10, IOSchedulingClass: 'idle', Type: 'oneshot' });
    });

    it('retries a failed run inside hozo (--attempts), not by systemd restarts that would count manual starts', () => {
      const unit = ev.controller.services['hozo-offsite']!;
      expect(unit.serviceConfig['ExecStart']).toMatch(/\/bin\/hozo run offsite --attempts 4 --attempt-delay 15m$/);
      for (const k of ['Restart', 'RestartSec', 'RestartPreventExitStatus']) expect(unit.serviceConfig).not.toHaveProperty(k);
      // startLimitBurst/startLimitIntervalSec unset (they have no default): no StartLimit*= lines.
      expect(unit.unitConfig).not.toHaveProperty('StartLimitBurst');
      expect(unit.unitConfig).not.toHaveProperty('StartLimitIntervalSec');
    });

    it('hardens the job units like nixpkgs syncoid, with the Node/ZFS exceptions', () => {
      const sc = ev.controller.services['hozo-offsite']!.serviceConfig;
      for (const [k, v] of Object.entries({
        NoNewPrivileges: true,
        ProtectSystem: 'strict',
        ProtectHome: true,
        PrivateTmp: true,
        ProtectKernelTunables: true,
        ProtectKernelModules: true,
        ProtectControlGroups: true,
        RestrictNamespaces: true,
        RestrictSUIDSGID: true,
        LockPersonality: true,
        CapabilityBoundingSet: '',
        SystemCallArchitectures: 'native',
        PrivateUsers: false,
        UMask: '0022',
        DevicePolicy: 'closed',
      })) {
        expect(sc[k], k).toEqual(v);
      }
      expect(sc).not.toHaveProperty('MemoryDenyWriteExecute');
      expect(sc['DeviceAllow']).toEqual(['/dev/zfs rw']);
      expect(sc['SystemCallFilter']).toEqual(expect.arrayContaining(['@system-service', '~@privileged']));
      expect(sc['RestrictAddressFamilies']).toEqual(expect.arrayContaining(['AF_UNIX', 'AF_INET', 'AF_INET6']));
      expect(sc['StateDirectory']).toBe('hozo');
      expect(sc['ReadWritePaths']).toEqual(['/var/lib/prometheus-node-exporter-text-files', '/var/log/hozo']);
    });

    const notifyCredentials = [
      'notify-0-token:/run/secrets/hozo/ntfy-token',
      'notify-1-token:/run/secrets/hozo/pushover-token',
      'notify-1-user:/run/secrets/hozo/pushover-user',
    ];
    type JobFile = {
      hosts: Record<string, { sshKeyFile?: string }>;
      jobs: { name: string }[];
      notify: { type: string; tokenFile?: string; userFile?: string }[];
    };

    it('passes SSH keys and notify secrets with LoadCredential and points the job config at the copies', () => {
      expect(ev.controller.services['hozo-offsite']!.serviceConfig['LoadCredential']).toEqual([
        'ssh-key-box:/run/secrets/hozo/box-ssh-key',
        ...notifyCredentials,
      ]);
      expect(ev.controller.services['hozo-weekly']!.serviceConfig['LoadCredential']).toEqual([
        'ssh-key-attic:/run/secrets/hozo/attic-ssh-key',
        ...notifyCredentials,
      ]);
      // A local job has no key, but still reports through the channels.
      expect(ev.controller.services['hozo-local-copy']!.serviceConfig['LoadCredential']).toEqual(notifyCredentials);
      expect(ev.controllerPlain.services['hozo-nightly']!.serviceConfig).not.toHaveProperty('LoadCredential');
      const job = ev.controller.renderedJobConfigs['offsite'] as JobFile;
      expect(job.hosts['box']!.sshKeyFile).toBe('/run/credentials/hozo-offsite.service/ssh-key-box');
      expect(Object.keys(job.hosts)).toEqual(['box']);
      expect(job.jobs.map((j) => j.name)).toEqual(['offsite']);
      expect(job.notify.map((c) => [c.type, c.tokenFile, c.userFile])).toEqual([
        ['ntfy', '/run/credentials/hozo-offsite.service/notify-0-token', undefined],
        ['pushover', '/run/credentials/hozo-offsite.service/notify-1-token', '/run/credentials/hozo-offsite.service/notify-1-user'],
        ['email', undefined, undefined],
      ]);
      // The config for root by hand keeps the original paths.
      const all = ev.controller.renderedConfig as JobFile;
      expect(all.notify[0]!.tokenFile).toBe('/run/secrets/hozo/ntfy-token');
      expect(all.hosts['box']!.sshKeyFile).toBe('/run/secrets/hozo/box-ssh-key');
    });

    it("gives a job woken through an ssh-relay the relay's host entry and key as well", () => {
      expect(ev.controller.services['hozo-far']!.serviceConfig['LoadCredential']).toEqual([
        'ssh-key-faraway:/run/secrets/hozo/faraway-ssh-key',
        'ssh-key-relay:/run/secrets/hozo/relay-ssh-key',
        ...notifyCredentials,
      ]);
      const job = ev.controller.renderedJobConfigs['far'] as JobFile;
      expect(job.hosts).toEqual({
        faraway: expect.objectContaining({ sshKeyFile: '/run/credentials/hozo-far.service/ssh-key-faraway' }),
        relay: expect.objectContaining({ sshKeyFile: '/run/credentials/hozo-far.service/ssh-key-relay' }),
      });
      const cfg = validateConfig(job, 'far.json');
      expect(cfg.hosts['faraway']!.wake).toEqual({
        method: 'ssh-relay',
        relayHost: 'relay',
        mac: '52:54:00:7a:0b:02',
        address: '10.20.0.255',
        port: 9,
        packets: 5,
        httpMethod: 'POST',
      });
      expect(cfg.hosts['faraway']!.shutdownIfAwake).toBe(true);
      expect(cfg.hosts['relay']).toMatchObject({ shutdown: 'none', agent: false });
    });

    it('renders a timer per job with the schedule, Persistent and RandomizedDelaySec', () => {
      const t = ev.controller.timers['hozo-offsite']!;
      expect(t.wantedBy).toEqual(['timers.target']);
      expect(t.timerConfig).toEqual({ OnCalendar: '*-*-* 02:30:00', Persistent: true, RandomizedDelaySec: '30min' });
      expect(ev.controller.timers['hozo-weekly']!.timerConfig['OnCalendar']).toBe('Sun 04:00');
      expect(ev.controller.timers['hozo-local-copy']!.timerConfig['OnCalendar']).toBe('daily');
    });

    it('writes config files that the real schema accepts (what `hozo config check` runs)', () => {
      const files = Object.entries(ev.controller.etc).filter(([p]) => p.startsWith('hozo/'));
      expect(files.map(([p]) => p).sort()).toEqual([
        'hozo/config.json',
        'hozo/jobs/far.json',
        'hozo/jobs/local-copy.json',
        'hozo/jobs/offsite.json',
        'hozo/jobs/weekly.json',
      ]);
      for (const [p, { source }] of [...files, ...Object.entries(ev.controllerPlain.etc)]) {
        const file = join(tmp, p.replaceAll('/', '_'));
        writeFileSync(file, source.text!);
        expect(() => loadConfig(file), p).not.toThrow();
      }
      const cfg = validateConfig(ev.controller.renderedConfig, 'rendered');
      expect(cfg.jobs.map((j) => j.name)).toEqual(['far', 'local-copy', 'offsite', 'weekly']);
      const offsite = cfg.jobs.find((j) => j.name === 'offsite')!;
      expect(offsite.snapshots).toBe('all');
      expect(offsite.compress).toBe('zstd');
      expect(offsite.datasets[0]).toEqual({
        source: 'tank/home',
        target: 'backup/hozo/home',
        recursive: true,
        exclude: ['tank/home/cache'],
        allowPlaintext: false,
      });
      expect(cfg.jobs.find((j) => j.name === 'weekly')!.snapshots).toBe('latest');
      expect(cfg.jobs.find((j) => j.name === 'weekly')!.retryDelay).toBe(300);
      // bandwidthLimit on a host and a job reaches the binary's config; unset, it is absent (not null).
      expect(cfg.hosts['faraway']!.bandwidthLimit).toBe('20M');
      expect(cfg.hosts['faraway']!.scrubWarnAfter).toBe(40 * 86_400);
      expect(cfg.hosts['box']!.scrubWarnAfter).toBe(35 * 86_400);
      expect(cfg.jobs.find((j) => j.name === 'weekly')!.bandwidthLimit).toBe('5M');
      expect('bandwidthLimit' in offsite).toBe(false);
      expect('bandwidthLimit' in cfg.hosts['box']!).toBe(false);
      // snapshots.own and hooks (job and dataset entry) reach the binary's config; unset, they are absent.
      const far = cfg.jobs.find((j) => j.name === 'far')!;
      expect(far.snapshot).toEqual({ create: true, keep: 10 });
      expect(far.window).toEqual({ maxAwake: 7200 });
      expect('window' in offsite).toBe(false);
      expect(far.hooks).toEqual({ postRun: { command: ['/run/current-system/sw/bin/logger', 'hozo far done'], timeout: 120 } });
      expect(far.datasets[0]!.hooks).toEqual({ preSnapshot: { command: ['/run/current-system/sw/bin/psql', '-c', 'CHECKPOINT'], timeout: 300 } });
      expect('snapshot' in offsite || 'hooks' in offsite || 'hooks' in offsite.datasets[0]!).toBe(false);
      expect(cfg.hosts['box']).toMatchObject({
        address: 'backupbox.lan',
        user: 'hozo',
        readyTimeout: 600,
        shutdown: 'agent',
        knownHostsFile: '/etc/ssh/ssh_known_hosts',
        sshOptions: ['Ciphers=aes128-gcm@openssh.com'], // from `settings`
        wake: { method: 'wol', mac: '52:54:00:7a:0b:01', address: '192.168.1.255', port: 9, packets: 3, httpMethod: 'POST' },
        shutdownCommand: ['systemctl', 'poweroff'],
        shutdownIfAwake: false,
        pools: ['backup'],
        leaseTtl: 8 * 3600,
        trust: 'untrusted', // the module's default, as the binary's
      });
      expect(cfg.hosts['box']!.agent).toBeUndefined(); // the binary decides: shutdown = agent
      expect(cfg.hosts['attic']).toMatchObject({
        port: 2222,
        shutdown: 'ssh',
        shutdownCommand: ['sudo', 'poweroff'],
        leaseTtl: 6 * 3600,
        wake: { method: 'http', url: 'http://plug.lan/relay/0?turn=on', httpMethod: 'GET' },
      });
      expect(cfg.notify).toEqual([
        { type: 'ntfy', url: 'https://ntfy.sh/hozo-test-3f9c', tokenFile: '/run/secrets/hozo/ntfy-token', on: 'failure', timeout: 15 },
        {
          type: 'pushover',
          userFile: '/run/secrets/hozo/pushover-user',
          tokenFile: '/run/secrets/hozo/pushover-token',
          apiUrl: 'https://api.pushover.net/1/messages.json',
          on: 'failure',
          timeout: 30,
        },
        { type: 'email', to: ['admin@example.org'], from: 'hozo@controller.lan', sendmail: '/run/wrappers/bin/sendmail', on: 'always', timeout: 15 },
      ]);
      expect(cfg.metrics).toEqual({ textfileDirectory: '/var/lib/prometheus-node-exporter-text-files' });
      expect(cfg.logFile).toBe('/var/log/hozo/hozo.log');
      expect(cfg.stateDirectory).toBe('/var/lib/hozo');
      // Without node-exporter there is no metrics key; without channels no notify key.
      expect(validateConfig(ev.controllerPlain.renderedConfig).metrics).toBeUndefined();
      expect(ev.controllerPlain.renderedConfig).not.toHaveProperty('notify');
    });

    it('checks every config file with `hozo config check` when the system is built', () => {
      expect(ev.controller.checks).toHaveLength(1);
      const script = ev.controller.checks[0]!.script!;
      for (const [p, { source }] of Object.entries(ev.controller.etc)) {
        if (p.startsWith('hozo/')) expect(script).toContain(`hozo config check --config ${source.path}`);
      }
    });

    it('adds known hosts from hostPublicKey', () => {
      expect(ev.controller.knownHosts).toMatchObject({
        'hozo-box': { hostNames: ['backupbox.lan'], publicKey: expect.stringMatching(/^ssh-ed25519 /) },
        'hozo-faraway': { hostNames: ['faraway.example.net'], publicKey: expect.stringMatching(/^ssh-ed25519 .* faraway$/) },
        'hozo-relay': { hostNames: ['relay.example.net'], publicKey: expect.stringMatching(/^ssh-ed25519 .* relay$/) },
      });
      expect(Object.keys(ev.controller.knownHosts).sort()).toEqual(['hozo-box', 'hozo-faraway', 'hozo-relay']);
      // The rest as NixOS defaults it: a plain host key given inline.
      for (const h of Object.values(ev.controller.knownHosts)) {
        expect(h).toMatchObject({ extraHostNames: [], publicKeyFile: null, certAuthority: false });
      }
    });

    it('delegates ZFS permissions on sources (and local targets) and removes them on stop', () => {
      const d = ev.controller.services['hozo-zfs-delegation']!;
      expect(d.serviceConfig).toMatchObject({ Type: 'oneshot', RemainAfterExit: true });
      expect(d.wantedBy).toEqual(['multi-user.target']);
      for (const ds of ['tank/home', 'tank/db', 'tank/photos']) {
        expect(d.script).toContain(`allow ${CONTROLLER_PERMISSIONS.join(',')} ${ds}\n`);
        expect(d.preStop).toMatch(new RegExp(`/bin/zfs unallow -u hozo ${CONTROLLER_PERMISSIONS.join(',')} ${ds} \\|\\| true`));
      }
      expect(d.script).toContain('allow create,mount,receive,rollback,hold,release archive/photos archive');
      // Only the sources of jobs with own snapshots get snapshot/destroy (destroy reaches the dataset too).
      expect(d.script).toContain(`allow ${OWN_SNAPSHOT_PERMISSIONS.join(',')} tank/db\n`);
      expect(d.script).not.toContain(`allow ${OWN_SNAPSHOT_PERMISSIONS.join(',')} tank/home`);
      expect(d.preStop).toContain(`unallow -u hozo ${OWN_SNAPSHOT_PERMISSIONS.join(',')} tank/db || true`);
      expect(d.script).toMatch(/\/bin\/zfs allow -u hozo "\$1" "\$ds"/);
      // One failing `zfs allow` (a logging stand-in for zfs) is counted, not fatal: the datasets after it still get
      // theirs, and the unit fails (exit 1) naming it, instead of stopping at the first and failing the switch there.
      const run = runWithFakeZfs(d.script, { verb: 'allow', dataset: 'tank/home' });
      expect(run.code).toBe(1);
      expect(run.stderr).toContain(`hozo: zfs allow ${CONTROLLER_PERMISSIONS.join(',')} on tank/home failed`);
      for (const ds of ['tank/db', 'tank/photos']) expect(run.calls).toContain(`zfs allow -u hozo ${CONTROLLER_PERMISSIONS.join(',')} ${ds}`);
      expect(runWithFakeZfs(d.script, { verb: 'allow', dataset: 'nothing/fails' }).code).toBe(0);
      // user = root: no delegation unit, jobs do not wait for one
      expect(ev.controllerPlain.services).not.toHaveProperty('hozo-zfs-delegation');
      expect(ev.controllerPlain.services['hozo-nightly']!.serviceConfig['User']).toBe('root');
    });

    it('generates sanoid templates and datasets from snapshots.policy', () => {
      const s = ev.controller.sanoid;
      expect(s.enable).toBe(true);
      expect(Object.keys(s.templates)).toEqual(['hozo-offsite']);
      expect(setOnly(s.templates['hozo-offsite']!)).toEqual({
        hourly: 24,
        daily: 14,
        monthly: 6,
        yearly: 0,
        autosnap: true,
        autoprune: true,
      });
      expect(s.datasets['tank/home']).toMatchObject({ use_template: ['hozo-offsite'], recursive: true });
      expect(s.datasets['tank/db']).toMatchObject({ use_template: ['hozo-offsite'], recursive: false });
      expect(s.datasets['tank/home/cache']).toMatchObject({ autosnap: false });
      // jobs without a policy get none
      expect(s.datasets).not.toHaveProperty('tank/photos');
      expect(ev.controllerPlain.sanoid.enable).toBe(false);
    });

    it('rotates the log file daily, 14 kept', () => {
      expect(ev.controller.logrotate['hozo']).toMatchObject({
        files: ['/var/log/hozo/hozo.log'],
        frequency: 'daily',
        rotate: 14,
        su: 'hozo hozo',
        create: '0640 hozo hozo',
      });
      expect(ev.controllerPlain.logrotate).toEqual({});
    });

    it("wires node-exporter's textfile collector and creates the directories with tmpfiles", () => {
      expect(ev.controller.nodeExporterFlags).toEqual(['--collector.textfile.directory=/var/lib/prometheus-node-exporter-text-files']);
      expect(ev.controller.tmpfiles['10-hozo']).toEqual({
        '/var/lib/prometheus-node-exporter-text-files': tmpfilesDir('hozo', 'hozo', '0755'),
        '/var/log/hozo': tmpfilesDir('hozo', 'hozo', '0750'),
      });
      expect(ev.controllerPlain.nodeExporterFlags).toEqual([]);
    });

    it('creates the system user', () => {
      expect(ev.controller.users['hozo']).toMatchObject({ isSystemUser: true, group: 'hozo', home: '/var/lib/hozo' });
      expect(ev.controller.groups).toContain('hozo');
    });

    const expected: Record<string, RegExp> = {
      unknownHost:
        /jobs\.stray\.host = "nowhere" is not a configured host: define services\.hozo\.controller\.hosts\.nowhere or use one of: "attic", "box", "faraway", "relay", "local"/,
      emptySchedule: /jobs\.offsite\.schedule is empty: give a systemd calendar expression/,
      emptyDatasets: /jobs\.hollow\.datasets is empty/,
      duplicateTargets: /same target box:backup\/hozo\/home: .*jobs\.again.* and .*jobs\.offsite/,
      keyInStore: /hosts\.box\.sshKeyFile = "\/nix\/store\/.*" is in the Nix store.*config\.sops\.secrets/,
      keyInStoreViaSettings: /settings\.hosts\.extra\.sshKeyFile = "\/nix\/store\/.*" is in the Nix store/,
      noHostKey: /hosts\.bare: set hostPublicKey .* or knownHostsFile/,
      sharedLogDirectory: /logFile = "\/var\/log\/hozo\.log": .*directory of its own/,
      badJobName: /jobs\."nightly backup": a job name becomes the unit name/,
      jobUnitCollision: /jobs\."zfs-delegation": its unit hozo-zfs-delegation\.service is also one of the module's own \(the ZFS delegation unit\)/,
      wolWithoutAddress: /hosts\.box\.wake: method = "wol" needs mac .* and address/,
      wolLimitedBroadcast: new RegExp(`hosts\\.box\\.wake\\.address = "${LIMITED_BROADCAST.replaceAll('.', '\\.')}": hozo refuses the limited broadcast`),
      relayUnknown: /hosts\.faraway\.wake: method = "ssh-relay" needs relayHost, .*got "nowhere"/,
      httpWithoutUrl: /hosts\.attic\.wake: method = "http" needs url/,
      noZfs: /services\.hozo\.controller needs ZFS on this host: set boot\.supportedFilesystems/,
      notifyWithoutUrl: /notify \(entry 0, type = "webhook"\): set url/,
      notifyForeignField: /notify \(entry 0, type = "email"\): url is not used by this type/,
      notifySecretInStore: /notify \(entry 0\): tokenFile = "\/nix\/store\/.*" is in the Nix store/,
      notifySecretInStoreViaSettings: /notify \(entry 0\): tokenFile = "\/nix\/store\/.*-pushover-token" is in the Nix store/,
    };
    it.each(Object.keys(expected))('assertion fires: %s', (name) => {
      const failed = ev.controllerAssertions[name];
      expect(failed, `no such bad example: ${name}`).toBeDefined();
      expect(failed).toHaveLength(1);
      expect(failed![0]).toMatch(expected[name]!);
    });
    it('has a bad example for every assertion tested', () => {
      expect(Object.keys(ev.controllerAssertions).sort()).toEqual(Object.keys(expected).sort());
    });
  });

  describe('agent', () => {
    it('evaluates the example without failed assertions', () => {
      expect(ev.agent.failedAssertions).toEqual([]);
    });

    it('installs controller keys as a forced command with restrict', () => {
      const keys = ev.agent.users['hozo']!.openssh.authorizedKeys.keys;
      expect(keys).toHaveLength(1);
      expect(keys[0]).toMatch(
        /^command="\/nix\/store\/[^"]+-hozo-0\.1\.0\/bin\/hozo-agent serve --config \/etc\/hozo-agent\/config\.json",restrict,from="192\.168\.1\.10" ssh-ed25519 AAAA\S+ hozo@controller$/,
      );
      expect(ev.agent.users['hozo']!.useDefaultShell).toBe(true);
      expect(ev.agent.groups).toContain('hozo');
      expect(ev.agent.opensshEnabled).toBe(true);
    });

    it('writes the agent config in the documented shape, with exportOnShutdown off (the agent is not root)', () => {
      const { text } = ev.agent.etc['hozo-agent/config.json']!.source;
      expect(JSON.parse(text!)).toEqual({
        roots: ['backup/hozo', 'vault/hozo/main'],
        pools: ['backup', 'vault'],
        retention: { hourly: 24, daily: 10, weekly: 5, monthly: 12, yearly: 3 },
        idlePoweroffMinutes: 20,
        poweroffCommand: [expect.stringMatching(/-systemd\/bin\/systemctl$/), 'start', '--no-block', 'hozo-poweroff.service'],
        poweroffDelaySeconds: 3,
        leaseDirectory: '/var/lib/hozo-agent/leases',
        stateDirectory: '/var/lib/hozo-agent',
        logFile: '/var/log/hozo-agent/agent.log',
        allowRollback: true,
        exportOnShutdown: false,
        prepareTimeoutSeconds: 120,
        maxLeaseSeconds: 86400,
        bufferSize: '128M',
        importDirectories: ['/dev/disk/by-id'], // from `settings`
        scrub: expect.objectContaining({ everyDays: 30, pauseOnShutdown: true }),
      });
      expect(ev.agent.renderedConfig).toEqual(JSON.parse(text!));
      const off = JSON.parse(ev.agentNoIdle.etc['hozo-agent/config.json']!.source.text!);
      expect(off.idlePoweroffMinutes).toBeNull();
    });

    it("controllers: one section each, their keys' forced commands name it, their roots delegated and imported", () => {
      const a = ev.agentSections;
      expect(a.failedAssertions).toEqual([]);
      const cfg = JSON.parse(a.etc['hozo-agent/config.json']!.source.text!);
      expect(cfg.controllers).toEqual({ alice: { roots: ['backup/alice'] }, bob: { roots: ['backup/bob'], maxLeases: 2, maxReceives: 1 } });
      // bob's quota: set by root on his roots at boot (the unit that creates and delegates them).
      const setup = JSON.stringify(a.services);
      expect(setup).toMatch(/zfs set quota='?500G'? '?backup\/bob'?/);
      const keys = a.users['hozo']!.openssh.authorizedKeys.keys;
      expect(keys.find((k: string) => k.endsWith('hozo@alice'))).toMatch(
        /serve --controller alice --config \/etc\/hozo-agent\/config\.json",restrict ssh-ed25519/,
      );
      expect(keys.find((k: string) => k.endsWith('hozo@bob'))).toMatch(/serve --controller bob --config/);
      expect(cfg.pools).toEqual(expect.arrayContaining(['backup']));
      // The agent's own schema accepts it, and gives each section only its roots.
      const v = validateAgentConfig(cfg, 'rendered');
      expect(v.roots).toEqual(expect.arrayContaining(['backup/alice', 'backup/bob']));
      const scoped = scopedConfig(v, 'bob');
      expect(typeof scoped !== 'string' && scoped.roots).toEqual(['backup/bob']);
    });

    it("writes agent configs that the agent's own schema accepts (what `hozo-agent check-config` runs)", () => {
      for (const [name, view] of Object.entries({
        agent: ev.agent,
        agentNoIdle: ev.agentNoIdle,
        agentMinimal: ev.agentMinimal,
        agentElsewhere: ev.agentElsewhere,
      })) {
        const data: unknown = JSON.parse(view.etc['hozo-agent/config.json']!.source.text!);
        const parsed = agentConfigSchema.safeParse(data);
        expect(parsed.success, `${name}: ${JSON.stringify(parsed.error?.issues)}`).toBe(true);
        expect(() => validateAgentConfig(data, name)).not.toThrow();
      }
      const min = validateAgentConfig(ev.agentMinimal.renderedConfig, 'agentMinimal');
      expect(min).toMatchObject({
        roots: ['backup/hozo'],
        pools: ['backup'],
        retention: { hourly: 0, daily: 7, weekly: 4, monthly: 6, yearly: 0 },
        idlePoweroffMinutes: 30,
        stateDirectory: '/var/lib/hozo-agent',
        leaseDirectory: '/var/lib/hozo-agent/leases',
        logFile: '/var/lib/hozo-agent/agent.log',
        allowRollback: false,
        exportOnShutdown: false,
        prepareTimeoutSeconds: 90,
      });
      expect(validateAgentConfig(ev.agentElsewhere.renderedConfig).leaseDirectory).toBe('/srv/hozo-agent/leases');
    });

    it('checks the agent config with `hozo-agent check-config` when the system is built', () => {
      expect(ev.agent.checks).toHaveLength(1);
      expect(ev.agent.checks[0]!.script).toContain(`hozo-agent check-config --config ${ev.agent.etc['hozo-agent/config.json']!.source.path}`);
    });

    it('prepares roots: canmount=off parents and the delegation the agent needs, undone on stop', () => {
      const u = ev.agent.services['hozo-agent-zfs']!;
      expect(u.wantedBy).toEqual(['multi-user.target']);
      expect(u.after).toEqual(expect.arrayContaining(['zfs-import.target']));
      expect(u.serviceConfig).toMatchObject({ Type: 'oneshot', RemainAfterExit: true });
      expect(u.script).toMatch(/\/bin\/zfs create -o canmount=off "\$path"/);
      const perms = u.script.match(/\/bin\/zfs allow -u hozo (\S+) "\$root"/)![1]!.split(',');
      // receive + create/mount for receives, canmount for `set canmount=noauto`, destroy for prune,
      // send + hold for restores (`send -I` takes temporary holds).
      // The module's default is exactly the list the OpenZFS suite proves complete and minimal.
      expect(perms).toEqual([...AGENT_PERMISSIONS]);
      expect(perms).not.toContain('rollback');
      expect(u.script).toContain('prepare backup/hozo\nprepare vault/hozo/main\n');
      // A failing `zfs allow` on the first root (a logging stand-in for zfs) does not stop the second.
      const run = runWithFakeZfs(u.script, { verb: 'allow', dataset: 'backup/hozo' });
      expect(run.code).toBe(1);
      expect(run.stderr).toContain('hozo-agent: zfs allow on backup/hozo failed');
      expect(run.calls).toContain(`zfs allow -u hozo ${perms.join(',')} vault/hozo/main`);
      expect(runWithFakeZfs(u.script, { verb: 'allow', dataset: 'nothing/fails' }).code).toBe(0);
      expect(u.preStop).toMatch(/\/bin\/zfs unallow -u hozo \S+ backup\/hozo \|\| true/);
      expect(u.preStop).toMatch(/\/bin\/zfs unallow -u hozo \S+ vault\/hozo\/main \|\| true/);
      expect(ev.agent.extraPools).toEqual(['backup', 'vault']);
    });

    it('has a power-off unit that exports the pools as root, and polkit lets user hozo start it and nothing else', () => {
      const u = ev.agent.services['hozo-poweroff']!;
      expect(u.serviceConfig).toMatchObject({ Type: 'oneshot' });
      expect(u.script).toMatch(/if \S+\/bin\/zpool export backup; then\n\s+echo "hozo-poweroff: exported backup"/);
      // vault holds a file system in `fileSystems`: left to the normal shutdown.
      expect(u.script).not.toContain('export vault');
      expect(u.script.trim()).toMatch(/\nexec \S+\/bin\/systemctl --no-block poweroff$/);
      expect(ev.agentMinimal.services['hozo-poweroff']!.script).toContain('/bin/zpool export backup');
      expect(ev.agent.polkit.enable).toBe(true);
      const rule = ev.agent.polkit.extraConfig;
      expect(rule).toContain('action.id == "org.freedesktop.systemd1.manage-units"');
      expect(rule).toContain('action.lookup("verb") == "start"');
      expect(rule).toContain('subject.user == "hozo"');
      expect(rule.match(/return polkit\.Result\.YES/g)).toHaveLength(1);
      expect(rule).not.toMatch(/Result\.(AUTH|NO)/);
      // The rule itself, run as polkit would: what it allows, and nothing more.
      const allows = (extraConfig: string, unit: string, verb = 'start', user = 'hozo'): boolean => {
        let answer: unknown;
        const polkit = {
          Result: { YES: 'yes' },
          addRule: (f: (a: unknown, s: unknown) => unknown) =>
            (answer = f({ id: 'org.freedesktop.systemd1.manage-units', lookup: (k: string) => (k === 'unit' ? unit : verb) }, { user })),
        };
        new Function('polkit', extraConfig)(polkit);
        return answer === 'yes';
      };
      expect(allows(rule, 'hozo-poweroff.service')).toBe(true);
      // scrub.enable: the scrub units of its pools, to start only.
      expect(allows(rule, 'hozo-scrub@backup.service')).toBe(true);
      expect(allows(rule, 'hozo-scrub-pause@backup.service')).toBe(true);
      expect(allows(rule, 'hozo-scrub@tank.service')).toBe(false);
      expect(allows(rule, 'hozo-scrub@backup.service', 'stop')).toBe(false);
      expect(allows(rule, 'hozo-poweroff.service', 'start', 'root')).toBe(false);
      expect(allows(rule, 'sshd.service')).toBe(false);
      expect(allows(ev.agentMinimal.polkit.extraConfig, 'hozo-poweroff.service')).toBe(true);
      expect(allows(ev.agentMinimal.polkit.extraConfig, 'hozo-scrub@backup.service')).toBe(false);
      // The scrub units run zpool as root; the agent's config names them (%p: the pool).
      expect(ev.agent.services['hozo-scrub@']!.serviceConfig['ExecStart']).toMatch(/\/bin\/zpool scrub %i$/);
      expect(ev.agent.services['hozo-scrub-pause@']!.serviceConfig['ExecStart']).toMatch(/\/bin\/zpool scrub -p %i$/);
      const cfg = JSON.parse(ev.agent.etc['hozo-agent/config.json']!.source.text!);
      expect(cfg.scrub).toEqual({
        everyDays: 30,
        keepAwakeMinutes: 0,
        pauseOnShutdown: true,
        startCommand: [expect.stringMatching(/\/bin\/systemctl$/), 'start', 'hozo-scrub@%p.service'],
        pauseCommand: [expect.stringMatching(/\/bin\/systemctl$/), 'start', 'hozo-scrub-pause@%p.service'],
      });
      expect(JSON.parse(ev.agentMinimal.etc['hozo-agent/config.json']!.source.text!).scrub).toBeUndefined();
    });

    it('runs the idle guard from a timer as user hozo with its state directory writable, and not when disabled', () => {
      const u = ev.agent.services['hozo-agent-idle']!;
      expect(u.serviceConfig['ExecStart']).toMatch(/\/bin\/hozo-agent idle-check --config \/etc\/hozo-agent\/config\.json$/);
      expect(u.serviceConfig['User']).toBe('hozo');
      expect(u.serviceConfig['ProtectSystem']).toBe('strict');
      // last-activity, receive markers and agent.log live in stateDirectory; leases below it.
      expect(u.serviceConfig['StateDirectory']).toBe('hozo-agent');
      expect(u.serviceConfig['StateDirectoryMode']).toBe('0750');
      expect(u.serviceConfig['ReadWritePaths']).toEqual(['/var/log/hozo-agent']);
      expect(ev.agentMinimal.services['hozo-agent-idle']!.serviceConfig).not.toHaveProperty('ReadWritePaths');
      // Outside /var/lib: no StateDirectory=, the directory itself is made writable.
      const elsewhere = ev.agentElsewhere.services['hozo-agent-idle']!.serviceConfig;
      expect(elsewhere).not.toHaveProperty('StateDirectory');
      expect(elsewhere['ReadWritePaths']).toEqual(['/srv/hozo-agent']);
      expect(ev.agentElsewhere.tmpfiles['10-hozo-agent']).toEqual({
        '/srv/hozo-agent': tmpfilesDir('hozo', 'hozo', '0750'),
        '/srv/hozo-agent/leases': tmpfilesDir('hozo', 'hozo', '0750'),
      });
      expect(ev.agent.timers['hozo-agent-idle']!.timerConfig).toMatchObject({ OnBootSec: '20min', OnUnitActiveSec: '1min' });
      expect(ev.agentNoIdle.services).not.toHaveProperty('hozo-agent-idle');
      expect(ev.agentNoIdle.timers).not.toHaveProperty('hozo-agent-idle');
    });

    it("applies the box's retention with a persistent prune timer (hozo-agent prune, run locally)", () => {
      const u = ev.agent.services['hozo-agent-prune']!;
      // `hozo-agent prune`: box-wide (every controller section), also where keys are appendOnly.
      expect(u.serviceConfig['ExecStart']).toMatch(/\/bin\/hozo-agent prune --config \/etc\/hozo-agent\/config\.json$/);
      expect(u.environment?.['SSH_ORIGINAL_COMMAND']).toBeUndefined();
      expect(u.serviceConfig).toMatchObject({ Type: 'oneshot', User: 'hozo', ProtectSystem: 'strict', StateDirectory: 'hozo-agent' });
      expect(u.serviceConfig['SuccessExitStatus']).toEqual(['3']);
      expect(u.path).toEqual(['/run/booted-system/sw', expect.objectContaining({ name: 'zfs-user-2.3.4' })]);
      expect(ev.agent.services['hozo-agent-idle']!.path).toEqual(u.path);
      expect(ev.agent.timers['hozo-agent-prune']!.timerConfig).toEqual({ OnCalendar: '*-*-* 05:00:00', Persistent: true });
      expect(ev.agentMinimal.timers['hozo-agent-prune']!.timerConfig['OnCalendar']).toBe('daily');
      expect(ev.agentNoIdle.services).not.toHaveProperty('hozo-agent-prune');
      expect(ev.agentNoIdle.timers).not.toHaveProperty('hozo-agent-prune');
    });

    it('arms Wake-on-LAN per interface with an ethtool unit, and leaves networking.interfaces alone', () => {
      // An entry there would be a whole interface configuration (networkd: DHCP from useDHCP, a link file by
      // OriginalName=): the box's own network setup stays as it is.
      expect(ev.agent.interfaces).toEqual({});
      const u = ev.agent.services['hozo-wol-enp3s0']!;
      expect(u.serviceConfig['ExecStart']).toMatch(/\/bin\/ethtool -s enp3s0 wol g$/);
      expect(u.serviceConfig['ExecStop']).toMatch(/\/bin\/ethtool -s enp3s0 wol g$/);
      expect(u.bindsTo).toEqual(['sys-subsystem-net-devices-enp3s0.device']);
      expect(ev.agent.services['hozo-wol-lan-uplink']!.bindsTo).toEqual(['sys-subsystem-net-devices-lan\\x2duplink.device']);
    });

    it('creates the state, lease and log directories for `serve` and installs the receive-side tools', () => {
      const d = tmpfilesDir('hozo', 'hozo', '0750');
      expect(ev.agent.tmpfiles['10-hozo-agent']).toEqual({
        '/var/lib/hozo-agent': d,
        '/var/lib/hozo-agent/leases': d,
        '/var/log/hozo-agent': d,
      });
      expect(ev.agent.systemPackages).toEqual(expect.arrayContaining(['mbuffer', 'zstd']));
    });

    const expected: Record<string, RegExp> = {
      noRoots: /services\.hozo\.agent\.roots is empty: list the datasets/,
      noKeys: /services\.hozo\.agent\.authorizedKeys is empty: add the controller's public key/,
      keyWithOptions: /does not start with a key type .* Give bare public keys/,
      sshdOff: /needs services\.openssh\.enable = true/,
      badRoot: /"\/backup\/hozo" is not a dataset name/,
      sharedLogDirectory: /agent\.logFile = "\/var\/log\/hozo-agent\.log": .*directory of its own/,
      relativeStateDirectory: /stateDirectory and leaseDirectory must be absolute paths/,
      noZfs: /services\.hozo\.agent needs ZFS on this box: set boot\.supportedFilesystems/,
    };
    it.each(Object.keys(expected))('assertion fires: %s', (name) => {
      const failed = ev.agentAssertions[name];
      expect(failed).toHaveLength(1);
      expect(failed![0]).toMatch(expected[name]!);
    });
    it('has a bad example for every assertion tested', () => {
      expect(Object.keys(ev.agentAssertions).sort()).toEqual(Object.keys(expected).sort());
    });
  });

  describe('flake.nix (outputs with a stand-in nixpkgs)', () => {
    it('has the promised outputs for both systems', () => {
      const f = ev.flake;
      expect(f.inputs).toEqual({ nixpkgs: 'github:NixOS/nixpkgs/nixos-25.11' });
      const systems = ['aarch64-linux', 'x86_64-linux'];
      expect(f.packages).toEqual(Object.fromEntries(systems.map((s) => [s, ['default', 'hozo']])));
      expect(f.defaultIsHozo).toBe('hozo-built-by-flake');
      expect(f.nixosModules).toEqual(['agent', 'controller', 'default']);
      expect(f.checks).toEqual(Object.fromEntries(systems.map((s) => [s, ['module-eval', 'package', 'vm']])));
      expect(f.devShells).toEqual(systems);
      expect(f.formatter).toEqual(systems);
      expect(f.overlay).toMatch(/\/nix\/package\.nix$/);
    });

    it("defaults the modules' package to the flake's, and lets users override it", () => {
      expect(ev.flake.controllerPackage).toMatch(/\/nix\/package\.nix$/);
      expect(ev.flake.agentPackage).toMatch(/\/nix\/package\.nix$/);
      expect(ev.flake.overriddenPackage).toBe('my-hozo');
      // nixosModules.controller (or .agent) imported beside nixosModules.default: one definition each, not two.
      expect(ev.flake.bothPackages).toEqual([expect.stringMatching(/\/nix\/package\.nix$/), expect.stringMatching(/\/nix\/package\.nix$/)]);
      expect(ev.flake.failedAssertions).toEqual([]);
    });
  });

  describe('nix/package.nix (phases, with a stand-in buildNpmPackage)', () => {
    it('takes both programs from package.json\'s "bin", wraps them, and checks that both start', () => {
      const pkg = JSON.parse(readFileSync(join(repo, 'package.json'), 'utf8')) as { name: string; version: string; bin: Record<string, string> };
      expect(pkg.bin).toEqual({ hozo: 'dist/bin/hozo/hozo.js', 'hozo-agent': 'dist/bin/agent/hozo-agent.js' });
      const p = ev.package;
      expect([p.pname, p.version, p.mainProgram]).toEqual([pkg.name, pkg.version, 'hozo']);
      // npm's install hook creates both; no hand-made hozo-agent wrapper any more.
      expect(p.postInstall).not.toContain('makeWrapper');
      expect(p.postInstall).toMatch(/for prog in hozo hozo-agent; do/);
      // The builder's own wrappers get the tools on PATH (makeWrapperArgs), not a second wrapper around them.
      expect(p.postInstall).not.toContain('wrapProgram');
      expect(p.makeWrapperArgs.slice(0, 3)).toEqual(['--prefix', 'PATH', ':']);
      expect(p.makeWrapperArgs[3]).toMatch(/openssh\S*mbuffer\S*pv\S*zstd/);
      expect(p.doInstallCheck).toBe(true);
      expect(p.installCheckPhase).toContain('$out/bin/hozo --help >/dev/null');
      expect(p.installCheckPhase).toContain('$out/bin/hozo-agent --help >/dev/null');
      // The man pages npm run build writes (src/man) go to share/man.
      expect(p.postInstall).toMatch(/installManPage \$out\/lib\/node_modules\/hozo\/dist\/man\/\*/);
      // No install scripts (an optional native build would fail npm rebuild in the sandbox).
      expect(p.npmRebuildFlags).toEqual(['--ignore-scripts']);
    });

    it('reads the lock from its own source (importNpmLock), or fetches it by npmDepsHash where import-from-derivation is not allowed', () => {
      const p = ev.package;
      // The source is a fileset (lib.fileset.toSource), which this nix (2.8, no builtins.readFileType) cannot force:
      // read the call instead. importNpmLock reads package.json and the lock from that source, not the checkout.
      expect(readFileSync(join(repo, 'nix/package.nix'), 'utf8')).toMatch(/importNpmLock \{ npmRoot = src; \}/);
      expect(p.usesConfigHook).toBe(true);
      expect(p.hashed).toEqual({ npmDepsHash: expect.stringMatching(/^sha256-/), npmDeps: false, npmConfigHook: false });
    });

    it('builds from a source that holds every file the build script runs', () => {
      const pkg = JSON.parse(readFileSync(join(repo, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
      const roots = ev.package.sourceRoots;
      const inSource = (f: string) => roots.some((r) => f === r || f.startsWith(`${r}/`));
      expect(inSource('tsconfig.json')).toBe(true);
      // `node <file>` of the build script: files of the repository (dist/ is what tsc writes first).
      const run = [...pkg.scripts['build']!.matchAll(/node (\S+)/g)].map((m) => m[1]!).filter((f) => !f.startsWith('dist/'));
      expect(run).toEqual(['scripts/bundle.mjs']);
      for (const f of run) expect(inSource(f), `${f} is not in nix/package.nix's fileset`).toBe(true);
      expect(inSource('src/man/build.ts')).toBe(true);
      expect(inSource('bench/run.mjs')).toBe(false);
    });
  });
});

describe.skipIf(!NIXPKGS_LIB)('stubs have the real types (tests/nix/stubs.nix against nixos-25.11)', () => {
  /**
   * Evaluates `expr` over `config` (and `failed`, the messages of its failed assertions): the stubs with `modules` (a
   * Nix list body), set up as tests/nix/eval.nix does it (with its host ID unless `hostId` is false).
   */
  const evalStubbed = (modules: string, expr: string, opts: { hostId?: boolean; hozo?: boolean } = {}) => {
    const file = (p: string) => `(/. + ${JSON.stringify(join(repo, p))})`;
    const nix = `{ nixpkgsLib }:
      let
        lib = import (if builtins.pathExists "\${nixpkgsLib}/lib/default.nix" then "\${nixpkgsLib}/lib" else nixpkgsLib);
        stubs = import ${file('tests/nix/stubs.nix')} { inherit lib; };
        examples = import ${file('tests/nix/examples.nix')};
        config = (lib.evalModules {
          modules = [ stubs.module { _module.args.pkgs = stubs.pkgs; } ]
            ++ lib.optional ${opts.hostId ?? true} { networking.hostId = "8425e349"; }
            ++ lib.optionals ${opts.hozo ?? false} [ ${file('modules/controller.nix')} ${file('modules/agent.nix')} ]
            ++ [ ${modules} ];
        }).config;
        failed = map (a: a.message) (lib.filter (a: !a.assertion) config.assertions);
      in ${expr}`;
    const r = spawnSync('nix-instantiate', ['--eval', '--strict', '--json', '--expr', nix, '--argstr', 'nixpkgsLib', NIXPKGS_LIB!], {
      encoding: 'utf8',
      timeout: 60_000,
    });
    return { ok: r.status === 0, value: r.status === 0 ? (JSON.parse(r.stdout) as any) : undefined, stderr: r.stderr };
  };
  const refused = (r: { ok: boolean; stderr: string }, why: RegExp) => {
    expect(r.ok).toBe(false);
    expect(r.stderr).toMatch(why);
  };
  const unit = (body: string) => `{ systemd.services.x = { ${body} }; }`;

  it('refuses a Restart= or Type= systemd does not know, also under mkDefault (checkUnitConfig)', () => {
    refused(
      evalStubbed(unit('serviceConfig.Restart = "sometimes";'), 'config.systemd.services.x.serviceConfig'),
      /Systemd Service field `Restart' cannot have value `sometimes'/,
    );
    refused(
      evalStubbed(unit('serviceConfig.Type = "oneshoot";'), 'config.systemd.services.x.serviceConfig'),
      /Systemd Service field `Type' cannot have value `oneshoot'/,
    );
    refused(
      evalStubbed(`({ lib, ... }: ${unit('serviceConfig.Restart = lib.mkDefault "sometimes";')})`, 'config.systemd.services.x.serviceConfig'),
      /trace: Systemd Service field `Restart' cannot have value `sometimes'\.[\s\S]*serviceConfig' is not of type `attribute set of \(systemd option\)'/,
    );
    const ok = evalStubbed(unit('serviceConfig = { Type = "notify-reload"; Restart = "on-failure"; };'), 'config.systemd.services.x.serviceConfig');
    expect(ok.value).toEqual({ Type: 'notify-reload', Restart: 'on-failure' });
  });

  it('takes only unit names in after/wants/bindsTo/wantedBy', () => {
    for (const list of ['after', 'wants', 'bindsTo', 'wantedBy']) {
      refused(
        evalStubbed(unit(`${list} = [ "network-online" ];`), `config.systemd.services.x.${list}`),
        new RegExp(
          `option \`systemd\\.services\\.x\\.${list}\\."\\[definition 1-entry 1\\]"' is not of type \`string matching the pattern [^']*\\(service\\|socket\\|device`,
        ),
      );
    }
    const ok = evalStubbed(
      unit('after = [ "network-online.target" "sys-subsystem-net-devices-lan\\\\x2duplink.device" ];'),
      '{ inherit (config.systemd.services.x) after unitConfig; }',
    );
    expect(ok.value.after).toEqual(['network-online.target', 'sys-subsystem-net-devices-lan\\x2duplink.device']);
    expect(ok.value.unitConfig).toEqual({ After: 'network-online.target sys-subsystem-net-devices-lan\\x2duplink.device' });
  });

  it('merges a unit option given as a string and as a list into the list (nixpkgs since 24.05), and equal scalars only', () => {
    const merged = evalStubbed(
      `${unit('serviceConfig.ExecStartPre = "/bin/a";')} ${unit('serviceConfig.ExecStartPre = [ "/bin/b" ];')}`,
      'config.systemd.services.x.serviceConfig',
    );
    expect(merged.value).toEqual({ ExecStartPre: ['/bin/a', '/bin/b'] });
    refused(
      evalStubbed(`${unit('serviceConfig.User = "a";')} ${unit('serviceConfig.User = "b";')}`, 'config.systemd.services.x.serviceConfig'),
      /conflicting definition values/,
    );
    // `script` is ExecStart=: a unit cannot have both.
    refused(
      evalStubbed(unit('script = "true"; serviceConfig.ExecStart = "/bin/true";'), 'config.systemd.services.x.serviceConfig'),
      /conflicting definition values/,
    );
  });

  it('takes strings, paths, packages or null as environment values, not numbers or lists', () => {
    refused(
      evalStubbed(unit('environment.RETRIES = 3;'), 'config.systemd.services.x.environment'),
      /environment\.RETRIES' is not of type `null or string or absolute path or package'/,
    );
    refused(evalStubbed(unit('environment.PATHS = [ "/a" ];'), 'config.systemd.services.x.environment'), /is not of type/);
    const ok = evalStubbed(
      `({ pkgs, ... }: ${unit('environment = { A = "1"; B = "/run/x"; C = pkgs.zstd; D = null; };')})`,
      'config.systemd.services.x.environment',
    );
    expect(ok.value).toEqual({ A: '1', B: '/run/x', C: expect.stringMatching(/^\/nix\/store\/\S+-zstd$/), D: null });
  });

  it('has no default for startLimitBurst/startLimitIntervalSec: unset they are absent, set they become StartLimit*=', () => {
    refused(evalStubbed(unit('description = "x";'), 'config.systemd.services.x.startLimitBurst'), /startLimitBurst' was accessed but has no value defined/);
    const set = evalStubbed(unit('startLimitBurst = 3; startLimitIntervalSec = 60;'), 'config.systemd.services.x.unitConfig');
    expect(set.value).toEqual({ StartLimitBurst: '3', StartLimitIntervalSec: '60' });
    refused(evalStubbed(unit('startLimitBurst = "3";'), 'config.systemd.services.x.startLimitBurst'), /is not of type `signed integer'/);
    refused(
      evalStubbed(unit('description = "two\\nlines";'), 'config.systemd.services.x.description'),
      /is not of type `\(optionally newline-terminated\) single-line string'/,
    );
  });

  it('refuses a known host with neither (or both) of publicKey and publicKeyFile, and names the host by default', () => {
    const r = evalStubbed(
      '{ programs.ssh.knownHosts = { neither.hostNames = [ "a.lan" ]; both = { publicKey = "ssh-ed25519 AAAA"; publicKeyFile = /tmp/k.pub; }; plain.publicKey = "ssh-ed25519 AAAA"; }; }',
      '{ inherit failed; plain = config.programs.ssh.knownHosts.plain; }',
    );
    expect(r.value.failed).toEqual([
      'knownHost both must contain either a publicKey or publicKeyFile',
      'knownHost neither must contain either a publicKey or publicKeyFile',
    ]);
    expect(r.value.plain).toEqual({ hostNames: ['plain'], extraHostNames: [], publicKey: 'ssh-ed25519 AAAA', publicKeyFile: null, certAuthority: false });
  });

  it('merges logrotate sections freeform (own directives beside the typed options) and types the directives', () => {
    const r = evalStubbed(
      '{ services.logrotate.settings.hozo = { files = [ "/var/log/hozo/hozo.log" ]; dateext = true; maxsize = "10M"; }; } { services.logrotate.settings.hozo.rotate = 3; }',
      '{ inherit (config.services.logrotate) enable settings; }',
    );
    expect(r.value).toEqual({
      enable: true,
      settings: {
        hozo: { files: ['/var/log/hozo/hozo.log'], dateext: true, maxsize: '10M', rotate: 3, enable: true, frequency: null, global: false, priority: 1000 },
      },
    });
    refused(
      evalStubbed('{ services.logrotate.settings.hozo.olddir = [ "/a" ]; }', 'config.services.logrotate.settings'),
      /settings\.hozo\.olddir' is not of type `null or signed integer or boolean or string'/,
    );
    expect(evalStubbed('{ services.logrotate.settings."/var/log/x.log" = { }; }', 'config.services.logrotate.settings').value['/var/log/x.log'].files).toBe(
      '/var/log/x.log',
    );
  });

  it('refuses a sanoid use_template (or useTemplate) of an unknown template, and negative retention counts', () => {
    const tmpl = 'services.sanoid.templates.hourly-only = { hourly = 24; autosnap = true; };';
    refused(
      evalStubbed(`{ ${tmpl} services.sanoid.datasets."tank/x".use_template = [ "nope" ]; }`, 'config.services.sanoid.datasets'),
      /is not of type `configured template name'/,
    );
    refused(
      evalStubbed(`{ ${tmpl} services.sanoid.datasets."tank/x".useTemplate = [ "nope" ]; }`, 'config.services.sanoid.datasets'),
      /is not of type `configured template name'/,
    );
    refused(
      evalStubbed('{ services.sanoid.templates.t.daily = -1; }', 'config.services.sanoid.templates'),
      /is not of type `null or \(unsigned integer, meaning >=0\)'/,
    );
    refused(
      evalStubbed('{ services.sanoid.datasets."tank/x".recursive = "yes"; }', 'config.services.sanoid.datasets'),
      /is not of type `boolean or value "zfs"/,
    );
    const ok = evalStubbed(
      `{ ${tmpl} services.sanoid.datasets."tank/x" = { useTemplate = [ "hourly-only" ]; frequent_period = 5; }; }`,
      'config.services.sanoid.datasets."tank/x"',
    );
    expect(ok.value).toMatchObject({ use_template: ['hourly-only'], frequent_period: 5, recursive: false, process_children_only: false, hourly: null });
  });

  it('checks users as NixOS does: name length and characters, existing group, one of isSystemUser/isNormalUser', () => {
    refused(
      evalStubbed('{ users.users.a-name-of-more-than-thirty-one-chars = { isSystemUser = true; group = "g"; }; users.groups.g = { }; }', 'config.users.users'),
      /Username 'a-name-of-more-than-thirty-one-chars' is longer than 31 characters/,
    );
    refused(
      evalStubbed('{ users.users.u = { isSystemUser = true; group = "g"; description = "a:b"; }; }', 'config.users.users'),
      /is not of type `string, not containing newlines or colons'/,
    );
    const r = evalStubbed(
      '{ users.users.u = { isSystemUser = true; isNormalUser = true; group = "nogroup-here"; }; users.users."b@d" = { isSystemUser = true; group = "g"; }; users.groups.g = { }; }',
      'failed',
    );
    expect(r.value).toEqual([
      'The username "b@d" is not valid, it does not match the regex "[a-zA-Z0-9_.][a-zA-Z0-9_.-]*".',
      'Exactly one of users.users.u.isSystemUser and users.users.u.isNormalUser must be set.',
      'The following users have a primary group that is undefined: u',
    ]);
    expect(evalStubbed('{ users.users.s = { isSystemUser = true; }; }', 'failed').value).toContain('users.users.s.group is unset.');
  });

  it('takes a path as environment.etc.<name>.source (or text, written to one)', () => {
    refused(evalStubbed('{ environment.etc."hozo/x.json".source = "relative/x.json"; }', 'config.environment.etc'), /is not of type `absolute path'/);
    const r = evalStubbed('{ environment.etc."hozo/x.json".text = "{}"; }', 'config.environment.etc."hozo/x.json"');
    expect(r.value).toMatchObject({ target: 'hozo/x.json', mode: 'symlink', user: '+0', group: '+0', enable: true });
    expect(r.value.source).toMatch(/^\/nix\/store\/\S+-etc-hozo-x\.json$/);
  });

  it('makes tmpfiles entries a submodule: defaults filled in, unknown fields refused', () => {
    const r = evalStubbed('{ systemd.tmpfiles.settings."10-x"."/var/lib/x".d.mode = "0750"; }', 'config.systemd.tmpfiles.settings');
    expect(r.value).toEqual({ '10-x': { '/var/lib/x': { d: { type: 'd', mode: '0750', user: '-', group: '-', age: '-', argument: '' } } } });
    refused(
      evalStubbed('{ systemd.tmpfiles.settings."10-x"."/var/lib/x".d.owner = "hozo"; }', 'config.systemd.tmpfiles.settings'),
      /The option `systemd\.tmpfiles\.settings\."10-x"\."\/var\/lib\/x"\.d\.owner' does not exist/,
    );
  });

  it('needs networking.hostId (8 hex digits) with ZFS, and checks networking.interfaces', () => {
    expect(evalStubbed('{ boot.supportedFilesystems = [ "zfs" ]; }', 'failed', { hostId: false }).value).toEqual(['ZFS requires networking.hostId to be set']);
    expect(evalStubbed('{ boot.supportedFilesystems = [ "zfs" ]; networking.hostId = "nothex!!"; }', 'failed', { hostId: false }).value).toEqual([
      'Invalid value given to the networking.hostId option.',
    ]);
    expect(evalStubbed('{ boot.zfs.extraPools = [ "" ]; boot.supportedFilesystems = [ "zfs" ]; }', 'failed').value).toEqual([
      "Automatic pool detection found an empty pool name, which can't be used.",
    ]);
    refused(evalStubbed('{ boot.zfs.enabled = true; }', 'config.boot.zfs.enabled'), /read-only/);
    const nic = evalStubbed(
      '{ networking.interfaces.an-interface-name-too-long.wakeOnLan.enable = true; }',
      '{ inherit failed; i = config.networking.interfaces.an-interface-name-too-long; }',
    );
    expect(nic.value.failed).toEqual([expect.stringMatching(/networking\.interfaces\."an-interface-name-too-long" is too long/)]);
    expect(nic.value.i).toMatchObject({
      name: 'an-interface-name-too-long',
      wakeOnLan: { enable: true, policy: ['magic'] },
      useDHCP: null,
      tempAddress: 'default',
    });
    refused(
      evalStubbed('{ networking.interfaces.eth0.wakeOnLan.policy = [ "always" ]; }', 'config.networking.interfaces'),
      /wakeOnLan\.policy\."\[definition 1-entry 1\]"' is not of type `one of "phy", "unicast"/,
    );
  });

  it('declares node-exporter with its real options and defaults', () => {
    const r = evalStubbed('{ services.prometheus.exporters.node = { enable = true; openFirewall = true; }; }', 'config.services.prometheus.exporters.node');
    expect(r.value).toMatchObject({ enable: true, port: 9100, listenAddress: '0.0.0.0', extraFlags: [], enabledCollectors: [], user: 'node-exporter' });
    expect(r.value.firewallFilter).toBe('-p tcp -m tcp --dport 9100');
    refused(
      evalStubbed('{ services.prometheus.exporters.node.port = 70000; }', 'config.services.prometheus.exporters.node'),
      /is not of type `16 bit unsigned integer/,
    );
  });

  it("refuses a wrong Restart= in a job's `service` through the controller module, as NixOS would", () => {
    refused(
      evalStubbed(
        'examples.controller { services.hozo.controller.jobs.weekly.service.serviceConfig.Restart = "sometimes"; }',
        'config.systemd.services.hozo-weekly.serviceConfig',
        {
          hozo: true,
        },
      ),
      /Systemd Service field `Restart' cannot have value `sometimes'/,
    );
  });
});
