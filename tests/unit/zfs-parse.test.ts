// Parsers and classification on captured output: tests/fixtures/zfs/zfs-fuse (real, this lab) and
// tests/fixtures/zfs/openzfs-2.2 (from OpenZFS 2.2.6 source and public captures; see the README there).
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { HozoError, isHozoError, type ErrorCode } from '../../src/errors.js';
import type { CommandResult, Runner } from '../../src/transport/runner.js';
import { parseCapabilities, usageFlags } from '../../src/zfs/capabilities.js';
import { checkResult, classify, definitiveStageError, ZfsCommandFailure } from '../../src/zfs/errors.js';
import { listInventory, parseGuids, parseInventory } from '../../src/zfs/inventory.js';

const fixture = (path: string): string => readFileSync(new URL(`../fixtures/zfs/${path}`, import.meta.url), 'utf8');

interface CapturedError {
  readonly case: string;
  readonly stderr: string;
  readonly stdout?: string;
  readonly exitCode: number | null;
}
const errorsOf = (dir: string): CapturedError[] => JSON.parse(fixture(`${dir}/errors.json`)) as CapturedError[];

/** guid column straight from the fixture text, so the expectation never passes through a JS number. */
function guidsInText(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const m of text.matchAll(/^([^\t\n]+)\tguid\t([0-9]+)$/gm)) out.set(m[1]!, m[2]!);
  return out;
}

// ---------------------------------------------------------------------------------------------------------------

describe('parseInventory on real zfs-fuse output', () => {
  const text = fixture('zfs-fuse/inventory.stdout');
  const inv = parseInventory(text);

  it('lists each filesystem once, snapshots attached, names with : . - intact', () => {
    expect([...inv.keys()]).toEqual(['hzzfs-fx/data', 'hzzfs-fx/data/db:main', 'hzzfs-fx/data/db:main/wal-2', 'hzzfs-fx/data/my-app.v1']);
    expect(inv.get('hzzfs-fx/data/my-app.v1')!.snapshots.map((s) => s.name)).toEqual(['auto-2024-01-01_00:00', 'b.2', 'hourly-2024.01.01-10:00']);
    expect(inv.get('hzzfs-fx/data/db:main/wal-2')!.snapshots).toEqual([]);
    expect(inv.get('hzzfs-fx/data')!.type).toBe('filesystem');
  });

  it('keeps every guid exactly, including those above 2^53', () => {
    const expected = guidsInText(text);
    let above = 0;
    for (const ds of inv.values()) {
      for (const s of ds.snapshots) {
        const want = expected.get(`${ds.name}@${s.name}`);
        expect(s.guid).toBe(want);
        if (BigInt(s.guid) > BigInt(Number.MAX_SAFE_INTEGER)) above++;
      }
    }
    expect(above).toBeGreaterThan(0);
    expect(inv.get('hzzfs-fx/data/my-app.v1')!.snapshots[1]!.guid).toBe('11200921939992821298');
  });

  it('sorts snapshots by createtxg and reads userrefs (1 = held)', () => {
    const snaps = inv.get('hzzfs-fx/data/my-app.v1')!.snapshots;
    expect(snaps.map((s) => s.createtxg)).toEqual([22, 27, 32]);
    expect(snaps[0]!.creation).toBe(1795323309);
    expect(inv.get('hzzfs-fx/data/db:main')!.snapshots[0]!.userrefs).toBe(1);
    expect(snaps[0]!.userrefs).toBe(0);
    expect(inv.get('hzzfs-fx/data')!.resumeToken).toBeUndefined();
  });

  it('does not depend on line order', () => {
    const lines = text.trimEnd().split('\n');
    const shuffled = lines.map((l, i) => [((i * 7919) % 101) + i / 1000, l] as const).sort((a, b) => a[0] - b[0]);
    expect(parseInventory(shuffled.map(([, l]) => l).join('\n') + '\n')).toEqual(inv);
  });
});

describe('parseInventory on OpenZFS 2.2 output', () => {
  const inv = parseInventory(fixture('openzfs-2.2/inventory.stdout'));
  const home = inv.get('tank/backup/host-a.example:home')!;

  it('keeps bookmarks with their dataset (guid, txg), apart from its snapshots', () => {
    expect(home.bookmarks).toEqual([{ name: 'autosnap_2024-01-01_00:00:01_daily', guid: '1836227440271617085', createtxg: 1000123, creation: 1704067201 }]);
    expect(home.snapshots.map((s) => s.name)).not.toContain('autosnap_2024-01-01_00:00:01_daily#');
    expect(inv.get('tank/vm')!.bookmarks).toBeUndefined();
  });

  it('lists datasets (not bookmarks) as keys, knows volumes', () => {
    expect([...inv.keys()]).toEqual([
      'tank/backup',
      'tank/backup/host-a.example:home',
      'tank/backup/host-a.example:home/projects',
      'tank/backup/host-b',
      'tank/vm',
      'tank/vm/disk-0',
    ]);
    expect(home.snapshots.map((s) => s.name)).toEqual(['autosnap_2024-01-01_00:00:01_daily', 'autosnap_2024-01-02_00:00:01_daily', 'hourly.2024-01-02-10:00']);
    expect(inv.get('tank/vm/disk-0')!.type).toBe('volume');
    expect(inv.get('tank/vm/disk-0')!.snapshots.map((s) => s.name)).toEqual(['pre-upgrade']);
  });

  it('guids near 2^64 and at 2^53 + 1 survive', () => {
    expect(home.snapshots[1]!.guid).toBe('18446744073709551557');
    expect(home.snapshots[2]!.guid).toBe('9007199254740993');
    expect(String(Number(home.snapshots[2]!.guid))).not.toBe('9007199254740993'); // what a number would have done
  });

  it('reads a resume token; "-" means none', () => {
    expect(inv.get('tank/backup/host-b')!.resumeToken).toMatch(/^1-fd3f3ea61-130-789c6360/);
    expect(home.resumeToken).toBeUndefined();
    expect(home.snapshots[1]!.userrefs).toBe(1);
  });
});

describe('parseInventory rejects what it does not understand', () => {
  const code = (stdout: string): ErrorCode | undefined => {
    try {
      parseInventory(stdout);
    } catch (e) {
      return isHozoError(e) ? e.code : undefined;
    }
    return undefined;
  };

  it('lossy guids, missing fields, orphan snapshots, garbage', () => {
    const ds = 'p/d\ttype\tfilesystem\np/d\tguid\t1\np/d\tcreatetxg\t1\np/d\tcreation\t1\n';
    expect(code(ds)).toBeUndefined();
    expect(code(`${ds}p/d@s\ttype\tsnapshot\np/d@s\tguid\t13.6E\np/d@s\tcreatetxg\t2\np/d@s\tcreation\t2\n`)).toBe('ZFS_UNKNOWN');
    expect(code(`${ds}p/d@s\ttype\tsnapshot\np/d@s\tcreatetxg\t2\np/d@s\tcreation\t2\n`)).toBe('ZFS_UNKNOWN');
    expect(code('q/e@s\ttype\tsnapshot\nq/e@s\tguid\t5\nq/e@s\tcreatetxg\t2\nq/e@s\tcreation\t2\n')).toBe('ZFS_UNKNOWN');
    expect(code('NAME  PROPERTY  VALUE  SOURCE\n')).toBe('ZFS_UNKNOWN');
    expect(code('')).toBeUndefined();
  });
});

describe('parseGuids', () => {
  it('exact guids from `zfs get -H -p -o name,value guid`', () => {
    expect(parseGuids(fixture('zfs-fuse/guids.stdout')).get('hzzfs-fx/data/my-app.v1@b.2')).toBe('11200921939992821298');
    expect(parseGuids(fixture('openzfs-2.2/guids.stdout')).get('tank/vm/disk-0@pre-upgrade')).toBe('12695343126436735127');
  });

  it('refuses the lossy form zfs-fuse prints without -p', () => {
    expect(() => parseGuids(fixture('zfs-fuse/guids-lossy.stdout'))).toThrow(HozoError);
  });
});

// ---------------------------------------------------------------------------------------------------------------

function fakeRunner(reply: CommandResult | ((argv: readonly string[]) => CommandResult)): Runner & { calls: string[][] } {
  const calls: string[][] = [];
  return {
    name: 'box',
    local: false,
    calls,
    async run(argv) {
      calls.push([...argv]);
      return typeof reply === 'function' ? reply(argv) : reply;
    },
    commandFor: (argv) => [...argv],
    async close() {},
  };
}

const FUSE_CAPS = parseCapabilities(fixture('zfs-fuse/probe.txt'));
const OPENZFS_CAPS = parseCapabilities(fixture('openzfs-2.2/probe.txt'));

describe('listInventory', () => {
  it('a missing root is absent, the rest is listed (real zfs-fuse exit 1 + stderr)', async () => {
    const runner = fakeRunner({
      stdout: fixture('zfs-fuse/inventory.stdout'),
      stderr: fixture('zfs-fuse/inventory.stderr'),
      exitCode: Number(fixture('zfs-fuse/inventory.exitcode')),
    });
    const inv = await listInventory(runner, ['hzzfs-fx/data', 'hzzfs-fx/missing'], FUSE_CAPS);
    expect(inv.has('hzzfs-fx/missing')).toBe(false);
    expect(inv.size).toBe(4);
    expect(runner.calls).toHaveLength(1);
    expect(runner.calls[0]).toContain('type,guid,createtxg,creation,userrefs');
  });

  it('asks for receive_resume_token only where it exists', async () => {
    const runner = fakeRunner({
      stdout: fixture('openzfs-2.2/inventory.stdout'),
      stderr: fixture('openzfs-2.2/inventory.stderr'),
      exitCode: 1,
    });
    const inv = await listInventory(runner, ['tank/backup', 'tank/vm', 'tank/missing'], OPENZFS_CAPS);
    expect(runner.calls[0]).toContain('type,guid,createtxg,creation,userrefs,receive_resume_token,encryption,encryptionroot,keystatus');
    expect(inv.get('tank/backup/host-b')!.resumeToken).toBeDefined();
  });

  it('"no such pool or dataset" also means a missing root', async () => {
    const runner = fakeRunner({ stdout: '', stderr: "cannot open 'gone': no such pool or dataset\n", exitCode: 1 });
    expect((await listInventory(runner, ['gone'], OPENZFS_CAPS)).size).toBe(0);
  });

  it('any other complaint is a classified error', async () => {
    const denied = fakeRunner({ stdout: '', stderr: "cannot open 'tank': permission denied\n", exitCode: 1 });
    await expect(listInventory(denied, ['tank'], OPENZFS_CAPS)).rejects.toMatchObject({ code: 'ZFS_PERMISSION' });
    // A missing dataset that is not one of the roots is not ours to ignore.
    const other = fakeRunner({ stdout: '', stderr: "cannot open 'tank/x': dataset does not exist\n", exitCode: 1 });
    await expect(listInventory(other, ['tank'], OPENZFS_CAPS)).rejects.toMatchObject({ code: 'ZFS_DATASET_NOT_FOUND' });
    const silent = fakeRunner({ stdout: '', stderr: '', exitCode: 1 });
    await expect(listInventory(silent, ['tank'], OPENZFS_CAPS)).rejects.toMatchObject({ code: 'ZFS_UNKNOWN' });
    const killed = fakeRunner({ stdout: '', stderr: '', exitCode: null });
    await expect(listInventory(killed, ['tank'], OPENZFS_CAPS)).rejects.toMatchObject({ code: 'ZFS_UNKNOWN' });
  });

  it('no roots, no command', async () => {
    const runner = fakeRunner({ stdout: '', stderr: '', exitCode: 0 });
    expect((await listInventory(runner, [], FUSE_CAPS)).size).toBe(0);
    expect(runner.calls).toHaveLength(0);
  });
});

// ---------------------------------------------------------------------------------------------------------------

describe('parseCapabilities', () => {
  it('zfs-fuse (real probe): no list -p, no resume, no bookmarks, holds; flags the usage hides are found', () => {
    const c = FUSE_CAPS;
    expect(c.implementation).toBe('zfs-fuse (pool v23)');
    expect(c.listParsable).toBe(false);
    expect(c.resumeTokens).toBe(false);
    expect(c.bookmarks).toBe(false);
    expect(c.holds).toBe(true);
    for (const f of ['D', 'R', 'p', 'v', 'i', 'I']) expect(c.sendFlags.has(f), `send -${f}`).toBe(true);
    for (const f of ['c', 'L', 'e', 'w', 'n', 'P', 't', 'b', 'h', 's']) expect(c.sendFlags.has(f), `send -${f}`).toBe(false);
    // -u and -e are accepted although zfs-fuse's usage says only [-vnF] and -d.
    for (const f of ['v', 'n', 'F', 'd', 'u', 'e']) expect(c.receiveFlags.has(f), `receive -${f}`).toBe(true);
    for (const f of ['s', 'o', 'x', 'A', 'M', 'h']) expect(c.receiveFlags.has(f), `receive -${f}`).toBe(false);
  });

  it('OpenZFS 2.2: everything', () => {
    const c = OPENZFS_CAPS;
    expect(c.implementation).toBe('OpenZFS 2.2.6');
    expect(c).toMatchObject({ listParsable: true, resumeTokens: true, bookmarks: true, holds: true, mbuffer: true, pv: true, zstd: true });
    for (const f of ['D', 'n', 'P', 'p', 'R', 'v', 'L', 'e', 'c', 'w', 't', 'i', 'I', 'h', 'b', 's', 'V', 'X']) {
      expect(c.sendFlags.has(f), `send -${f}`).toBe(true);
    }
    for (const f of ['v', 'M', 'n', 's', 'F', 'h', 'u', 'o', 'x', 'd', 'e', 'A']) expect(c.receiveFlags.has(f), `receive -${f}`).toBe(true);
  });

  it('tools and versions', () => {
    const withoutTools = fixture('openzfs-2.2/probe.txt').replace(/@@ tools\n[^@]*/, '@@ tools\n/usr/bin/pv\n');
    expect(parseCapabilities(withoutTools)).toMatchObject({ mbuffer: false, pv: true, zstd: false });
    const kmod = fixture('openzfs-2.2/probe.txt').replace('zfs-kmod-2.2.6-1', 'zfs-kmod-2.2.4-1');
    expect(parseCapabilities(kmod).implementation).toBe('OpenZFS 2.2.6 (kmod 2.2.4)');
    const freebsd = fixture('openzfs-2.2/probe.txt').replace(
      'zfs-2.2.6-1\nzfs-kmod-2.2.6-1',
      'zfs-2.2.4-FreeBSD_g256659204\nzfs-kmod-2.2.4-FreeBSD_g256659204',
    );
    expect(parseCapabilities(freebsd).implementation).toBe('OpenZFS 2.2.4');
  });

  it('an older OpenZFS without receive -s has no resume tokens even if the property exists', () => {
    const [head, receiveOptions] = fixture('openzfs-2.2/probe.txt').replaceAll('[-vMnsFhu]', '[-vMnFhu]').split('@@ receive-options');
    const old = `${head}@@ receive-options${receiveOptions!.replace(/^s\tmissing snapshot argument$/m, "s\tinvalid option 's'")}`;
    const c = parseCapabilities(old);
    expect(c.receiveFlags.has('s')).toBe(false);
    expect(c.resumeTokens).toBe(false);
  });

  it('unusable zfs: a classified error, not empty capabilities', () => {
    const daemonDown = errorsOf('zfs-fuse').find((e) => e.case === 'daemon-not-running')!.stderr;
    const probe = ['commands', 'send-usage', 'receive-usage', 'end'].map((s) => `@@ ${s}\n${daemonDown}`).join('');
    expect(() => parseCapabilities(probe, 'box')).toThrow(expect.objectContaining({ code: 'ZFS_UNAVAILABLE' }));
    const notFound = '@@ commands\n@@ send-usage\nsh: 1: zfs: not found\n@@ receive-usage\nsh: 1: zfs: not found\n@@ end\n';
    expect(() => parseCapabilities(notFound)).toThrow(expect.objectContaining({ code: 'ZFS_UNAVAILABLE' }));
    // Not root on zfs-fuse: every one of the probe's zfs commands says so; the message quotes the first once.
    const denied = 'connect: Permission denied\ninternal error: failed to initialize ZFS library\n';
    const flags = 'DLPRbcehnpsvw'
      .split('')
      .map((f) => `${f}\t${denied}`)
      .join('');
    const nobody = `@@ commands\n@@ send-usage\n${denied}@@ receive-usage\n${denied}@@ send-options\n${flags}@@ end\n`;
    let e: HozoError | undefined;
    try {
      parseCapabilities(nobody, 'local');
    } catch (x) {
      e = x as HozoError;
    }
    expect(e?.code).toBe('ZFS_PERMISSION');
    expect(e?.message).not.toMatch(/@@|send-usage|\tconnect/);
    expect(e?.message.match(/Permission denied/g)).toHaveLength(1);
    const cut = fixture('zfs-fuse/probe.txt').replace(/@@ end\n$/, '');
    expect(() => parseCapabilities(cut)).toThrow(expect.objectContaining({ code: 'ZFS_UNKNOWN' }));
  });

  it('usageFlags reads the usage notations of both implementations', () => {
    expect([...usageFlags(['\tsend [-RDp] [-[iI] snapshot] <snapshot>'])].sort()).toEqual(['D', 'I', 'R', 'i', 'p']);
    expect([...usageFlags(['\tsend [-nVvPe] -t <receive_resume_token>', '\t  [-i|-I snapshot] --redact <bookmark>'])].sort()).toEqual([
      'I',
      'P',
      'V',
      'e',
      'i',
      'n',
      't',
      'v',
    ]);
    expect([...usageFlags(['\tlist [-rH][-d max] [-o property[,...]]'])].sort()).toEqual(['H', 'd', 'o', 'r']);
    expect(usageFlags(['missing snapshot argument', 'For the property list, run: zfs set|get']).size).toBe(0);
  });
});

// ---------------------------------------------------------------------------------------------------------------

const FUSE_EXPECTED: Record<string, ErrorCode> = {
  'destination-exists': 'ZFS_DATASET_EXISTS',
  'destination-has-snapshots': 'ZFS_DATASET_EXISTS',
  'target-modified': 'ZFS_TARGET_MODIFIED',
  'incremental-mismatch': 'ZFS_INCREMENTAL_MISMATCH',
  'receive-parent-missing': 'ZFS_DATASET_NOT_FOUND',
  'receive-truncated': 'PIPELINE_FAILED',
  'receive-empty-stream': 'PIPELINE_FAILED',
  'send-broken-pipe': 'PIPELINE_FAILED',
  'send-missing-snapshot': 'ZFS_DATASET_NOT_FOUND',
  'send-not-earlier': 'ZFS_INCREMENTAL_MISMATCH',
  'dataset-not-found': 'ZFS_DATASET_NOT_FOUND',
  'pool-not-found': 'ZFS_DATASET_NOT_FOUND',
  'hold-exists': 'ZFS_HOLD_EXISTS',
  'release-no-such-tag': 'ZFS_HOLD_NOT_FOUND',
  'destroy-held-snapshot': 'ZFS_DATASET_BUSY',
  'rollback-newer-snapshots': 'ZFS_TARGET_MODIFIED',
  'create-exists': 'ZFS_DATASET_EXISTS',
  'list-parsable-unsupported': 'ZFS_UNSUPPORTED',
  'send-compressed-unsupported': 'ZFS_UNSUPPORTED',
  'receive-resumable-unsupported': 'ZFS_UNSUPPORTED',
  'resume-token-property-unsupported': 'ZFS_UNSUPPORTED',
  'bookmark-unsupported': 'ZFS_UNSUPPORTED',
  'holds-unsupported': 'ZFS_UNSUPPORTED', // message on stdout only: checkResult falls back to it
  'not-root': 'ZFS_PERMISSION',
  'daemon-not-running': 'ZFS_UNAVAILABLE',
};

const OPENZFS_EXPECTED: Record<string, ErrorCode> = {
  'dataset-not-found': 'ZFS_DATASET_NOT_FOUND',
  'pool-not-found': 'ZFS_DATASET_NOT_FOUND',
  'destination-exists': 'ZFS_DATASET_EXISTS',
  'destination-has-snapshots': 'ZFS_DATASET_EXISTS',
  'target-modified': 'ZFS_TARGET_MODIFIED',
  'incremental-mismatch': 'ZFS_INCREMENTAL_MISMATCH',
  'send-incremental-source-missing': 'ZFS_INCREMENTAL_MISMATCH',
  'receive-target-busy': 'ZFS_DATASET_BUSY',
  'destroy-held-snapshot': 'ZFS_DATASET_BUSY',
  'destroy-held-snapshot-2.3': 'ZFS_DATASET_BUSY',
  'rollback-newer-snapshots': 'ZFS_TARGET_MODIFIED',
  'hold-exists': 'ZFS_HOLD_EXISTS',
  'release-no-such-tag': 'ZFS_HOLD_NOT_FOUND',
  'create-exists': 'ZFS_DATASET_EXISTS',
  'permission-denied': 'ZFS_PERMISSION',
  'not-root': 'ZFS_PERMISSION',
  'modules-not-loaded': 'ZFS_UNAVAILABLE',
  'out-of-space': 'ZFS_NO_SPACE',
  'quota-exceeded': 'ZFS_NO_SPACE',
  'invalid-option': 'ZFS_UNSUPPORTED',
  'resume-pending': 'ZFS_RESUME_PENDING',
  'resume-interrupted': 'ZFS_RESUME_PENDING',
  'resume-token-corrupt': 'ZFS_RESUME_INVALID',
  'resume-token-stale': 'ZFS_RESUME_INVALID',
  'resume-existing-without-force': 'ZFS_RESUME_INVALID',
  'receive-abort-nothing': 'ZFS_RESUME_INVALID',
  'receive-truncated': 'PIPELINE_FAILED',
  'receive-kernel-too-old': 'ZFS_UNSUPPORTED',
  'send-broken-pipe': 'PIPELINE_FAILED',
};

describe.each([
  ['zfs-fuse', FUSE_EXPECTED],
  ['openzfs-2.2', OPENZFS_EXPECTED],
] as const)('classify %s errors', (dir, expected) => {
  const captured = errorsOf(dir);

  it('every captured case has an expectation (and vice versa)', () => {
    expect(captured.map((e) => e.case).sort()).toEqual(Object.keys(expected).sort());
  });

  it.each(captured.map((e) => [e.case, e] as const))('%s', (_name, e) => {
    const context = { action: `test ${e.case}`, host: 'box', argv: ['zfs'] };
    let err: unknown;
    try {
      checkResult({ stdout: e.stdout ?? '', stderr: e.stderr, exitCode: e.exitCode }, context);
    } catch (x) {
      err = x;
    }
    expect(err).toBeInstanceOf(HozoError);
    const h = err as HozoError;
    expect(h.code).toBe(expected[e.case]);
    expect(h.hint).toBeTruthy();
    expect(h.message).toMatch(/^test \S+ on box/);
    expect(h.message).not.toMatch(/\n/);
    expect(h.message).not.toMatch(/usage:|PROPERTY/); // usage dumps stay in the cause
    expect(h.cause).toBeInstanceOf(ZfsCommandFailure);
    expect((h.cause as ZfsCommandFailure).exitCode).toBe(e.exitCode);
  });
});

describe('classify', () => {
  it('unknown text is ZFS_UNKNOWN and carries the raw stderr', () => {
    const raw = "cannot frobnicate 'tank': the flux capacitor is cold\nsecond line\n";
    const e = classify(raw, { action: 'frobnicate tank' });
    expect(e.code).toBe('ZFS_UNKNOWN');
    expect(e.message).toContain('the flux capacitor is cold\nsecond line');
    expect((e.cause as ZfsCommandFailure).stderr).toBe(raw);
    expect(e.message).not.toContain(' on local');
  });

  it('empty stderr is unknown, not success', () => {
    expect(classify('', { action: 'x', exitCode: 3 }).message).toContain('exit 3');
  });

  it('the parent-missing receive gets the create-parent hint', () => {
    const e = classify(errorsOf('zfs-fuse').find((x) => x.case === 'receive-parent-missing')!.stderr, { action: 'receive' });
    expect(e.hint).toContain('zfs create -p');
  });

  it('invalid option names the option; a usage dump cannot trigger other rules', () => {
    const e = classify(errorsOf('zfs-fuse').find((x) => x.case === 'list-parsable-unsupported')!.stderr, { action: 'list' });
    expect(e.code).toBe('ZFS_UNSUPPORTED');
    expect(e.hint).toContain('-p');
    expect(e.message).toBe("list: invalid option 'p'");
  });

  it('checkResult returns stdout on success even with warnings on stderr', () => {
    expect(checkResult({ stdout: 'ok\n', stderr: 'WARNING: deduplicated send is no longer supported.\n', exitCode: 0 }, { action: 'x' })).toBe('ok\n');
    expect(() => checkResult({ stdout: '', stderr: '', exitCode: null }, { action: 'x' })).toThrow(/killed/);
  });
});

describe('parseInventory and parseCapabilities on real OpenZFS 2.3.2 output (captured in the OpenZFS lab)', () => {
  const inv = parseInventory(fixture('openzfs-2.3/inventory.stdout'));

  it('reads datasets, snapshots with guids and holds, and the bookmark with its snapshot guid', () => {
    const app = inv.get('hzfx/data/my-app.v1')!;
    expect(app.snapshots.map((s) => s.name)).toEqual(['auto-2024-01-01_00:00', 'b.2', 'hourly-2024.01.01-10:00', 'big']);
    const b2 = app.snapshots.find((s) => s.name === 'b.2')!;
    expect(b2.guid).toBe('6868037773838571856');
    expect(app.bookmarks?.map((b) => [b.name, b.guid])).toEqual([['hozo:nightly:b.2', '6868037773838571856']]);
    expect(inv.get('hzfx/data/db:main')!.snapshots[0]).toMatchObject({ name: 'first', guid: '4465948270348247617', userrefs: 1 });
    expect(parseGuids(fixture('openzfs-2.3/guids.stdout')).get('hzfx/data/my-app.v1@b.2')).toBe('6868037773838571856');
  });

  it('carries the real resume token of an interrupted receive', () => {
    const token = inv.get('hzfx/data/partial')?.resumeToken;
    expect(token).toMatch(/^1-[0-9a-f]+-[0-9a-f]+-/);
    expect(inv.get('hzfx/data')!.resumeToken).toBeUndefined();
  });

  it('the probe finds every OpenZFS feature hozo uses', () => {
    const caps = parseCapabilities(fixture('openzfs-2.3/probe.txt'));
    expect(caps).toMatchObject({ listParsable: true, resumeTokens: true, bookmarks: true, holds: true });
    for (const f of ['L', 'e', 'c', 'w', 'n', 'P', 't']) expect(caps.sendFlags.has(f), `send -${f}`).toBe(true);
    for (const f of ['s', 'A', 'u', 'F']) expect(caps.receiveFlags.has(f), `receive -${f}`).toBe(true);
    expect(caps.implementation).toMatch(/OpenZFS 2\.3\.2/);
    expect(typeof caps.aes).toBe('boolean');
  });
});

describe('definitiveStageError', () => {
  it('a stream stage refused by ZFS delegation carries ZFS_PERMISSION and the zfs allow lists, not PIPELINE_FAILED', () => {
    const e = definitiveStageError("warning: cannot send 'tank/a@s1': permission denied\n", 'stage "send" failed (exit 1)', undefined);
    expect(e).toMatchObject({ code: 'ZFS_PERMISSION', message: 'stage "send" failed (exit 1)' });
    expect(e?.hint).toContain('send,hold,release,bookmark');
    expect(e?.hint).toContain('create,mount,receive,send,hold,canmount,destroy');
  });
  it('a stream cut short or an unknown message stays what the pipeline said (undefined: retried as before)', () => {
    expect(definitiveStageError('cannot receive: failed to read from stream\n', 'x', undefined)).toBeUndefined();
    expect(definitiveStageError('something odd\n', 'x', undefined)).toBeUndefined();
  });
});
