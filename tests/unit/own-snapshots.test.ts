// Own snapshots (names, what is pruned, which commands) and hooks (real processes: sh, sleep), and the config rules
// around them. The end-to-end runs on zfs-fuse are tests/integration/own-snapshots.test.ts.
import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { validateConfig } from '../../src/config/load.js';
import { HozoError } from '../../src/errors.js';
import { runHook } from '../../src/job/hooks.js';
import { freshOwnSnapshotName, isOwnSnapshot, ownSnapshotName, pruneList, snapshotCommands } from '../../src/job/snapshots.js';
import type { Logger } from '../../src/util/log.js';
import type { Capabilities, Inventory } from '../../src/zfs/types.js';

const caps = (openzfs: boolean): Capabilities => ({
  listParsable: openzfs,
  resumeTokens: openzfs,
  bookmarks: openzfs,
  sendFlags: new Set(),
  receiveFlags: new Set(),
  holds: true,
  mbuffer: false,
  pv: false,
  zstd: false,
  implementation: openzfs ? 'OpenZFS 2.3.2' : 'zfs-fuse (pool v23)',
});

function capture(): Logger & { lines: string[] } {
  const lines: string[] = [];
  const at = (lvl: string) => (m: string) => void lines.push(`${lvl} ${m}`);
  return { lines, interactive: false, error: at('error'), warn: at('warn'), info: at('info'), debug: at('debug'), progress() {} };
}

describe('own snapshot names', () => {
  it('are the prefix and the UTC second, sortable, and recognised only in exactly that form', () => {
    const n = ownSnapshotName('hozo_nightly', new Date('2026-12-04T21:50:07.999Z'));
    expect(n).toBe('hozo_nightly_20261204T215007Z');
    expect(isOwnSnapshot('hozo_nightly', n)).toBe(true);
    for (const other of [
      'hozo_nightly_20261204T215007',
      'hozo_nightly_20261204T215007Zx',
      'x_hozo_nightly_20261204T215007Z',
      'hozo_nightly2_20261204T215007Z',
      'autosnap_2026-12-04_21:50:07_daily',
      'hozo_nightly_2026120AT215007Z',
    ]) {
      expect(isOwnSnapshot('hozo_nightly', other), other).toBe(false);
    }
    // Another job's prefix that starts like this one is not this job's.
    expect(isOwnSnapshot('hozo_a', ownSnapshotName('hozo_a_b', new Date()))).toBe(false);
  });

  it('move on by a second when the name is taken (two runs in one second, a clock that went back)', () => {
    const at = new Date('2026-12-04T21:50:07Z');
    const inv: Inventory = new Map([
      ['p/a', { name: 'p/a', type: 'filesystem', guid: '1', snapshots: [{ name: 'j_20261204T215007Z', guid: '2', createtxg: 5, creation: 0 }] }],
    ]) as unknown as Inventory;
    expect(freshOwnSnapshotName('j', at, inv, ['p/a'])).toBe('j_20261204T215008Z');
    expect(freshOwnSnapshotName('j', at, inv, ['p/b'])).toBe('j_20261204T215007Z');
  });
});

describe('pruneList', () => {
  const own = (i: number, extra: { userrefs?: number } = {}) => ({
    name: ownSnapshotName('j', new Date(Date.UTC(2026, 0, 1, 0, 0, i))),
    createtxg: 10 + i,
    ...extra,
  });
  const policy = { prefix: 'j', keep: 3 };

  it('keeps the newest `keep` own snapshots and never touches others', () => {
    const snaps = [
      { name: 'manual', createtxg: 1 },
      ...[1, 2, 3, 4, 5].map((i) => own(i)),
      { name: 'autosnap_x', createtxg: 99 },
      { name: 'k_20260101T000001Z', createtxg: 2 },
    ];
    expect(pruneList(snaps, policy, new Set())).toEqual([own(1).name, own(2).name]);
  });

  it('never a held one, nor a named base', () => {
    const snaps = [own(1, { userrefs: 1 }), own(2), own(3), own(4), own(5)];
    expect(pruneList(snaps, policy, new Set([own(2).name]))).toEqual([]);
  });

  it('orders by createtxg, so a clock that went back cannot make it prune the newest', () => {
    // The newest (createtxg 40) carries the oldest-looking name.
    const snaps = [own(5), own(6), own(7), { name: ownSnapshotName('j', new Date(Date.UTC(2025, 0, 1))), createtxg: 40 }];
    expect(pruneList(snaps, policy, new Set())).toEqual([own(5).name]);
  });
});

describe('snapshotCommands', () => {
  const sets = [['p/a', 'p/a/b'], ['q/x']];
  it('OpenZFS: one command, every name (one transaction group)', () => {
    expect(snapshotCommands(sets, [false, false], 's', caps(true))).toEqual({ commands: [['zfs', 'snapshot', 'p/a@s', 'p/a/b@s', 'q/x@s']], atomic: true });
  });
  it('zfs-fuse: snapshot -r for a whole tree, one by one otherwise, and says it is not atomic', () => {
    expect(snapshotCommands(sets, [true, false], 's', caps(false))).toEqual({
      commands: [
        ['zfs', 'snapshot', '-r', 'p/a@s'],
        ['zfs', 'snapshot', 'q/x@s'],
      ],
      atomic: false,
    });
    expect(snapshotCommands([['p/a', 'p/a/b']], [true], 's', caps(false))).toEqual({ commands: [['zfs', 'snapshot', '-r', 'p/a@s']], atomic: true });
  });
  it('refuses a hostile dataset name rather than pass it to zfs', () => {
    expect(() => snapshotCommands([['-r p/a']], [false], 's', caps(true))).toThrow(HozoError);
  });
});

describe('hooks (real processes)', () => {
  it('passes the environment, logs each output line, and succeeds on exit 0', async () => {
    const log = capture();
    const o = await runHook(
      'preSnapshot',
      { command: ['sh', '-c', 'echo "job=$HOZO_JOB hook=$HOZO_HOOK snap=$HOZO_SNAPSHOT"; echo oops >&2'], timeout: 10 },
      { HOZO_JOB: 'j', HOZO_SNAPSHOT: 's1' },
      log,
      'p/a',
    );
    expect(o.ok).toBe(true);
    expect(log.lines).toContain('info p/a: preSnapshot: job=j hook=preSnapshot snap=s1');
    expect(log.lines).toContain('warn p/a: preSnapshot: oops');
  });

  it('fails on a non-zero exit with its last lines, and on a program that does not exist', async () => {
    const log = capture();
    const o = await runHook('preRun', { command: ['sh', '-c', 'echo one; echo two; exit 3'], timeout: 10 }, {}, log, 'job j');
    expect(o).toMatchObject({ ok: false, failure: 'exit 3', tail: ['one', 'two'] });
    const missing = await runHook('preRun', { command: ['/nonexistent/hook'], timeout: 10 }, {}, log, 'job j');
    expect(missing).toMatchObject({ ok: false, failure: 'could not start /nonexistent/hook: ENOENT' });
  });

  it('is an argv, never a shell string: metacharacters reach the program as they are', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hozo-hook-'));
    const log = capture();
    const o = await runHook('preRun', { command: ['touch', join(dir, 'a; touch b')], timeout: 10 }, {}, log, 'j');
    expect(o.ok).toBe(true);
    expect(execFileSync('ls', [dir]).toString().trim()).toBe('a; touch b');
  });

  it('a timeout kills the whole process group (also what the hook started) within its grace', async () => {
    const marker = `${process.pid}${Date.now() % 100000}`;
    const log = capture();
    const t0 = Date.now();
    // sh starts a child sleep and waits; both are in the hook's group and both ignore SIGTERM (an ignored signal is
    // inherited across exec): only the SIGKILL after the grace ends them.
    const o = await runHook('preSnapshot', { command: ['sh', '-c', `trap "" TERM; sleep 3${marker}.5 & wait`], timeout: 1 }, {}, log, 'p/a');
    const took = (Date.now() - t0) / 1000;
    expect(o).toMatchObject({ ok: false, failure: 'timed out after 1 s (killed)' });
    expect(took).toBeLessThan(9);
    await new Promise((r) => setTimeout(r, 500));
    const left = execFileSync('sh', ['-c', `pgrep -f "[s]leep 3${marker}.5" || true`])
      .toString()
      .trim();
    expect(left, 'nothing of the hook is left running').toBe('');
  }, 15_000);

  it('does not wait for a daemon the hook left holding its output (it ended: its exit counts)', async () => {
    const log = capture();
    const t0 = Date.now();
    const o = await runHook('postRun', { command: ['sh', '-c', 'setsid sleep 20 & echo started'], timeout: 60 }, {}, log, 'j');
    expect(o.ok).toBe(true);
    expect((Date.now() - t0) / 1000).toBeLessThan(8);
    execFileSync('sh', ['-c', 'pkill -f "^sleep 20$" || true']);
  });

  it('escapes control characters in what it logs', async () => {
    const log = capture();
    await runHook('postRun', { command: ['printf', 'a\\033[31mred\\n'], timeout: 10 }, {}, log, 'j');
    expect(log.lines).toContain('info j: postRun: a\\x1b[31mred');
  });
});

describe('config: snapshot and hooks', () => {
  const base = (job: Record<string, unknown>, more: Record<string, unknown>[] = []) => ({
    hosts: { box: { address: '10.0.0.2', wake: { method: 'none' } } },
    jobs: [{ name: 'j', host: 'box', datasets: [{ source: 'tank/a', target: 'b/a' }], ...job }, ...more],
  });
  const problems = (data: unknown): string => {
    try {
      validateConfig(data, 't.yaml');
      return '';
    } catch (e) {
      return (e as Error).message;
    }
  };

  it('accepts argv and {command, timeout} hooks at job and dataset level, with defaults', () => {
    const c = validateConfig(
      base({
        snapshot: { create: true },
        hooks: { preRun: ['true'], postSnapshot: { command: ['logger', 'x'], timeout: '5m' } },
        datasets: [{ source: 'tank/a', target: 'b/a', hooks: { preSnapshot: ['psql', '-c', 'CHECKPOINT'] } }],
      }),
    );
    const j = c.jobs[0]!;
    expect(j.snapshot).toEqual({ create: true, keep: 24 });
    expect(j.hooks).toEqual({ preRun: { command: ['true'], timeout: 120 }, postSnapshot: { command: ['logger', 'x'], timeout: 300 } });
    expect(j.datasets[0]!.hooks).toEqual({ preSnapshot: { command: ['psql', '-c', 'CHECKPOINT'], timeout: 120 } });
  });

  it.each([
    [
      'a preSnapshot without snapshot.create',
      base({ hooks: { preSnapshot: ['true'] } }),
      "jobs[0].hooks.preSnapshot: preSnapshot runs around hozo's own snapshot",
    ],
    [
      'a dataset postSnapshot without snapshot.create',
      base({ datasets: [{ source: 'tank/a', target: 'b/a', hooks: { postSnapshot: ['true'] } }] }),
      'jobs[0].datasets[0].hooks.postSnapshot',
    ],
    ['a shell string as hook', base({ hooks: { preRun: 'pg_dump > /x' } }), 'jobs[0].hooks.preRun'],
    ['an empty argv', base({ hooks: { preRun: [] } }), 'jobs[0].hooks.preRun'],
    ['an unknown hook point', base({ hooks: { preSend: ['true'] } }), 'jobs[0].hooks'],
    ['keep 0', base({ snapshot: { create: true, keep: 0 } }), 'jobs[0].snapshot.keep'],
    ['a prefix with @', base({ snapshot: { create: true, prefix: 'a@b' } }), 'jobs[0].snapshot.prefix'],
    ['a hook timeout of 1e308', base({ hooks: { preRun: { command: ['true'], timeout: 1e308 } } }), 'jobs[0].hooks.preRun'],
    [
      'two jobs snapshotting one source under one prefix',
      base({ snapshot: { create: true, prefix: 'same' } }, [
        { name: 'k', host: 'box', snapshot: { create: true, prefix: 'same' }, datasets: [{ source: 'tank/a', target: 'b/k' }] },
      ]),
      'jobs[1].snapshot.prefix: jobs[0] also snapshots "tank/a" with prefix "same"',
    ],
  ])('refuses %s (exit 2 at config check, naming the path)', (_what, data, expected) => {
    expect(problems(data)).toContain(expected);
  });

  it('two jobs on one source with their default prefixes are fine (each prunes only its own)', () => {
    expect(
      problems(base({ snapshot: { create: true } }, [{ name: 'k', host: 'box', snapshot: { create: true }, datasets: [{ source: 'tank/a', target: 'b/k' }] }])),
    ).toBe('');
  });
});
