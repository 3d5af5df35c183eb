// The agent's protocol parser (agent/command.ts) and config schema: what is accepted, exactly, and that everything
// else is refused before anything runs.
import { describe, expect, it } from 'vitest';
import { parseCommand, tokenize, MAX_COMMAND_LENGTH, type CommandPolicy, type Request } from '../../agent/command.js';
import { validateAgentConfig } from '../../agent/config.js';

const policy: CommandPolicy = { roots: ['backup/kraken', 'tank2/hozo'], allowRollback: false, maxLeaseSeconds: 3600 };

function ok(cmd: string, p: CommandPolicy = policy): Request {
  const r = parseCommand(cmd, p);
  if (!r.ok) throw new Error(`expected "${cmd}" to be accepted, got: ${r.reason}`);
  return r.request;
}

function refused(cmd: string | undefined, p: CommandPolicy = policy): string {
  const r = parseCommand(cmd, p);
  if (r.ok) throw new Error(`expected ${JSON.stringify(cmd)} to be refused, got ${JSON.stringify(r.request)}`);
  return r.reason;
}

describe('accepted requests', () => {
  it('parses the argument-less verbs', () => {
    for (const v of ['version', 'capabilities', 'status', 'prepare', 'shutdown'] as const) expect(ok(v)).toEqual({ verb: v });
    expect(ok('  status  ')).toEqual({ verb: 'status' });
  });

  it('list: datasets within the roots (the root itself, children), or none for all roots', () => {
    expect(ok('list')).toEqual({ verb: 'list', datasets: [] });
    expect(ok('list backup/kraken tank2/hozo/a/b:c.d-e_f')).toEqual({ verb: 'list', datasets: ['backup/kraken', 'tank2/hozo/a/b:c.d-e_f'] });
  });

  it('receive: allowed flags in any order, -F only with allowRollback', () => {
    expect(ok('receive backup/kraken/home')).toEqual({
      verb: 'receive',
      dataset: 'backup/kraken/home',
      force: false,
      resumable: false,
      zstd: false,
      mbuffer: false,
      volume: false,
    });
    expect(ok('receive -s -u backup/kraken/a/b')).toEqual({
      verb: 'receive',
      dataset: 'backup/kraken/a/b',
      force: false,
      resumable: true,
      zstd: false,
      mbuffer: false,
      volume: false,
    });
    expect(ok('receive --volume backup/kraken/vm')).toMatchObject({ volume: true });
    expect(refused('receive --volume --volume backup/kraken/vm')).toMatch(/twice/);
    // Property overrides are the box's own: a controller cannot pass -o or -x.
    expect(refused('receive -o mountpoint=/root backup/kraken/a')).toMatch(/not allowed/);
    expect(ok('receive --zstd --mbuffer backup/kraken/a')).toMatchObject({ zstd: true, mbuffer: true });
    expect(refused('receive --zstd --zstd backup/kraken/a')).toMatch(/twice/);
    expect(refused('receive --zstd=19 backup/kraken/a')).toMatch(/not allowed/);
    expect(refused('receive -F backup/kraken/home')).toMatch(/allowRollback/);
    expect(ok('receive -u -F backup/kraken/home', { ...policy, allowRollback: true })).toMatchObject({ force: true });
  });

  it('appendOnly: nothing a request destroys (receive -F, prune, abort-receive), even with allowRollback', () => {
    const ao = { ...policy, allowRollback: true, appendOnly: true };
    expect(refused('receive -F backup/kraken/home', ao)).toMatch(/append-only/);
    expect(refused('prune', ao)).toMatch(/append-only/);
    expect(refused('abort-receive backup/kraken/home', ao)).toMatch(/append-only/);
    expect(ok('prune --dry-run', ao)).toEqual({ verb: 'prune', dryRun: true });
    expect(ok('receive -u -s backup/kraken/home', ao)).toMatchObject({ verb: 'receive', force: false });
  });

  it('abort-receive: one dataset strictly below a root, no options', () => {
    expect(ok('abort-receive backup/kraken/home')).toEqual({ verb: 'abort-receive', dataset: 'backup/kraken/home' });
    expect(refused('abort-receive')).toMatch(/needs a dataset/);
    expect(refused('abort-receive backup/kraken')).toMatch(/backup root itself/);
    expect(refused('abort-receive backup/other/x')).toMatch(/outside the backup roots/);
    expect(refused('abort-receive -A backup/kraken/home')).toMatch(/no options/);
    expect(refused('abort-receive backup/kraken/a backup/kraken/b')).toMatch(/unexpected argument/);
    expect(refused('abort-receive backup/kraken/a@snap')).toMatch(/not a snapshot/);
  });

  it('send: full, incremental with -i/-I (full or @short base), stream flags', () => {
    expect(ok('send backup/kraken/home@s2')).toMatchObject({ verb: 'send', snapshot: 'backup/kraken/home@s2', intermediates: false });
    expect(ok('send -i backup/kraken/home@s1 backup/kraken/home@s2')).toMatchObject({ from: 'backup/kraken/home@s1', intermediates: false });
    expect(ok('send -L -c -I @s1 backup/kraken/home@s3')).toMatchObject({
      from: 'backup/kraken/home@s1',
      intermediates: true,
      flags: { largeBlock: true, compressed: true, embedded: false, raw: false, props: false },
      zstd: false,
    });
    expect(ok('send --zstd --mbuffer backup/kraken/home@s2')).toMatchObject({ zstd: true, mbuffer: true });
  });

  it('hold/release: lease ids and bounded ttl', () => {
    expect(ok('hold nightly@kraken 600')).toEqual({ verb: 'hold', id: 'nightly@kraken', ttlSeconds: 600 });
    expect(ok('hold a 3600')).toEqual({ verb: 'hold', id: 'a', ttlSeconds: 3600 });
    expect(refused('hold a 3601')).toMatch(/1\.\.3600/);
    expect(ok('release nightly@kraken')).toEqual({ verb: 'release', id: 'nightly@kraken' });
  });

  it('prune with and without --dry-run', () => {
    expect(ok('prune')).toEqual({ verb: 'prune', dryRun: false });
    expect(ok('prune --dry-run')).toEqual({ verb: 'prune', dryRun: true });
  });
});

describe('refusal messages say why', () => {
  it('names the offending character, the roots, or the usage', () => {
    expect(refused('list backup/kraken; id')).toMatch(/contains ";".*no shell/);
    expect(refused('receive backup/other/x')).toMatch(/outside the backup roots \(backup\/kraken, tank2\/hozo\)/);
    expect(refused('zfs destroy x')).toMatch(/unknown verb "zfs" \(allowed: .*receive/);
    expect(refused('receive -x foo backup/kraken/a')).toMatch(/usage: receive \[-u\] \[-F\] \[-s\] \[--zstd\] \[--mbuffer\] \[--volume\] <dataset>/);
    expect(refused(undefined)).toMatch(/SSH_ORIGINAL_COMMAND is not set/);
    expect(refused('x'.repeat(MAX_COMMAND_LENGTH + 1))).toMatch(/too long/);
  });

  it('tokenizes on spaces only', () => {
    expect(tokenize('a  b c')).toEqual(['a', 'b', 'c']);
    expect(() => tokenize('a\tb')).toThrow(/contains "\\t"/);
  });
});

describe('agent config', () => {
  const minimal = { roots: ['backup/kraken'] };

  it('fills the documented defaults; pools default to the pools of the roots', () => {
    const c = validateAgentConfig({ roots: ['backup/kraken', 'backup/other', 'tank/x'] });
    expect(c).toMatchObject({
      retention: { daily: 7, weekly: 4, monthly: 6, hourly: 0, yearly: 0 },
      idlePoweroffMinutes: 30,
      poweroffCommand: ['systemctl', 'start', 'hozo-poweroff.service'],
      leaseDirectory: '/var/lib/hozo-agent/leases',
      stateDirectory: '/var/lib/hozo-agent',
      pools: ['backup', 'tank'],
      allowRollback: false,
      exportOnShutdown: true,
      poweroffDelaySeconds: 3,
      logFile: '/var/lib/hozo-agent/agent.log',
    });
  });

  it('accepts what the NixOS module renders (idle guard off = null, --no-block in the command)', () => {
    const c = validateAgentConfig({
      roots: ['backup/hozo'],
      idlePoweroffMinutes: null,
      poweroffCommand: ['/run/current-system/sw/bin/systemctl', 'start', '--no-block', 'hozo-poweroff.service'],
      leaseDirectory: '/var/lib/hozo-agent/leases',
      retention: { daily: 7, weekly: 4, monthly: 6 },
    });
    expect(c.idlePoweroffMinutes).toBeNull();
    expect(c.pools).toEqual(['backup']);
  });

  it('names the path of every problem', () => {
    expect(() => validateAgentConfig({})).toThrow(/roots/);
    expect(() => validateAgentConfig({ ...minimal, roots: ['backup/../x'] })).toThrow(/roots\[0\]: not a valid ZFS dataset name/);
    expect(() => validateAgentConfig({ ...minimal, pools: ['a/b'] })).toThrow(/pools\[0\]: not a valid pool name/);
    expect(() => validateAgentConfig({ ...minimal, leaseDirectory: 'leases' })).toThrow(/leaseDirectory: expected an absolute path/);
    expect(() => validateAgentConfig({ ...minimal, poweroffCommand: [] })).toThrow(/poweroffCommand/);
    expect(() => validateAgentConfig({ ...minimal, retention: { daily: -1 } })).toThrow(/retention\.daily/);
    expect(() => validateAgentConfig({ ...minimal, typo: 1 })).toThrow(/typo/);
  });
});
