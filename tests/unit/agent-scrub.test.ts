// The agent's scrub policy (agent/scrub.ts) with a scripted box (no ZFS: the real power cycle is
// tests/openzfs/scrub.test.ts): what prepare starts or resumes, what shutdown pauses, when a scrub holds the box.
import { describe, expect, it } from 'vitest';
import { serve } from '../../agent/serve.js';
import { box, harness, json, STATUS_OK, STATUS_SCRUBBING, type Harness } from '../helpers/agent-harness.js';

const POLICY = { everyDays: 30, startCommand: ['zpool', 'scrub', '%p'], pauseCommand: ['zpool', 'scrub', '-p', '%p'] };
/** ctime(3) as zpool prints it, in this process's time zone (which agent/pool-status.ts parses it in). */
const date = (t: number) => {
  const d = new Date(t * 1000);
  const p = (n: number) => String(n).padStart(2, '0');
  return `${['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'][d.getDay()]} ${['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'][d.getMonth()]} ${String(d.getDate()).padStart(2, ' ')} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())} ${d.getFullYear()}`;
};
// OpenZFS 2.x wording (agent/pool-status.ts parses it).
const PAUSED = STATUS_OK.replace(
  ' scrub: none requested',
  `  scan: scrub paused since ${date(1_799_990_000)}\n\tscrub started on ${date(1_799_980_000)}\n\t10.5M / 1.2G scanned, 8.0M / 1.2G issued\n\t0B repaired, 0.65% done`,
);
const DONE = (t: number) => STATUS_OK.replace(' scrub: none requested', `  scan: scrub repaired 0B in 00:00:03 with 0 errors on ${date(t)}`);

function scripted(status: string, config: Record<string, unknown> = {}): Harness {
  return harness(
    box((cmd) => (cmd === 'zpool status backup' ? { stdout: status } : cmd.startsWith('zpool scrub') ? {} : undefined)),
    { scrub: POLICY, ...config } as never,
  );
}
const scrubCalls = (h: Harness) => h.runner.calls.filter((c) => c.startsWith('zpool scrub') || c === 'zpool export backup');

describe('agent scrub policy', () => {
  it('prepare starts a scrub when none was ever done, or the last is older than everyDays; not when recent', async () => {
    const never = scripted(STATUS_OK);
    expect(await serve(never.ctx, 'prepare')).toBe(0);
    expect(scrubCalls(never)).toEqual(['zpool scrub backup']);
    expect(json(never)).toMatchObject({ ready: true, scrubs: [{ pool: 'backup', action: 'started', detail: 'never scrubbed' }] });

    const old = scripted(DONE(1_800_000_000 - 40 * 86400));
    expect(await serve(old.ctx, 'prepare')).toBe(0);
    expect(scrubCalls(old)).toEqual(['zpool scrub backup']);
    expect(json(old).scrubs[0].detail).toBe('last one 40 days ago');

    const recent = scripted(DONE(1_800_000_000 - 10 * 86400));
    expect(await serve(recent.ctx, 'prepare')).toBe(0);
    expect(scrubCalls(recent)).toEqual([]);
  });

  it('prepare resumes a paused scrub (zpool scrub continues it) and leaves a running one alone', async () => {
    const paused = scripted(PAUSED);
    expect(await serve(paused.ctx, 'prepare')).toBe(0);
    expect(scrubCalls(paused)).toEqual(['zpool scrub backup']);
    expect(json(paused).scrubs).toEqual([{ pool: 'backup', action: 'resumed', detail: 'at 1%' }]);
    const running = scripted(STATUS_SCRUBBING);
    expect(await serve(running.ctx, 'prepare')).toBe(0);
    expect(scrubCalls(running)).toEqual([]);
  });

  it('shutdown pauses a running scrub before the export, instead of refusing; %p is the pool in the configured command', async () => {
    const h = scripted(STATUS_SCRUBBING, { scrub: { ...POLICY, pauseCommand: ['sudo', '-n', 'systemctl', 'start', 'hozo-scrub-pause@%p.service'] } });
    h.runner.reply = (
      (r) => (cmd: string) =>
        cmd.startsWith('sudo -n systemctl start hozo-scrub-pause@') ? {} : r(cmd)
    )(h.runner.reply);
    expect(await serve(h.ctx, 'shutdown')).toBe(0);
    expect(h.runner.calls.filter((c) => c.includes('scrub-pause') || c === 'zpool export backup')).toEqual([
      'sudo -n systemctl start hozo-scrub-pause@backup.service',
      'zpool export backup',
    ]);
    expect(json(h)).toMatchObject({ shutdown: true, scrubs: [{ pool: 'backup', action: 'paused', detail: 'at 11%' }] });
    expect(h.detached).toHaveLength(1);
  });

  it('a paused scrub never holds the box; a running one does only keepAwakeMinutes after boot, or without pauseOnShutdown', async () => {
    const paused = scripted(PAUSED);
    expect(await serve(paused.ctx, 'shutdown')).toBe(0);
    expect(scrubCalls(paused)).toEqual(['zpool export backup']);

    const early = scripted(STATUS_SCRUBBING, { scrub: { ...POLICY, keepAwakeMinutes: 60 } });
    early.state.uptimeSeconds = () => 600;
    expect(await serve(early.ctx, 'shutdown')).toBe(3);
    expect(json(early).reasons).toEqual([expect.stringMatching(/pool backup: a scrub is running \(11%\); the box stays up for it until 60 min after boot/)]);
    expect(scrubCalls(early)).toEqual([]);

    const late = scripted(STATUS_SCRUBBING, { scrub: { ...POLICY, keepAwakeMinutes: 60 } });
    late.state.uptimeSeconds = () => 3700;
    expect(await serve(late.ctx, 'shutdown')).toBe(0);
    expect(scrubCalls(late)).toEqual(['zpool scrub -p backup', 'zpool export backup']);

    const keep = scripted(STATUS_SCRUBBING, { scrub: { ...POLICY, pauseOnShutdown: false } });
    expect(await serve(keep.ctx, 'shutdown')).toBe(3);
    expect(scrubCalls(keep)).toEqual([]);
  });

  it('without a scrub section nothing is started or paused, and any scrub refuses shutdown as before', async () => {
    const h = harness(box((cmd) => (cmd === 'zpool status backup' ? { stdout: PAUSED } : undefined)));
    expect(await serve(h.ctx, 'prepare')).toBe(0);
    expect(await serve(h.ctx, 'shutdown')).toBe(3);
    expect(h.runner.calls.filter((c) => c.startsWith('zpool scrub'))).toEqual([]);
  });
});
