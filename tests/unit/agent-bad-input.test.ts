// hozo-agent and bad input (issue 12): prototype names are no commands, its paths follow the controller's rules (and
// are resolved where used), argv without NUL, messages in hozo's words with user text escaped, bounded work.
import { mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { validateAgentConfig } from '../../agent/config.js';
import { main } from '../../agent/main.js';

function capture() {
  const out: string[] = [];
  const err: string[] = [];
  vi.spyOn(process.stdout, 'write').mockImplementation((s) => (out.push(String(s)), true));
  vi.spyOn(process.stderr, 'write').mockImplementation((s) => (err.push(String(s)), true));
  return { out, err };
}

const problems = (data: unknown): string => {
  try {
    validateAgentConfig(data);
    return '';
  } catch (e) {
    return (e as Error).message;
  }
};
const minimal = { roots: ['backup/hozo'] };
const RAW = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202a-\u202e]/;

describe('hozo-agent: bad input', () => {
  afterEach(() => vi.restoreAllMocks());
  const dir = mkdtempSync(join(tmpdir(), 'hozo-agent-bad-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it.each(['constructor', 'toString', '__proto__', 'hasOwnProperty', 'valueOf', 'isPrototypeOf'])(
    '`%s --help` is an unknown command (exit 2), not a crash',
    async (c) => {
      const { out, err } = capture();
      expect(await main([c, '--help'])).toBe(2);
      vi.restoreAllMocks();
      expect(err.join('')).toBe(`hozo-agent: unknown command "${c}"\n(hozo-agent --help for usage)\n`);
      expect(out.join('')).toBe('');
    },
  );

  it('an unknown command or argument is escaped', async () => {
    const { err } = capture();
    expect(await main(['x\x1b[2J\u202e'])).toBe(2);
    expect(await main(['serve', 'y\nz'])).toBe(2);
    vi.restoreAllMocks();
    expect(err.join('')).toContain('unknown command "x\\x1b[2J\\u202e"');
    expect(err.join('')).toContain('unexpected argument "y\\nz"');
    expect(err.join('').replace(/\n/g, '')).not.toMatch(RAW);
  });

  it.each([
    ['stateDirectory under /proc', { stateDirectory: '/proc/1/x' }, 'stateDirectory: must not be under /proc, /sys or /dev'],
    ['stateDirectory //proc', { stateDirectory: '//proc/1/x' }, 'stateDirectory: must not be under /proc, /sys or /dev'],
    ['leaseDirectory /dev/null/x', { leaseDirectory: '/dev/null/x' }, 'leaseDirectory: must not be under /proc, /sys or /dev'],
    ['a newline in a path', { stateDirectory: '/tmp/a\nb' }, 'stateDirectory: a path with control characters'],
    ['a 10 KB logFile', { logFile: `/${'a'.repeat(10_000)}` }, 'logFile: expected a path of at most 4096 characters'],
    ['".." in a path', { leaseDirectory: '/var/lib/../../proc/x' }, 'leaseDirectory: a ".." component is refused'],
    ['a NUL in poweroffCommand', { poweroffCommand: ['/bin/false\u0000'] }, 'poweroffCommand[0]: contains a NUL byte'],
    ['controllers: null', { controllers: null }, 'controllers: expected a mapping of names to entries'],
    ['a bad pool name', { pools: ['a\u001b[31m'] }, 'pools[0]: not a valid pool name: "a\\x1b[31m"'],
  ])('%s is refused', (_what, patch, message) => {
    const m = problems({ ...minimal, ...patch });
    expect(m).toContain(message);
    expect(m.replace(/\n/g, '')).not.toMatch(RAW);
  });

  it('/dev directories stay allowed where the agent only reads (zpool import -d)', () => {
    expect(validateAgentConfig({ ...minimal, importDirectories: ['/dev/disk/by-id'] }).importDirectories).toEqual(['/dev/disk/by-id']);
  });

  it('overlapping roots of sections are found in linear time (10,000 roots each)', () => {
    const many = (p: string) => Array.from({ length: 10_000 }, (_, i) => `${p}/r${i}`);
    const t = Date.now();
    expect(problems({ roots: [], controllers: { a: { roots: many('backup/a') }, b: { roots: many('backup/b') } } })).toBe('');
    expect(Date.now() - t).toBeLessThan(5000);
    expect(problems({ roots: [], controllers: { a: { roots: ['backup/a'] }, b: { roots: ['backup/a/x'] } } })).toContain(
      'controllers.a root "backup/a" overlaps controllers.b root "backup/a/x"',
    );
    expect(problems({ roots: ['backup/a/x'], controllers: { b: { roots: ['backup/a'] } } })).toContain(
      'roots root "backup/a/x" overlaps controllers.b root "backup/a"',
    );
  });

  it('check-config resolves the paths: a stateDirectory through a symlink into /proc is refused (exit 1), nothing created', async () => {
    const link = join(dir, 'proclink');
    symlinkSync('/proc/1', link);
    const config = join(dir, 'agent.json');
    writeFileSync(
      config,
      JSON.stringify({ ...minimal, stateDirectory: join(link, 'x'), leaseDirectory: join(dir, 'leases'), logFile: join(dir, 'agent.log') }),
    );
    const { err } = capture();
    expect(await main(['check-config', '--config', config])).toBe(1);
    vi.restoreAllMocks();
    expect(err.join('')).toMatch(/stateDirectory: .*proclink resolves to \/proc\/1/);
  });

  it('check-config: a JSON syntax error has a line and column', async () => {
    const config = join(dir, 'bad.json');
    writeFileSync(config, '{\n  "roots": ["backup/hozo"],\n}');
    const { err } = capture();
    expect(await main(['check-config', '--config', config])).toBe(1);
    vi.restoreAllMocks();
    expect(err.join('')).toMatch(/not valid JSON: line 3, column 1: expected double-quoted property name/);
  });
});
