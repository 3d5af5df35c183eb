// The replication core end to end on real ZFS over real SSH: a source pool on this machine's zfs-fuse, the box in a
// network namespace with its own zfs-fuse and sshd, and the real `hozo` binary in between.
import { expectOutput } from '../helpers/outputs.js';
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLab, labPrerequisites, type Lab } from '../../src/lab/lab.js';
import { hozo, hozoJson, startHozo, writeConfig } from '../helpers/hozo.js';
import { SshRunner } from '../../src/transport/ssh.js';
import { validateConfig } from '../../src/config/load.js';

const missing = labPrerequisites();
if (missing.length > 0) console.warn(`SKIP: tests/integration/replication.test.ts needs ${missing.join(', ')}`);

describe.skipIf(missing.length > 0)('replication over SSH into the lab box (real zfs-fuse, OpenSSH)', () => {
  let lab: Lab;
  let config: string;
  let src: string;
  let mnt: string;
  const snapCounter = { n: 0 };

  async function snapAll(): Promise<string> {
    const name = `s${++snapCounter.n}`;
    for (const ds of ['data', 'data/db', 'data/www', 'data/cache']) await lab.hostZfs(['snapshot', `${src}/${ds}@${name}`]);
    return name;
  }
  const boxSnaps = async (ds: string) =>
    (await lab.box.zfs(['list', '-H', '-t', 'snapshot', '-o', 'name', '-s', 'createtxg', '-r', ds]))
      .split('\n')
      .filter(Boolean)
      .filter((l) => l.startsWith(ds + '@'));
  const guid = async (z: (a: string[]) => Promise<string>, snap: string) => z(['get', '-H', '-p', '-o', 'value', 'guid', snap]);
  const hostZ = (a: string[]) => lab.hostZfs(a);
  const boxZ = (a: string[]) => lab.box.zfs(a);

  beforeAll(async () => {
    lab = await createLab({ id: 'repl', poolSizeMB: 768 });
    src = lab.source.name;
    mnt = lab.source.mountpoint;
    await lab.hostZfs(['create', `${src}/data`]);
    for (const ds of ['db', 'www', 'cache']) await lab.hostZfs(['create', `${src}/data/${ds}`]);
    writeFileSync(join(mnt, 'data/db/dump.sql'), 'INSERT 1;\n'.repeat(50_000));
    writeFileSync(join(mnt, 'data/www/index.html'), '<h1>hozo</h1>\n');
    await execa('sh', ['-c', `head -c 8M /dev/urandom > ${join(mnt, 'data/www/blob.bin')}`]);
    config = writeConfig(lab.dir, {
      stateDirectory: join(lab.dir, 'state'),
      hosts: { box: { ...lab.box.hostConfig(), wake: undefined, readyTimeout: 4 } },
      jobs: [
        {
          name: 'nightly',
          host: 'box',
          retries: 0,
          datasets: [{ source: `${src}/data`, target: `${lab.box.pool.name}/kraken/data`, recursive: true, exclude: [`${src}/data/cache`] }],
        },
      ],
    });
  });

  afterAll(async () => {
    await lab?.destroy();
  });

  it('first run sends the whole 3-dataset tree and the guids match', async () => {
    await snapAll();
    const { exitCode, json } = await hozoJson(config, 'run', 'nightly');
    expect(exitCode).toBe(0);
    expect(json.result).toBe('ok');
    expect(json.datasets.map((d: any) => [d.source, d.result, d.verified])).toEqual([
      [`${src}/data`, 'sent', true],
      [`${src}/data/db`, 'sent', true],
      [`${src}/data/www`, 'sent', true],
    ]);
    const t = `${lab.box.pool.name}/kraken/data`;
    for (const ds of ['', '/db', '/www']) {
      expect(await guid(boxZ, `${t}${ds}@s1`)).toBe(await guid(hostZ, `${src}/data${ds}@s1`));
    }
    // The excluded child never reaches the box; the parent was created unmountable.
    expect((await lab.box.exec(['zfs', 'list', `${t}/cache`])).exitCode).not.toBe(0);
    expect(await lab.box.zfs(['get', '-H', '-o', 'value', 'canmount', `${lab.box.pool.name}/kraken`])).toBe('off');
    expect(json.datasets[2].bytes).toBeGreaterThan(8 * 1024 * 1024);
  });

  it('second run after new snapshots sends only the increments (-I), with every intermediate snapshot', async () => {
    writeFileSync(join(mnt, 'data/www/index.html'), '<h1>hozo v2</h1>\n');
    await snapAll();
    await snapAll();
    const { exitCode, json } = await hozoJson(config, 'run', 'nightly');
    expect(exitCode).toBe(0);
    for (const d of json.datasets) {
      expect(d.result).toBe('sent');
      expect(d.base).toBe('s1');
      expect(d.plan).toBe('-I @s1 → @s3');
      expect(d.snapshotsSent).toEqual(['s2', 's3']);
      expect(d.bytes).toBeLessThan(1024 * 1024);
    }
    expect(await boxSnaps(`${lab.box.pool.name}/kraken/data/www`)).toEqual(['s1', 's2', 's3'].map((s) => `${lab.box.pool.name}/kraken/data/www@${s}`));
  });

  /** SSH logins and sessions on the box (its sshd logs at VERBOSE), counted around `f`. */
  async function sshdActivity(f: () => Promise<unknown>): Promise<{ connections: number; sessions: number }> {
    const count = () => {
      const log = readFileSync(lab.box.files.sshdLog, 'utf8');
      return { connections: log.split('Accepted publickey').length - 1, sessions: log.split('Starting session:').length - 1 };
    };
    const before = count();
    await f();
    const after = count();
    return { connections: after.connections - before.connections, sessions: after.sessions - before.sessions };
  }

  it('a no-op run sends nothing, over one SSH connection and two sessions (capabilities from the cache)', async () => {
    let result: Awaited<ReturnType<typeof hozoJson>> | undefined;
    const ssh = await sshdActivity(async () => (result = await hozoJson(config, 'run', 'nightly')));
    const { exitCode, json } = result!;
    expect(exitCode).toBe(0);
    expect(json.bytes).toBe(0);
    expect(json.datasets.every((d: any) => d.result === 'up-to-date' && d.verified)).toBe(true);
    // Session 1: pools + fingerprint + listing (capabilities stored by the first run); session 2: pool health.
    expect(ssh).toEqual({ connections: 1, sessions: 2 });
    const stored = JSON.parse(readFileSync(join(lab.dir, 'state', 'capabilities', 'box.json'), 'utf8'));
    expect(stored.endpoint).toBe(`root@${lab.box.boxIp}:22`);
    expect(stored.probe).toContain('@@ end');
  });

  it('probes the box again when its ZFS or tools changed (stored fingerprint differs), and still runs', async () => {
    const file = join(lab.dir, 'state', 'capabilities', 'box.json');
    const stored = JSON.parse(readFileSync(file, 'utf8'));
    writeFileSync(
      file,
      JSON.stringify({ ...stored, fingerprint: stored.fingerprint.replace(/\/zfs (\d+)/, (_: string, n: string) => `/zfs ${Number(n) + 1}`) }),
    );
    let result: Awaited<ReturnType<typeof hozoJson>> | undefined;
    const ssh = await sshdActivity(async () => (result = await hozoJson(config, 'run', 'nightly')));
    expect(result!.exitCode).toBe(0);
    expect(result!.json.datasets.every((d: any) => d.result === 'up-to-date' && d.verified)).toBe(true);
    // pools + fingerprint + (discarded) listing, the probe, the listing, pool health.
    expect(ssh).toEqual({ connections: 1, sessions: 4 });
    const now = JSON.parse(readFileSync(file, 'utf8'));
    expect(now.fingerprint).toBe(stored.fingerprint);
    expect(now.probedAt).toBeGreaterThan(stored.probedAt);
  });

  it('keeps the incremental base held on the source: pruning cannot remove it, older snapshots go', async () => {
    const base = `${src}/data/www@s3`;
    expect(await lab.hostZfs(['get', '-H', '-o', 'value', 'userrefs', base])).toBe('1');
    const destroyBase = await execa('zfs', ['destroy', base], { reject: false });
    expect(destroyBase.exitCode).not.toBe(0);
    expect(destroyBase.stderr).toMatch(/busy|held/);
    // Old snapshots are no longer held and prune normally.
    for (const ds of ['data', 'data/db', 'data/www']) await lab.hostZfs(['destroy', `${src}/${ds}@s1`]);
    await snapAll();
    const { exitCode, json } = await hozoJson(config, 'run', 'nightly');
    expect(exitCode).toBe(0);
    expect(json.datasets.map((d: any) => d.plan)).toEqual(['-I @s3 → @s4', '-I @s3 → @s4', '-I @s3 → @s4']);
    // The hold moved to the new base and left the old one.
    expect(await lab.hostZfs(['get', '-H', '-o', 'value', 'userrefs', `${src}/data/www@s4`])).toBe('1');
    expect(await lab.hostZfs(['get', '-H', '-o', 'value', 'userrefs', base])).toBe('0');
  });

  it('plan changes nothing and shows a diverged target; run refuses it and leaves the target untouched', async () => {
    const t = `${lab.box.pool.name}/kraken/data/db`;
    await lab.box.zfs(['snapshot', `${t}@local-edit`]);
    await snapAll();
    const before = await boxSnaps(t);
    const plan = await hozoJson(config, 'plan', 'nightly');
    expectOutput('job-report', plan.json);
    expect(plan.exitCode).toBe(0);
    const planned = plan.json.datasets.find((d: any) => d.target === t);
    expect(planned.result).toBe('conflict');
    expect(planned.error.code).toBe('CONFLICT_TARGET_DIVERGED');
    const run = await hozoJson(config, 'run', 'nightly');
    expect(run.exitCode).toBe(1);
    const db = run.json.datasets.find((d: any) => d.target === t);
    expect(db.result).toBe('conflict');
    expect(db.error.message).toContain('local-edit');
    expect(db.error.hint).toContain('rollback: true');
    expect(await boxSnaps(t)).toEqual(before);
    // The other datasets of the job still went through.
    expect(run.json.datasets.filter((d: any) => d.result === 'sent')).toHaveLength(2);
    await lab.box.zfs(['destroy', `${t}@local-edit`]);
    expect((await hozo(config, 'run', 'nightly')).exitCode).toBe(0);
  });

  it('restores a dataset from the box with identical content, and refuses to overwrite without --force', async () => {
    const refused = await hozo(config, 'restore', 'nightly', '--dataset', `${src}/data/www`);
    expect(refused.exitCode).toBe(2);
    expect(refused.stderr).toContain('already exists');
    const r = await hozoJson(config, 'restore', 'nightly', '--dataset', `${src}/data/www`, '--to', `${src}/restored/www`, '--snapshot', 's4', '--mount');
    expect(r.exitCode).toBe(0);
    expect(r.json.datasets[0].verified).toBe(true);
    const sha = (p: string) => createHash('sha256').update(readFileSync(p)).digest('hex');
    expect(sha(join(mnt, 'restored/www/blob.bin'))).toBe(sha(join(mnt, 'data/www/blob.bin')));
    expect(await guid(hostZ, `${src}/restored/www@s4`)).toBe(await guid(hostZ, `${src}/data/www@s4`));
    expect((await lab.hostZfs(['list', '-H', '-t', 'snapshot', '-o', 'name', '-r', `${src}/restored/www`])).split('\n')).not.toContain(
      `${src}/restored/www@s5`,
    );
  });

  it('an ssh connection killed mid-stream fails the run; the next run completes and the target is consistent', async () => {
    await execa('sh', ['-c', `head -c 200M /dev/urandom > ${join(mnt, 'data/db/big.bin')}`]);
    await snapAll();
    const t = `${lab.box.pool.name}/kraken/data/db`;
    const run = startHozo(config, ['run', 'nightly', '--json']);
    // Kill the ssh client carrying the stream once it is under way (its remote command ends with the receive, buffered
    // by mbuffer on the box: `sh -c 'mbuffer … | zfs receive -u <target>'`).
    let killed = false;
    for (let i = 0; i < 200 && !killed; i++) {
      await new Promise((r) => setTimeout(r, 50));
      const k = await execa('pkill', ['-KILL', '-f', `^ssh .*zfs receive -u ${t}('|$)`], { reject: false });
      killed = k.exitCode === 0;
    }
    expect(killed).toBe(true);
    const r = await run;
    expect(r.exitCode).toBe(1);
    const failed = JSON.parse(String(r.stdout));
    const db = failed.datasets.find((d: any) => d.target === t);
    expect(db.result).toBe('failed');
    expect(db.error.code).toBe('PIPELINE_FAILED');
    expect(db.error.message).toMatch(/stage "(ssh box|count)/);
    // No temporary send holds leak on the source (zfs-fuse leaves .send-<pid>-0 after SIGPIPE): only our own hold.
    for (const s of ['s5', 's6']) expect(await lab.hostZfs(['get', '-H', '-o', 'value', 'userrefs', `${src}/data/db@${s}`])).toMatch(/^[01]$/);
    const again = await hozoJson(config, 'run', 'nightly');
    expect(again.exitCode).toBe(0);
    const ok = again.json.datasets.find((d: any) => d.target === t);
    expect(ok.result).toBe('sent');
    expect(ok.verified).toBe(true);
    expect(await guid(boxZ, `${t}@s6`)).toBe(await guid(hostZ, `${src}/data/db@s6`));
  });

  it('two concurrent runs of one job: one runs, the other refuses with exit 4 (already running)', async () => {
    await execa('sh', ['-c', `head -c 64M /dev/urandom >> ${join(mnt, 'data/www/blob.bin')}`]);
    await snapAll();
    const [a, b] = await Promise.all([startHozo(config, ['run', 'nightly']), startHozo(config, ['run', 'nightly'])]);
    const codes = [a.exitCode, b.exitCode].sort();
    expect(codes).toEqual([0, 4]);
    const loser = a.exitCode === 4 ? a : b;
    expect(String(loser.stderr)).toContain('already running');
    // Each run opened its SSH connection while it loaded; neither leaves its ControlMaster behind.
    const masters = await execa('pgrep', ['-f', `ControlMaster=yes .*${lab.box.boxIp.replace(/\./g, '\\.')}$`], { reject: false });
    expect(masters.stdout).toBe('');
  });

  it('closing an SSH runner while its ControlMaster is still being opened leaves no master behind', async () => {
    // What a run that stops at once (lock held) does with the connection it started while loading.
    const runner = new SshRunner({ name: 'box', host: validateConfig({ hosts: { box: lab.box.hostConfig() } }).hosts['box']! });
    const opening = runner.connect();
    await runner.close();
    await opening;
    const masters = await execa('pgrep', ['-f', `ControlMaster=yes .*${lab.box.boxIp.replace(/\./g, '\\.')}$`], { reject: false });
    expect(masters.stdout).toBe('');
  });

  it('bandwidthLimit: a 60 MiB stream at 10 MiB/s takes at least 5.5 s each way and arrives intact; plan shows the limit', async () => {
    await lab.hostZfs(['create', `${src}/bw`]);
    await execa('sh', ['-c', `head -c 60M /dev/urandom > ${join(mnt, 'bw/blob.bin')}`]);
    await lab.hostZfs(['snapshot', `${src}/bw@b1`]);
    // The host's 40M and the job's 10M: the smaller applies.
    const bw = writeConfig(
      lab.dir,
      {
        stateDirectory: join(lab.dir, 'state-bw'),
        hosts: { box: { ...lab.box.hostConfig(), wake: undefined, readyTimeout: 4, bandwidthLimit: '40M' } },
        jobs: [
          { name: 'throttled', host: 'box', retries: 0, bandwidthLimit: '10M', datasets: [{ source: `${src}/bw`, target: `${lab.box.pool.name}/kraken/bw` }] },
        ],
      },
      'bw.yaml',
    );
    const plan = await hozo(bw, 'plan', 'throttled');
    expect(plan.exitCode, plan.stderr).toBe(0);
    expect(plan.stdout).toContain("bandwidth limit 10.0 MiB/s (the job's bandwidthLimit)");

    const run = await hozoJson(bw, 'run', 'throttled');
    expect(run.exitCode, run.stderr).toBe(0);
    expect(run.json.bandwidthLimit).toEqual({ bytesPerSecond: 10 * 1024 * 1024, from: 'job' });
    const d = run.json.datasets[0];
    expect(d.result).toBe('sent');
    expect(d.bytes).toBeGreaterThan(60 * 1024 * 1024);
    expect(d.seconds, 'sent no faster than 10 MiB/s').toBeGreaterThanOrEqual(5.5);
    expect(await guid(boxZ, `${lab.box.pool.name}/kraken/bw@b1`)).toBe(await guid(hostZ, `${src}/bw@b1`));

    // The way back (restore) runs under the same limit, and the content is byte-identical.
    const back = await hozoJson(bw, 'restore', 'throttled', '--dataset', `${src}/bw`, '--to', `${src}/bw-back`, '--mount');
    expect(back.exitCode, back.stderr).toBe(0);
    expect(back.json.bandwidthLimit).toEqual({ bytesPerSecond: 10 * 1024 * 1024, from: 'job' });
    expect(back.json.datasets[0].seconds).toBeGreaterThanOrEqual(5.5);
    const sha = (p: string) => createHash('sha256').update(readFileSync(p)).digest('hex');
    expect(sha(join(mnt, 'bw-back/blob.bin'))).toBe(sha(join(mnt, 'bw/blob.bin')));
  });

  it('a target pool that is not ONLINE fails the run (exit 1, POOL_UNHEALTHY) though the snapshot was received', async () => {
    // A mirror on the box with one side offline: DEGRADED (the ready check lets a degraded pool through).
    const pool = `hzdeg${lab.id}`;
    const files = ['a', 'b'].map((x) => join(lab.dir, `deg-${x}.img`));
    await execa('truncate', ['-s', '128M', ...files]);
    await lab.box.zpool(['create', '-m', 'none', pool, 'mirror', ...files]);
    try {
      await lab.box.zpool(['offline', pool, files[1]!]);
      expect(await lab.box.zpool(['list', '-H', '-o', 'health', pool])).toBe('DEGRADED');
      await lab.hostZfs(['create', `${src}/deg`]);
      writeFileSync(join(mnt, 'deg/f'), 'degraded\n');
      await lab.hostZfs(['snapshot', `${src}/deg@d1`]);
      const deg = writeConfig(
        lab.dir,
        {
          stateDirectory: join(lab.dir, 'state-deg'),
          hosts: { box: { ...lab.box.hostConfig(), wake: undefined, readyTimeout: 4 } },
          jobs: [{ name: 'deg', host: 'box', retries: 0, datasets: [{ source: `${src}/deg`, target: `${pool}/d` }] }],
        },
        'deg.yaml',
      );
      const r = await hozoJson(deg, 'run', 'deg');
      expect(r.exitCode, r.stderr).toBe(1);
      expect(r.json.result).toBe('failed');
      expect(r.json.error).toMatchObject({ code: 'POOL_UNHEALTHY', message: `target pool ${pool} is DEGRADED` });
      expect(r.json.datasets[0]).toMatchObject({ result: 'sent', verified: true });
      expect(r.json.targetPools).toEqual([expect.objectContaining({ name: pool, health: 'DEGRADED' })]);
      expect(r.stderr).toContain(`target pool ${pool} is DEGRADED`);
      expect(await guid(boxZ, `${pool}/d@d1`)).toBe(await guid(hostZ, `${src}/deg@d1`));
    } finally {
      await lab.box.zpool(['destroy', '-f', pool]).catch(() => undefined);
    }
  });

  it('an unreachable box exits 3 with a clear message and changes nothing', async () => {
    await lab.box.stopSshd();
    try {
      const r = await hozo(config, 'run', 'nightly');
      expect(r.exitCode).toBe(3);
      expect(r.stdout + r.stderr).toContain('did not become ready within 4s: its SSH port never opened');
    } finally {
      await lab.box.startSshd();
    }
  });
});
