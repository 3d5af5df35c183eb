// hozo-agent against real zfs-fuse: the built binary (dist/bin/agent/hozo-agent.js) run as `serve` with SSH_ORIGINAL_COMMAND,
// streams piped from/to a real `zfs send`/`zfs receive`, on throw-away file-backed pools "hzag…" (destroyed in
// afterAll). Then once more through a real sshd with the forced command in authorized_keys, in the lab's box
// (src/lab: own network namespace, own zfs-fuse daemon, "power-off" = stop its sshd).
// Nothing here powers anything off: every poweroffCommand writes a marker file or puts the lab box to sleep.
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLab, labPrerequisites, type Lab } from '../../src/lab/lab.js';
import { writeAgentBootHook } from '../../src/lab/agent.js';
import { waitFor } from '../../src/lab/proc.js';
import { parseCapabilities } from '../../src/zfs/capabilities.js';
import { parseInventory } from '../../src/zfs/inventory.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const MAIN = join(ROOT, 'dist', 'bin', 'agent', 'hozo-agent.js');

async function whyUnusable(): Promise<string | undefined> {
  if (process.getuid?.() !== 0) return 'not root (the zfs-fuse daemon serves root only)';
  if (!existsSync(MAIN)) return `${MAIN} is missing: run \`npm run build\` first`;
  const r = await execa('zpool', ['list', '-H', '-o', 'name'], { reject: false }).catch((e: unknown) => ({ exitCode: -1, stderr: String(e), stdout: '' }));
  if (r.exitCode !== 0)
    return `zfs-fuse is not usable: ${String(r.stderr || r.stdout)
      .trim()
      .replace(/\n/g, ' ')}; start it with zfs-fuse --no-daemon >/tmp/zfs-fuse.log 2>&1 &`;
  return undefined;
}

const skip = await whyUnusable();
if (skip !== undefined) console.warn(`SKIP: tests/integration/agent.test.ts: ${skip}`);

const ID = randomBytes(3).toString('hex');
const SRC = `hzagsrc${ID}`;
const BOX = `hzagbox${ID}`;
const DIR = `/tmp/hzag-it-${ID}`;
const ROOT_DS = `${BOX}/kraken`;
const MARKER = join(DIR, 'poweroff.marker');

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

function envFor(cmd: string | undefined): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env['SSH_ORIGINAL_COMMAND'];
  if (cmd !== undefined) env['SSH_ORIGINAL_COMMAND'] = cmd;
  return env;
}

/** `hozo-agent serve` with SSH_ORIGINAL_COMMAND = cmd (undefined: unset), optional stdin text. */
async function agent(cmd: string | undefined, config = join(DIR, 'agent.json'), input?: string): Promise<Result> {
  const r = await execa(process.execPath, [MAIN, 'serve', '--config', config], {
    env: envFor(cmd),
    extendEnv: false,
    reject: false,
    stripFinalNewline: false,
    ...(input !== undefined ? { input } : { stdin: 'ignore' as const }),
    timeout: 120_000,
  });
  return { code: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
}

/** `zfs send SEND… | hozo-agent serve` (SSH_ORIGINAL_COMMAND = cmd): the receive side's result. */
async function sendInto(send: readonly string[], cmd: string, config = join(DIR, 'agent.json')): Promise<Result> {
  const r = await execa('zfs', ['send', ...send], { reject: false }).pipe(process.execPath, [MAIN, 'serve', '--config', config], {
    env: envFor(cmd),
    extendEnv: false,
    reject: false,
    timeout: 120_000,
  });
  return { code: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
}

async function zfs(...argv: string[]): Promise<string> {
  return (await execa('zfs', argv)).stdout.trim();
}
async function zfsOk(...argv: string[]): Promise<boolean> {
  return (await execa('zfs', argv, { reject: false })).exitCode === 0;
}
const guid = (snap: string) => zfs('get', '-H', '-p', '-o', 'value', 'guid', snap);
/** Everything about the box pool that a hostile command could change. */
const boxFingerprint = async () =>
  (await execa('zfs', ['get', '-H', '-p', '-r', '-o', 'name,property,value', 'type,guid,canmount,userrefs', BOX], { reject: false })).stdout;

function writeConfig(name: string, extra: Record<string, unknown> = {}): string {
  const path = join(DIR, name);
  writeFileSync(
    path,
    JSON.stringify({
      roots: [ROOT_DS],
      retention: { daily: 7, weekly: 4, monthly: 6 },
      idlePoweroffMinutes: 30,
      poweroffCommand: ['sh', '-c', `echo "$(date +%s.%N) off" >> ${MARKER}`],
      leaseDirectory: join(DIR, 'state', 'leases'),
      stateDirectory: join(DIR, 'state'),
      pools: [BOX],
      allowRollback: false,
      exportOnShutdown: true,
      poweroffDelaySeconds: 1,
      importDirectories: [DIR],
      prepareTimeoutSeconds: 10,
      ...extra,
    }),
  );
  return path;
}

async function destroyPool(name: string): Promise<void> {
  for (let i = 0; i < 40; i++) {
    const r = await execa('zpool', ['destroy', '-f', name], { reject: false });
    if (r.exitCode === 0 || /no such pool/.test(r.stderr)) return;
    // Exported by a shutdown test: import it to destroy it.
    await execa('zpool', ['import', '-d', DIR, name], { reject: false });
    await new Promise((res) => setTimeout(res, 250));
  }
  console.warn(`could not destroy pool ${name}`);
}

describe.skipIf(skip !== undefined)('hozo-agent on real zfs-fuse (built binary, SSH_ORIGINAL_COMMAND)', () => {
  beforeAll(async () => {
    mkdirSync(DIR, { recursive: true });
    for (const p of [SRC, BOX]) {
      await execa('truncate', ['-s', '256M', join(DIR, `${p}.img`)]);
      await execa('zpool', ['create', '-m', join(DIR, 'mnt', p), p, join(DIR, `${p}.img`)]);
    }
    await zfs('create', `${SRC}/data`);
    writeFileSync(join(DIR, 'mnt', SRC, 'data', 'hello.txt'), 'hello\n');
    await zfs('snapshot', `${SRC}/data@s1`);
    writeFileSync(join(DIR, 'mnt', SRC, 'data', 'more.txt'), 'more\n');
    await zfs('snapshot', `${SRC}/data@s2`);
    // Outside the root, on the same pool: must never be touched.
    await zfs('create', `${BOX}/other`);
    await zfs('snapshot', `${BOX}/other@keepme`);
    writeConfig('agent.json');
  });

  afterAll(async () => {
    await destroyPool(SRC);
    await destroyPool(BOX);
    rmSync(DIR, { recursive: true, force: true });
  });

  it('version and capabilities (the controller parses the probe output)', async () => {
    const v = await agent('version');
    expect(v.code).toBe(0);
    expect(JSON.parse(v.stdout)).toMatchObject({ agent: 'hozo-agent', protocol: 1 });
    const c = await agent('capabilities');
    expect(c.code).toBe(0);
    const caps = parseCapabilities(c.stdout, 'box');
    expect(caps.implementation).toMatch(/zfs-fuse/);
    expect(caps.holds).toBe(true);
    // Stored with the fingerprint of the real zfs; the next call answers from the store with the same text.
    const stored = JSON.parse(readFileSync(join(DIR, 'state', 'capabilities', 'agent.json'), 'utf8'));
    expect(stored.probe).toBe(c.stdout);
    expect(stored.fingerprint).toMatch(/\/zfs \d+ \d+ \d+\n/);
    const again = await agent('capabilities');
    expect(again).toMatchObject({ code: 0, stdout: c.stdout });
  });

  it('list of a root that does not exist yet: empty, exit 0', async () => {
    const r = await agent(`list ${ROOT_DS}`);
    expect(r).toMatchObject({ code: 0, stdout: '' });
  });

  it('receive: full stream from a real zfs send, missing parents created with canmount=off, guid kept', async () => {
    const target = `${ROOT_DS}/host-a/data`;
    const r = await sendInto([`${SRC}/data@s1`], `receive -u ${target}`);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(await guid(`${target}@s1`)).toBe(await guid(`${SRC}/data@s1`));
    for (const parent of [ROOT_DS, `${ROOT_DS}/host-a`]) expect(await zfs('get', '-H', '-o', 'value', 'canmount', parent)).toBe('off');
    expect(await zfs('get', '-H', '-o', 'value', 'mounted', target)).toBe('no'); // -u
    // Nothing above the root was created or changed.
    expect(await zfs('get', '-H', '-o', 'value', 'canmount', BOX)).toBe('on');
  });

  it('receive: incremental; list returns the zfs get output parseInventory reads', async () => {
    const target = `${ROOT_DS}/host-a/data`;
    const r = await sendInto(['-i', `${SRC}/data@s1`, `${SRC}/data@s2`], `receive ${target}`);
    expect(r.code).toBe(0);
    const l = await agent(`list ${ROOT_DS}`);
    expect(l.code).toBe(0);
    const inv = parseInventory(l.stdout);
    expect([...inv.keys()]).toEqual([ROOT_DS, `${ROOT_DS}/host-a`, target]);
    expect(inv.get(target)!.snapshots.map((s) => [s.name, s.guid])).toEqual([
      ['s1', await guid(`${SRC}/data@s1`)],
      ['s2', await guid(`${SRC}/data@s2`)],
    ]);
    expect(inv.get(target)!.snapshots[0]!.userrefs).toBe(0);
    // Several datasets, one missing: still exit 0, the missing one absent.
    const two = await agent(`list ${target} ${ROOT_DS}/nope`);
    expect(two.code).toBe(0);
    expect([...parseInventory(two.stdout).keys()]).toEqual([target]);
  });

  it('receive outside the root is refused (exit 2) and creates nothing', async () => {
    const r = await sendInto([`${SRC}/data@s1`], `receive ${BOX}/other/stolen`);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^hozo-agent: refused: receive target "[^"]+\/other\/stolen" is outside the backup roots/);
    expect(await zfsOk('list', `${BOX}/other/stolen`)).toBe(false);
  });

  it("a receive that zfs rejects passes zfs's exit code and stderr through", async () => {
    // A full stream into an existing target without -F.
    const r = await sendInto([`${SRC}/data@s1`], `receive ${ROOT_DS}/host-a/data`);
    expect(r.code).not.toBe(0);
    expect(r.code).not.toBe(2);
    expect(r.stderr).toMatch(/destination .* exists|has snapshots/);
  });

  it('hostile commands through the binary: exit 2, pool and leases unchanged', async () => {
    await agent('hold keeper 600');
    const before = await boxFingerprint();
    const hostile = [
      undefined,
      '',
      `zfs destroy -r ${ROOT_DS}`,
      'sh -c id',
      `list ${ROOT_DS}; zfs destroy -r ${BOX}`,
      `list $(zfs destroy -r ${BOX})`,
      `receive ${BOX}/other`,
      `receive -F ${ROOT_DS}/host-a/data`,
      `receive -o mountpoint=/ ${ROOT_DS}/x`,
      `send ${BOX}/other@keepme`,
      `list ${ROOT_DS}/../other`,
      'hold ../../../etc/passwd 60',
      `list ${ROOT_DS}\nzfs destroy -r ${BOX}`,
      `list ${'x'.repeat(20_000)}`,
      'prune --all',
      'release ../keeper',
    ];
    for (const cmd of hostile) {
      const r = await agent(cmd);
      expect({ cmd, code: r.code, stdout: r.stdout }).toEqual({ cmd, code: 2, stdout: '' });
      expect(r.stderr).toMatch(/^hozo-agent: refused: [^\n]+\n$/);
    }
    expect(await boxFingerprint()).toBe(before);
    const s = JSON.parse((await agent('status')).stdout) as { leases: { id: string }[] };
    expect(s.leases.map((l) => l.id)).toEqual(['keeper']);
    expect((await agent('release keeper')).code).toBe(0);
    const log = readFileSync(join(DIR, 'state', 'agent.log'), 'utf8');
    expect(log.match(/: refused /g)?.length).toBeGreaterThanOrEqual(hostile.length);
  });

  it('send for restores: full and incremental, into a real zfs receive, guids kept', async () => {
    const full = await execa(process.execPath, [MAIN, 'serve', '--config', join(DIR, 'agent.json')], {
      env: envFor(`send ${ROOT_DS}/host-a/data@s1`),
      extendEnv: false,
      reject: false,
    }).pipe('zfs', ['receive', '-u', `${SRC}/restored`], { reject: false });
    expect(full.exitCode).toBe(0);
    const inc = await execa(process.execPath, [MAIN, 'serve', '--config', join(DIR, 'agent.json')], {
      env: envFor(`send -i @s1 ${ROOT_DS}/host-a/data@s2`),
      extendEnv: false,
      reject: false,
    }).pipe('zfs', ['receive', '-u', `${SRC}/restored`], { reject: false });
    expect(inc.exitCode).toBe(0);
    expect(await guid(`${SRC}/restored@s2`)).toBe(await guid(`${SRC}/data@s2`));
  });

  it('compressed and buffered streams: receive --zstd --mbuffer, send --zstd (real zstd and mbuffer on the box side)', async () => {
    const cfg = join(DIR, 'agent.json');
    const sh = (script: string, cmd: string) =>
      execa('sh', ['-c', script], { env: { ...envFor(cmd), MAIN, CFG: cfg, NODE: process.execPath }, extendEnv: false, reject: false });
    const r = await sh(
      `zfs send ${SRC}/data@s2 | zstd -q -c | mbuffer -q -m 4M | "$NODE" "$MAIN" serve --config "$CFG"`,
      `receive --zstd --mbuffer ${ROOT_DS}/zst`,
    );
    expect(r.stderr).toBe('');
    expect(r.exitCode).toBe(0);
    expect(await guid(`${ROOT_DS}/zst@s2`)).toBe(await guid(`${SRC}/data@s2`));
    const back = await sh(`"$NODE" "$MAIN" serve --config "$CFG" | zstd -q -d -c | zfs receive -u ${SRC}/zst-back`, `send --zstd ${ROOT_DS}/zst@s2`);
    expect(back.exitCode).toBe(0);
    expect(await guid(`${SRC}/zst-back@s2`)).toBe(await guid(`${SRC}/data@s2`));
    // A corrupt compressed stream: zstd fails, and so does the receive; nothing is left half-received.
    const bad = await sh(`head -c 100000 /dev/urandom | "$NODE" "$MAIN" serve --config "$CFG"`, `receive --zstd ${ROOT_DS}/zst-bad`);
    expect(bad.exitCode).not.toBe(0);
    expect(await zfsOk('list', `${ROOT_DS}/zst-bad`)).toBe(false);
  });

  it('status: pools from zpool (zfs-fuse), uptime, leases, no receive running', async () => {
    await agent('hold st 120');
    const r = await agent('status');
    expect(r.code).toBe(0);
    const s = JSON.parse(r.stdout);
    expect(s).toMatchObject({ protocol: 1, receiveRunning: false, shutdownPending: false, leases: [{ id: 'st' }] });
    expect(s.uptimeSeconds).toBeGreaterThan(0);
    expect(s.pools).toEqual([
      expect.objectContaining({
        name: BOX,
        imported: true,
        health: 'ONLINE',
        healthy: true,
        errors: 0,
        scrubRunning: false,
        disks: [{ name: join(DIR, `${BOX}.img`), power: null }],
      }),
    ]);
    expect(s.pools[0].capacityRatio).toBeGreaterThanOrEqual(0);
    await execa('zpool', ['scrub', BOX]); // zfs-fuse's scrub completes before `zpool scrub` returns
    const after = JSON.parse((await agent('status')).stdout);
    expect(after.pools[0].lastScrubEnd).toBeGreaterThan(Date.now() / 1000 - 120);
    expect((await agent('release st')).code).toBe(0);
  });

  it('prune keeps the newest and held snapshots, never touches anything outside the roots', async () => {
    const target = `${ROOT_DS}/host-a/data`;
    for (const s of ['s3', 's4', 's5']) await zfs('snapshot', `${SRC}/data@${s}`);
    expect((await sendInto(['-I', `${SRC}/data@s2`, `${SRC}/data@s5`], `receive ${target}`)).code).toBe(0);
    await zfs('hold', 'mine', `${target}@s3`);
    const cfg = writeConfig('prune.json', { retention: { daily: 0, weekly: 0, monthly: 0 } });
    const dry = await agent('prune --dry-run', cfg);
    expect(dry.code).toBe(0);
    expect(JSON.parse(dry.stdout)).toMatchObject({ dryRun: true, destroyed: [`${target}@s1`, `${target}@s2`, `${target}@s4`] });
    expect(await zfs('list', '-H', '-o', 'name', '-t', 'snapshot', '-r', target)).toContain(`${target}@s1`);
    const r = await agent('prune', cfg);
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.destroyed).toEqual([`${target}@s1`, `${target}@s2`, `${target}@s4`]);
    expect(out.kept).toEqual([
      { snapshot: `${target}@s5`, reasons: ['newest'] },
      { snapshot: `${target}@s3`, reasons: ['held'] },
      { snapshot: `${ROOT_DS}/zst@s2`, reasons: ['newest'] }, // another dataset's only snapshot
    ]);
    const left = (await zfs('list', '-H', '-o', 'name', '-t', 'snapshot', '-r', BOX)).split('\n').sort();
    expect(left).toEqual([`${BOX}/other@keepme`, `${target}@s3`, `${target}@s5`, `${ROOT_DS}/zst@s2`].sort());
    await zfs('release', 'mine', `${target}@s3`);
  });

  it('shutdown is refused while a receive runs', async () => {
    // A receive whose stream has not started: stdin stays open until we end it.
    const recv = execa(process.execPath, [MAIN, 'serve', '--config', join(DIR, 'agent.json')], {
      env: envFor(`receive ${ROOT_DS}/pending`),
      extendEnv: false,
      reject: false,
      stdin: 'pipe',
    });
    try {
      await waitFor('the receive marker', () => existsSync(join(DIR, 'state', 'receives')) && readdirSync(join(DIR, 'state', 'receives')).length > 0, {
        timeoutMs: 10_000,
      });
      const r = await agent('shutdown');
      expect(r.code).toBe(3);
      expect(JSON.parse(r.stdout)).toEqual({ shutdown: false, reasons: [expect.stringMatching(new RegExp(`a receive into ${ROOT_DS}/pending is running`))] });
      expect(JSON.parse((await agent('status')).stdout).receiveRunning).toBe(true);
    } finally {
      recv.stdin!.end(); // EOF before any stream: zfs receive fails
    }
    const done = await recv;
    expect(done.exitCode).not.toBe(0);
    expect(JSON.parse((await agent('status')).stdout).receiveRunning).toBe(false);
  });

  it('shutdown is deferred while a lease is held and carried out by its release; power-off runs after the delay', async () => {
    rmSync(MARKER, { force: true });
    expect((await agent('hold ctl-a 600')).code).toBe(0);
    const refused = await agent('shutdown');
    expect(refused.code).toBe(3);
    expect(JSON.parse(refused.stdout)).toEqual({ shutdown: false, deferred: true, reasons: ['lease "ctl-a" is held for 600 more seconds'] });
    expect(refused.stderr).toMatch(/^hozo-agent: shutdown deferred until the last lease is released: lease "ctl-a"/);
    expect(existsSync(MARKER)).toBe(false);
    const t0 = Date.now() / 1000;
    const released = await agent('release ctl-a');
    expect(released.code).toBe(0);
    expect(JSON.parse(released.stdout)).toMatchObject({ released: true, leases: [], shutdown: { poweroffInSeconds: 1, exported: [BOX], exportErrors: [] } });
    // A shutdown asked for now finds the power-off already under way.
    expect(JSON.parse((await agent('shutdown')).stdout)).toEqual({ shutdown: true, alreadyPending: true });
    expect(existsSync(MARKER)).toBe(false); // the call returned before the power-off
    expect((await execa('zpool', ['list', BOX], { reject: false })).exitCode).not.toBe(0); // exported
    // While it is pending, new work is refused.
    expect((await agent('hold late 60')).code).toBe(3);
    await waitFor('the delayed power-off command', () => existsSync(MARKER), { timeoutMs: 10_000, intervalMs: 50 });
    const ranAt = Number(readFileSync(MARKER, 'utf8').split(' ')[0]);
    expect(ranAt - t0).toBeGreaterThanOrEqual(0.9);
    // The power-off command succeeded, so the box counts as going down until it boots again: still refused.
    expect(JSON.parse((await agent('status')).stdout).shutdownPending).toBeTruthy();
    expect((await agent('hold late 60')).code).toBe(3);
    // What the next boot does to the marker (a new boot time makes it stale); this box does not reboot.
    rmSync(join(DIR, 'state', 'leases', '.shutdown-pending'));
    expect(JSON.parse((await agent('status')).stdout).shutdownPending).toBeFalsy();
  });

  it('prepare imports the exported pool again (bounded wait), then reports ready', async () => {
    const r = await agent('prepare');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({
      ready: true,
      pools: [{ name: BOX, imported: true, health: 'ONLINE', importedNow: true }],
      roots: [{ name: ROOT_DS, exists: true }],
    });
    const again = await agent('prepare');
    expect(JSON.parse(again.stdout)).toMatchObject({ ready: true, pools: [{ importedNow: false }] });
    const missing = await agent('prepare', writeConfig('missing.json', { pools: [`${BOX}x`], prepareTimeoutSeconds: 1 }));
    expect(missing.code).toBe(3);
    expect(JSON.parse(missing.stdout)).toMatchObject({ ready: false, pools: [{ name: `${BOX}x`, imported: false }] });
    expect(JSON.parse(missing.stdout).waitedSeconds).toBeGreaterThanOrEqual(0.9);
  });

  it('idle-check: not while a lease is active or activity is recent; powers off when idle', async () => {
    rmSync(MARKER, { force: true });
    const cfg = writeConfig('idle.json', { idlePoweroffMinutes: 0.5, exportOnShutdown: false });
    const idle = async () => {
      const r = await execa(process.execPath, [MAIN, 'idle-check', '--config', cfg], { reject: false, env: envFor(undefined), extendEnv: false });
      return { code: r.exitCode, out: JSON.parse(String(r.stdout)) as { action: string; reasons: string[] } };
    };
    const activity = join(DIR, 'state', 'last-activity');
    expect((await agent('hold busy 600', cfg)).code).toBe(0);
    utimesSync(activity, new Date(Date.now() - 3600_000), new Date(Date.now() - 3600_000)); // long idle, but leased
    let r = await idle();
    expect(r).toMatchObject({ code: 0, out: { action: 'none', reasons: [expect.stringMatching(/lease "busy"/)] } });
    expect(existsSync(MARKER)).toBe(false);
    expect((await agent('release busy', cfg)).code).toBe(0); // a call: activity is fresh again
    r = await idle();
    expect(r).toMatchObject({ code: 0, out: { action: 'none', reasons: [expect.stringMatching(/last activity \d+ s ago \(powers off after 30 s\)/)] } });
    expect(existsSync(MARKER)).toBe(false);
    utimesSync(activity, new Date(Date.now() - 60_000), new Date(Date.now() - 60_000));
    r = await idle();
    expect(r).toMatchObject({ code: 0, out: { action: 'poweroff', poweroff: { exitCode: 0 } } });
    expect(existsSync(MARKER)).toBe(true);
  });
});

// ---------------------------------------------------------------------------------------------------------------
// Through a real sshd: the lab's box (own namespace, own zfs-fuse), the agent as the forced command.

const labMissing = skip === undefined ? labPrerequisites() : ['see above'];
if (skip === undefined && labMissing.length > 0) console.warn(`SKIP: tests/integration/agent.test.ts (sshd part): lab needs ${labMissing.join(', ')}`);

describe.skipIf(skip !== undefined || labMissing.length > 0)('hozo-agent as the forced command of a real sshd (lab box)', () => {
  let lab: Lab;
  const boxPool = 'hzagbox';
  const root = `${boxPool}/kraken`;

  beforeAll(async () => {
    lab = await createLab({ id: 'agentit', sourcePool: `hzagsrc${ID}l`, boxPool, poolSizeMB: 256 });
    const b = lab.box;
    const cfg = join(b.dir, 'agent.json');
    writeFileSync(
      cfg,
      JSON.stringify({
        roots: [root],
        retention: { daily: 7, weekly: 4, monthly: 6 },
        idlePoweroffMinutes: 30,
        poweroffCommand: [...b.sleepCommand],
        leaseDirectory: join(b.dir, 'agent-state', 'leases'),
        stateDirectory: join(b.dir, 'agent-state'),
        poweroffDelaySeconds: 1,
        importDirectories: [dirname(b.pool.image)],
      }),
    );
    b.setAuthorizedKeys([b.clientKeyLine(`command="${process.execPath} ${MAIN} serve --config ${cfg}",restrict`)]);
    writeAgentBootHook(b, join(b.dir, 'agent-state', 'leases'));
    await lab.hostZfs(['create', `${lab.source.name}/data`]);
    await lab.hostZfs(['snapshot', `${lab.source.name}/data@s1`]);
  });

  afterAll(async () => {
    await lab?.destroy();
  });

  const ssh = (cmd: string | undefined) =>
    execa('ssh', [...lab.box.sshArgs(), lab.box.boxIp, ...(cmd !== undefined ? [cmd] : [])], { reject: false, stdin: 'ignore', timeout: 60_000 });

  it('the key can only speak the protocol: a shell command, zfs, and an interactive login are refused', async () => {
    const before = await lab.box.zfs(['get', '-H', '-p', '-r', '-o', 'name,property,value', 'type,guid', boxPool]);
    for (const cmd of ['zfs destroy -r hzagbox', 'sh -c id', 'id; zfs list', 'cat /etc/shadow', undefined]) {
      const r = await ssh(cmd);
      expect({ cmd, code: r.exitCode }).toEqual({ cmd, code: 2 });
      expect(r.stderr).toMatch(/hozo-agent: refused: /);
      expect(r.stdout).toBe('');
    }
    expect(await lab.box.zfs(['get', '-H', '-p', '-r', '-o', 'name,property,value', 'type,guid', boxPool])).toBe(before);
  });

  it('prepare, receive over SSH (zfs send | ssh box "receive …"), list', async () => {
    const p = await ssh('prepare');
    expect(p.exitCode).toBe(0);
    expect(JSON.parse(String(p.stdout))).toMatchObject({ ready: true, pools: [{ name: boxPool, imported: true }] });
    const b = lab.box;
    const r = await execa('zfs', ['send', `${lab.source.name}/data@s1`]).pipe('ssh', [...b.sshArgs(), b.boxIp, `receive -u ${root}/data`], { reject: false });
    expect(r.exitCode).toBe(0);
    const srcGuid = await lab.hostZfs(['get', '-H', '-p', '-o', 'value', 'guid', `${lab.source.name}/data@s1`]);
    expect(await b.zfs(['get', '-H', '-p', '-o', 'value', 'guid', `${root}/data@s1`])).toBe(srcGuid);
    const l = await ssh(`list ${root}`);
    expect(l.exitCode).toBe(0);
    expect(parseInventory(String(l.stdout)).get(`${root}/data`)!.snapshots[0]!.guid).toBe(srcGuid);
    // Outside the root: refused before anything reaches zfs.
    const out = await execa('zfs', ['send', `${lab.source.name}/data@s1`]).pipe('ssh', [...b.sshArgs(), b.boxIp, `receive ${boxPool}/stolen`], {
      reject: false,
    });
    expect(out.exitCode).toBe(2);
    expect((await b.exec(['zfs', 'list', `${boxPool}/stolen`])).exitCode).not.toBe(0);
  });

  it('shutdown returns cleanly, then the box goes to sleep (its sshd stops)', async () => {
    expect((await ssh('hold ctl 600')).exitCode).toBe(0);
    expect((await ssh('release ctl')).exitCode).toBe(0);
    const t = Date.now();
    const r = await ssh('shutdown');
    expect(r.exitCode).toBe(0);
    expect(Date.now() - t).toBeLessThan(5000);
    expect(JSON.parse(String(r.stdout))).toMatchObject({ shutdown: true, exported: [boxPool] });
    await waitFor('the box to fall asleep', async () => !(await lab.box.sshPortOpen()), { timeoutMs: 15_000, intervalMs: 100 });
    // Wake it (start sshd) and bring the pool back.
    await lab.box.startSshd();
    const p = await ssh('prepare');
    expect(p.exitCode).toBe(0);
    expect(JSON.parse(String(p.stdout))).toMatchObject({ ready: true, pools: [{ importedNow: true }] });
  });
});
