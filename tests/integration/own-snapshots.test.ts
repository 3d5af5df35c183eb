// Own snapshots and hooks end to end on real ZFS over real SSH (zfs-fuse on both sides, the box in a network
// namespace), with the real `hozo` binary; and a real PostgreSQL 15 server whose data directory is on a lab dataset:
// snapshot with a CHECKPOINT hook while a writer commits rows, back up, restore, start a second server on the
// restored data, and find every row committed before the snapshot.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLab, labPrerequisites, type Lab } from '../../src/lab/lab.js';
import { hozo, hozoJson, writeConfig } from '../helpers/hozo.js';
import { isOwnSnapshot } from '../../src/job/snapshots.js';
import { expectOutput } from '../helpers/outputs.js';

const missing = labPrerequisites();
if (missing.length > 0) console.warn(`SKIP: tests/integration/own-snapshots.test.ts needs ${missing.join(', ')}`);
const PGBIN = '/usr/lib/postgresql/15/bin';
const pgMissing = ['initdb', 'pg_ctl', 'postgres'].filter((b) => !existsSync(join(PGBIN, b)));
if (pgMissing.length > 0)
  console.warn(
    `SKIP: the PostgreSQL case of tests/integration/own-snapshots.test.ts needs Debian's postgresql-15 (${pgMissing.join(', ')} missing in ${PGBIN}; scripts/setup.sh installs it)`,
  );

describe.skipIf(missing.length > 0)('own snapshots and hooks (real zfs-fuse, OpenSSH)', () => {
  let lab: Lab;
  let src: string;
  let mnt: string;
  let pool: string;
  let hookLog: string;
  const hostSnaps = async (ds: string) =>
    (await lab.hostZfs(['list', '-H', '-t', 'snapshot', '-o', 'name', '-s', 'createtxg', '-r', ds]))
      .split('\n')
      .filter((l) => l.startsWith(ds + '@'))
      .map((l) => l.slice(ds.length + 1));
  const boxSnaps = async (ds: string) =>
    (await lab.box.zfs(['list', '-H', '-t', 'snapshot', '-o', 'name', '-s', 'createtxg', '-r', ds]))
      .split('\n')
      .filter((l) => l.startsWith(ds + '@'))
      .map((l) => l.slice(ds.length + 1));
  const guid = (z: (a: string[]) => Promise<string>, snap: string) => z(['get', '-H', '-p', '-o', 'value', 'guid', snap]);
  // A hook that appends one line to hookLog: the point and what its environment says.
  const record = (tag: string, exit = 0): string[] => [
    'sh',
    '-c',
    `echo "${tag} $HOZO_HOOK job=$HOZO_JOB snap=\${HOZO_SNAPSHOT:-} ds=\${HOZO_DATASET:-} ok=\${HOZO_SNAPSHOT_OK:-} result=\${HOZO_RESULT:-}" >> ${hookLog}; exit ${exit}`,
  ];
  const hookLines = () => (existsSync(hookLog) ? readFileSync(hookLog, 'utf8').trim().split('\n').filter(Boolean) : []);
  const config = (name: string, job: Record<string, unknown>) =>
    writeConfig(
      lab.dir,
      {
        stateDirectory: join(lab.dir, `state-${name}`),
        hosts: { box: { ...lab.box.hostConfig(), wake: undefined, readyTimeout: 4 } },
        jobs: [{ name, host: 'box', retries: 0, ...job }],
      },
      `${name}.yaml`,
    );

  beforeAll(async () => {
    lab = await createLab({ id: 'own', poolSizeMB: 768 });
    src = lab.source.name;
    mnt = lab.source.mountpoint;
    pool = lab.box.pool.name;
    hookLog = join(lab.dir, 'hooks.log');
    for (const ds of ['app', 'app/db', 'app/cache', 'etc']) await lab.hostZfs(['create', `${src}/${ds}`]);
    writeFileSync(join(mnt, 'app/db/rows'), 'row\n'.repeat(1000));
    writeFileSync(join(mnt, 'etc/conf'), 'conf\n');
  });

  afterAll(async () => {
    await lab?.destroy();
  });

  const twoEntries = (hooks: Record<string, unknown> = {}, dsHooks: Record<string, unknown> = {}) => ({
    snapshot: { create: true, keep: 3 },
    ...(Object.keys(hooks).length ? { hooks } : {}),
    datasets: [
      { source: `${src}/app`, target: `${pool}/own/app`, recursive: true, exclude: [`${src}/app/cache`] },
      { source: `${src}/etc`, target: `${pool}/own/etc`, ...(Object.keys(dsHooks).length ? { hooks: dsHooks } : {}) },
    ],
  });

  it('plan names the snapshot a run would take, takes none and runs no hook', async () => {
    const cfg = config('own', twoEntries({ preRun: record('job'), preSnapshot: record('job') }));
    const r = await hozoJson(cfg, 'plan', 'own');
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.json.ownSnapshot).toMatchObject({ datasets: 3, atomic: false, taken: false, pruned: 0 });
    expectOutput('job-report', r.json);
    expect(isOwnSnapshot('hozo_own', r.json.ownSnapshot.name)).toBe(true);
    expect(await hostSnaps(`${src}/app`)).toEqual([]);
    expect(hookLines()).toEqual([]);
  });

  it('a run snapshots every dataset of the job (not the excluded one) before planning, sends it, hooks run in order', async () => {
    const cfg = config(
      'own',
      twoEntries(
        { preRun: record('job'), preSnapshot: record('job'), postSnapshot: record('job'), postRun: record('job') },
        { preSnapshot: record('etc'), postSnapshot: record('etc'), postRun: record('etc') },
      ),
    );
    const r = await hozoJson(cfg, 'run', 'own');
    expect(r.exitCode, r.stderr).toBe(0);
    const name: string = r.json.ownSnapshot.name;
    expect(r.json.ownSnapshot).toEqual({ name, datasets: 3, atomic: false, taken: true, pruned: 0 });
    expectOutput('job-report', r.json);
    // zfs-fuse has no multi-name `zfs snapshot`: said, not hidden.
    expect(r.json.warnings.join('\n')).toContain('taken dataset by dataset');
    expect(r.json.datasets.map((d: any) => [d.source, d.result, d.newest, d.verified])).toEqual([
      [`${src}/app`, 'sent', name, true],
      [`${src}/app/db`, 'sent', name, true],
      [`${src}/etc`, 'sent', name, true],
    ]);
    for (const ds of ['app', 'app/db', 'etc'])
      expect(await guid((a) => lab.box.zfs(a), `${pool}/own/${ds}@${name}`)).toBe(await guid((a) => lab.hostZfs(a), `${src}/${ds}@${name}`));
    expect(await hostSnaps(`${src}/app/cache`)).toEqual([]);
    expect(hookLines()).toEqual([
      'job preRun job=own snap= ds= ok= result=',
      `job preSnapshot job=own snap=${name} ds= ok= result=`,
      `etc preSnapshot job=own snap=${name} ds=${src}/etc ok= result=`,
      `etc postSnapshot job=own snap=${name} ds=${src}/etc ok=1 result=`,
      `job postSnapshot job=own snap=${name} ds= ok=1 result=`,
      `etc postRun job=own snap= ds=${src}/etc ok= result=sent`,
      'job postRun job=own snap= ds= ok= result=ok',
    ]);
  });

  it('later runs keep `keep` own snapshots: never a held one, another prefix or a snapshot it did not name', async () => {
    const cfg = config('own', twoEntries());
    await lab.hostZfs(['snapshot', `${src}/etc@manual`]);
    await lab.hostZfs(['snapshot', `${src}/etc@hozo_other_20200101T000000Z`]);
    const first = (await hostSnaps(`${src}/etc`)).find((s) => isOwnSnapshot('hozo_own', s))!;
    await lab.hostZfs(['hold', 'mine', `${src}/etc@${first}`]);
    const taken: string[] = [];
    for (let i = 0; i < 4; i++) {
      const r = await hozoJson(cfg, 'run', 'own');
      expect(r.exitCode, r.stderr).toBe(0);
      taken.push(r.json.ownSnapshot.name);
      expect(new Set(taken).size, 'a new name every run (also within one second)').toBe(taken.length);
    }
    const own = (await hostSnaps(`${src}/etc`)).filter((s) => isOwnSnapshot('hozo_own', s));
    // The newest three, and the held first one.
    expect(own).toEqual([first, ...taken.slice(-3)]);
    expect(await hostSnaps(`${src}/etc`)).toEqual(expect.arrayContaining(['manual', 'hozo_other_20200101T000000Z']));
    expect((await hostSnaps(`${src}/app/db`)).filter((s) => isOwnSnapshot('hozo_own', s))).toEqual(taken.slice(-3));
    // The box keeps what it received (its retention is the agent's, not the source's keep).
    expect((await boxSnaps(`${pool}/own/etc`)).filter((s) => isOwnSnapshot('hozo_own', s)).length).toBeGreaterThanOrEqual(5);
    await lab.hostZfs(['release', 'mine', `${src}/etc@${first}`]);
  });

  it('a failing dataset preSnapshot: that entry gets no snapshot and fails (exit 1), the other goes on', async () => {
    writeFileSync(hookLog, '');
    const cfg = config('own', twoEntries({ postSnapshot: record('job') }, { preSnapshot: record('etc', 3), postSnapshot: record('etc') }));
    const before = await hostSnaps(`${src}/etc`);
    const r = await hozoJson(cfg, 'run', 'own');
    expect(r.exitCode, r.stderr).toBe(1);
    expect(r.json.result).toBe('failed');
    const name: string = r.json.ownSnapshot.name;
    const etc = r.json.datasets.find((d: any) => d.source === `${src}/etc`);
    expect(etc).toMatchObject({ result: 'failed', error: { code: 'HOOK_FAILED' } });
    expect(etc.error.message).toContain('preSnapshot hook failed: exit 3');
    expect(r.json.datasets.filter((d: any) => d.source !== `${src}/etc`).map((d: any) => [d.result, d.newest])).toEqual([
      ['sent', name],
      ['sent', name],
    ]);
    const after = await hostSnaps(`${src}/etc`);
    expect(after).not.toContain(name);
    // Nothing else changed there but the prune of own snapshots beyond keep (the hold on the oldest is gone).
    expect(after).toEqual(before.filter((s) => after.includes(s)));
    expect(after.filter((s) => isOwnSnapshot('hozo_own', s))).toHaveLength(3);
    expect(r.stderr).toContain('preSnapshot hook failed: exit 3');
    // Its postSnapshot does not run (its preSnapshot failed); the job's does, told the snapshot was not whole.
    expect(hookLines()).toEqual([`etc preSnapshot job=own snap=${name} ds=${src}/etc ok= result=`, `job postSnapshot job=own snap=${name} ds= ok=0 result=`]);
  });

  it('a failing job preRun: nothing is done (no snapshot, nothing sent), exit 1; postRun still runs with the result', async () => {
    writeFileSync(hookLog, '');
    const cfg = config('own', twoEntries({ preRun: record('job', 1), postRun: record('job') }));
    const before = await hostSnaps(`${src}/app`);
    const r = await hozoJson(cfg, 'run', 'own');
    expect(r.exitCode).toBe(1);
    expect(r.json).toMatchObject({ result: 'error', error: { code: 'HOOK_FAILED' }, datasets: [] });
    expect(r.json.ownSnapshot).toBeUndefined();
    expect(await hostSnaps(`${src}/app`)).toEqual(before);
    expect(hookLines()).toEqual(['job preRun job=own snap= ds= ok= result=', 'job postRun job=own snap= ds= ok= result=error']);
  });

  it('a hook that outlives its timeout is killed and fails its dataset; the run ends in bounded time', async () => {
    const cfg = config('own', twoEntries({}, { preSnapshot: { command: ['sleep', '30'], timeout: 1 } }));
    const t0 = Date.now();
    const r = await hozoJson(cfg, 'run', 'own');
    expect(r.exitCode).toBe(1);
    expect((Date.now() - t0) / 1000).toBeLessThan(25);
    expect(r.json.datasets.find((d: any) => d.source === `${src}/etc`).error.message).toContain('timed out after 1 s (killed)');
  });

  it('refuses a preSnapshot hook without snapshot.create at config check (exit 2, the path named)', async () => {
    const cfg = config('bad', { hooks: { preSnapshot: ['true'] }, datasets: [{ source: `${src}/etc`, target: `${pool}/bad/etc` }] });
    const r = await hozo(cfg, 'config', 'check');
    expect(r.exitCode).toBe(2);
    expect(r.stderr + r.stdout).toContain('jobs[0].hooks.preSnapshot');
  });

  describe.skipIf(pgMissing.length > 0)('PostgreSQL on a lab dataset', () => {
    const port = 55000 + (process.pid % 400);
    let data: string;
    let sock: string;
    const pgRun = (args: string[]) => execa('runuser', ['-u', 'postgres', '--', ...args], { reject: false, timeout: 60_000 });
    const psql = (p: number, sql: string) =>
      execFileSync('psql', ['-X', '-qAt', '-h', sock, '-p', String(p), '-U', 'postgres', '-d', 'postgres', '-c', sql], { timeout: 30_000 })
        .toString()
        .trim();

    afterAll(async () => {
      for (const d of [data, join(mnt, 'pg-restored/data')])
        if (d !== undefined && existsSync(join(d, 'postmaster.pid'))) await pgRun([join(PGBIN, 'pg_ctl'), '-D', d, '-m', 'immediate', '-w', 'stop']);
    });

    it('a CHECKPOINT preSnapshot hook while rows are committed; the restored copy starts and has every row committed before the snapshot', async () => {
      await lab.hostZfs(['create', `${src}/pg`]);
      sock = join(lab.dir, 'pgsock');
      await execa('mkdir', ['-p', sock]);
      await execa('chown', ['postgres', sock, join(mnt, 'pg')]);
      data = join(mnt, 'pg/data');
      const init = await pgRun([join(PGBIN, 'initdb'), '-D', data, '--auth=trust', '-U', 'postgres', '--no-sync']);
      expect(init.exitCode, init.stderr).toBe(0);
      const start = await pgRun([
        join(PGBIN, 'pg_ctl'),
        '-D',
        data,
        '-o',
        `-p ${port} -k ${sock} -c listen_addresses=''`,
        '-l',
        join(sock, 'pg.log'),
        '-w',
        'start',
      ]);
      expect(start.exitCode, start.stderr + readFileSync(join(sock, 'pg.log'), 'utf8')).toBe(0);
      psql(port, 'CREATE TABLE t (id int PRIMARY KEY, at timestamptz DEFAULT now())');
      psql(port, 'INSERT INTO t (id) SELECT generate_series(1, 5000)');

      // A writer commits one row at a time and records each id once its COMMIT returned.
      const acked = join(lab.dir, 'acked');
      writeFileSync(acked, '');
      const writer = spawn(
        'sh',
        [
          '-c',
          `i=5001; while [ $i -le 200000 ]; do psql -X -qAt -h ${sock} -p ${port} -U postgres -c "INSERT INTO t (id) VALUES ($i)" >/dev/null || exit 1; echo $i >> ${acked}; i=$((i+1)); done`,
        ],
        { stdio: 'ignore' },
      );
      try {
        await new Promise((r) => setTimeout(r, 1500));
        // The hook: a CHECKPOINT (what makes the snapshot's recovery short), and a note of the last acknowledged row.
        const atSnapshot = join(lab.dir, 'acked-at-snapshot');
        const cfg = config('pg', {
          snapshot: { create: true, keep: 2 },
          datasets: [
            {
              source: `${src}/pg`,
              target: `${pool}/own/pg`,
              hooks: {
                preSnapshot: {
                  command: ['sh', '-c', `psql -X -qAt -h ${sock} -p ${port} -U postgres -c CHECKPOINT && tail -n 1 ${acked} > ${atSnapshot}`],
                  timeout: 60,
                },
              },
            },
          ],
        });
        const r = await hozoJson(cfg, 'run', 'pg');
        expect(r.exitCode, r.stderr).toBe(0);
        expect(r.json.datasets[0]).toMatchObject({ result: 'sent', verified: true });
        const before = Number(readFileSync(atSnapshot, 'utf8').trim());
        expect(before).toBeGreaterThan(5000);

        // Restore from the box to a new dataset and start a second server on it (the first one stopped: one
        // postmaster per data directory lineage, and the restored copy is what a new machine would get).
        writer.kill('SIGTERM');
        const stopped = await pgRun([join(PGBIN, 'pg_ctl'), '-D', data, '-m', 'fast', '-w', 'stop']);
        expect(stopped.exitCode, stopped.stderr).toBe(0);
        const back = await hozoJson(cfg, 'restore', 'pg', '--dataset', `${src}/pg`, '--to', `${src}/pg-restored`, '--mount');
        expect(back.exitCode, back.stderr).toBe(0);
        const restored = join(mnt, 'pg-restored/data');
        // The snapshot holds the live server's postmaster.pid. On another machine its PID is dead and PostgreSQL
        // ignores it; here PIDs are reused (and a PID of another user looks alive to it), so it goes: no server
        // has ever run on this new copy.
        expect(existsSync(join(restored, 'postmaster.pid'))).toBe(true);
        rmSync(join(restored, 'postmaster.pid'));
        const up = await pgRun([
          join(PGBIN, 'pg_ctl'),
          '-D',
          restored,
          '-o',
          `-p ${port + 1} -k ${sock} -c listen_addresses=''`,
          '-l',
          join(sock, 'pg2.log'),
          '-w',
          'start',
        ]);
        expect(up.exitCode, up.stderr + readFileSync(join(sock, 'pg2.log'), 'utf8')).toBe(0);
        // It recovered (crash-consistent snapshot: the WAL replayed) and has every row committed before the hook.
        const log2 = readFileSync(join(sock, 'pg2.log'), 'utf8');
        expect(log2).toContain('automatic recovery in progress');
        expect(log2).toMatch(/redo done at/);
        const [count, max] = psql(port + 1, 'SELECT count(*), max(id) FROM t')
          .split('|')
          .map(Number);
        expect(max).toBeGreaterThanOrEqual(before);
        // No gaps: ids 1..max, each committed row once (nothing half-written).
        expect(count).toBe(max);
        expect(psql(port + 1, 'SELECT count(*) FROM t WHERE id <= ' + before)).toBe(String(before));
        console.log(
          `PostgreSQL: ${before} rows acknowledged at the preSnapshot hook; the restored copy recovered and has ${max} rows, ids 1..${max} without a gap`,
        );
        await pgRun([join(PGBIN, 'pg_ctl'), '-D', restored, '-m', 'fast', '-w', 'stop']);
      } finally {
        writer.kill('SIGKILL');
      }
    }, 240_000);
  });
});
