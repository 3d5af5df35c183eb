// `hozo verify [--restore-test]` end to end on real ZFS over real SSH (zfs-fuse on both sides, the box in a network
// namespace), with the real binary: a good backup passes; a missing hold fails; a backup silently corrupted on the
// box's disk (checksum=off there, bytes overwritten in the pool's image file) is found by the restore test and named
// by dataset and path; the scratch datasets are gone after success, failure, SIGTERM, and after a SIGKILL at the
// next verify; a dataset of the scratch name that hozo did not make is never touched.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, openSync, readFileSync, readSync, writeFileSync, writeSync, mkdirSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLab, labPrerequisites, type Lab } from '../../src/lab/lab.js';
import { hozo, hozoJson, startHozo, writeConfig } from '../helpers/hozo.js';
import { expectOutput } from '../helpers/outputs.js';

const missing = labPrerequisites();
if (missing.length > 0) console.warn(`SKIP: tests/integration/verify.test.ts needs ${missing.join(', ')}`);
const hasPromtool = (() => {
  try {
    execFileSync('promtool', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

/** Offset of `needle` in a (large) file, read in chunks; -1 when absent. */
function findInFile(path: string, needle: Buffer): number {
  const fd = openSync(path, 'r');
  try {
    const chunk = Buffer.alloc(16 << 20);
    let pos = 0;
    let carry = Buffer.alloc(0);
    for (;;) {
      const n = readSync(fd, chunk, 0, chunk.length, pos);
      if (n === 0) return -1;
      const buf = Buffer.concat([carry, chunk.subarray(0, n)]);
      const i = buf.indexOf(needle);
      if (i !== -1) return pos - carry.length + i;
      carry = buf.subarray(Math.max(0, buf.length - needle.length));
      pos += n;
    }
  } finally {
    closeSync(fd);
  }
}

describe.skipIf(missing.length > 0)('hozo verify (real zfs-fuse, OpenSSH)', () => {
  let lab: Lab;
  let src: string;
  let mnt: string;
  let pool: string;
  let config: string;
  let metricsDir: string;
  const marker = Buffer.from(`HOZO-VERIFY-MARKER-${process.pid}-${'x'.repeat(40)}`);
  const scratch = () => lab.hostZfs(['list', '-H', '-o', 'name', '-r', src]).then((o) => o.split('\n').filter((n) => n.includes('hozo-verify')));

  beforeAll(async () => {
    lab = await createLab({ id: 'ver', poolSizeMB: 384 });
    src = lab.source.name;
    mnt = lab.source.mountpoint;
    pool = lab.box.pool.name;
    metricsDir = join(lab.dir, 'metrics');
    mkdirSync(metricsDir, { recursive: true });
    // On the box: no data checksums below v/, so bytes changed on its disk come back as they are (silent corruption).
    await lab.box.zfs(['create', '-o', 'checksum=off', '-o', 'compression=off', `${pool}/v`]);
    for (const ds of ['data', 'data/docs', 'data/media']) await lab.hostZfs(['create', `${src}/${ds}`]);
    mkdirSync(join(mnt, 'data/docs/sub/deeper'), { recursive: true });
    for (let i = 0; i < 30; i++) writeFileSync(join(mnt, `data/docs/sub/note-${i}.txt`), `note ${i}\n`.repeat(100 + i));
    writeFileSync(join(mnt, 'data/docs/sub/deeper/empty'), '');
    symlinkSync('sub/note-1.txt', join(mnt, 'data/docs/link'));
    // 3 MiB of random bytes with the marker in the middle: the block to corrupt later.
    const big = Buffer.concat([randomBytes(3 << 19), marker, randomBytes(3 << 19)]);
    writeFileSync(join(mnt, 'data/media/big.bin'), big);
    await lab.hostZfs(['snapshot', '-r', `${src}/data@v1`]);
    config = writeConfig(lab.dir, {
      stateDirectory: join(lab.dir, 'state'),
      metrics: { textfileDirectory: metricsDir },
      hosts: { box: { ...lab.box.hostConfig(), wake: undefined, readyTimeout: 4 } },
      jobs: [{ name: 'nightly', host: 'box', retries: 0, datasets: [{ source: `${src}/data`, target: `${pool}/v/data`, recursive: true }] }],
    });
    const r = await hozo(config, 'run', 'nightly');
    expect(r.exitCode, r.stderr).toBe(0);
  });

  afterAll(async () => {
    await lab?.destroy();
  });

  it('without --restore-test: each base on the box by guid, held, pools healthy; exit 0; metrics promtool-clean', async () => {
    const r = await hozoJson(config, 'verify', 'nightly');
    expect(r.exitCode, r.stderr).toBe(0);
    expectOutput('verify-report', r.json);
    expect(r.json).toMatchObject({ kind: 'verify', result: 'ok', restoreTest: false });
    expect(r.json.datasets.map((d: any) => [d.source, d.result, d.snapshot, d.protectedBy, d.behind])).toEqual([
      [`${src}/data`, 'ok', 'v1', ['hold'], 0],
      [`${src}/data/docs`, 'ok', 'v1', ['hold'], 0],
      [`${src}/data/media`, 'ok', 'v1', ['hold'], 0],
    ]);
    expect(r.json.targetPools).toEqual([expect.objectContaining({ name: pool, health: 'ONLINE' })]);
    const prom = readFileSync(join(metricsDir, 'hozo_verify_nightly.prom'), 'utf8');
    expect(prom).toMatch(/^hozo_verify_last_run_success\{job="nightly"\} 1$/m);
    expect(prom).toMatch(/^hozo_verify_last_restore_test\{job="nightly"\} 0$/m);
    if (hasPromtool) {
      const check = await execa('promtool', ['check', 'metrics'], { input: prom, reject: false });
      expect(check.exitCode, check.stdout + check.stderr).toBe(0);
    } else console.warn('SKIP: promtool missing: the verify textfile was not linted');
  });

  it('--restore-test on a good backup: every file restored and identical; the scratch datasets are gone', async () => {
    const r = await hozoJson(config, 'verify', 'nightly', '--restore-test', '--seed', '5');
    expect(r.exitCode, r.stderr).toBe(0);
    expectOutput('verify-report', r.json);
    const docs = r.json.datasets.find((d: any) => d.source === `${src}/data/docs`);
    // 30 notes + the empty file (the link is compared by target, not hashed).
    expect(docs.restoreTest).toMatchObject({ result: 'ok', filesChecked: 31, mismatches: [] });
    expect(docs.restoreTest.entries).toBe(30 + 1 + 1 + 2); // files, link, sub/ and sub/deeper/
    const media = r.json.datasets.find((d: any) => d.source === `${src}/data/media`);
    expect(media.restoreTest).toMatchObject({ result: 'ok', filesChecked: 1, bytesChecked: (3 << 20) + marker.length });
    expect(await scratch()).toEqual([]);
    const prom = readFileSync(join(metricsDir, 'hozo_verify_nightly.prom'), 'utf8');
    expect(prom).toMatch(/^hozo_verify_files_checked\{job="nightly"\} 32$/m);
    expect(prom).toMatch(/^hozo_verify_last_restore_test\{job="nightly"\} 1$/m);
  });

  it('--files samples with a stated seed: the same seed picks the same count, all paths still compared', async () => {
    const r = await hozoJson(config, 'verify', 'nightly', '--restore-test', '--files', '3', '--datasets', '1', '--seed', '42');
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.json.seed).toBe(42);
    const tested = r.json.datasets.filter((d: any) => d.restoreTest?.result === 'ok');
    expect(tested).toHaveLength(1);
    expect(r.json.datasets.filter((d: any) => d.restoreTest?.result === 'skipped')).toHaveLength(2);
    const again = await hozoJson(config, 'verify', 'nightly', '--restore-test', '--files', '3', '--datasets', '1', '--seed', '42');
    expect(again.json.datasets.map((d: any) => d.restoreTest?.result)).toEqual(r.json.datasets.map((d: any) => d.restoreTest?.result));
    const bad = await hozo(config, 'verify', 'nightly', '--files', '3');
    expect(bad.exitCode).toBe(2);
    expect(bad.stderr).toContain('add --restore-test');
  });

  it("a base without the job's hold fails verify (exit 1) naming it", async () => {
    await lab.hostZfs(['release', 'hozo:nightly', `${src}/data/docs@v1`]);
    try {
      const r = await hozoJson(config, 'verify', 'nightly');
      expect(r.exitCode).toBe(1);
      const docs = r.json.datasets.find((d: any) => d.source === `${src}/data/docs`);
      expect(docs).toMatchObject({ result: 'failed', protectedBy: [], error: { code: 'VERIFY_FAILED' } });
      expect(docs.error.message).toContain('carries neither the hold hozo:nightly');
      expect(readFileSync(join(metricsDir, 'hozo_verify_nightly.prom'), 'utf8')).toMatch(/^hozo_verify_last_run_success\{job="nightly"\} 0$/m);
    } finally {
      await lab.hostZfs(['hold', 'hozo:nightly', `${src}/data/docs@v1`]);
    }
  });

  it('SIGTERM during a restore test: exit 143 and the scratch datasets are destroyed; after SIGKILL the next verify removes them', async () => {
    const slow = writeConfig(
      lab.dir,
      {
        stateDirectory: join(lab.dir, 'state'),
        hosts: { box: { ...lab.box.hostConfig(), wake: undefined, readyTimeout: 4, bandwidthLimit: '256K' } },
        jobs: [{ name: 'nightly', host: 'box', retries: 0, datasets: [{ source: `${src}/data/media`, target: `${pool}/v/data/media` }] }],
      },
      'slow.yaml',
    );
    const waitForScratch = async () => {
      for (let i = 0; i < 100 && (await scratch()).length < 2; i++) await new Promise((r) => setTimeout(r, 200));
      expect((await scratch()).length).toBeGreaterThanOrEqual(2);
    };
    const term = startHozo(slow, ['verify', 'nightly', '--restore-test']);
    await waitForScratch();
    term.kill('SIGTERM');
    const t = await term;
    expect(t.exitCode).toBe(143);
    expect(await scratch()).toEqual([]);

    // SIGKILL as systemd's stop timeout sends it: to the whole unit (hozo and the ssh and zfs receive it started).
    const killed = startHozo(slow, ['verify', 'nightly', '--restore-test']);
    await waitForScratch();
    const tree = (pid: number): number[] => {
      const kids = execFileSync('sh', ['-c', `pgrep -P ${pid} || true`])
        .toString()
        .split('\n')
        .filter(Boolean)
        .map(Number);
      return [pid, ...kids.flatMap(tree)];
    };
    for (const pid of tree(killed.pid!)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
    await killed;
    await new Promise((r) => setTimeout(r, 500));
    expect((await scratch()).length).toBeGreaterThan(0);
    const next = await hozoJson(config, 'verify', 'nightly', '--restore-test', '--datasets', '1', '--seed', '1');
    expect(next.exitCode, next.stderr).toBe(0);
    expect(next.stderr).toContain('left by an interrupted verify; destroying it first');
    expect(await scratch()).toEqual([]);
  });

  it('never touches a dataset of the scratch name that it did not make', async () => {
    await lab.hostZfs(['create', `${src}/hozo-verify-nightly`]);
    writeFileSync(join(mnt, 'hozo-verify-nightly/mine'), 'not yours\n');
    try {
      const r = await hozoJson(config, 'verify', 'nightly', '--restore-test');
      expect(r.exitCode).toBe(1);
      expect(JSON.stringify(r.json)).toContain('was not made by hozo verify');
      expect(readFileSync(join(mnt, 'hozo-verify-nightly/mine'), 'utf8')).toBe('not yours\n');
    } finally {
      // (zfs-fuse: unmounted first, else its destroy says "busy")
      await lab.hostZfs(['set', 'mountpoint=none', `${src}/hozo-verify-nightly`]);
      await lab.hostZfs(['destroy', '-r', `${src}/hozo-verify-nightly`]);
    }
  });

  it("a backup corrupted on the box's disk is found by the restore test, with dataset and path (exit 1); scratch gone", async () => {
    // The marker's block in the box pool's image file: overwrite it, then export and import the pool so nothing of
    // it is served from the cache.
    const image = lab.box.pool.image;
    await lab.box.zpool(['export', pool]);
    const at = findInFile(image, marker);
    expect(at, "the backup's block is in the box pool's image").toBeGreaterThan(0);
    const fd = openSync(image, 'r+');
    writeSync(fd, Buffer.alloc(marker.length, 0x41), 0, marker.length, at);
    closeSync(fd);
    await lab.box.zpool(['import', '-d', join(image, '..'), pool]);
    // Without the restore test nothing is wrong: same guids, holds, an ONLINE pool.
    const shallow = await hozoJson(config, 'verify', 'nightly');
    expect(shallow.exitCode, shallow.stderr).toBe(0);
    const r = await hozoJson(config, 'verify', 'nightly', '--restore-test');
    expect(r.exitCode).toBe(1);
    expect(r.json.result, JSON.stringify(r.json.error)).toBe('failed');
    const media = r.json.datasets.find((d: any) => d.source === `${src}/data/media`);
    expect(media.restoreTest.result).toBe('mismatch');
    expect(media.restoreTest.mismatches).toEqual([{ path: 'big.bin', problem: expect.stringContaining('content differs') }]);
    expect(media.error.message).toContain(`${pool}/v/data/media@v1 restored from box differs from ${src}/data/media@v1`);
    // The other datasets are fine, and said so.
    expect(r.json.datasets.filter((d: any) => d.source !== `${src}/data/media`).map((d: any) => d.restoreTest.result)).toEqual(['ok', 'ok']);
    const text = await hozo(config, 'verify', 'nightly', '--restore-test');
    expect(text.stdout).toContain(`${src}/data/media: big.bin: content differs`);
    expect(await scratch()).toEqual([]);
    expect(readFileSync(join(metricsDir, 'hozo_verify_nightly.prom'), 'utf8')).toMatch(/^hozo_verify_mismatches\{job="nightly"\} 1$/m);
    expect(existsSync(join(mnt, 'data/media/big.bin'))).toBe(true);
  });
});
