// Every bad config input through the built CLI: a clear error with exit 2, a message that says where and what was
// expected, no stack trace, no hang, nothing written. Each class of the bad-input issue is a row: files that are not
// files (FIFO with no writer, /dev/zero, a directory, a symlink loop), sizes and encodings, deep nesting, built-in
// object property names, values that used to pass (limited broadcast, 999.1.1.1, 1e308, over-long names and
// paths, bad schedules, nested targets, a host named local, duplicate JSON keys). Run as this user and, when this is
// root, again as an unprivileged one (nobody).
import { execFileSync } from 'node:child_process';
import { execa } from 'execa';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { LIMITED_BROADCAST } from '../../src/config/addresses.js';
import { HOZO } from '../helpers/hozo.js';
import { expectOutput } from '../helpers/outputs.js';

const skip = existsSync(HOZO) ? undefined : `${HOZO} is missing: run \`npm run build\` first`;
if (skip !== undefined) console.warn(`SKIP: tests/integration/bad-input.test.ts: ${skip}`);

const dir = mkdtempSync(join(tmpdir(), 'hozo-badinput-'));
chmodSync(dir, 0o755);
const STATE = () => join(dir, 'state-never-created');
const job = (extra = '') => `jobs:\n  - name: j\n    host: local\n    datasets: [{source: p/a, target: q/a}]${extra}\n`;
const yaml = (body: string) => `stateDirectory: ${STATE()}\n${body}`;

interface Row {
  readonly what: string;
  /** File name (its extension picks the parser) and content, or a path made by `make`. */
  readonly file?: string;
  readonly text?: string | Buffer;
  readonly make?: () => string;
  /** What the message must say. */
  readonly says: RegExp;
  readonly commands?: readonly (readonly string[])[];
}

const rows: Row[] = [
  {
    what: 'a FIFO with no writer',
    make: () => {
      const p = join(dir, 'fifo.yaml');
      if (!existsSync(p)) execFileSync('mkfifo', [p]);
      return p;
    },
    says: /FIFO/,
  },
  { what: '/dev/zero', make: () => '/dev/zero', says: /character device/ },
  { what: 'a directory', make: () => dir, says: /directory/ },
  {
    what: 'a symlink loop',
    make: () => {
      const p = join(dir, 'loop.yaml');
      if (!existsSync(p)) symlinkSync(p, p);
      return p;
    },
    says: /symbolic links/,
  },
  { what: 'a missing file', make: () => join(dir, 'nope.yaml'), says: /no such file/ },
  { what: 'a file over the size limit', file: 'big.yaml', text: `# ${'x'.repeat(5 * 1024 * 1024)}\n`, says: /bytes; at most/ },
  { what: 'UTF-16', file: 'u16.json', text: Buffer.from('\ufeff{"jobs": []}', 'utf16le'), says: /UTF-16/ },
  { what: 'binary', file: 'bin.yaml', text: Buffer.from([0x89, 0x50, 0x4e, 0x47, 0xff, 0xfe, 0x00, 0x01]), says: /UTF-8|binary|NUL/ },
  { what: '5000 levels of [', file: 'deep.yaml', text: `hosts: ${'['.repeat(5000)}${']'.repeat(5000)}\n`, says: /nested deeper than 64/ },
  { what: '5000 levels of JSON arrays', file: 'deep.json', text: `{"hosts": ${'['.repeat(5000)}${']'.repeat(5000)}}`, says: /nested deeper than 64/ },
  { what: '3000 compact YAML sequences', file: 'dash.yaml', text: `jobs:\n  ${'- '.repeat(3000)}x\n`, says: /nested deeper than 64/ },
  { what: '3000 explicit YAML keys (? ? ? a)', file: 'qkeys.yaml', text: `${'? '.repeat(3000)}a\n`, says: /nested deeper than 64/ },
  { what: '3000 explicit YAML values (: : : a)', file: 'qvals.yaml', text: `? a\n${': '.repeat(3000)}a\n`, says: /nested deeper than 64/ },
  { what: 'duplicate keys in JSON', file: 'dup.json', text: '{"hosts": {"a": {"address": "x"}, "a": {"address": "y"}}}', says: /"hosts\.a" appears twice/ },
  { what: 'a __proto__ host', file: 'proto.json', text: '{"hosts": {"__proto__": {"address": "x"}}}', says: /__proto__/ },
  { what: 'a job on host toString', text: yaml(job().replace('host: local', 'host: toString')), says: /unknown host "toString"/ },
  { what: 'a job on host constructor', text: yaml(job().replace('host: local', 'host: constructor')), says: /unknown host "constructor"/ },
  {
    what: 'a relay host hasOwnProperty',
    text: yaml('hosts:\n  b: {address: 10.0.0.2, wake: {method: ssh-relay, relayHost: hasOwnProperty, mac: "52:54:00:00:00:01", address: 10.0.0.255}}\n'),
    says: /relayHost: expected another entry under hosts, got "hasOwnProperty"/,
  },
  { what: 'a host named local', text: yaml('hosts:\n  local: {address: 10.0.0.2}\n'), says: /"local" means this machine/ },
  {
    what: 'wake to the limited broadcast',
    text: yaml(`hosts:\n  b: {address: 10.0.0.2, wake: {mac: "52:54:00:00:00:01", address: ${LIMITED_BROADCAST}}}\n`),
    says: /limited broadcast/,
  },
  { what: 'wake to 0.0.0.0', text: yaml('hosts:\n  b: {address: 10.0.0.2, wake: {mac: "52:54:00:00:00:01", address: 0.0.0.0}}\n'), says: /0\.0\.0\.0/ },
  { what: 'address 999.1.1.1', text: yaml('hosts:\n  b: {address: 999.1.1.1}\n'), says: /hosts\.b\.address: "999\.1\.1\.1" is not an IPv4 address/ },
  { what: 'address 10.0.0', text: yaml('hosts:\n  b: {address: 10.0.0}\n'), says: /not an IPv4 address/ },
  {
    what: 'a 300-character host name',
    text: yaml(`hosts:\n  b: {address: ${'a'.repeat(60)}.${'b'.repeat(60)}.${'c'.repeat(60)}.${'d'.repeat(60)}.${'e'.repeat(60)}}\n`),
    says: /at most 253/,
  },
  { what: 'a 64+ character DNS label', text: yaml(`hosts:\n  b: {address: ${'a'.repeat(70)}.lan}\n`), says: /at most 63/ },
  { what: 'a duration of 1e308', text: yaml('hosts:\n  b: {address: 10.0.0.2, readyTimeout: 1e308}\n'), says: /readyTimeout of .* seconds is longer/ },
  {
    what: 'a duration of 99999999999999d',
    text: yaml('hosts:\n  b: {address: 10.0.0.2, leaseTtl: 99999999999999d}\n'),
    says: /leaseTtl of .* seconds is longer/,
  },
  { what: 'a job name too long for a unit', text: yaml(job().replace('name: j', `name: ${'j'.repeat(300)}`)), says: /at most 64 characters/ },
  { what: 'a schedule that is a shell command', text: yaml(job('\n    schedule: "$(reboot)"')), says: /systemd calendar expression/ },
  {
    what: 'an exclude equal to the source',
    text: yaml('jobs:\n  - name: j\n    host: local\n    datasets: [{source: p/a, target: q/a, recursive: true, exclude: [p/a]}]\n'),
    says: /is the source itself/,
  },
  {
    what: 'a target inside another recursive target',
    text: yaml(
      'jobs:\n  - name: j\n    host: local\n    datasets: [{source: p/a, target: q/a, recursive: true}]\n  - name: k\n    host: local\n    datasets: [{source: p/b, target: q/a/b}]\n',
    ),
    says: /inside the recursive target "q\/a"/,
  },
  { what: 'a 10 MB path', text: `stateDirectory: /${'x'.repeat(10_000)}\n`, says: /at most 4096/ },
  { what: 'a state directory under /proc', text: 'stateDirectory: /proc/1/hozo\n' + job(), says: /must not be under \/proc/ },
  {
    what: 'a newline in a host name',
    file: 'nl.json',
    text: JSON.stringify({ stateDirectory: '/tmp/x', hosts: { 'a\nb': { address: 'x' } } }),
    says: /hosts\["a\\nb"\]: "a\\nb" is not a valid name/,
  },
  {
    what: 'a wrong type',
    text: yaml('hosts:\n  b: {address: 10.0.0.2, port: "twenty-two"}\n'),
    says: /hosts\.b\.port: expected a number, got string "twenty-two"/,
  },
  {
    what: 'a missing field',
    text: yaml('jobs:\n  - name: j\n    datasets: [{source: p/a, target: q/a}]\n'),
    says: /jobs\[0\]\.host: missing \(expected a string\)/,
  },
  { what: 'YAML syntax', text: 'hosts: {a: [}\n', says: /cannot parse YAML/ },
  // Issue 12 red-team classes (each a class: the example is one of many inputs it covers).
  ...['//proc/1/hozo', '/./proc/1/hozo', '///sys/x'].map((sd) => ({
    what: `stateDirectory ${sd}`,
    text: `stateDirectory: ${sd}\n${job()}`,
    says: /stateDirectory: must not be under \/proc, \/sys or \/dev/,
  })),
  { what: 'stateDirectory /tmp/../proc/1/hozo', text: `stateDirectory: /tmp/../proc/1/hozo\n${job()}`, says: /stateDirectory: a "\.\." component is refused/ },
  { what: 'metrics under //dev', text: yaml(`metrics: {textfileDirectory: //dev/shm/x}\n${job()}`), says: /metrics\.textfileDirectory: must not be under/ },
  { what: 'logFile /./proc/…', text: yaml(`logFile: /./proc/self/x\n${job()}`), says: /logFile: must not be under/ },
  { what: 'address ":::"', text: yaml('hosts:\n  b: {address: ":::"}\n'), says: /hosts\.b\.address: ":::" is not an IPv6 address/ },
  { what: 'address "[::1" (unbalanced)', text: yaml('hosts:\n  b: {address: "[::1"}\n'), says: /hosts\.b\.address: .*unbalanced bracket/ },
  { what: 'a port in the address', text: yaml('hosts:\n  b: {address: "1.2.3.4:22"}\n'), says: /hosts\.b\.address: .*put the port in `port`/ },
  { what: 'a hex address 0x7f.1', text: yaml('hosts:\n  b: {address: 0x7f.1}\n'), says: /hosts\.b\.address: "0x7f\.1" is neither/ },
  {
    what: 'a multicast wake address',
    text: yaml('hosts:\n  b: {address: 10.0.0.2, wake: {mac: "52:54:00:00:00:01", address: "ff02::1"}}\n'),
    says: /hosts\.b\.wake\.address: .*multicast/,
  },
  {
    what: 'the broadcast MAC',
    text: yaml('hosts:\n  b: {address: 10.0.0.2, wake: {mac: "ff:ff:ff:ff:ff:ff", address: 10.0.0.255}}\n'),
    says: /hosts\.b\.wake\.mac: .*broadcast MAC/,
  },
  { what: 'a port of 1e400', text: yaml('hosts:\n  b: {address: 10.0.0.2, port: 1e400}\n'), says: /hosts\.b\.port: expected a finite number, got Infinity/ },
  {
    what: '.inf and .nan durations',
    text: yaml('hosts:\n  b: {address: 10.0.0.2, readyTimeout: .inf, scrubWarnAfter: .nan}\n'),
    says: /hosts\.b\.readyTimeout: expected a finite number, got Infinity\n\s+hosts\.b\.scrubWarnAfter: expected a finite number, got NaN/,
  },
  {
    what: 'a port of 1e29: one message',
    text: yaml('hosts:\n  b: {address: 10.0.0.2, port: 123456789012345678901234567890}\n'),
    says: /error: \S+ is invalid:\n {2}hosts\.b\.port: expected a number of at most 65535 \(got [^\n]+\)\nhint/,
  },
  { what: 'two YAML documents', text: yaml('---\njobs: []\n'), says: /line 2, column 1: expected one YAML document, found several/ },
  {
    what: 'a YAML alias bomb',
    text: yaml(
      ['a: &a [x,x,x,x,x,x,x,x,x,x]', ...'bcdefg'.split('').map((l, i) => `${l}: &${l} [${Array(10).fill(`*${'abcdefg'[i]}`).join(',')}]`)].join('\n') + '\n',
    ),
    says: /line \d+, column \d+: too many alias references \(\*/,
  },
  {
    what: 'a YAML merge key',
    text: yaml('base: &b {port: 22}\nhosts:\n  x:\n    <<: *b\n'),
    says: /YAML merge keys \(<<\) are not supported; write the fields out/,
  },
  { what: 'a duplicate YAML key', text: yaml('hosts:\n  a: {address: x}\n  a: {address: y}\n'), says: /line 4, column 3: key "hosts\.a" appears twice/ },
  { what: 'hosts: []', text: yaml('hosts: []\n'), says: /hosts: expected a mapping of names to entries \(name: \{…\}\), got a list/ },
  { what: 'a notify entry without type', text: yaml('notify:\n  - {url: "https://ntfy.sh/x"}\n'), says: /notify\[0\]\.type: missing \(expected one of "ntfy"/ },
  { what: 'to: [5, "x"]', text: yaml('notify:\n  - {type: email, to: [5, "x"]}\n'), says: /notify\[0\]\.to\[0\]: expected a string, got number 5/ },
  {
    what: 'JSON syntax: a line and column',
    file: 'comma.json',
    text: '{"jobs": [],}',
    says: /cannot parse JSON: line 1, column 13: expected double-quoted property name/,
  },
  {
    what: 'a notify timeout of 1e308',
    text: yaml('notify:\n  - {type: webhook, url: "http://127.0.0.1:1/h", timeout: 1e308}\n'),
    says: /notify\[0\]\.timeout: expected a timeout of 1 ms to 10 minutes/,
  },
  {
    what: 'a leaseTtl of 0.4 s',
    text: yaml('hosts:\n  b: {address: 10.0.0.2, shutdown: agent, leaseTtl: 0.4}\n'),
    says: /hosts\.b\.leaseTtl: leaseTtl of 0\.4 seconds is shorter than 60 s/,
  },
  {
    what: 'readyTimeout 0',
    text: yaml('hosts:\n  b: {address: 10.0.0.2, readyTimeout: 0}\n'),
    says: /hosts\.b\.readyTimeout: readyTimeout of 0 seconds is shorter than 1 s/,
  },
  {
    what: 'a NUL in an argv',
    file: 'nul.json',
    text: JSON.stringify({ stateDirectory: STATE(), hosts: { b: { address: '10.0.0.2', wake: { method: 'command', command: ['a\u0000b'] } } } }),
    says: /hosts\.b\.wake\.command\[0\]: contains a NUL byte/,
  },
  {
    what: 'a URL with spaces and control characters',
    text: yaml('notify:\n  - {type: ntfy, url: " http://x/\\u0007\\u001b[31m "}\n'),
    says: /notify\[0\]\.url: a URL with leading or trailing spaces is refused/,
  },
  {
    what: 'wake method none with a MAC',
    text: yaml('hosts:\n  b: {address: 10.0.0.2, wake: {method: none, mac: "52:54:00:00:00:01"}}\n'),
    says: /hosts\.b\.wake\.mac: method "none" takes no mac/,
  },
  { what: 'a job name ending in "."', text: yaml(job().replace('name: j', 'name: "a."')), says: /jobs\[0\]\.name: a job name must not end with "\."/ },
  { what: 'a 97 GiB buffer', text: yaml(job('\n    bufferSize: 99999M')), says: /jobs\[0\]\.bufferSize: at most 16G/ },
  {
    what: 'a 5000-character user',
    text: yaml(`hosts:\n  b: {address: 10.0.0.2, user: ${'u'.repeat(5000)}}\n`),
    says: /hosts\.b\.user: a user name is at most 32 characters/,
  },
  {
    what: 'ssh option HostKeyAlias',
    text: yaml('hosts:\n  b: {address: 10.0.0.2, sshOptions: ["HostKeyAlias=other"]}\n'),
    says: /ssh option "HostKeyAlias" is not allowed/,
  },
  {
    what: 'control characters and a bidi override in a host name',
    file: 'bidi.json',
    text: JSON.stringify({
      stateDirectory: STATE(),
      hosts: { b: { address: '127.0.0.1' } },
      jobs: [{ name: 'j', host: 'b\u202e\udfff\u001b[31m', datasets: [{ source: 'p/a', target: 'q/a' }] }],
    }),
    says: /jobs\[0\]\.host: unknown host "b\\u202e\\udfff\\x1b\[31m"/,
  },
  { what: '/proc/self/status (it reports size 0): read whole', make: () => '/proc/self/status', says: /unknown fields "Name"/ },
  { what: '/proc/self/mem', make: () => '/proc/self/mem', says: /\/proc\/self\/mem: an input\/output error/ },
  {
    what: '50,000 bad jobs: a bounded list',
    file: 'many.json',
    text: JSON.stringify({ stateDirectory: STATE(), jobs: Array.from({ length: 50_000 }, () => ({ name: '-', host: 'x' })) }),
    says: /… and 99950 more problems\nhint/,
    commands: [
      ['config', 'check'],
      ['plan', 'j'],
    ],
  },
];

/** Raw control characters (other than the newlines between lines), C1 controls, bidi overrides: never in the output. */
const RAW = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/;

function fileFor(r: Row, i: number): string {
  if (r.make !== undefined) return r.make();
  const p = join(dir, r.file ?? `row${i}.yaml`);
  writeFileSync(p, r.text!);
  chmodSync(p, 0o644);
  return p;
}

const asNobody = process.geteuid?.() === 0;

/** The built CLI, asynchronously (a synchronous spawn would block the test worker's own messages for seconds). */
async function hozo(args: readonly string[], user?: string, env: Record<string, string> = { HOZO_CONFIG: '' }, bin = HOZO) {
  const argv =
    user === undefined ? [process.execPath, bin, ...args] : ['setpriv', '--reuid=nobody', '--regid=nogroup', '--clear-groups', process.execPath, bin, ...args];
  const t = Date.now();
  const r = await execa(argv[0]!, argv.slice(1), { reject: false, timeout: 20_000, maxBuffer: 16 * 1024 * 1024, env, stdin: 'ignore' });
  return { status: r.exitCode ?? null, signal: r.signal ?? null, stdout: String(r.stdout), stderr: String(r.stderr), seconds: (Date.now() - t) / 1000 };
}

describe.skipIf(skip !== undefined)('bad config input: exit 2, a clear message, no stack, no hang, nothing written (built CLI)', () => {
  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  for (const [i, r] of rows.entries()) {
    it(r.what, async () => {
      const path = fileFor(r, i);
      const users = asNobody ? [undefined, 'nobody'] : [undefined];
      for (const user of users) {
        for (const cmd of r.commands ?? [['config', 'check'], ['jobs', 'list'], ['plan', 'j'], ['run', 'j'], ['status']]) {
          const res = await hozo(['--config', path, ...cmd], user);
          const said = `${cmd.join(' ')}${user ? ` as ${user}` : ''}: exit ${res.status} signal ${res.signal}\n${res.stderr}${res.stdout}`;
          expect(res.signal, said).toBeNull();
          expect(res.status, said).toBe(2);
          expect(res.stderr, said).toMatch(r.says);
          expect(res.stderr, said).not.toMatch(/internal error|\n\s+at [^\n]+:\d+:\d+|TypeError|RangeError/);
          expect(res.stderr, said).not.toMatch(RAW);
          expect(res.stderr.length, said).toBeLessThan(20_000);
          expect(res.seconds, said).toBeLessThan(15);
        }
      }
      expect(existsSync(STATE())).toBe(false);
    }, 120_000);
  }

  it('an unwritable state directory (as nobody) and one that is a file: exit 2 naming it, before anything runs', async () => {
    mkdirSync(join(dir, 'locked'), { mode: 0o755 });
    const cases = [
      { state: join(dir, 'locked', 'sub'), user: asNobody ? 'nobody' : undefined, says: /stateDirectory .* cannot be used: permission denied/ },
      { state: '/etc/passwd/x', user: undefined, says: /stateDirectory \/etc\/passwd\/x cannot be used: a component of the path is not a directory/ },
    ];
    for (const c of cases) {
      if (c.user === undefined && c.state.includes('locked')) continue;
      const p = join(dir, `state-${c.user ?? 'me'}.yaml`);
      writeFileSync(p, `stateDirectory: ${c.state}\n${job()}`);
      chmodSync(p, 0o644);
      const res = await hozo(['--config', p, 'run', 'j'], c.user);
      const said = `exit ${res.status}\n${res.stderr}`;
      expect(res.status, said).toBe(2);
      expect(res.stderr, said).toMatch(c.says);
      expect(res.stderr, said).not.toMatch(/internal error|\n\s+at /);
    }
  });

  it('demo: --keep with --cleanup is a usage error before anything is done; --json demo --cleanup prints JSON', async () => {
    const both = await hozo(['demo', '--keep', '--cleanup']);
    expect(both.status, both.stderr).toBe(2);
    expect(both.stderr).toMatch(/--keep and --cleanup contradict each other/);
    expect(both.stdout).toBe('');
    const json = await hozo(['--json', 'demo', '--cleanup']);
    expect(json.status, json.stderr).toBe(0);
    expect(JSON.parse(json.stdout)).toMatchObject({ version: 1, removed: expect.any(Object) });
  });

  it('a state directory a run would refuse: config check warns of a file in its way (exit 0), status names it in words, not ENOTDIR/EACCES', async () => {
    const file = join(dir, 'a-file');
    writeFileSync(file, 'x');
    mkdirSync(join(dir, 'closed'), { mode: 0o755 });
    const cases = [
      { state: file, user: undefined, says: /stateDirectory .*a-file: it is not a directory; hozo run would refuse it/ },
      { state: join(file, 'below'), user: undefined, says: /stateDirectory .*a-file\/below: a component of the path is not a directory/ },
      // Not writable by the user who checks: no warning (config check often runs as another user than the runs:
      // a NixOS build's sandbox, an admin); the run itself refuses it with exit 2 (the test above).
      ...(asNobody ? [{ state: join(dir, 'closed', 'sub'), user: 'nobody', says: undefined }] : []),
    ];
    for (const c of cases) {
      const p = join(dir, `state-warn-${c.user ?? 'me'}.yaml`);
      writeFileSync(p, `stateDirectory: ${c.state}\n${job()}`);
      chmodSync(p, 0o644);
      const check = await hozo(['--config', p, 'config', 'check'], c.user);
      const said = `${c.state}: exit ${check.status}\n${check.stdout}${check.stderr}`;
      expect(check.status, said).toBe(0);
      if (c.says === undefined) expect(check.stdout + check.stderr, said).not.toMatch(/stateDirectory/);
      else expect(check.stdout + check.stderr, said).toMatch(c.says);
      if (c.user === undefined) {
        const status = await hozo(['--config', p, 'status'], c.user);
        const s2 = `exit ${status.status}\n${status.stdout}${status.stderr}`;
        expect(status.stderr, s2).toMatch(
          /warning: cannot read state file .*: a component of the path is not a directory \(stateDirectory .*; a run would refuse it\)/,
        );
        expect(s2, s2).not.toMatch(/: (ENOTDIR|EACCES)\b/);
      }
    }
    // A usable one: quiet, and config check creates nothing.
    const ok = join(dir, 'state-ok.yaml');
    writeFileSync(ok, `stateDirectory: ${join(dir, 'fresh-state')}\n${job()}`);
    const quiet = await hozo(['--config', ok, 'config', 'check']);
    expect(quiet.stdout + quiet.stderr).not.toMatch(/stateDirectory/);
    expect(existsSync(join(dir, 'fresh-state'))).toBe(false);
  });

  it('an empty config: config check warns that nothing is configured (exit 0); run exits 2', async () => {
    for (const [file, text] of [
      ['empty.yaml', ''],
      ['empty.yaml', '# only a comment\n'],
      ['empty.yaml', 'null\n'],
      ['empty.json', ''],
      ['empty.json', ' \n'],
    ] as const) {
      const p = join(dir, file);
      writeFileSync(p, text);
      const check = await hozo(['--config', p, 'config', 'check']);
      expect(check.status).toBe(0);
      expect(check.stdout).toMatch(/warning: nothing is configured/);
      expect((await hozo(['--config', p, 'run', 'x'])).status).toBe(2);
    }
  });

  const noCrash = (res: Awaited<ReturnType<typeof hozo>>, said: string) => {
    expect(res.signal, said).toBeNull();
    expect(res.stderr, said).not.toMatch(/internal error|\n\s+at [^\n]+:\d+:\d+|TypeError|RangeError/);
    expect(res.stderr + res.stdout, said).not.toMatch(RAW);
  };
  const BOX =
    'hosts:\n  box: {address: 127.0.0.1, port: 1, wake: {method: none}, readyTimeout: 1, trust: trusted}\njobs:\n  - name: j\n    host: box\n    datasets: [{source: p/a, target: q/a}]\n';
  const write = (name: string, text: string) => {
    const p = join(dir, name);
    writeFileSync(p, text);
    chmodSync(p, 0o644);
    return p;
  };

  it('wake --json on a host with wake: none says it was not woken (nothing is sent)', async () => {
    const p = write('wake-none.yaml', `stateDirectory: ${join(dir, 'wake-state')}\n${BOX}`);
    const res = await hozo(['--config', p, '--json', 'wake', 'box']);
    expect(res.status, res.stderr).toBe(0);
    expect(JSON.parse(res.stdout)).toMatchObject({ version: 1, name: 'box', woke: false, detail: expect.stringMatching(/always on/) });
    expectOutput('host-action', JSON.parse(res.stdout));
  });

  it('plan and run --dry-run against an always-on host (wake: none) that does not answer: "unreachable", no --wake hint', async () => {
    const p = write('wake-none-plan.yaml', `stateDirectory: ${join(dir, 'wake-state')}\n${BOX}`);
    for (const cmd of [
      ['plan', 'j'],
      ['run', 'j', '--dry-run'],
    ]) {
      const res = await hozo(['--config', p, '--json', ...cmd]);
      const said = `${cmd.join(' ')}: exit ${res.status}\n${res.stdout}${res.stderr}`;
      noCrash(res, said);
      expectOutput('job-report', JSON.parse(res.stdout));
      const err = JSON.parse(res.stdout).error;
      expect(err.message, said).toMatch(/^box is unreachable \(no answer on 127\.0\.0\.1:1\)/);
      expect(err.hint, said).toMatch(/wake: none/);
      expect(res.stdout + res.stderr, said).not.toMatch(/asleep|--wake/);
    }
  });

  it('a FIFO as logFile: refused by config check and before plan or run does anything (no hang)', async () => {
    const fifo = join(dir, 'log.fifo');
    if (!existsSync(fifo)) execFileSync('mkfifo', [fifo]);
    const p = write('fifolog.yaml', yaml(`logFile: ${fifo}\n${BOX}`));
    for (const cmd of [
      ['config', 'check'],
      ['plan', 'j'],
      ['run', 'j'],
      ['jobs', 'list'],
    ]) {
      const res = await hozo(['--config', p, ...cmd]);
      const said = `${cmd.join(' ')}: exit ${res.status}\n${res.stderr}`;
      noCrash(res, said);
      expect(res.status, said).toBe(2);
      expect(res.stderr, said).toMatch(/logFile: .*log\.fifo is a FIFO \(named pipe\); expected a regular file/);
      expect(res.seconds, said).toBeLessThan(15);
    }
    expect(existsSync(STATE())).toBe(false);
  });

  it("a FIFO in place of hozo's own files (job state, lock, metrics): no hang; the lock is refused with exit 2 and left alone", async () => {
    const st = join(dir, 'fifo-state');
    mkdirSync(join(st, 'jobs'), { recursive: true });
    mkdirSync(join(st, 'locks'), { recursive: true });
    mkdirSync(join(st, 'metrics'), { recursive: true });
    for (const f of ['jobs/j.json', 'metrics/hozo_j.prom']) if (!existsSync(join(st, f))) execFileSync('mkfifo', [join(st, f)]);
    const p = write('fifostate.yaml', `stateDirectory: ${st}\nmetrics: {textfileDirectory: ${join(st, 'metrics')}}\n${BOX}`);
    // The state file: read without blocking, warned about in words, treated as absent.
    for (const cmd of [['status'], ['plan', 'j'], ['run', 'j', '--dry-run']]) {
      const res = await hozo(['--config', p, ...cmd]);
      const said = `${cmd.join(' ')}: exit ${res.status}\n${res.stderr}${res.stdout}`;
      noCrash(res, said);
      expect(res.seconds, said).toBeLessThan(15);
      if (cmd[0] === 'status') expect(res.stderr, said).toMatch(/cannot read state file .*j\.json: it is not a regular file/);
    }
    // The lock: a FIFO where the lock goes is not a lock any run took: exit 2, named, and not removed.
    const lock = join(st, 'locks', 'j.lock');
    execFileSync('mkfifo', [lock]);
    const res = await hozo(['--config', p, 'run', 'j']);
    const said = `run j: exit ${res.status}\n${res.stderr}${res.stdout}`;
    noCrash(res, said);
    expect(res.status, said).toBe(2);
    expect(res.stderr, said).toMatch(/the job lock .*j\.lock cannot be used: it is not a regular file/);
    expect(res.seconds, said).toBeLessThan(15);
    expect(statSync(lock).isFIFO()).toBe(true);
    // Without it, the run goes on (the box is unreachable: exit 3) and its metrics replace the FIFO there.
    rmSync(lock);
    const ran = await hozo(['--config', p, 'run', 'j']);
    noCrash(ran, ran.stderr);
    expect(ran.seconds, ran.stderr).toBeLessThan(15);
    expect(statSync(join(st, 'metrics', 'hozo_j.prom')).isFile(), ran.stderr).toBe(true);
  });

  it('a state, metrics or log path through a symlink into /proc: exit 2 naming it, before anything (no hang)', async () => {
    const link = join(dir, 'proclink');
    if (!existsSync(link)) symlinkSync('/proc/1', link);
    const cases = [
      { text: `stateDirectory: ${link}/hozo\n${job()}`, says: /stateDirectory: .*proclink resolves to \/proc\/1/ },
      { text: yaml(`metrics: {textfileDirectory: ${link}/m}\n${job()}`), says: /metrics\.textfileDirectory: .*resolves to \/proc\/1/ },
      { text: yaml(`logFile: ${link}/hozo.log\n${job()}`), says: /logFile: .*resolves to \/proc\/1/ },
    ];
    for (const [i, c] of cases.entries()) {
      const p = write(`proclink${i}.yaml`, c.text);
      for (const cmd of [['config', 'check'], ['status'], ['jobs', 'list'], ['plan', 'j'], ['run', 'j']]) {
        const res = await hozo(['--config', p, ...cmd]);
        const said = `${cmd.join(' ')}: exit ${res.status}\n${res.stderr}`;
        noCrash(res, said);
        expect(res.status, said).toBe(2);
        expect(res.stderr, said).toMatch(c.says);
        expect(res.seconds, said).toBeLessThan(15);
      }
    }
    expect(existsSync(STATE())).toBe(false);
  });

  it('files the config names (key, known_hosts, jump key, metrics directory, notify token): config check warns; run, plan, wake and shutdown refuse before waking anything', async () => {
    const fifo = join(dir, 'key.fifo');
    if (!existsSync(fifo)) execFileSync('mkfifo', [fifo]);
    const plain = write('not-a-dir', 'x\n');
    const woken = join(dir, 'woken-by-files-test');
    const st = join(dir, 'files-state');
    const host = (extra: string) =>
      `hosts:\n  box: {address: 127.0.0.1, port: 1, readyTimeout: 1, trust: trusted, shutdown: ssh, wake: {method: command, command: [touch, ${woken}]}${extra}}\n` +
      'jobs:\n  - name: j\n    host: box\n    datasets: [{source: p/a, target: q/a}]\n';
    const p = write(
      'files.yaml',
      `stateDirectory: ${st}\nmetrics: {textfileDirectory: ${plain}}\nnotify: [{type: ntfy, url: "http://127.0.0.1:1/t", tokenFile: /dev/zero}]\n` +
        host(`, sshKeyFile: ${fifo}, knownHostsFile: ${join(dir, 'no-known-hosts')}, via: {address: 127.0.0.1, sshKeyFile: ${dir}}`),
    );
    const check = await hozo(['--config', p, 'config', 'check']);
    noCrash(check, check.stderr);
    expect(check.status, check.stdout + check.stderr).toBe(0);
    for (const says of [
      /warning: hosts\.box\.sshKeyFile .*key\.fifo: is a FIFO \(named pipe\), not a regular file; a run that needs it would refuse to start/,
      /warning: hosts\.box\.knownHostsFile .*no-known-hosts: does not exist/,
      /warning: hosts\.box\.via\.sshKeyFile .*: is a directory, not a regular file/,
      /warning: metrics\.textfileDirectory .*not-a-dir: is not a directory/,
      /warning: notify\[0\]\.tokenFile \/dev\/zero: is a character device, not a regular file; notifications through it would fail/,
    ])
      expect(check.stdout, check.stdout).toMatch(says);
    for (const cmd of [
      ['run', 'j'],
      ['run', 'j', '--dry-run'],
      ['plan', 'j'],
      ['wake', 'box'],
      ['shutdown', 'box'],
    ]) {
      const res = await hozo(['--config', p, ...cmd]);
      const said = `${cmd.join(' ')}: exit ${res.status}\n${res.stderr}`;
      noCrash(res, said);
      expect(res.status, said).toBe(2);
      expect(res.stderr, said).toMatch(
        /files named in the config cannot be used:\n {2}hosts\.box\.sshKeyFile .*FIFO.*\n {2}hosts\.box\.knownHostsFile .*does not exist\n {2}hosts\.box\.via\.sshKeyFile .*directory/,
      );
      expect(res.stderr, said).toMatch(/hint: .*nothing was run and no box was woken/);
      expect(res.seconds, said).toBeLessThan(15);
    }
    expect(existsSync(woken), 'the wake command ran').toBe(false);
    // Nothing a run writes (its config cache aside): no lock taken, no state, no history.
    for (const d of ['locks', 'jobs', 'history', 'progress']) expect(existsSync(join(st, d)), `${d} was created`).toBe(false);
    // A secret under /run that is missing here (a build sandbox has none): config check leaves it out, a run names it.
    const run = write('files-run.yaml', `stateDirectory: ${st}\n${host(', sshKeyFile: /run/hozo-test-no-such-secret/key')}`);
    const quiet = await hozo(['--config', run, 'config', 'check']);
    expect(quiet.status, quiet.stderr).toBe(0);
    expect(quiet.stdout).not.toMatch(/sshKeyFile/);
    const refused = await hozo(['--config', run, 'run', 'j']);
    expect(refused.status, refused.stderr).toBe(2);
    expect(refused.stderr).toMatch(/^error: hosts\.box\.sshKeyFile \/run\/hozo-test-no-such-secret\/key: does not exist$/m);
    expect(existsSync(woken)).toBe(false);
  });

  it('a logFile whose directory does not exist: config check warns, and a run says once that its lines go to stderr only', async () => {
    const log = join(dir, 'no-log-dir', 'hozo.log');
    // Its own state directory: a dry run writes its caches there.
    const p = write('nologdir.yaml', `stateDirectory: ${join(dir, 'nologdir-state')}\nlogFile: ${log}\n${job()}`);
    const check = await hozo(['--config', p, 'config', 'check']);
    expect(check.status, check.stderr).toBe(0);
    expect(check.stdout).toMatch(/warning: logFile .*hozo\.log: its directory .*no-log-dir does not exist; its lines would be lost/);
    const res = await hozo(['--config', p, 'run', 'j', '--dry-run']);
    noCrash(res, res.stderr);
    expect(res.stderr.match(/cannot append to logFile/g), res.stderr).toHaveLength(1);
    expect(res.stderr).toMatch(/warning: cannot append to logFile .*hozo\.log \(its directory does not exist\); this run logs to stderr only/);
  });

  it('100,000 YAML keys or hosts: an answer within 10 s (refused: more entries than any config has)', async () => {
    const keys = write('keys.yaml', yaml(Array.from({ length: 100_000 }, (_, i) => `k${i}: 1\n`).join('')));
    const hosts = write('hosts.yaml', yaml('hosts:\n' + Array.from({ length: 100_000 }, (_, i) => `  h${i}: {address: 127.0.0.1}\n`).join('')));
    const some = write('keys40k.yaml', yaml(Array.from({ length: 40_000 }, (_, i) => `k${i}: 1\n`).join('')));
    for (const [p, says] of [
      [keys, /more than 50000 entries/],
      [hosts, /more than 50000 entries/],
      [some, /unknown fields "k0", .* and 39990 more/],
    ] as const) {
      const res = await hozo(['--config', p, 'config', 'check']);
      const said = `${p}: exit ${res.status} in ${res.seconds}s\n${res.stderr.slice(0, 2000)}`;
      noCrash(res, said);
      expect(res.status, said).toBe(2);
      expect(res.stderr, said).toMatch(says);
      expect(res.stderr.length, said).toBeLessThan(2000);
      expect(res.seconds, said).toBeLessThan(10);
    }
  });

  it('60,000 recursive datasets in JSON: valid, checked within 10 s', async () => {
    const datasets = Array.from({ length: 60_000 }, (_, i) => ({ source: `p/a${i}`, target: `q/a${i}`, recursive: true }));
    const p = write('big.json', JSON.stringify({ stateDirectory: STATE(), jobs: [{ name: 'j', host: 'local', datasets }] }));
    const res = await hozo(['--config', p, 'config', 'check']);
    const said = `exit ${res.status} in ${res.seconds}s\n${res.stderr}`;
    noCrash(res, said);
    expect(res.status, said).toBe(0);
    expect(res.seconds, said).toBeLessThan(10);
    expect(existsSync(STATE())).toBe(false);
  });

  it('with --json, a command group without its subcommand is a JSON usage error with a hint, not commander\'s "(outputHelp)"', async () => {
    for (const args of [['--json', 'config'], ['jobs', '--json'], ['--json']]) {
      const res = await hozo(args);
      const said = `${args.join(' ')}: exit ${res.status}\n${res.stdout}${res.stderr}`;
      expect(res.status, said).toBe(2);
      const out = JSON.parse(res.stdout) as { version: number; error: { code: string; message: string; hint?: string } };
      expect(out, said).toMatchObject({ version: 1, error: { code: 'USAGE', message: expect.stringMatching(/command is missing/), hint: expect.any(String) } });
      expect(res.stdout, said).not.toMatch(/outputHelp/);
      expect(res.stderr, said).toMatch(/^Usage: hozo/m);
    }
    // Any other usage error commander finds has the same hint as on a terminal.
    for (const args of [
      ['--json', 'run'],
      ['--json', 'bogus'],
      ['--json', 'plan', '--bogus', 'j'],
    ]) {
      const res = await hozo(args);
      const said = `${args.join(' ')}: exit ${res.status}\n${res.stdout}${res.stderr}`;
      expect(res.status, said).toBe(2);
      expect(JSON.parse(res.stdout), said).toMatchObject({ version: 1, error: { code: 'USAGE', hint: 'add --help for usage' } });
      expectOutput('error', JSON.parse(res.stdout));
    }
  });

  it('names from the command line and config paths are escaped (control characters, bidi) and cut when long', async () => {
    const p = write('box.yaml', yaml(BOX));
    const evil = 'a\nb\x1b[31mRED\x1b]0;title\x07\u202e';
    const cases: { args: string[]; env?: Record<string, string>; code: number; says: RegExp }[] = [
      { args: ['--config', p, 'plan', evil], code: 2, says: /unknown job "a\\nb\\x1b\[31mRED\\x1b\]0;title\\x07\\u202e"/ },
      { args: ['--config', p, 'status', evil], code: 2, says: /unknown host "a\\nb\\x1b\[31mRED/ },
      { args: ['--config', p, 'shutdown', 'x\x1b[2J'], code: 2, says: /unknown host "x\\x1b\[2J"/ },
      { args: ['--config', p, 'status', '--json', evil], code: 2, says: /unknown host "a\\nb/ },
      {
        args: ['--config', p, 'restore', 'j', '--dataset', 'p/a', '--to', 'q/\x1b[31mx\ny'],
        code: 2,
        says: /--to: not a valid ZFS dataset name: "q\/\\x1b\[31mx\\ny"/,
      },
      {
        args: ['--config', p, 'restore', 'j', '--dataset', 'p/a', '--snapshot', 's\x1b[31m\nx'],
        code: 2,
        says: /--snapshot: not a valid snapshot name: "s\\x1b\[31m\\nx"/,
      },
      {
        args: ['--config', '/tmp/\x1b[31mred\nline2.yaml', 'config', 'check'],
        code: 2,
        says: /cannot read config "\/tmp\/\\x1b\[31mred\\nline2\.yaml": no such file/,
      },
      { args: ['status'], env: { HOZO_CONFIG: '/tmp/\x1b[31mx\ny' }, code: 2, says: /cannot read config "\/tmp\/\\x1b\[31mx\\ny"/ },
      { args: ['--config', p, `--\x1b[31mbogus`], code: 2, says: /unknown option '--\\x1b\[31mbogus'/ },
      { args: ['--config', p, 'plan', 'a'.repeat(100_000)], code: 2, says: /unknown job "a{200}"… \(100000 characters\)/ },
    ];
    for (const c of cases) {
      const res = await hozo(c.args, undefined, c.env ?? { HOZO_CONFIG: '' });
      const said = `${JSON.stringify(c.args).slice(0, 200)}: exit ${res.status}\n${res.stderr.slice(0, 2000)}`;
      noCrash(res, said);
      expect(res.status, said).toBe(c.code);
      expect(res.stderr, said).toMatch(c.says);
      expect(res.stderr.length, said).toBeLessThan(2000);
    }
  });

  it('an empty --config or HOZO_CONFIG is a usage error naming it', async () => {
    for (const [args, env, says] of [
      [['--config', '', 'config', 'check'], { HOZO_CONFIG: '' }, /error: --config: an empty path/],
      [['status'], { HOZO_CONFIG: '' }, /error: HOZO_CONFIG: an empty path/],
    ] as const) {
      const res = await hozo([...args], undefined, { ...env });
      noCrash(res, res.stderr);
      expect(res.status, res.stderr).toBe(2);
      expect(res.stderr).toMatch(says);
    }
  });

  it('hozo-agent: prototype names are unknown commands; a state directory under /proc is refused at once', async () => {
    const AGENT = join(import.meta.dirname, '..', '..', 'dist', 'bin', 'agent', 'hozo-agent.js');
    for (const c of ['constructor', 'toString', '__proto__', 'hasOwnProperty', 'valueOf']) {
      const res = await hozo([c, '--help'], undefined, {}, AGENT);
      noCrash(res, res.stderr);
      expect(res.status, res.stderr).toBe(2);
      expect(res.stderr.trim()).toBe(`hozo-agent: unknown command "${c}"\n(hozo-agent --help for usage)`);
    }
    for (const sd of ['/proc/1/x', '//proc/1/x', '/tmp/../proc/1/x']) {
      const p = write(
        'agent-proc.json',
        JSON.stringify({
          roots: ['backup/hozo'],
          stateDirectory: sd,
          leaseDirectory: join(dir, 'agent-leases'),
          logFile: join(dir, 'agent.log'),
          poweroffCommand: ['/bin/false'],
          idlePoweroffMinutes: null,
        }),
      );
      for (const [args, env] of [
        [['check-config', '--config', p], {}],
        [['serve', '--config', p], { SSH_ORIGINAL_COMMAND: 'bogus' }],
      ] as const) {
        const res = await hozo([...args], undefined, { ...env }, AGENT);
        const said = `${args.join(' ')} (${sd}): exit ${res.status}\n${res.stderr}`;
        noCrash(res, said);
        expect(res.status, said).toBe(1);
        expect(res.stderr, said).toMatch(/stateDirectory: (must not be under \/proc|a "\.\." component)/);
        expect(res.seconds, said).toBeLessThan(10);
      }
    }
    expect(existsSync(join(dir, 'agent-leases'))).toBe(false);
    // -V, as hozo takes it.
    for (const v of ['-V', '--version', 'version']) {
      const res = await hozo([v], undefined, {}, AGENT);
      expect(res.status, `${v}: ${res.stderr}`).toBe(0);
      expect(res.stdout.trim()).toMatch(/^hozo-agent \d+\.\d+\.\d+$/);
    }
  });

  it('a UTF-8 BOM is accepted in JSON and YAML alike', async () => {
    for (const [name, text] of [
      ['bom.json', '\ufeff{"jobs": []}'],
      ['bom.yaml', '\ufeffjobs: []\n'],
    ] as const) {
      const p = join(dir, name);
      writeFileSync(p, text);
      const r = await hozo(['--config', p, 'config', 'check']);
      expect(r.status, r.stderr).toBe(0);
    }
  });
});
