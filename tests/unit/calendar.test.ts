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
  // Found by an audit against systemd-analyze (2026-12-07): systemd runs these.
  '@1700000000',
  '@1700000000 UTC',
  'Mon,',
  'Mon..Fri,',
  'Mon, 12:00',
  '00001-01-01',
  '*-*-* 00:00:000',
  '*-*-* 000:00',
  '*-*-* 12/11:00',
  '*-*-* 0/23:00',
  '*-*-* 5..20/30:00',
  '*-*-* 00:00/59',
  '*-*-* 00:00:30/29.5',
  '*-*-* 00:00:59.999999',
  '2000/199-01-01',
  '25/10-01-01',
  '90/10-01-01',
  '*-*-01..05/2',
  '*-*-* 00:00:05.5/10',
  'daily Etc/GMT+2',
  'daily right/UTC',
  'Mon  12:00',
  '*-*~24/5',
  '07~5/2',
  '*-*~2/1',
  'Mon *-*-*  12:00',
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
  // … and refuses these (a step past the field's end, or after ~ past the month's start, microseconds rounding to 60 or a 0 step, zones
  // this host does not have).
  '*-*-* 0/24:00',
  '*-*-* 12/12:00',
  '*-*-* 00:0/60',
  '*-*-* 00:59/1',
  '*-*-* 00:00:00/60',
  '*-*-* 00:00:30/30',
  '*-*-1/31',
  '*-*-20/15',
  '*-1/12-01',
  '2027/200-01-01',
  '2000/200-01-01',
  '*-*~1/2',
  '*-*-* 00:00:59.9999999',
  '*-*-* 00:00:00/0.0000001',
  'daily Z',
  'daily UTC+1',
  'daily GMT+1',
  'daily Foo',
  'daily Europe',
  'daily Europe/Berlin/Extra',
  'daily X',
  'Mon,,Tue',
  ',Mon',
  'daily  UTC',
  '*-*~5/30',
  '*-02~1/1',
  '*-*-* 12:00  UTC',
  '@1700000000  UTC',
  'Mon\t12:00',
  '*-*-*\t00:00',
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

  it.skipIf(!analyze)(
    'agrees with systemd-analyze on 1,500 generated expressions (fixed seed: weekdays, dates, times, steps, ranges, zones)',
    () => {
      let seed = 20261207;
      const rnd = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
      const pick = <T>(a: readonly T[]): T => a[Math.floor(rnd() * a.length)]!;
      const NUMS = [
        '0',
        '1',
        '2',
        '5',
        '7',
        '9',
        '12',
        '13',
        '15',
        '23',
        '24',
        '29',
        '30',
        '31',
        '32',
        '59',
        '60',
        '00',
        '001',
        '70',
        '99',
        '1970',
        '2025',
        '2199',
        '2200',
        '*',
      ];
      const part = () => {
        let v = pick(NUMS);
        const r = rnd();
        if (r < 0.2 && v !== '*') v = `${v}..${pick(NUMS)}`;
        else if (r < 0.4) v = `${v}/${pick(['1', '2', '3', '5', '10', '15', '30', '0', '0.5'])}`;
        if (rnd() < 0.15) v = `${v},${pick(NUMS)}`;
        return v;
      };
      const date = () => (rnd() < 0.5 ? `${part()}-${part()}-${part()}` : rnd() < 0.5 ? `${part()}-${part()}` : `${part()}-${part()}~${part()}`);
      const time = () => (rnd() < 0.5 ? `${part()}:${part()}` : `${part()}:${part()}:${part()}${rnd() < 0.2 ? '.5' : ''}`);
      const differ: string[] = [];
      let accepted = 0;
      for (let i = 0; i < 1500; i++) {
        const toks: string[] = [];
        if (rnd() < 0.3) toks.push(pick(['Mon', 'mon', 'Fri..Mon', 'Mon..Fri', 'Mon-Fri', 'Sat,Sun', 'Tue,', 'Thursday', 'Mo']));
        if (rnd() < 0.7) toks.push(date());
        if (rnd() < 0.7) toks.push(time());
        if (toks.length === 0) toks.push(pick(['daily', 'weekly', 'hourly', 'monthly']));
        if (rnd() < 0.2) toks.push(pick(['UTC', 'utc', 'GMT', 'Europe/Berlin', 'Etc/GMT-3', 'Foo', 'EST5EDT', 'America/New_York']));
        const e = toks.join(' ');
        const systemd = spawnSync('systemd-analyze', ['calendar', e], { encoding: 'utf8' }).status === 0;
        if (systemd) accepted++;
        if (systemd !== (calendarProblem(e) === undefined)) differ.push(`${systemd ? 'systemd runs, hozo refuses' : 'systemd refuses, hozo accepts'}: ${e}`);
      }
      expect(differ).toEqual([]);
      // Both kinds are in the sample (a generator that made only nonsense would agree trivially).
      expect(accepted).toBeGreaterThan(100);
      expect(accepted).toBeLessThan(1400);
    },
    60_000,
  );

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
