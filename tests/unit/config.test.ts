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
    return (e as HozoError).message
      .split('\n')
      .slice(1)
      .map((l) => l.trim());
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
    [60, 60],
    ['90', 90],
    ['30s', 30],
    ['5m', 300],
    ['1h30m', 5400],
    ['2d', 172800],
  ] as const)('%j → %d', (input, seconds) => expect(parseDuration(input)).toBe(seconds));
  it.each(['', 'soon', '5 m', '-1', '1x', 'm5'])('rejects %j', (input) => expect(parseDuration(input)).toBeUndefined());
});

describe('via: a jump host hozo builds the ProxyCommand for', () => {
  it("ssh -W through the jump host with the same strict checking, its own key and known_hosts (default: the box's)", async () => {
    const { baseSshOptions } = await import('../../src/transport/ssh.js');
    const host = validateConfig({
      hosts: {
        box: {
          address: '10.0.0.2',
          knownHostsFile: '/etc/hozo/known_hosts',
          via: { address: 'relay.example.org', port: 2222, user: 'jump', sshKeyFile: '/etc/hozo/jump_key' },
        },
      },
    }).hosts['box']!;
    const o = baseSshOptions(host);
    const proxy = o[o.indexOf('-o', o.findIndex((x) => x.startsWith('ProxyCommand=')) - 1) + 1]!;
    expect(proxy).toBe(
      'ProxyCommand=ssh -o BatchMode=yes -o StrictHostKeyChecking=yes -o LogLevel=ERROR -o ConnectTimeout=10 -o UserKnownHostsFile=/etc/hozo/known_hosts -o GlobalKnownHostsFile=/dev/null -i /etc/hozo/jump_key -o IdentitiesOnly=yes -p 2222 -l jump -W %h:%p relay.example.org',
    );
    // hozo's own options come before it and before the user's: ssh takes the first value of each.
    expect(o.indexOf('StrictHostKeyChecking=yes')).toBeLessThan(o.indexOf(proxy));
  });
});

// Issue 12's classes through the schema: one message per field, in hozo's words, naming the path; values escaped.
describe('config: bad values give one clear problem per field', () => {
  const host = (h: Record<string, unknown>) => ({ hosts: { b: { address: '10.0.0.2', ...h } } });
  const RAW = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/;
  it.each([
    ['an infinite port', host({ port: Infinity }), 'hosts.b.port: expected a finite number, got Infinity'],
    ['a NaN duration', host({ readyTimeout: NaN }), 'hosts.b.readyTimeout: expected a finite number, got NaN'],
    ['a huge port', host({ port: 1.2345678901234568e29 }), 'hosts.b.port: expected a number of at most 65535'],
    ['hosts as a list', { hosts: [] }, 'hosts: expected a mapping of names to entries (name: {…}), got a list'],
    [
      'a notify entry without type',
      { notify: [{ url: 'https://ntfy.sh/x' }] },
      'notify[0].type: missing (expected one of "ntfy", "pushover", "email", "webhook")',
    ],
    ['an email entry without to', { notify: [{ type: 'email' }] }, 'notify[0].to: missing (expected a string or a list)'],
    ['a number in a list of addresses', { notify: [{ type: 'email', to: [5, 'x'] }] }, 'notify[0].to[0]: expected a string, got number 5'],
    [
      'a hex number as address (YAML reads 0x10 as 16)',
      host({ address: 16 }),
      'hosts.b.address: expected a string, got number 16 (quote it to keep it as text)',
    ],
    ['an empty host', withJob({ host: '' }), 'jobs[0].host: must not be empty'],
    ['":::" as address', host({ address: ':::' }), 'hosts.b.address: ":::" is not an IPv6 address'],
    ['a port in the address', host({ address: '1.2.3.4:22' }), 'put the port in `port`'],
    ['an unbalanced bracket', host({ address: '[::1' }), 'unbalanced bracket'],
    ['a hex address', host({ address: '0x7f.1' }), 'hosts.b.address: "0x7f.1" is neither an IPv4 address'],
    [
      'a multicast wake address',
      host({ wake: { mac: '52:54:00:00:00:01', address: 'ff02::1' } }),
      'hosts.b.wake.address: "ff02::1" is an IPv6 multicast address',
    ],
    ['a v4 multicast wake address', host({ wake: { mac: '52:54:00:00:00:01', address: '224.0.0.1' } }), 'multicast address (224.0.0.0/4)'],
    [
      'a host name as wake address',
      host({ wake: { mac: '52:54:00:00:00:01', address: 'localhost' } }),
      'hosts.b.wake.address: "localhost" is a host name; expected an IP address',
    ],
    ['the broadcast MAC', host({ wake: { mac: 'ff:ff:ff:ff:ff:ff', address: '10.0.0.255' } }), 'hosts.b.wake.mac: ff:ff:ff:ff:ff:ff is the broadcast MAC'],
    ['the zero MAC', host({ wake: { mac: '00:00:00:00:00:00', address: '10.0.0.255' } }), 'is all zeros'],
    [
      'a huge notify timeout',
      { notify: [{ type: 'webhook', url: 'http://127.0.0.1:1/h', timeout: 1e308 }] },
      'notify[0].timeout: expected a timeout of 1 ms to 10 minutes',
    ],
    [
      'a sub-millisecond notify timeout',
      { notify: [{ type: 'webhook', url: 'http://127.0.0.1:1/h', timeout: 0.0001 }] },
      'notify[0].timeout: expected a timeout of 1 ms to 10 minutes',
    ],
    ['a leaseTtl under a minute', host({ shutdown: 'agent', leaseTtl: 0.4 }), 'hosts.b.leaseTtl: leaseTtl of 0.4 seconds is shorter than 60 s'],
    ['a leaseTtl over 30 days', host({ shutdown: 'agent', leaseTtl: '300d' }), 'hosts.b.leaseTtl: leaseTtl of 25920000 seconds is longer than 2592000 s'],
    ['readyTimeout 0', host({ readyTimeout: 0 }), 'hosts.b.readyTimeout: readyTimeout of 0 seconds is shorter than 1 s'],
    ['a NUL in wake.command', host({ wake: { method: 'command', command: ['a\u0000b'] } }), 'hosts.b.wake.command[0]: contains a NUL byte'],
    ['a NUL in shutdownCommand', host({ shutdown: 'ssh', shutdownCommand: ['x\u0000y'] }), 'hosts.b.shutdownCommand[0]: contains a NUL byte'],
    ['a NUL in a hook', withJob({ hooks: { preRun: ['a\u0000'] } }), 'jobs[0].hooks.preRun[0]: contains a NUL byte'],
    ['a NUL in a path', { stateDirectory: '/tmp/a\u0000b' }, 'stateDirectory: contains a NUL byte'],
    ['spaces around a URL', { notify: [{ type: 'ntfy', url: ' http://x/ ' }] }, 'notify[0].url: a URL with leading or trailing spaces is refused'],
    [
      'control characters in a URL',
      { notify: [{ type: 'ntfy', url: 'http://x/\u0007\u001b[31m' }] },
      'notify[0].url: a URL with spaces or control characters is refused',
    ],
    ['a 100 KB URL', host({ wake: { method: 'http', url: `http://x/${'a'.repeat(100_000)}` } }), 'hosts.b.wake.url: expected a URL of at most 2048 characters'],
    ['method none with a MAC', host({ wake: { method: 'none', mac: '52:54:00:00:00:01' } }), 'hosts.b.wake.mac: method "none" takes no mac'],
    ['method none with a command', host({ wake: { method: 'none', command: ['x'] } }), 'hosts.b.wake.command: method "none" takes no command'],
    ['a job name ending in "."', withJob({ name: 'a.' }), 'jobs[0].name: a job name must not end with "."'],
    ['a 97 GiB buffer', withJob({ bufferSize: '99999M' }), 'jobs[0].bufferSize: at most 16G'],
    ['a 33-character user', host({ user: 'u'.repeat(33) }), 'hosts.b.user: a user name is at most 32 characters'],
    ['HostKeyAlias (it picks another known_hosts entry)', host({ sshOptions: ['HostKeyAlias=other'] }), 'ssh option "HostKeyAlias" is not allowed'],
    ['a schedule that names no time', withJob({ schedule: '~~~~' }), 'jobs[0].schedule: expected a systemd calendar expression'],
    ['//proc', { stateDirectory: '//proc/1/x' }, 'stateDirectory: must not be under /proc, /sys or /dev'],
    ['.. into /proc', { metrics: { textfileDirectory: '/tmp/../proc/x' } }, 'metrics.textfileDirectory: a ".." component is refused'],
    ['/./proc', { logFile: '/./proc/x' }, 'logFile: must not be under /proc, /sys or /dev'],
  ])('%s', (_what, data, message) => {
    const ps = problems(data);
    expect(ps.join('\n')).toContain(message);
    const paths = ps.map((p) => p.slice(0, p.indexOf(': ')));
    expect(new Set(paths).size, ps.join('\n')).toBe(paths.length);
  });

  it('user values in messages are escaped: control characters, bidi overrides, lone surrogates', () => {
    const ps = problems({
      hosts: { b: { address: '10.0.0.2' } },
      jobs: [{ name: 'j', host: 'b\u202e\udfff\ud800\u001b[31m', datasets: [{ source: 'p/a', target: 'q/a' }] }],
    }).join('\n');
    expect(ps).toContain('jobs[0].host: unknown host "b\\u202e\\udfff\\ud800\\x1b[31m"');
    expect(ps).not.toMatch(RAW);
    expect(ps).not.toMatch(/[\ud800-\udfff]/);
    const ds = problems(withJob({}, { target: 'q/\u001b[2J' })).join('\n');
    expect(ds).toContain('"q/\\x1b[2J"');
    expect(ds).not.toMatch(RAW);
  });

  it('long lists are bounded: at most 50 problems, 10 unknown field names', () => {
    let e: HozoError | undefined;
    try {
      validateConfig({ jobs: Array.from({ length: 5000 }, () => ({ name: '-', host: 'x' })) }, 't.json');
    } catch (x) {
      e = x as HozoError;
    }
    const lines = e!.message.split('\n');
    expect(lines.length).toBe(52);
    expect(lines[51]).toBe('  … and 9950 more problems');
    const unknown = problems(Object.fromEntries(Array.from({ length: 20_000 }, (_, i) => [`k${i}`, 1])));
    expect(unknown).toEqual([
      '(top level): unknown fields "k0", "k1", "k2", "k3", "k4", "k5", "k6", "k7", "k8", "k9" and 19990 more (a typo? fields are case-sensitive)',
    ]);
  });

  it('the cross-checks are near-linear: 60,000 recursive datasets in a few seconds, and still find what is nested', () => {
    const datasets = Array.from({ length: 60_000 }, (_, i) => ({ source: `p/a${i}`, target: `q/a${i}`, recursive: true }));
    const t = Date.now();
    expect(problems({ jobs: [{ name: 'j', host: 'local', datasets }] })).toEqual([]);
    expect(Date.now() - t).toBeLessThan(8000);
    const nested = problems({ jobs: [{ name: 'j', host: 'local', datasets: [...datasets.slice(0, 1000), { source: 'p/z', target: 'q/a7/deeper/still' }] }] });
    expect(nested).toEqual([
      'jobs[0].datasets[1000].target: target "q/a7/deeper/still" is inside the recursive target "q/a7" of jobs[0].datasets[7] on host "local"',
    ]);
  });

  it('targets are compared per box: two host entries with one address and port are one pool (another user or key changes nothing)', () => {
    const hosts = {
      a: { address: 'Box.lan', user: 'hozo' },
      b: { address: 'box.lan', user: 'other', sshKeyFile: '/etc/hozo/k' },
      c: { address: 'box.lan', port: 2222 },
      d: { address: 'box.lan', via: { address: 'jump' } },
    };
    const job = (name: string, host: string, target: string, recursive = false) => ({ name, host, datasets: [{ source: `p/${name}`, target, recursive }] });
    expect(problems({ hosts, jobs: [job('j1', 'a', 'q/x'), job('j2', 'b', 'q/x')] })).toEqual([
      'jobs[1].datasets[0].target: target "q/x" on host "b" is also the target of jobs[0].datasets[0] (hosts "a" and "b" are the same box: one address and port)',
    ]);
    expect(problems({ hosts, jobs: [job('j1', 'a', 'q/x', true), job('j2', 'b', 'q/x/y')] })).toEqual([
      'jobs[1].datasets[0].target: target "q/x/y" is inside the recursive target "q/x" of jobs[0].datasets[0] on host "b" (hosts "a" and "b" are the same box: one address and port)',
    ]);
    // Another port, or the same address behind a jump host, may be another machine: not compared.
    expect(problems({ hosts, jobs: [job('j1', 'a', 'q/x', true), job('j2', 'c', 'q/x'), job('j3', 'd', 'q/x/y')] })).toEqual([]);
  });

  it('a local target that a job snapshots itself (snapshot.create on it or on a recursive source above it) is refused', () => {
    const snap = (source: string, recursive: boolean) => ({
      name: 'snap',
      host: 'local',
      snapshot: { create: true },
      datasets: [{ source, target: 'far/t', recursive }],
    });
    const copy = { name: 'copy', host: 'local', datasets: [{ source: 'other/x', target: 'tank/copy/x' }] };
    expect(problems({ jobs: [snap('tank', true), copy] })).toEqual([
      'jobs[1].datasets[0].target: target "tank/copy/x" is snapshotted by jobs[0] (snapshot.create on "tank", recursive): its snapshots there would make the target diverge from "other/x"',
    ]);
    expect(problems({ jobs: [snap('tank/copy/x', false), copy] })).toHaveLength(1);
    // Not recursive, or no snapshot.create: nothing is snapshotted below the source.
    expect(problems({ jobs: [snap('tank', false), copy] })).toEqual([]);
    expect(problems({ jobs: [{ ...snap('tank', true), snapshot: { create: false } }, copy] })).toEqual([]);
  });

  it('own snapshots: overlapping sources under one prefix are still found (same, above, below), across jobs only', () => {
    const job = (name: string, source: string, recursive: boolean, target: string) => ({
      name,
      host: 'local',
      snapshot: { create: true, prefix: 'p' },
      datasets: [{ source, target, recursive }],
    });
    expect(problems({ jobs: [job('a', 'tank/x', false, 'bk/1'), job('b', 'tank/x', false, 'bk/2')] })).toEqual([
      'jobs[1].snapshot.prefix: jobs[0] also snapshots "tank/x" with prefix "p": give each job its own prefix (each prunes only its own snapshots)',
    ]);
    expect(problems({ jobs: [job('a', 'tank', true, 'bk/1'), job('b', 'tank/x/y', false, 'bk/2')] })).toHaveLength(1);
    expect(problems({ jobs: [job('a', 'tank/x/y', false, 'bk/1'), job('b', 'tank', true, 'bk/2')] })).toHaveLength(1);
    expect(problems({ jobs: [job('a', 'tank/x/y', false, 'bk/1'), job('b', 'tank', false, 'bk/2')] })).toEqual([]);
  });
});
