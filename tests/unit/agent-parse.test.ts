// Pure parts of the agent: `zpool status`/`zpool list` parsing (real zfs-fuse captures and OpenZFS 2.2 fixtures),
// the retention selection, and leases with an injected clock.
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { parseCount, parseCtime, parseZpoolList, parseZpoolStatus } from '../../agent/pool-status.js';
import { bucketOf, selectRetention, type RetentionSnapshot } from '../../agent/retention.js';
import { AgentState } from '../../agent/state.js';

/** Local-time unix seconds, the way zpool prints dates (ctime in the box's time zone). */
const local = (y: number, mo: number, d: number, h: number, mi: number, s: number) => new Date(y, mo - 1, d, h, mi, s).getTime() / 1000;

// Captured on this lab machine (Debian 12, zfs-fuse 0.7.0, pool version 23) with `zpool status hzagfx` and
// `zpool list -H -o name,health,size,alloc,free,cap hzagfx` on a throw-away file-backed pool: never scrubbed; a mirror
// after overwriting 300 MB of one side and scrubbing; a scrub caught running (zfs-fuse's `zpool scrub` blocks, status
// from a second shell); `zpool scrub -s`; `zpool offline` of one side; `zpool detach` + `attach` (resilver running,
// then done). Note the old-style " scrub:" line (no "scan:") and "2.37K" in the CKSUM column.
const ZFS_FUSE = {
  none: '  pool: hzagfx\n state: ONLINE\n scrub: none requested\nconfig:\n\n\tNAME                  STATE     READ WRITE CKSUM\n\thzagfx                ONLINE       0     0     0\n\t  /tmp/hzagcap/a.img  ONLINE       0     0     0\n\nerrors: No known data errors\n',
  noneList: 'hzagfx\tONLINE\t123M\t556K\t122M\t0%\n',
  repaired:
    "  pool: hzagfx\n state: ONLINE\nstatus: One or more devices has experienced an unrecoverable error.  An\n\tattempt was made to correct the error.  Applications are unaffected.\naction: Determine if the device needs to be replaced, and clear the errors\n\tusing 'zpool clear' or replace the device with 'zpool replace'.\n   see: http://www.sun.com/msg/ZFS-8000-9P\n scrub: scrub completed after 0h0m with 0 errors on Sun Nov 22 05:06:42 2026\nconfig:\n\n\tNAME                    STATE     READ WRITE CKSUM\n\thzagfx                  ONLINE       0     0     0\n\t  mirror-0              ONLINE       0     0     0\n\t    /tmp/hzagcap/d.img  ONLINE       0     0     0\n\t    /tmp/hzagcap/e.img  ONLINE       0     0 2.37K  297M repaired\n\nerrors: No known data errors\n",
  scrubbing:
    '  pool: hzagfx\n state: ONLINE\n scrub: scrub in progress for 0h0m, 11.11% done, 0h0m to go\nconfig:\n\n\tNAME                    STATE     READ WRITE CKSUM\n\thzagfx                  ONLINE       0     0     0\n\t  mirror-0              ONLINE       0     0     0\n\t    /tmp/hzagcap/d.img  ONLINE       0     0     0\n\t    /tmp/hzagcap/e.img  ONLINE       0     0     0\n\nerrors: No known data errors\n',
  stopped:
    '  pool: hzagfx\n state: ONLINE\n scrub: scrub stopped after 0h0m with 0 errors on Sun Nov 22 05:06:55 2026\nconfig:\n\n\tNAME                    STATE     READ WRITE CKSUM\n\thzagfx                  ONLINE       0     0     0\n\t  mirror-0              ONLINE       0     0     0\n\t    /tmp/hzagcap/d.img  ONLINE       0     0     0\n\t    /tmp/hzagcap/e.img  ONLINE       0     0     0\n\nerrors: No known data errors\n',
  degraded:
    "  pool: hzagfx\n state: DEGRADED\nstatus: One or more devices has been taken offline by the administrator.\n\tSufficient replicas exist for the pool to continue functioning in a\n\tdegraded state.\naction: Online the device using 'zpool online' or replace the device with\n\t'zpool replace'.\n scrub: scrub stopped after 0h0m with 0 errors on Sun Nov 22 05:06:55 2026\nconfig:\n\n\tNAME                    STATE     READ WRITE CKSUM\n\thzagfx                  DEGRADED     0     0     0\n\t  mirror-0              DEGRADED     0     0     0\n\t    /tmp/hzagcap/d.img  ONLINE       0     0     0\n\t    /tmp/hzagcap/e.img  OFFLINE      0     0     0\n\nerrors: No known data errors\n",
  degradedList: 'hzagfx\tDEGRADED\t1.98G\t1.57G\t428M\t78%\n',
  resilvering:
    '  pool: hzagfx\n state: ONLINE\nstatus: One or more devices is currently being resilvered.  The pool will\n\tcontinue to function, possibly in a degraded state.\naction: Wait for the resilver to complete.\n scrub: resilver in progress for 0h0m, 35.29% done, 0h0m to go\nconfig:\n\n\tNAME                    STATE     READ WRITE CKSUM\n\thzagfx                  ONLINE       0     0     0\n\t  mirror-0              ONLINE       0     0     0\n\t    /tmp/hzagcap/d.img  ONLINE       0     0     0\n\t    /tmp/hzagcap/e.img  ONLINE       0     0     0  563M resilvered\n\nerrors: No known data errors\n',
  resilvered:
    '  pool: hzagfx\n state: ONLINE\n scrub: resilver completed after 0h0m with 0 errors on Sun Nov 22 05:07:00 2026\nconfig:\n\n\tNAME                    STATE     READ WRITE CKSUM\n\thzagfx                  ONLINE       0     0     0\n\t  mirror-0              ONLINE       0     0     0\n\t    /tmp/hzagcap/d.img  ONLINE       0     0     0\n\t    /tmp/hzagcap/e.img  ONLINE       0     0     0  1.57G resilvered\n\nerrors: No known data errors\n',
};

// OpenZFS 2.2: written from print_scan_scrub_resilver_status() and status_callback() in cmd/zpool/zpool_main.c
// (openzfs/zfs, zfs-2.2.x): "  scan: " + "scrub repaired %s in %s with %llu errors on %s" (time via secs_to_dhms:
// "HH:MM:SS" or "N days HH:MM:SS"), "scrub in progress since %s" + "\t%s / %s scanned at %s/s, %s / %s issued at
// %s/s" + "\t%s repaired, %.2f%% done, %s to go", "scrub paused since %s" + "\tscrub started on %s", "scrub
// canceled on %s", "resilvered …", "resilver in progress since …" + "\t%s resilvered, %.2f%% done"; no scan line at
// all for a pool never scanned; "errors: %llu data errors, use '-v' for a list". Dates are ctime(3) ("Sun Nov  9").
const OPENZFS = {
  scrubbed: `  pool: tank
 state: ONLINE
  scan: scrub repaired 0B in 00:12:41 with 0 errors on Sun Nov  9 00:36:42 2025
config:

\tNAME                                          STATE     READ WRITE CKSUM
\ttank                                          ONLINE       0     0     0
\t  mirror-0                                    ONLINE       0     0     0
\t    ata-WDC_WD40EFRX-68N32N0_WD-WCC7K0AAAAAA  ONLINE       0     0     0
\t    ata-WDC_WD40EFRX-68N32N0_WD-WCC7K0BBBBBB  ONLINE       0     0     0

errors: No known data errors
`,
  scrubbing: `  pool: backup
 state: ONLINE
  scan: scrub in progress since Sun Nov  9 00:24:01 2025
\t1.21T / 3.45T scanned at 702M/s, 1.02T / 3.45T issued at 591M/s
\t0B repaired, 29.57% done, 01:11:52 to go
config:

\tNAME                                     STATE     READ WRITE CKSUM
\tbackup                                   ONLINE       0     0     0
\t  usb-WD_Elements_25A3_575834314441-0:0  ONLINE       0     0     0

errors: No known data errors
`,
  paused: `  pool: backup
 state: ONLINE
  scan: scrub paused since Tue Nov 11 09:00:00 2025
\tscrub started on Tue Nov 11 08:00:00 2025
\t1.00T / 3.45T scanned, 900G / 3.45T issued
\t0B repaired, 25.48% done
config:

\tNAME        STATE     READ WRITE CKSUM
\tbackup      ONLINE       0     0     0
\t  sdb       ONLINE       0     0     0

errors: No known data errors
`,
  canceled: `  pool: backup
 state: ONLINE
  scan: scrub canceled on Tue Nov 11 09:00:00 2025
config:

\tNAME        STATE     READ WRITE CKSUM
\tbackup      ONLINE       0     0     0
\t  sdb       ONLINE       0     0     0

errors: No known data errors
`,
  resilvering: `  pool: backup
 state: DEGRADED
status: One or more devices is currently being resilvered.  The pool will
\tcontinue to function, possibly in a degraded state.
action: Wait for the resilver to complete.
  scan: resilver in progress since Mon Mar  3 21:04:10 2025
\t412G / 3.45T scanned at 1.13G/s, 96.1G / 3.45T issued at 270M/s
\t96.0G resilvered, 2.72% done, 03:37:04 to go
config:

\tNAME                                   STATE     READ WRITE CKSUM
\tbackup                                 DEGRADED     0     0     0
\t  mirror-0                             DEGRADED     0     0     0
\t    replacing-0                        DEGRADED     0     0     0
\t      ata-ST4000VN008-2DR166_ZGY0AAAA  FAULTED     12   340     0  too many errors
\t      ata-ST4000VN008-2DR166_ZGY0CCCC  ONLINE       0     0     0  (resilvering)
\t    ata-ST4000VN008-2DR166_ZGY0BBBB    ONLINE       0     0 1.5K

errors: 2 data errors, use '-v' for a list
`,
  longScrubAndSections: `  pool: backup
 state: ONLINE
  scan: scrub repaired 1.50M in 1 days 02:03:04 with 3 errors on Sun Mar  1 14:05:06 2026
config:

\tNAME         STATE     READ WRITE CKSUM
\tbackup       ONLINE       0     0     0
\t  sda        ONLINE       0     0     0
\tlogs
\t  nvme0n1p2  ONLINE       0     0     0
\tcache
\t  nvme0n1p3  ONLINE       0     0     2
\tspares
\t  sdc        AVAIL

errors: No known data errors
`,
  neverScanned: `  pool: fresh
 state: ONLINE
config:

\tNAME        STATE     READ WRITE CKSUM
\tfresh       ONLINE       0     0     0
\t  sdd       ONLINE       0     0     0

errors: No known data errors
`,
  list: 'backup\tONLINE\t3.62T\t1.21T\t2.41T\t33%\n',
};

describe('zpool status from zfs-fuse (captured)', () => {
  it('never scrubbed: healthy, no scan, no errors, leaf vdev is the file', () => {
    const [p] = parseZpoolStatus(ZFS_FUSE.none);
    expect(p).toMatchObject({
      name: 'hzagfx',
      state: 'ONLINE',
      scans: [],
      errors: 0,
      dataErrors: 0,
      scrubRunning: false,
      resilverRunning: false,
      lastScrubEnd: null,
    });
    expect(p!.scanText).toBe('none requested');
    expect(p!.vdevs.filter((v) => v.leaf).map((v) => v.name)).toEqual(['/tmp/hzagcap/a.img']);
  });

  it('completed scrub with repaired checksum errors: last scrub end and 2.37K errors', () => {
    const [p] = parseZpoolStatus(ZFS_FUSE.repaired);
    expect(p!.scans).toEqual([{ kind: 'scrub', state: 'finished', end: local(2026, 11, 22, 5, 6, 42), errors: 0 }]);
    expect(p!.lastScrubEnd).toBe(local(2026, 11, 22, 5, 6, 42));
    expect(p!.errors).toBe(Math.round(2.37 * 1024));
    expect(p!.vdevs.map((v) => [v.name, v.depth, v.leaf])).toEqual([
      ['hzagfx', 0, false],
      ['mirror-0', 1, false],
      ['/tmp/hzagcap/d.img', 2, true],
      ['/tmp/hzagcap/e.img', 2, true],
    ]);
    expect(p!.vdevs[3]!.note).toBe('297M repaired');
  });

  it('scrub running, stopped, resilver running and done', () => {
    expect(parseZpoolStatus(ZFS_FUSE.scrubbing)[0]).toMatchObject({
      scrubRunning: true,
      resilverRunning: false,
      lastScrubEnd: null,
      scans: [{ kind: 'scrub', state: 'running', progress: 0.1111 }],
    });
    expect(parseZpoolStatus(ZFS_FUSE.stopped)[0]).toMatchObject({
      scrubRunning: false,
      lastScrubEnd: null,
      scans: [{ kind: 'scrub', state: 'canceled', end: local(2026, 11, 22, 5, 6, 55) }],
    });
    expect(parseZpoolStatus(ZFS_FUSE.resilvering)[0]).toMatchObject({
      scrubRunning: false,
      resilverRunning: true,
      scans: [{ kind: 'resilver', state: 'running', progress: 0.3529 }],
    });
    expect(parseZpoolStatus(ZFS_FUSE.resilvered)[0]).toMatchObject({
      resilverRunning: false,
      lastScrubEnd: null,
      scans: [{ kind: 'resilver', state: 'finished' }],
    });
  });

  it('degraded pool (offline side of a mirror)', () => {
    const [p] = parseZpoolStatus(ZFS_FUSE.degraded);
    expect(p).toMatchObject({ state: 'DEGRADED', errors: 0 });
    expect(p!.vdevs.find((v) => v.name.endsWith('e.img'))!.state).toBe('OFFLINE');
  });

  it('zpool list -H: capacity from the cap column', () => {
    expect(parseZpoolList(ZFS_FUSE.noneList)).toEqual([{ name: 'hzagfx', health: 'ONLINE', size: '123M', alloc: '556K', free: '122M', capacityRatio: 0 }]);
    expect(parseZpoolList(ZFS_FUSE.degradedList)[0]).toMatchObject({ health: 'DEGRADED', capacityRatio: 0.78 });
  });
});

describe('zpool status from OpenZFS 2.2 (faithful fixtures)', () => {
  it('finished scrub: end time from ctime with a padded day', () => {
    const [p] = parseZpoolStatus(OPENZFS.scrubbed);
    expect(p!.scans).toEqual([{ kind: 'scrub', state: 'finished', end: local(2025, 11, 9, 0, 36, 42), errors: 0 }]);
    expect(p!.lastScrubEnd).toBe(local(2025, 11, 9, 0, 36, 42));
    expect(p!.errors).toBe(0);
  });

  it('running scrub: start and progress from the continuation line', () => {
    const [p] = parseZpoolStatus(OPENZFS.scrubbing);
    expect(p!.scans).toEqual([{ kind: 'scrub', state: 'running', start: local(2025, 11, 9, 0, 24, 1), progress: 0.2957 }]);
    expect(p!.scrubRunning).toBe(true);
    expect(p!.vdevs.filter((v) => v.leaf).map((v) => v.name)).toEqual(['usb-WD_Elements_25A3_575834314441-0:0']);
  });

  it('a paused scrub still counts as running (it resumes); canceled does not', () => {
    expect(parseZpoolStatus(OPENZFS.paused)[0]).toMatchObject({
      scrubRunning: true,
      scans: [{ kind: 'scrub', state: 'paused', start: local(2025, 11, 11, 8, 0, 0), progress: 0.2548 }],
    });
    expect(parseZpoolStatus(OPENZFS.canceled)[0]).toMatchObject({
      scrubRunning: false,
      lastScrubEnd: null,
      scans: [{ kind: 'scrub', state: 'canceled', end: local(2025, 11, 11, 9, 0, 0) }],
    });
  });

  it('resilver in progress on a degraded mirror: leaf errors summed (1.5K), data errors counted', () => {
    const [p] = parseZpoolStatus(OPENZFS.resilvering);
    expect(p).toMatchObject({ state: 'DEGRADED', resilverRunning: true, scrubRunning: false, dataErrors: 2 });
    expect(p!.errors).toBe(12 + 340 + 1536);
    expect(p!.vdevs.filter((v) => v.leaf).map((v) => v.name)).toEqual([
      'ata-ST4000VN008-2DR166_ZGY0AAAA',
      'ata-ST4000VN008-2DR166_ZGY0CCCC',
      'ata-ST4000VN008-2DR166_ZGY0BBBB',
    ]);
    expect(p!.vdevs.find((v) => v.name.endsWith('CCCC'))!.note).toBe('(resilvering)');
  });

  it('days in the duration, logs/cache/spares sections, never-scanned pool', () => {
    const [p] = parseZpoolStatus(OPENZFS.longScrubAndSections);
    expect(p!.scans).toEqual([{ kind: 'scrub', state: 'finished', end: local(2026, 3, 1, 14, 5, 6), errors: 3 }]);
    expect(p!.errors).toBe(2);
    expect(p!.vdevs.filter((v) => v.leaf && v.read !== undefined).map((v) => v.name)).toEqual(['sda', 'nvme0n1p2', 'nvme0n1p3']);
    const [n] = parseZpoolStatus(OPENZFS.neverScanned);
    expect(n).toMatchObject({ name: 'fresh', scans: [], scanText: null, lastScrubEnd: null, scrubRunning: false });
  });

  it('several pools in one output, ANSI bold "scan:" tolerated', () => {
    const both = parseZpoolStatus(OPENZFS.scrubbed.replace('scan:', '\x1b[1mscan:\x1b[0m') + '\n' + OPENZFS.scrubbing);
    expect(both.map((p) => [p.name, p.scrubRunning])).toEqual([
      ['tank', false],
      ['backup', true],
    ]);
    expect(both[0]!.lastScrubEnd).toBe(local(2025, 11, 9, 0, 36, 42));
  });

  it('zpool list -H on OpenZFS', () => {
    expect(parseZpoolList(OPENZFS.list)[0]).toEqual({ name: 'backup', health: 'ONLINE', size: '3.62T', alloc: '1.21T', free: '2.41T', capacityRatio: 0.33 });
  });

  it('small helpers', () => {
    expect(parseCount('0')).toBe(0);
    expect(parseCount('2.37K')).toBe(2427);
    expect(parseCount('1M')).toBe(1048576);
    expect(parseCount('-')).toBeUndefined();
    expect(parseCtime('on Sun Nov  9 00:36:42 2025')).toBe(local(2025, 11, 9, 0, 36, 42));
    expect(parseCtime('no date')).toBeUndefined();
  });
});

// ---------------------------------------------------------------------------------------------------------------

const DAY = 86_400;
const T0 = Date.UTC(2026, 0, 1, 12, 0, 0) / 1000; // Thursday 2026-01-01 12:00 UTC
/** A snapshot per spec "name,daysAgo[,held]" relative to NOW (all at noon UTC). */
const NOW = T0 + 120 * DAY;
function snaps(...specs: string[]): RetentionSnapshot[] {
  return specs.map((s, i) => {
    const [name, ago, held] = s.split(',');
    return { name: name!, creation: NOW - Number(ago) * DAY, createtxg: 1000 - i, ...(held === 'held' ? { userrefs: 1 } : {}) };
  });
}
const utc = { timeZone: 'utc' } as const;
const daily = (n: number) => Array.from({ length: n }, (_, i) => `d${i},${i}`);

describe('retention selection (pure)', () => {
  it('keeps the newest of each of the last N days', () => {
    const d = selectRetention(snaps(...daily(10)), { daily: 3, weekly: 0, monthly: 0 }, utc);
    expect(d.keep.map((k) => k.name)).toEqual(['d0', 'd1', 'd2']);
    expect(d.destroy).toEqual(['d9', 'd8', 'd7', 'd6', 'd5', 'd4', 'd3']);
    expect(d.keep[0]!.reasons).toEqual(['newest', 'daily']);
  });

  it('several snapshots in one day: only the newest of that day counts', () => {
    const s: RetentionSnapshot[] = [
      { name: 'a', creation: NOW - 3600 * 3 },
      { name: 'b', creation: NOW - 3600 * 2 },
      { name: 'c', creation: NOW - 3600 },
      { name: 'y', creation: NOW - DAY },
    ];
    const d = selectRetention(s, { daily: 2, weekly: 0, monthly: 0 }, utc);
    expect(d.keep.map((k) => k.name)).toEqual(['c', 'y']);
    expect(d.destroy).toEqual(['a', 'b']);
  });

  it('always keeps the newest (common base) even with an all-zero policy, and held snapshots', () => {
    const d = selectRetention(snaps('new,0', 'old,50,held', 'older,60'), { daily: 0, weekly: 0, monthly: 0 }, utc);
    expect(d.keep).toEqual([
      { name: 'new', reasons: ['newest'] },
      { name: 'old', reasons: ['held'] },
    ]);
    expect(d.destroy).toEqual(['older']);
  });

  it('weekly and monthly buckets reach further back than daily', () => {
    const d = selectRetention(snaps(...daily(100)), { daily: 7, weekly: 4, monthly: 3 }, utc);
    const kept = new Map(d.keep.map((k) => [k.name, k.reasons]));
    for (let i = 0; i < 7; i++) expect(kept.get(`d${i}`)).toContain('daily');
    // 4 weekly: the newest snapshot of the 4 newest ISO weeks; 3 monthly likewise.
    expect(d.keep.filter((k) => k.reasons.includes('weekly'))).toHaveLength(4);
    expect(d.keep.filter((k) => k.reasons.includes('monthly'))).toHaveLength(3);
    // Every kept weekly is the newest of its week.
    for (const k of d.keep.filter((x) => x.reasons.includes('weekly'))) {
      const c = NOW - Number(k.name.slice(1)) * DAY;
      const newer = NOW - (Number(k.name.slice(1)) - 1) * DAY;
      if (k.name !== 'd0') expect(bucketOf('weekly', newer, 'utc')).not.toBe(bucketOf('weekly', c, 'utc'));
    }
    expect(d.keep.length + d.destroy.length).toBe(100);
    expect(d.keep.length).toBeLessThanOrEqual(7 + 4 + 3 + 1);
  });

  it('a creation in the future counts as now: 7 snapshots from a controller clock months ahead cannot push 200 real dailies out', () => {
    const real = Array.from({ length: 200 }, (_, i) => ({ name: `r${i}`, creation: NOW - (199 - i) * DAY, createtxg: 100 + i }));
    const forged = Array.from({ length: 7 }, (_, i) => ({ name: `f${i}`, creation: NOW + (i + 1) * 30 * DAY, createtxg: 400 + i }));
    const policy = { daily: 7, weekly: 4, monthly: 6 };
    const base = selectRetention(real, policy, { ...utc, now: NOW });
    const d = selectRetention([...real, ...forged], policy, { ...utc, now: NOW });
    // The forged ones share today's bucket (f6 is the newest by createtxg): only r199, today's real one, gives way.
    expect(d.keep.map((k) => k.name)).toEqual(['f6', ...base.keep.map((k) => k.name).filter((n) => n !== 'r199')]);
    expect(d.destroy.filter((n) => n.startsWith('r'))).toEqual([...base.destroy, 'r199']);
    // Bucketed by creation as received, the forged months would have taken the 6 monthly slots.
    expect(selectRetention([...real, ...forged], policy, { ...utc, now: NOW + 400 * DAY }).keep.filter((k) => k.name.startsWith('r')).length).toBeLessThan(
      base.keep.length,
    );
  });

  it('"newest" is by createtxg: a snapshot with an older creation (controller clock went back) is still the base that stays', () => {
    const s = [
      { name: 'a', creation: NOW - 2 * DAY, createtxg: 10 },
      { name: 'b', creation: NOW - DAY, createtxg: 11 },
      { name: 'back', creation: NOW - 40 * DAY, createtxg: 12 },
    ];
    const d = selectRetention(s, { daily: 1, weekly: 0, monthly: 0 }, { ...utc, now: NOW });
    expect(d.keep[0]).toEqual({ name: 'back', reasons: ['newest', 'daily'] });
    expect(d.destroy).toEqual(['a', 'b'].filter((n) => !d.keep.some((k) => k.name === n)));
  });

  it("the box's receive time beats creation: all created the same minute, received over 10 days", () => {
    const s = Array.from({ length: 10 }, (_, i) => ({ name: `s${i}`, creation: NOW, received: NOW - (9 - i) * DAY, createtxg: i }));
    const d = selectRetention(s, { daily: 3, weekly: 0, monthly: 0 }, { ...utc, now: NOW });
    expect(d.keep.map((k) => k.name)).toEqual(['s9', 's8', 's7']);
    expect(
      selectRetention(
        s.map(({ received: _r, ...x }) => x),
        { daily: 3, weekly: 0, monthly: 0 },
        { ...utc, now: NOW },
      ).keep.map((k) => k.name),
    ).toEqual(['s9']);
  });

  it('gaps: N daily means N days that have snapshots (like sanoid counting its dailies)', () => {
    const d = selectRetention(snaps('a,0', 'b,10', 'c,20', 'd,30'), { daily: 3, weekly: 0, monthly: 0 }, utc);
    expect(d.keep.map((k) => k.name)).toEqual(['a', 'b', 'c']);
    expect(d.destroy).toEqual(['d']);
  });

  it('equal creation times are ordered by createtxg; empty input keeps nothing', () => {
    const d = selectRetention(
      [
        { name: 'x', creation: NOW, createtxg: 5 },
        { name: 'y', creation: NOW, createtxg: 6 },
      ],
      { daily: 1, weekly: 0, monthly: 0 },
      utc,
    );
    expect(d.keep.map((k) => k.name)).toEqual(['y']);
    expect(d.destroy).toEqual(['x']);
    expect(selectRetention([], { daily: 7, weekly: 4, monthly: 6 })).toEqual({ keep: [], destroy: [] });
  });

  it('hourly and yearly are optional periods', () => {
    const hours = Array.from({ length: 30 }, (_, i) => ({ name: `h${i}`, creation: NOW - i * 3600 }));
    expect(selectRetention(hours, { hourly: 24, daily: 0, weekly: 0, monthly: 0 }, utc).keep).toHaveLength(24);
    const years = Array.from({ length: 5 }, (_, i) => ({ name: `y${i}`, creation: NOW - i * 366 * DAY }));
    expect(selectRetention(years, { daily: 0, weekly: 0, monthly: 0, yearly: 2 }, utc).keep.map((k) => k.name)).toEqual(['y0', 'y1']);
  });

  it('ISO weeks: Monday starts a week, the year of the Thursday names it', () => {
    expect(bucketOf('weekly', Date.UTC(2026, 0, 1) / 1000, 'utc')).toBe('2026-W01'); // Thursday
    expect(bucketOf('weekly', Date.UTC(2025, 11, 29) / 1000, 'utc')).toBe('2026-W01'); // Monday before
    expect(bucketOf('weekly', Date.UTC(2025, 11, 28) / 1000, 'utc')).toBe('2025-W52'); // Sunday
    expect(bucketOf('weekly', Date.UTC(2021, 0, 3) / 1000, 'utc')).toBe('2020-W53');
    expect(bucketOf('monthly', Date.UTC(2026, 1, 28, 23) / 1000, 'utc')).toBe('2026-02');
    expect(bucketOf('daily', Date.UTC(2026, 1, 28, 23) / 1000, 'utc')).toBe('2026-02-28');
    expect(bucketOf('hourly', Date.UTC(2026, 1, 28, 23) / 1000, 'utc')).toBe('2026-02-28T23');
  });
});

// ---------------------------------------------------------------------------------------------------------------

describe('leases (files, injected clock)', () => {
  let dir: string;
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  function store(clock: () => number) {
    dir = mkdtempSync(join(tmpdir(), 'hozo-agent-lease-'));
    return new AgentState({ leaseDirectory: join(dir, 'leases'), stateDirectory: dir, clock, uptime: () => 100 });
  }

  it('hold, renew (keeps creation), release; expired leases vanish', () => {
    let now = 1_000_000;
    const s = store(() => now);
    expect(s.hold('a', 60)).toEqual({ id: 'a', created: 1_000_000, expires: 1_000_060 });
    now += 30;
    s.hold('b', 10);
    expect(s.hold('a', 60)).toEqual({ id: 'a', created: 1_000_000, expires: 1_000_090 });
    expect(s.leases().map((l) => l.id)).toEqual(['a', 'b']);
    now += 10; // b expires exactly now
    expect(s.leases().map((l) => l.id)).toEqual(['a']);
    expect(readdirSync(join(dir, 'leases')).filter((n) => n.endsWith('.lease'))).toEqual(['a.lease']);
    expect(s.release('a')).toBe(true);
    expect(s.release('a')).toBe(false);
    expect(s.leases()).toEqual([]);
  });

  it('ignores foreign and malformed files in the lease directory', () => {
    const s = store(() => 5000);
    s.hold('ok', 100);
    writeFileSync(join(dir, 'leases', 'junk.lease'), 'not json');
    writeFileSync(join(dir, 'leases', '..lease'), '{"created":1,"expires":99999}');
    writeFileSync(join(dir, 'leases', 'README'), 'x');
    expect(s.leases().map((l) => l.id)).toEqual(['ok']);
  });

  it('refuses lease ids that are paths', () => {
    const s = store(() => 1);
    expect(() => s.hold('../x', 10)).toThrow(/invalid lease id/);
  });

  it('a pending shutdown expires, and one from before the last boot is ignored', () => {
    let now = 10_000;
    const s = store(() => now); // booted at now - 100
    s.setShutdownPending(60);
    expect(s.shutdownPending()).toEqual({ at: 10_000, until: 10_060 });
    now += 61;
    expect(s.shutdownPending()).toBeUndefined();
    now = 10_000;
    writeFileSync(s.shutdownPendingPath, JSON.stringify({ at: 9000, until: 20_000 }));
    expect(s.shutdownPending()).toBeUndefined(); // 9000 < boot (9900)
  });

  it('the lock serialises callers and survives a dead owner', async () => {
    const s = store(() => 1);
    const order: string[] = [];
    await Promise.all([
      s.withLock(async () => {
        order.push('a1');
        await new Promise((r) => setTimeout(r, 50));
        order.push('a2');
      }),
      s.withLock(() => {
        order.push('b');
      }),
    ]);
    expect(order.indexOf('b') === 0 || order.indexOf('b') === 2).toBe(true);
    writeFileSync(join(dir, 'leases', '.lock'), '999999999'); // no such pid
    expect(await s.withLock(() => 'got it', 1000)).toBe('got it');
  });
});
