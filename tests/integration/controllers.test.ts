// Per-controller sections of one box (agent/scope.ts), on real zfs-fuse through the built binary: two controller
// keys, each with its forced command `hozo-agent serve --controller NAME`, their own roots and leases. Every verb of
// controller b against a's roots and leases is refused or sees nothing of a's, while a's own requests work; a key
// whose command= names no section (or an unknown one) is refused; the box powers off only after the last lease of
// either. Nothing here powers anything off: the poweroffCommand writes a marker file.
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { destroyTestPool, zfsFuseUnusable } from '../helpers/zfs-fuse.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const MAIN = join(ROOT, 'dist', 'bin', 'agent', 'hozo-agent.js');

const skip = await zfsFuseUnusable([MAIN]);
if (skip !== undefined) console.warn(`SKIP: tests/integration/controllers.test.ts: ${skip}`);

const ID = randomBytes(3).toString('hex');
const SRC = `hzctsrc${ID}`;
const BOX = `hzctbox${ID}`;
const DIR = `/tmp/hzct-it-${ID}`;
const A = `${BOX}/alice`;
const B = `${BOX}/bob`;
const CONFIG = join(DIR, 'agent.json');
const MARKER = join(DIR, 'poweroff.marker');

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

/** `hozo-agent serve [--controller who]` as sshd runs a key's forced command, SSH_ORIGINAL_COMMAND = cmd. */
async function as(who: string | undefined, cmd: string, send?: readonly string[]): Promise<Result> {
  const argv = [MAIN, 'serve', ...(who !== undefined ? ['--controller', who] : []), '--config', CONFIG];
  const env = { PATH: process.env['PATH'] ?? '/usr/bin:/bin', SSH_ORIGINAL_COMMAND: cmd };
  const r =
    send === undefined
      ? await execa(process.execPath, argv, { env, extendEnv: false, reject: false, stdin: 'ignore', timeout: 120_000 })
      : await execa('zfs', ['send', ...send], { reject: false }).pipe(process.execPath, argv, { env, extendEnv: false, reject: false, timeout: 120_000 });
  return { code: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
}
const zfs = async (...argv: string[]) => (await execa('zfs', argv)).stdout.trim();
const exists = async (ds: string) => (await execa('zfs', ['list', '-H', '-o', 'name', ds], { reject: false })).exitCode === 0;

describe.skipIf(skip !== undefined)('per-controller sections of one box on real zfs-fuse (built binary)', () => {
  beforeAll(async () => {
    mkdirSync(DIR, { recursive: true });
    for (const p of [SRC, BOX]) {
      await execa('truncate', ['-s', '256M', join(DIR, `${p}.img`)]);
      await execa('zpool', ['create', '-m', join(DIR, 'mnt', p), p, join(DIR, `${p}.img`)]);
    }
    await zfs('create', `${SRC}/d`);
    writeFileSync(join(DIR, 'mnt', SRC, 'd', 'f'), 'data\n');
    await zfs('snapshot', `${SRC}/d@s1`);
    await zfs('snapshot', `${SRC}/d@s2`);
    for (const r of [A, B]) await zfs('create', '-o', 'canmount=off', r);
    writeFileSync(
      CONFIG,
      JSON.stringify({
        controllers: { alice: { roots: [A], appendOnly: true }, bob: { roots: [B], maxLeases: 2 } },
        retention: { daily: 7, weekly: 0, monthly: 0 },
        idlePoweroffMinutes: null,
        poweroffCommand: ['sh', '-c', `echo off >> ${MARKER}`],
        poweroffDelaySeconds: 0,
        leaseDirectory: join(DIR, 'state', 'leases'),
        stateDirectory: join(DIR, 'state'),
        exportOnShutdown: false,
        pools: [BOX],
      }),
    );
    // alice's backup, received through her own section.
    expect((await as('alice', `receive -u ${A}/d`, [`${SRC}/d@s1`])).code).toBe(0);
  });
  afterAll(async () => {
    for (const p of [SRC, BOX]) await destroyTestPool(p);
    rmSync(DIR, { recursive: true, force: true });
  });

  it("the config refuses sections whose roots overlap (one controller would see another's backups)", async () => {
    const bad = join(DIR, 'overlap.json');
    writeFileSync(bad, JSON.stringify({ controllers: { alice: { roots: [A] }, bob: { roots: [`${A}/x`] } } }));
    const r = await execa(process.execPath, [MAIN, 'check-config', '--config', bad], { reject: false });
    expect(r.exitCode).not.toBe(0);
    expect(String(r.stderr)).toMatch(/controllers\.alice root .* overlaps controllers\.bob root/);
  });

  it('a key without a section, or with an unknown one, is refused and nothing is done', async () => {
    for (const who of [undefined, 'mallory']) {
      const r = await as(who, `list ${A}`);
      expect(r.code, who).toBe(2);
      expect(r.stderr).toMatch(who === undefined ? /must name one \(hozo-agent serve --controller NAME\)/ : /no controller section "mallory"/);
      expect(r.stdout).toBe('');
    }
  });

  it("bob cannot list, receive into, send from, abort, or prune alice's roots", async () => {
    const before = await zfs('get', '-H', '-p', '-r', '-o', 'name,property,value', 'guid,userrefs', A);
    const refused: [string, Result][] = [
      [`list ${A}`, await as('bob', `list ${A}`)],
      [`receive -u ${A}/d`, await as('bob', `receive -u ${A}/d2`, [`${SRC}/d@s1`])],
      [`receive -u ${A}/d (incremental)`, await as('bob', `receive -u ${A}/d`, ['-i', `${SRC}/d@s1`, `${SRC}/d@s2`])],
      [`send ${A}/d@s1`, await as('bob', `send ${A}/d@s1`)],
      [`abort-receive ${A}/d`, await as('bob', `abort-receive ${A}/d`)],
    ];
    for (const [what, r] of refused) {
      expect(r.code, what).toBe(2);
      // The refusal names bob's roots only.
      expect(r.stderr, what).toContain(`outside the backup roots (${B})`);
    }
    // list without arguments, status and prune: only bob's own root.
    const l = await as('bob', 'list');
    expect(l.code).toBe(0);
    expect(l.stdout).not.toContain(A);
    const p = await as('bob', 'prune --dry-run');
    expect(p.code).toBe(0);
    expect(JSON.stringify(JSON.parse(p.stdout))).not.toContain(A);
    expect(await zfs('get', '-H', '-p', '-r', '-o', 'name,property,value', 'guid,userrefs', A)).toBe(before);
    expect(await exists(`${A}/d2`)).toBe(false);
    // alice herself can.
    expect((await as('alice', `list ${A}`)).stdout).toContain(`${A}/d@s1`);
    expect((await as('alice', `receive -u ${A}/d`, ['-i', `${SRC}/d@s1`, `${SRC}/d@s2`])).code).toBe(0);
  });

  it("leases: same ids, separate leases; bob cannot see, renew or release alice's; his maxLeases is his own; status shows only his", async () => {
    const ha = await as('alice', 'hold nightly 600');
    expect(ha.code).toBe(0);
    expect(JSON.parse(ha.stdout)).toMatchObject({ held: true, lease: { id: 'nightly' }, leases: ['nightly'] });
    const hb = await as('bob', 'hold nightly 600');
    expect(JSON.parse(hb.stdout)).toMatchObject({ held: true, leases: ['nightly'] });
    // bob's release of "nightly" is his own; alice's stays.
    expect(JSON.parse((await as('bob', 'release nightly')).stdout)).toMatchObject({ released: true, leases: [] });
    const sa = JSON.parse((await as('alice', 'status')).stdout);
    expect(sa.leases.map((l: { id: string }) => l.id)).toEqual(['nightly']);
    const sb = JSON.parse((await as('bob', 'status')).stdout);
    expect(sb.leases).toEqual([]);
    expect(JSON.stringify(sb)).not.toContain('alice');
    // bob's cap (2) counts his own leases only: alice's does not use one of his.
    expect((await as('bob', 'hold b1 600')).code).toBe(0);
    expect((await as('bob', 'hold b2 600')).code).toBe(0);
    const third = await as('bob', 'hold b3 600');
    expect(third.code).toBe(3);
    expect(third.stdout).toMatch(/maxLeases/);
    for (const id of ['b1', 'b2']) await as('bob', `release ${id}`);
  });

  it("appendOnly (alice): no receive -F, prune or abort-receive by her key; the box's own prune (its timer) still runs", async () => {
    for (const [cmd, why] of [
      [`receive -u -F ${A}/d`, /append-only/],
      ['prune', /append-only .* the box prunes by its own timer/],
      [`abort-receive ${A}/d`, /append-only/],
    ] as const) {
      const r = await as('alice', cmd, cmd.startsWith('receive') ? ['-i', `${SRC}/d@s1`, `${SRC}/d@s2`] : undefined);
      expect(r.code, cmd).toBe(2);
      expect(r.stderr, cmd).toMatch(why);
    }
    expect((await as('alice', 'prune --dry-run')).code).toBe(0);
    // The box's timer: `hozo-agent prune`, over every section's roots.
    const t = await execa(process.execPath, [MAIN, 'prune', '--dry-run', '--config', CONFIG], { reject: false });
    expect(t.exitCode, String(t.stderr)).toBe(0);
    const report = JSON.parse(String(t.stdout)) as { kept: { snapshot: string }[] };
    expect(report.kept.map((k) => k.snapshot)).toContain(`${A}/d@s2`);
  });

  it("the box powers off only after the last lease of either: bob's shutdown waits for alice's release, naming no lease of hers", async () => {
    rmSync(MARKER, { force: true });
    const s = await as('bob', 'shutdown');
    expect(JSON.parse(s.stdout)).toMatchObject({ shutdown: false });
    expect(s.stdout + s.stderr).toMatch(/another controller's lease is held/);
    expect(s.stdout + s.stderr).not.toMatch(/nightly/);
    expect(existsSync(MARKER)).toBe(false);
    const r = await as('alice', 'release nightly');
    expect(JSON.parse(r.stdout)).toMatchObject({ released: true, shutdown: { exported: [] } });
    for (let i = 0; i < 50 && !existsSync(MARKER); i++) await new Promise((res) => setTimeout(res, 100));
    expect(readFileSync(MARKER, 'utf8')).toBe('off\n');
  });
});
