// The job `schedule` (NixOS timer OnCalendar=) is checked at `hozo config check`: what systemd refuses is refused
// there, with the reason. Where systemd-analyze exists, every expression below is also given to it and both must agree.
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { calendarProblem } from '../../src/config/calendar.js';
import { validateConfig } from '../../src/config/load.js';

const VALID = [
  // Forms systemd runs that a stricter check once refused (a config that worked must keep working):
  'Mon-Fri 02:00',
  'mon-fri',
  'Mon-Wed,Fri 01:00',
  'monthly UTC',
  'daily Europe/Berlin',
  '25-01-01',
  '70-01-01 00:00',
  '0001-01-01',
  '00:00:00/0.5',
  '*-*-* 00:00:00.1234567',
  '*-*-* 01:00 GMT',
  '*-*-* 01:00 EST5EDT',
  '*-*-* 01:00 Asia/Kolkata',
  'Sun 04:00 Etc/UTC',
  '*-*-* 01:00 America/New_York',
  '*-*-* 02:00 Europe/Kyiv',
  'Mon *-*-* 00:00:00',
  '*-*-* 00/6:00:00',
  'Sun 04:00 UTC',
  '*:0/5',
  '2025-*-01 00:00:00',
  '*-*-1,15 03:00',
  'MON',
  'Mon..Fri *-*-* 22:00',
  'daily',
  'Daily',
  'weekly',
  'hourly',
  'minutely',
  'monthly',
  'yearly',
  'annually',
  'quarterly',
  'semiannually',
  '*-*-* 02:30',
  '*-*-* 02:30:00',
  'Mon..Fri 23:00',
  'Mon,Wed 04:00',
  'mon..fri',
  'Mon..Mon',
  'Mon',
  'Monday 02:00',
  'Sat *-*-1..7 18:00:00',
  '*-*-01 00:00',
  '2027-01-31 12:00',
  '2199-01-01',
  '*-02~1 03:00',
  '*-*~03',
  '02-29',
  '*:0/15',
  '*-*-* *:00:00',
  '00/2:00',
  '0..6:00',
  '*-*-* 1..3/2:00',
  '*-01/2-01',
  '2020/2-01-01',
  '*-*-* 02:30 UTC',
  '*-*-* 02:30 utc',
  '*-*-* 02:30 Europe/Berlin',
  '12:00 UTC',
  '*-*-* 02:30:59.5',
  '*-*-* 02:30:5.5',
  '*-*-* 2:3',
  '*-1,15 03:00',
  'Tue,Thu *-*-* 01:00',
  '2027-*-* 01:00',

  '*:*',
  '10:00..11:00',
  '*-*-* 03:00:00/30',
  '*:*:*',
  '*-*-*',
  'Mon *-*-*',
];
const INVALID = [
  '1000-01-01',
  'GMT',
  'Mon Tue 01:00',
  'daily daily',
  'UTC daily',
  'every tuesday-ish',
  'banana',
  '*-*-* 25:00:00',
  '99',
  'sun sun sun',
  '~~~~',
  '2027-02 01:00',
  '*-*-* 02:60',
  '*-13-01',
  '*-*-32',
  '1969-01-01',
  '2200-01-01',
  'Fri..Mon 02:00',
  '1,15 03:00',
  'Mon 02:00 04:00',
  'UTC',
  'Utc',

  '02:30:00:00',
  '0/0:00',
  '-1-1',
  '*/2-*-*',
  '*-*/2-* 03:00',
  '*-*-* */2:00',
  '*-*-* 00:*/15',
  '*-*-* 3..1:00',
  '*-*-* 23:59:60',
  'europe/berlin 01:00',
];

const analyze = spawnSync('systemd-analyze', ['--version'], { encoding: 'utf8' }).status === 0;
if (!analyze) console.warn('calendar.test.ts: systemd-analyze not found: the comparison with systemd is skipped (the table still runs)');

describe('systemd calendar expressions (job schedule)', () => {
  it.each(VALID)('accepts %j', (e) => expect(calendarProblem(e)).toBeUndefined());
  it.each(INVALID)('refuses %j', (e) => expect(calendarProblem(e)).toBeTypeOf('string'));

  it.skipIf(!analyze)('agrees with systemd-analyze calendar on every expression above', () => {
    const differ = [...VALID, ...INVALID].filter((e) => {
      const systemd = spawnSync('systemd-analyze', ['calendar', e], { encoding: 'utf8' }).status === 0;
      return systemd !== (calendarProblem(e) === undefined);
    });
    expect(differ).toEqual([]);
  });

  it('config check names the field and the reason', () => {
    const config = (schedule: string) => ({
      hosts: {},
      jobs: [{ name: 'j', host: 'local', schedule, datasets: [{ source: 'tank/a', target: 'backup/a' }] }],
    });
    expect(() => validateConfig(config('every tuesday-ish'))).toThrow(
      /jobs\[0\]\.schedule: expected a systemd calendar expression.*"every" is not a weekday list/,
    );
    expect(() => validateConfig(config('*-*-* 25:00:00'))).toThrow(/jobs\[0\]\.schedule: .*"25:00:00" is not a time/);
    expect(validateConfig(config('Mon..Fri 23:00')).jobs[0]!.schedule).toBe('Mon..Fri 23:00');
    // Zones with an underscore and a shorthand with a zone, as systemd takes them.
    expect(validateConfig(config('*-*-* 01:00 America/New_York')).jobs[0]!.schedule).toBe('*-*-* 01:00 America/New_York');
    expect(validateConfig(config('monthly UTC')).jobs[0]!.schedule).toBe('monthly UTC');
  });
});
