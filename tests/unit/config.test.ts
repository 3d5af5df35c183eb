import { describe, expect, it } from 'vitest';
import { parseConfigText, validateConfig } from '../../src/config/load.js';
import { parseDuration } from '../../src/config/duration.js';
import { HozoError } from '../../src/errors.js';

const good = {
  hosts: {
    offsite: {
      address: '10.77.0.2',
      port: 22,
      user: 'root',
      sshKeyFile: '/run/secrets/hozo-ssh-key',
      knownHostsFile: '/etc/hozo/known_hosts',
      wake: { mac: '52:54:00:7a:0b:01', address: '10.77.0.255', port: 9 },
      readyTimeout: '5m',
      shutdown: 'agent',
    },
  },
  jobs: [
    {
      name: 'nightly',
      host: 'offsite',
      datasets: [{ source: 'tank/services', target: 'backup/kraken/services', recursive: true, exclude: ['tank/services/cache'] }],
      snapshots: 'all',
      schedule: '*-*-* 04:00:00',
      shutdownAfter: true,
      retries: 3,
      retryDelay: 60,
    },
  ],
};

/** The message lines of a config error, or [] when valid. */
function problems(data: unknown): string[] {
  try {
    validateConfig(data, 'test.yaml');
    return [];
  } catch (e) {
    expect(e).toBeInstanceOf(HozoError);
    expect((e as HozoError).code).toBe('CONFIG_INVALID');
    return (e as HozoError).message.split('\n').slice(1).map((l) => l.trim());
  }
}

function withJob(patch: Record<string, unknown>, ds?: Record<string, unknown>) {
  const job = { ...good.jobs[0]!, ...patch, ...(ds ? { datasets: [{ ...good.jobs[0]!.datasets[0]!, ...ds }] } : {}) };
  return { ...good, jobs: [job] };
}

describe('config', () => {
  it('accepts the documented example and fills defaults', () => {
    const c = validateConfig(good);
    expect(c.hosts['offsite']!.readyTimeout).toBe(300);
    expect(c.stateDirectory).toBe('/var/lib/hozo');
    expect(c.jobs[0]!.rollback).toBe(false);
    expect(c.jobs[0]!.buffer).toBe('auto');
    expect(c.jobs[0]!.bufferSize).toBe('128M');
  });

  it('parses YAML', () => {
    const c = parseConfigText('hosts: {}\njobs:\n  - name: local1\n    host: local\n    datasets:\n      - { source: tank/a, target: backup/a }\n', 'x.yaml');
    expect(c.jobs[0]!.datasets[0]!.recursive).toBe(false);
  });

  it.each([
    ['shell metacharacters in a source', withJob({}, { source: 'tank/x;rm -rf /' }), 'jobs[0].datasets[0].source: not a valid ZFS dataset name'],
    ['command substitution in a target', withJob({}, { target: 'backup/$(id)' }), 'jobs[0].datasets[0].target: not a valid ZFS dataset name'],
    ['a snapshot as source', withJob({}, { source: 'tank/a@snap' }), 'jobs[0].datasets[0].source: not a valid ZFS dataset name'],
    ['empty component', withJob({}, { target: 'backup//x' }), 'jobs[0].datasets[0].target'],
    ['leading slash', withJob({}, { source: '/tank' }), 'jobs[0].datasets[0].source'],
    ['exclude outside source', withJob({}, { exclude: ['other/x'] }), 'jobs[0].datasets[0].exclude[0]: "other/x" is not below source'],
    ['unknown host', withJob({ host: 'nowhere' }), 'jobs[0].host: unknown host "nowhere"'],
    ['bad snapshots mode', withJob({ snapshots: 'some' }), 'jobs[0].snapshots'],
    ['negative retries', withJob({ retries: -1 }), 'jobs[0].retries'],
    ['bad retryDelay', withJob({ retryDelay: 'soon' }), 'jobs[0].retryDelay: expected retryDelay as seconds or a duration'],
    ['job name with a space', withJob({ name: 'my job' }), 'jobs[0].name'],
    ['no datasets', withJob({ datasets: [] }), 'jobs[0].datasets: expected at least one dataset'],
    ['unknown key', withJob({ sheduel: 'daily' }), 'jobs[0]'],
    ['bufferSize with a shell word', withJob({ bufferSize: '128M; reboot' }), 'jobs[0].bufferSize: expected a size like "32M"'],
    ['bufferSize in kB', withJob({ bufferSize: '512k' }), 'jobs[0].bufferSize'],
    ['bufferSize as a number', withJob({ bufferSize: 128 }), 'jobs[0].bufferSize'],
    ['bufferSize 0M', withJob({ bufferSize: '0M' }), 'jobs[0].bufferSize'],
  ])('rejects %s', (_what, data, expected) => {
    const p = problems(data);
    expect(p.join('\n')).toContain(expected);
  });

  it.each([
    ['malformed MAC', { wake: { mac: '52:54:00:7a:0b' } }, 'hosts.offsite.wake.mac: expected a MAC address'],
    ['MAC with junk', { wake: { mac: '52:54:00:7a:0b:zz' } }, 'hosts.offsite.wake.mac'],
    ['relative key path', { sshKeyFile: 'id_ed25519' }, 'hosts.offsite.sshKeyFile: expected an absolute path'],
    ['port out of range', { port: 70000 }, 'hosts.offsite.port'],
    ['disabled host key checking', { sshOptions: ['StrictHostKeyChecking=no'] }, 'host key checking cannot be disabled'],
    ['known hosts to /dev/null', { sshOptions: ['UserKnownHostsFile=/dev/null'] }, 'host key checking cannot be disabled'],
    ['accept-new host keys', { sshOptions: ['StrictHostKeyChecking=accept-new'] }, 'host key checking cannot be disabled'],
    ['another known-hosts file', { sshOptions: ['UserKnownHostsFile=/tmp/planted'] }, 'host key checking cannot be disabled or moved'],
    ['ProxyCommand', { sshOptions: ['ProxyCommand=/tmp/x.sh'] }, 'ssh option "ProxyCommand" is not allowed'],
    ['KnownHostsCommand', { sshOptions: ['KnownHostsCommand=/tmp/x.sh'] }, 'ssh option "KnownHostsCommand" is not allowed'],
    ['LocalCommand', { sshOptions: ['LocalCommand=id'] }, 'ssh option "LocalCommand" is not allowed'],
    ['PermitLocalCommand', { sshOptions: ['permitlocalcommand=yes'] }, 'ssh option "permitlocalcommand" is not allowed'],
    ['a shared ControlPath', { sshOptions: ['ControlPath=/tmp/shared'] }, 'ssh option "ControlPath" is not allowed'],
    ['PKCS11Provider', { sshOptions: ['PKCS11Provider=/tmp/evil.so'] }, 'ssh option "PKCS11Provider" is not allowed'],
    ['RemoteCommand', { sshOptions: ['RemoteCommand=zfs destroy'] }, 'hosts.offsite.sshOptions[0]'],
    ['SetEnv', { sshOptions: ['SetEnv=LD_PRELOAD=/tmp/x'] }, 'ssh option "SetEnv" is not allowed'],
    ['ProxyJump (a jump host is `via`)', { sshOptions: ['ProxyJump=relay@203.0.113.7'] }, 'a jump host is the host field `via`'],
    ['a via address with shell', { via: { address: 'relay;id' } }, 'hosts.offsite.via.address'],
    ['a via with unknown fields', { via: { address: 'relay', proxyCommand: '/tmp/x' } }, 'hosts.offsite.via'],
    ['bad readyTimeout', { readyTimeout: '5 minutes' }, 'hosts.offsite.readyTimeout'],
    ['address with shell', { address: 'box;id' }, 'hosts.offsite.address'],
    ['bad shutdown', { shutdown: 'poweroff' }, 'hosts.offsite.shutdown'],
  ])('rejects host with %s', (_what, patch, expected) => {
    const data = { ...good, hosts: { offsite: { ...good.hosts.offsite, ...patch } } };
    expect(problems(data).join('\n')).toContain(expected);
  });

  it('accepts the allowed ssh options (any case), among them StrictHostKeyChecking=yes', () => {
    const sshOptions = ['Ciphers=aes128-gcm@openssh.com', 'serveraliveinterval=5', 'StrictHostKeyChecking=yes', 'IPQoS=throughput'];
    const data = { ...good, hosts: { offsite: { ...good.hosts.offsite, sshOptions } } };
    expect(problems(data)).toEqual([]);
  });

  it('reports every problem at once, each with its path', () => {
    const data = withJob({ host: 'nowhere', retries: 'x' }, { source: 'bad name' });
    const p = problems(data);
    expect(p.length).toBeGreaterThanOrEqual(3);
    expect(p.every((l) => /^[a-zA-Z_.[\]0-9]+: /.test(l) || l.startsWith('(top level)'))).toBe(true);
  });

  it('rejects duplicate job names and duplicate targets', () => {
    const job = good.jobs[0]!;
    const p = problems({ ...good, jobs: [job, { ...job }] }).join('\n');
    expect(p).toContain('jobs[1].name: duplicate job name "nightly"');
    expect(p).toContain('jobs[1].datasets[0].target: target "backup/kraken/services" on host "offsite" is also the target of jobs[0].datasets[0]');
  });

  it('rejects a local target overlapping its source', () => {
    expect(problems(withJob({ host: 'local' }, { target: 'tank/services/copy' })).join('\n')).toContain('overlaps source');
  });

  it('names the file when it cannot be parsed', () => {
    expect(() => parseConfigText('{ not json', '/etc/hozo/config.json')).toThrow(/config\.json: cannot parse/);
  });
});

describe('parseDuration', () => {
  it.each([
    [60, 60], ['90', 90], ['30s', 30], ['5m', 300], ['1h30m', 5400], ['2d', 172800],
  ] as const)('%j → %d', (input, seconds) => expect(parseDuration(input)).toBe(seconds));
  it.each(['', 'soon', '5 m', '-1', '1x', 'm5'])('rejects %j', (input) => expect(parseDuration(input)).toBeUndefined());
});

describe('via: a jump host hozo builds the ProxyCommand for', () => {
  it('ssh -W through the jump host with the same strict checking, its own key and known_hosts (default: the box\'s)', async () => {
    const { baseSshOptions } = await import('../../src/transport/ssh.js');
    const host = validateConfig({
      hosts: { box: { address: '10.0.0.2', knownHostsFile: '/etc/hozo/known_hosts', via: { address: 'relay.example.org', port: 2222, user: 'jump', sshKeyFile: '/etc/hozo/jump_key' } } },
    }).hosts['box']!;
    const o = baseSshOptions(host);
    const proxy = o[o.indexOf('-o', o.findIndex((x) => x.startsWith('ProxyCommand=')) - 1) + 1]!;
    expect(proxy).toBe(
      "ProxyCommand=ssh -o BatchMode=yes -o StrictHostKeyChecking=yes -o LogLevel=ERROR -o ConnectTimeout=10 -o UserKnownHostsFile=/etc/hozo/known_hosts -o GlobalKnownHostsFile=/dev/null -i /etc/hozo/jump_key -o IdentitiesOnly=yes -p 2222 -l jump -W %h:%p relay.example.org",
    );
    // hozo's own options come before it and before the user's: ssh takes the first value of each.
    expect(o.indexOf('StrictHostKeyChecking=yes')).toBeLessThan(o.indexOf(proxy));
  });
});
