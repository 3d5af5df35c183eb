// Every bad config input through the built CLI: a clear error with exit 2, a message that says where and what was
// expected, no stack trace, no hang, nothing written. Each class of the bad-input issue is a row: files that are not
// files (FIFO with no writer, /dev/zero, a directory, a symlink loop), sizes and encodings, deep nesting, built-in
// object property names, values that used to pass (limited broadcast, 999.1.1.1, 1e308, over-long names and
// paths, bad schedules, nested targets, a host named local, duplicate JSON keys). Run as this user and, when this is
// root, again as an unprivileged one (nobody).
import { execFileSync } from 'node:child_process';
import { execa } from 'execa';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { LIMITED_BROADCAST } from '../../src/config/addresses.js';
import { HOZO } from '../helpers/hozo.js';

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
  { what: 'a FIFO with no writer', make: () => { const p = join(dir, 'fifo.yaml'); if (!existsSync(p)) execFileSync('mkfifo', [p]); return p; }, says: /FIFO/ },
  { what: '/dev/zero', make: () => '/dev/zero', says: /character device/ },
  { what: 'a directory', make: () => dir, says: /directory/ },
  { what: 'a symlink loop', make: () => { const p = join(dir, 'loop.yaml'); if (!existsSync(p)) symlinkSync(p, p); return p; }, says: /symbolic links/ },
  { what: 'a missing file', make: () => join(dir, 'nope.yaml'), says: /no such file/ },
  { what: 'a file over the size limit', file: 'big.yaml', text: `# ${'x'.repeat(5 * 1024 * 1024)}\n`, says: /bytes; at most/ },
  { what: 'UTF-16', file: 'u16.json', text: Buffer.from('\ufeff{"jobs": []}', 'utf16le'), says: /UTF-16/ },
  { what: 'binary', file: 'bin.yaml', text: Buffer.from([0x89, 0x50, 0x4e, 0x47, 0xff, 0xfe, 0x00, 0x01]), says: /UTF-8|binary|NUL/ },
  { what: '5000 levels of [', file: 'deep.yaml', text: `hosts: ${'['.repeat(5000)}${']'.repeat(5000)}\n`, says: /nested deeper than 64/ },
  { what: '5000 levels of JSON arrays', file: 'deep.json', text: `{"hosts": ${'['.repeat(5000)}${']'.repeat(5000)}}`, says: /nested deeper than 64/ },
  { what: '3000 compact YAML sequences', file: 'dash.yaml', text: `jobs:\n  ${'- '.repeat(3000)}x\n`, says: /nested deeper than 64/ },
  { what: 'duplicate keys in JSON', file: 'dup.json', text: '{"hosts": {"a": {"address": "x"}, "a": {"address": "y"}}}', says: /"hosts\.a" appears twice/ },
  { what: 'a __proto__ host', file: 'proto.json', text: '{"hosts": {"__proto__": {"address": "x"}}}', says: /__proto__/ },
  { what: 'a job on host toString', text: yaml(job().replace('host: local', 'host: toString')), says: /unknown host "toString"/ },
  { what: 'a job on host constructor', text: yaml(job().replace('host: local', 'host: constructor')), says: /unknown host "constructor"/ },
  { what: 'a relay host hasOwnProperty', text: yaml('hosts:\n  b: {address: 10.0.0.2, wake: {method: ssh-relay, relayHost: hasOwnProperty, mac: "52:54:00:00:00:01", address: 10.0.0.255}}\n'), says: /relayHost: expected another entry under hosts, got "hasOwnProperty"/ },
  { what: 'a host named local', text: yaml('hosts:\n  local: {address: 10.0.0.2}\n'), says: /"local" means this machine/ },
  { what: 'wake to the limited broadcast', text: yaml(`hosts:\n  b: {address: 10.0.0.2, wake: {mac: "52:54:00:00:00:01", address: ${LIMITED_BROADCAST}}}\n`), says: /limited broadcast/ },
  { what: 'wake to 0.0.0.0', text: yaml('hosts:\n  b: {address: 10.0.0.2, wake: {mac: "52:54:00:00:00:01", address: 0.0.0.0}}\n'), says: /0\.0\.0\.0/ },
  { what: 'address 999.1.1.1', text: yaml('hosts:\n  b: {address: 999.1.1.1}\n'), says: /hosts\.b\.address: "999\.1\.1\.1" is not an IPv4 address/ },
  { what: 'address 10.0.0', text: yaml('hosts:\n  b: {address: 10.0.0}\n'), says: /not an IPv4 address/ },
  { what: 'a 300-character host name', text: yaml(`hosts:\n  b: {address: ${'a'.repeat(60)}.${'b'.repeat(60)}.${'c'.repeat(60)}.${'d'.repeat(60)}.${'e'.repeat(60)}}\n`), says: /at most 253/ },
  { what: 'a 64+ character DNS label', text: yaml(`hosts:\n  b: {address: ${'a'.repeat(70)}.lan}\n`), says: /at most 63/ },
  { what: 'a duration of 1e308', text: yaml('hosts:\n  b: {address: 10.0.0.2, readyTimeout: 1e308}\n'), says: /readyTimeout of .* seconds is longer/ },
  { what: 'a duration of 99999999999999d', text: yaml('hosts:\n  b: {address: 10.0.0.2, leaseTtl: 99999999999999d}\n'), says: /leaseTtl of .* seconds is longer/ },
  { what: 'a job name too long for a unit', text: yaml(job().replace('name: j', `name: ${'j'.repeat(300)}`)), says: /at most 64 characters/ },
  { what: 'a schedule that is a shell command', text: yaml(job('\n    schedule: "$(reboot)"')), says: /systemd calendar expression/ },
  { what: 'an exclude equal to the source', text: yaml('jobs:\n  - name: j\n    host: local\n    datasets: [{source: p/a, target: q/a, recursive: true, exclude: [p/a]}]\n'), says: /is the source itself/ },
  { what: 'a target inside another recursive target', text: yaml('jobs:\n  - name: j\n    host: local\n    datasets: [{source: p/a, target: q/a, recursive: true}]\n  - name: k\n    host: local\n    datasets: [{source: p/b, target: q/a/b}]\n'), says: /inside the recursive target "q\/a"/ },
  { what: 'a 10 MB path', text: `stateDirectory: /${'x'.repeat(10_000)}\n`, says: /at most 4096/ },
  { what: 'a state directory under /proc', text: 'stateDirectory: /proc/1/hozo\n' + job(), says: /must not be under \/proc/ },
  { what: 'a newline in a host name', file: 'nl.json', text: JSON.stringify({ stateDirectory: '/tmp/x', hosts: { 'a\nb': { address: 'x' } } }), says: /hosts\["a\\nb"\]: "a\\nb" is not a valid name/ },
  { what: 'a wrong type', text: yaml('hosts:\n  b: {address: 10.0.0.2, port: "twenty-two"}\n'), says: /hosts\.b\.port: expected a number, got string "twenty-two"/ },
  { what: 'a missing field', text: yaml('jobs:\n  - name: j\n    datasets: [{source: p/a, target: q/a}]\n'), says: /jobs\[0\]\.host: missing \(expected a string\)/ },
  { what: 'YAML syntax', text: 'hosts: {a: [}\n', says: /cannot parse YAML/ },
];

function fileFor(r: Row, i: number): string {
  if (r.make !== undefined) return r.make();
  const p = join(dir, r.file ?? `row${i}.yaml`);
  writeFileSync(p, r.text!);
  chmodSync(p, 0o644);
  return p;
}

const asNobody = process.geteuid?.() === 0;

/** The built CLI, asynchronously (a synchronous spawn would block the test worker's own messages for seconds). */
async function hozo(args: readonly string[], user?: string) {
  const argv = user === undefined ? [process.execPath, HOZO, ...args] : ['setpriv', '--reuid=nobody', '--regid=nogroup', '--clear-groups', process.execPath, HOZO, ...args];
  const t = Date.now();
  const r = await execa(argv[0]!, argv.slice(1), { reject: false, timeout: 20_000, maxBuffer: 16 * 1024 * 1024, env: { HOZO_CONFIG: '' }, stdin: 'ignore' });
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

  it('an empty config: config check warns that nothing is configured (exit 0); run exits 2', async () => {
    for (const text of ['', '# only a comment\n', 'null\n']) {
      const p = join(dir, 'empty.yaml');
      writeFileSync(p, text);
      const check = await hozo(['--config', p, 'config', 'check']);
      expect(check.status).toBe(0);
      expect(check.stdout).toMatch(/warning: nothing is configured/);
      expect((await hozo(['--config', p, 'run', 'x'])).status).toBe(2);
    }
  });

  it('a UTF-8 BOM is accepted in JSON and YAML alike', async () => {
    for (const [name, text] of [['bom.json', '\ufeff{"jobs": []}'], ['bom.yaml', '\ufeffjobs: []\n']] as const) {
      const p = join(dir, name);
      writeFileSync(p, text);
      const r = await hozo(['--config', p, 'config', 'check']);
      expect(r.status, r.stderr).toBe(0);
    }
  });
});
