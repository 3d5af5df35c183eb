// The ZFS layer against a real zfs-fuse daemon, on a throw-away file-backed pool "hzzfs-it-<random>".
// Needs root and a running daemon (zfs-fuse --no-daemon >/tmp/zfs-fuse.log 2>&1 &); otherwise skips loudly.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isHozoError, type ErrorCode } from '../../src/errors.js';
import { LocalRunner } from '../../src/transport/local.js';
import { shellJoin } from '../../src/transport/quote.js';
import type { CommandResult, Runner } from '../../src/transport/runner.js';
import {
  createParentArgv,
  destroySnapshotArgv,
  guidsArgv,
  holdArgv,
  receiveArgv,
  releaseArgv,
  rollbackArgv,
  sendArgv,
  snapshotArgv,
} from '../../src/zfs/argv.js';
import { poolListArgv, poolStatusArgv } from '../../src/zfs/pool-argv.js';
import { probeCapabilities } from '../../src/zfs/capabilities.js';
import { CapabilityCache } from '../../src/zfs/capability-cache.js';
import { hello } from '../../src/zfs/hello.js';
import { checkResult, classify } from '../../src/zfs/errors.js';
import { listInventory, parseGuids } from '../../src/zfs/inventory.js';
import type { Capabilities, Inventory } from '../../src/zfs/types.js';

const runner = new LocalRunner({ defaultTimeoutMs: 60_000 });

async function whyUnusable(): Promise<string | undefined> {
  if (process.getuid?.() !== 0) return 'not root (the zfs-fuse daemon serves root only)';
  try {
    if ((await runner.run(['sh', '-c', 'command -v zfs-fuse'])).exitCode !== 0) return 'zfs-fuse is not installed (apt-get install -y zfs-fuse)';
    const r = await runner.run(['zpool', 'list', '-H', '-o', 'name']);
    if (r.exitCode !== 0) return `zfs-fuse is not usable: ${(r.stderr || r.stdout).trim().replace(/\n/g, ' ')}`;
  } catch (e) {
    return `cannot run zpool: ${String(e)}`;
  }
  return undefined;
}

const skip = await whyUnusable();
if (skip !== undefined) {
  console.warn(`SKIP: tests/integration/zfs-real.test.ts: ${skip}; start the daemon with: zfs-fuse --no-daemon >/tmp/zfs-fuse.log 2>&1 &`);
}

const POOL = `hzzfs-it-${randomBytes(3).toString('hex')}`;
const IMG = `/tmp/${POOL}.img`;
const MNT = `/tmp/${POOL}-mnt`;
const APP = `${POOL}/src/my-app.v1`;
const DB = `${POOL}/src/db:main`;
const PARENT = `${POOL}/backup/host-a.example`;
const TARGET = `${PARENT}/my-app.v1`;

async function zfs(argv: readonly string[]): Promise<string> {
  return checkResult(await runner.run(argv), { action: argv.join(' '), host: runner.name, argv });
}

async function sh(script: string): Promise<CommandResult> {
  return runner.run(['sh', '-c', script]);
}

/** send | receive; the result is the receiver's (the sender's stderr is dropped: it only echoes the failure). */
async function replicate(send: readonly string[], receive: readonly string[]): Promise<CommandResult> {
  return sh(`${shellJoin(send)} 2>/dev/null | ${shellJoin(receive)}`);
}

async function codeOf(p: Promise<unknown>): Promise<ErrorCode | undefined> {
  try {
    await p;
  } catch (e) {
    if (isHozoError(e)) return e.code;
    throw e;
  }
  return undefined;
}

/** Counts commands, to hold the "one command per probe / per listing" promise. */
function counting(inner: Runner): Runner & { count: number } {
  const r = {
    name: inner.name,
    local: inner.local,
    count: 0,
    run: (argv: readonly string[]) => {
      r.count++;
      return inner.run(argv);
    },
    commandFor: (argv: readonly string[]) => inner.commandFor(argv),
    close: () => inner.close(),
  };
  return r;
}

describe.skipIf(skip !== undefined)('zfs layer on real zfs-fuse', () => {
  let created = false;
  let caps: Capabilities;

  beforeAll(async () => {
    const made = await sh(`truncate -s 256M ${IMG} && zpool create -m ${MNT} ${POOL} ${IMG}`);
    if (made.exitCode !== 0) throw new Error(`cannot create test pool ${POOL}: ${made.stderr}`);
    created = true;
    await zfs(['zfs', 'create', '-p', APP]);
    await zfs(['zfs', 'create', DB]);
    await zfs(snapshotArgv(`${APP}@a`));
    await sh(`dd if=/dev/urandom of=${MNT}/src/my-app.v1/f1 bs=1k count=64 2>/dev/null`);
    await zfs(snapshotArgv(`${APP}@b.2`));
    await sh(`dd if=/dev/urandom of=${MNT}/src/my-app.v1/f2 bs=1k count=64 2>/dev/null`);
    await zfs(snapshotArgv(`${APP}@c:3`));
    await zfs(snapshotArgv(`${DB}@first`));
  });

  afterAll(async () => {
    if (!created) return;
    // zfs-fuse reports "dataset is busy" for a moment after mounts/unmounts: retry.
    let last = '';
    for (let i = 0; i < 10; i++) {
      const r = await runner.run(['zpool', 'destroy', '-f', POOL]);
      if (r.exitCode === 0) {
        last = '';
        break;
      }
      last = r.stderr;
      if (!/busy/i.test(r.stderr)) break;
      await new Promise((res) => setTimeout(res, 1000));
    }
    rmSync(IMG, { force: true });
    for (const dir of [`${MNT}-dst`, MNT]) {
      try {
        rmdirSync(dir); // empty dirs only: never delete through a still-mounted dataset
      } catch {
        // gone, or not empty because the pool survived (reported below)
      }
    }
    if (last !== '') throw new Error(`could not destroy test pool ${POOL}: ${last}`);
  });

  it('probes zfs-fuse capabilities with one command', async () => {
    const r = counting(runner);
    caps = await probeCapabilities(r);
    expect(r.count).toBe(1);
    expect(caps.implementation).toMatch(/^zfs-fuse \(pool v\d+\)$/);
    expect(caps).toMatchObject({ listParsable: false, resumeTokens: false, bookmarks: false, holds: true });
    expect([...caps.sendFlags].filter((f) => 'cLewnP'.includes(f))).toEqual([]);
    expect(caps.sendFlags.has('v')).toBe(true);
    expect(caps.receiveFlags.has('u')).toBe(true);
  });

  it('lists several roots in one command; guids equal zfs get -p; a missing root is absent', async () => {
    const r = counting(runner);
    const inv = await listInventory(r, [`${POOL}/src`, `${POOL}/missing`], caps);
    expect(r.count).toBe(1);
    expect([...inv.keys()]).toEqual([`${POOL}/src`, DB, APP]);
    const app = inv.get(APP)!;
    expect(app.snapshots.map((s) => s.name)).toEqual(['a', 'b.2', 'c:3']);
    const txgs = app.snapshots.map((s) => s.createtxg);
    expect([...txgs].sort((x, y) => x - y)).toEqual(txgs);
    for (const s of app.snapshots) {
      const exact = (await zfs(['zfs', 'get', '-H', '-p', '-o', 'value', 'guid', `${APP}@${s.name}`])).trim();
      expect(s.guid).toBe(exact);
      // Without -p zfs-fuse prints "13.6E"-style values: never usable for guid matching.
      const lossy = (await zfs(['zfs', 'get', '-H', '-o', 'value', 'guid', `${APP}@${s.name}`])).trim();
      if (BigInt(exact) >= 10_000n) expect(lossy).not.toBe(exact);
    }
    const viaBuilder = parseGuids(await zfs(guidsArgv(app.snapshots.map((s) => `${APP}@${s.name}`))));
    expect(viaBuilder.get(`${APP}@c:3`)).toBe(app.snapshots[2]!.guid);
  });

  it('hello: probes once and stores the answer; later calls take it from the store and list in the same command', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hozo-capcache-'));
    try {
      const cache = new CapabilityCache(dir);
      const r = counting(runner);
      const first = await hello(r, cache, { endpoint: 'local', roots: [`${POOL}/src`], extra: [{ name: 'pools', argv: poolListArgv(POOL) }] });
      expect(first.source).toBe('probe');
      expect(first.inventory).toBeUndefined(); // the listing needs the capabilities first
      expect(r.count).toBe(1);
      expect(first.caps).toEqual(caps);
      expect(first.extra.get('pools')!.stdout).toMatch(new RegExp(`^${POOL}\tONLINE\t`));
      const stored = JSON.parse(readFileSync(join(dir, 'capabilities', 'local.json'), 'utf8'));
      expect(stored.fingerprint).toMatch(/\/zfs \d+ \d+ \d+\n/);
      expect(stored.endpoint).toBe('local');

      const second = await hello(r, cache, { endpoint: 'local', roots: [`${POOL}/src`, `${POOL}/missing`] });
      expect(second.source).toBe('cache');
      expect(r.count).toBe(2); // one command: fingerprint + listing
      expect(second.caps).toEqual(caps);
      expect([...(await second.inventory!).keys()]).toEqual([...(await listInventory(runner, [`${POOL}/src`], caps)).keys()]);

      // A stored probe for another endpoint (the host's address changed) is not used.
      expect((await hello(r, cache, { endpoint: 'root@elsewhere:22' })).source).toBe('probe');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('hello: a changed tool on PATH changes the fingerprint, and the host is probed again', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hozo-capcache-'));
    const shim = mkdtempSync(join(tmpdir(), 'hozo-shim-'));
    const path = process.env['PATH'];
    try {
      const cache = new CapabilityCache(dir);
      expect((await hello(runner, cache, { endpoint: 'local' })).source).toBe('probe');
      expect((await hello(runner, cache, { endpoint: 'local' })).source).toBe('cache');
      // An mbuffer found first on PATH: a different program, so a different fingerprint.
      writeFileSync(join(shim, 'mbuffer'), '#!/bin/sh\nexec /usr/bin/mbuffer "$@"\n', { mode: 0o755 });
      process.env['PATH'] = `${shim}:${path}`;
      const again = await hello(runner, cache, { endpoint: 'local', roots: [`${POOL}/src`] });
      expect(again.source).toBe('reprobe');
      expect(again.inventory).toBeUndefined();
      expect(JSON.parse(readFileSync(join(dir, 'capabilities', 'local.json'), 'utf8')).fingerprint).toContain(`${shim}/mbuffer`);
      expect((await hello(runner, cache, { endpoint: 'local' })).source).toBe('cache');
    } finally {
      process.env['PATH'] = path;
      rmSync(dir, { recursive: true, force: true });
      rmSync(shim, { recursive: true, force: true });
    }
  });

  it('classifies a real "dataset does not exist"', async () => {
    expect(await codeOf(zfs(['zfs', 'get', '-H', '-p', '-o', 'value', 'guid', `${POOL}/nope`]))).toBe('ZFS_DATASET_NOT_FOUND');
    const rootOnly = await listInventory(runner, [`${POOL}/nope`], caps);
    expect(rootOnly.size).toBe(0);
  });

  let target: Inventory;
  it('replicates with the argv builders: parent, full, incremental; guids match', async () => {
    await zfs(createParentArgv(PARENT));
    const full = await replicate(sendArgv({ kind: 'full', snapshot: `${APP}@a` }), receiveArgv(TARGET));
    expect(full.exitCode, full.stderr).toBe(0);
    const inc = await replicate(sendArgv({ kind: 'incremental', from: `${APP}@a`, to: `${APP}@b.2` }), receiveArgv(TARGET));
    expect(inc.exitCode, inc.stderr).toBe(0);
    const src = await listInventory(runner, [`${POOL}/src`], caps);
    target = await listInventory(runner, [`${POOL}/backup`], caps);
    expect(target.get(PARENT)?.snapshots).toEqual([]);
    const got = target.get(TARGET)!.snapshots.map((s) => [s.name, s.guid]);
    const want = src
      .get(APP)!
      .snapshots.slice(0, 2)
      .map((s) => [s.name, s.guid]);
    expect(got).toEqual(want);
  });

  it('classifies a real "destination has been modified", then -F receives', async () => {
    await zfs(['zfs', 'set', `mountpoint=${MNT}-dst`, TARGET]);
    await zfs(['zfs', 'mount', TARGET]);
    await sh(`touch ${MNT}-dst/written-on-the-backup && sync`);
    const send = sendArgv({ kind: 'incremental', from: `${APP}@b.2`, to: `${APP}@c:3` });
    const r = await replicate(send, receiveArgv(TARGET));
    expect(r.exitCode).not.toBe(0);
    const e = classify(r.stderr, { action: `receive into ${TARGET}` });
    expect(e.code, e.message).toBe('ZFS_TARGET_MODIFIED');
    expect(e.hint).toMatch(/readonly=on/);
    const forced = await replicate(send, receiveArgv(TARGET, { force: true }));
    expect(forced.exitCode, forced.stderr).toBe(0);
    const after = await listInventory(runner, [TARGET], caps);
    expect(after.get(TARGET)!.snapshots.map((s) => s.name)).toEqual(['a', 'b.2', 'c:3']);
  });

  it('hold / release, with busy destroy and idempotence codes', async () => {
    const snap = `${DB}@first`;
    const refs = async () => (await listInventory(runner, [DB], caps)).get(DB)!.snapshots[0]!.userrefs;
    await zfs(holdArgv('hozo-test', [snap]));
    expect(await refs()).toBe(1);
    expect(await codeOf(zfs(holdArgv('hozo-test', [snap])))).toBe('ZFS_HOLD_EXISTS');
    expect(await codeOf(zfs(destroySnapshotArgv(snap)))).toBe('ZFS_DATASET_BUSY');
    await zfs(releaseArgv('hozo-test', [snap]));
    expect(await refs()).toBe(0);
    expect(await codeOf(zfs(releaseArgv('hozo-test', [snap])))).toBe('ZFS_HOLD_NOT_FOUND');
    await zfs(destroySnapshotArgv(snap));
    expect((await listInventory(runner, [DB], caps)).get(DB)!.snapshots).toEqual([]);
  });

  it('rollback -r drops newer snapshots; pool status and list', async () => {
    await zfs(['zfs', 'unmount', TARGET]);
    await zfs(rollbackArgv(`${TARGET}@b.2`, true));
    const inv = await listInventory(runner, [TARGET], caps);
    expect(inv.get(TARGET)!.snapshots.map((s) => s.name)).toEqual(['a', 'b.2']);
    expect((await zfs(poolStatusArgv(POOL))).trim()).toBe(`pool '${POOL}' is healthy`);
    expect((await zfs(poolListArgv(POOL))).split('\t').slice(0, 2)).toEqual([POOL, 'ONLINE']);
  });
});
