// judgePools: what a run concludes from its target pools (src/job/pool-health.ts).
import { describe, expect, it } from 'vitest';
import { judgePools } from '../../src/job/pool-health.js';

const DAY = 86_400;
const now = 1_800_000_000;
const opts = { now, scrubWarnAfter: 35 * DAY };

describe('judgePools', () => {
  it('an ONLINE pool without errors and a recent scrub: nothing to say', () => {
    const pool = { name: 'backup', health: 'ONLINE', errors: 0, lastScrubEnd: now - 3 * DAY };
    expect(judgePools([pool], opts)).toEqual({ pools: [{ ...pool, scrubOverdue: false }], failures: [], warnings: [] });
  });

  it('not ONLINE, or any read/write/checksum error, fails the run', () => {
    const v = judgePools(
      [
        { name: 'a', health: 'DEGRADED' },
        { name: 'b', health: 'ONLINE', errors: 3 },
        { name: 'c', health: 'UNKNOWN' },
        { name: 'd', health: 'ONLINE' },
      ],
      opts,
    );
    expect(v.failures).toEqual([
      'target pool a is DEGRADED',
      'target pool b reports 3 read/write/checksum error(s)',
      'target pool c could not be read (not imported, or no such pool?)',
    ]);
  });

  it('a last scrub older than scrubWarnAfter is a warning, not a failure; an unknown one says nothing', () => {
    const v = judgePools(
      [
        { name: 'old', health: 'ONLINE', lastScrubEnd: now - 50 * DAY },
        { name: 'edge', health: 'ONLINE', lastScrubEnd: now - 35 * DAY },
        { name: 'unknown', health: 'ONLINE' },
      ],
      opts,
    );
    expect(v.failures).toEqual([]);
    expect(v.pools.filter((p) => p.scrubOverdue === true).map((p) => p.name)).toEqual(['old']);
    expect(v.pools.map((p) => p.scrubOverdue)).toEqual([true, false, undefined]);
    expect(v.warnings).toEqual(['target pool old: its last scrub finished 50 days ago (scrubWarnAfter: 35 days)']);
    const short = judgePools([{ name: 'p', health: 'ONLINE', lastScrubEnd: now - 3 * 3600 }], { now, scrubWarnAfter: 90 });
    expect(short.warnings).toEqual(['target pool p: its last scrub finished 3 hours ago (scrubWarnAfter: 90 s)']);
  });
});
