// systemd calendar expressions (OnCalendar=, systemd.time(7)) checked before the NixOS timer ever sees one: a
// `schedule` systemd would refuse is a config error at `hozo config check`, not a unit that fails at switch time.
// Grammar: a shorthand (daily, weekly, …), or `[weekdays] [date] [time] [timezone]` naming at least one of the first three:
//   weekdays  Mon,Wed..Fri or Mon-Fri (names in full or three letters, any case)
//   date      [year-]month-day, or month~day (the day counted from the month's end); each part *, a number, a..b,
//             or x/step, comma-separated lists of those
//   time      hour:minute[:second], the same parts (seconds may have a fraction)
//   timezone  the last word, after a shorthand or the rest: UTC, GMT, Europe/Berlin, EST5EDT. systemd looks it up in
//             the zoneinfo of the host the timer runs on; where this host has a zoneinfo directory (TZDIR,
//             /usr/share/zoneinfo, /etc/zoneinfo: NixOS) the zone must be a file there, else any zone-like word passes
//   @seconds  a UNIX time, alone (or with a zone)
// A value with a step (not a range) must leave room for it (systemd: 12/12:00 is refused, 12/11:00 runs; after ~ the
// room is towards the month's start: ~5/2 runs, ~1/2 does not); seconds are
// read to the microsecond, rounded (59.9999999 is 60, refused; a step of 0.0000001 is 0, refused).
// Where in doubt this check lets an expression through: it must never refuse what systemd runs (a config that
// worked would stop working), so what it refuses is malformed for certain.
// tests/unit/calendar.test.ts compares this with `systemd-analyze calendar` on the same expressions.

import { statSync } from 'node:fs';

const SHORTHANDS = new Set(['minutely', 'hourly', 'daily', 'weekly', 'monthly', 'yearly', 'annually', 'quarterly', 'semiannually']);
const WEEKDAYS = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'];
const WEEKDAY_FULL = ['monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday', 'sunday'];

/** 0 for Monday … 6 for Sunday; -1 for a word that is no weekday. */
const weekdayIndex = (s: string): number => {
  const l = s.toLowerCase();
  return WEEKDAYS.includes(l) ? WEEKDAYS.indexOf(l) : WEEKDAY_FULL.indexOf(l);
};

function weekdays(token: string): boolean {
  // One trailing comma is allowed ("Mon," and "Mon..Fri," run); an empty part elsewhere is not.
  const parts = token.split(',');
  if (parts.length > 1 && parts[parts.length - 1] === '') parts.pop();
  return parts.every((part) => {
    const r = part.includes('..') ? part.split('..') : part.split('-');
    // A range runs forwards within the week (Mon..Fri; Fri..Mon is refused).
    return r.length <= 2 && r.every((w) => weekdayIndex(w) >= 0) && (r.length === 1 || weekdayIndex(r[0]!) <= weekdayIndex(r[1]!));
  });
}

/** A number as systemd reads it: whole, or (seconds) to the microsecond, rounded; NaN when malformed. */
const numberOf = (s: string, fraction: boolean): number =>
  (fraction ? /^\d+(\.\d+)?$/ : /^\d+$/).test(s) ? (fraction ? Math.round(Number(s) * 1e6) / 1e6 : Number(s)) : Number.NaN;

/** One numeric field: `*`, or comma-separated `n` and `a..b`, each with an optional `/step` (step > 0; systemd
 *  refuses `*` with a step: write 0/15; a single value's step must keep it within max). With `fraction` (seconds)
 *  values and steps may have decimals. `value` maps what is written to what counts (two-digit years). */
function field(token: string, min: number, max: number, fraction = false, value = (n: number) => n, backwards = false): boolean {
  if (token === '*') return true;
  const limit = fraction ? max + 0.999999 : max;
  const read = (s: string) => value(numberOf(s, fraction));
  const ok = (n: number) => n >= min && n <= limit;
  return token.split(',').every((part) => {
    const [v, step, extra] = part.split('/');
    if (extra !== undefined || v === undefined || v === '') return false;
    const by = step === undefined ? undefined : numberOf(step, fraction);
    if (by !== undefined && !(by > 0)) return false;
    const [from, to, more] = v.split('..').map(read);
    if (more !== undefined) return false;
    if (to === undefined) return ok(from!) && (by === undefined || (backwards ? from! - by >= min : from! + by <= limit));
    return ok(from!) && ok(to) && from! <= to;
  });
}

/** Years: 1970–2199; 0–69 are 2000–2069 and 70–99 are 1970–1999, however zero-padded (systemd reads 25 and 0025 as
 *  2025). */
const year = (t: string) => field(t, 1970, 2199, false, (n) => (n < 70 ? 2000 + n : n < 100 ? 1900 + n : n));

function date(token: string): boolean {
  // month~day: the day counted back from the end of the month.
  const tilde = /^([^-~]+)-([^-~]+)~([^-~]+)$|^([^-~]+)~([^-~]+)$/.exec(token);
  if (tilde !== null) {
    const [y, month, day] = tilde[1] !== undefined ? [tilde[1], tilde[2]!, tilde[3]!] : [undefined, tilde[4]!, tilde[5]!];
    // A step after ~ counts towards the month's start, and must stay in it (*-*~5/2 runs, *-*~1/2 does not).
    return (y === undefined || year(y)) && field(month, 1, 12) && field(day, 1, 31, false, (n) => n, true);
  }
  const parts = token.split('-');
  if (parts.length === 3) return year(parts[0]!) && field(parts[1]!, 1, 12) && field(parts[2]!, 1, 31);
  if (parts.length === 2) return field(parts[0]!, 1, 12) && field(parts[1]!, 1, 31);
  return false;
}

function time(token: string): boolean {
  const parts = token.split(':');
  if (parts.length !== 2 && parts.length !== 3) return false;
  return field(parts[0]!, 0, 23) && field(parts[1]!, 0, 59) && (parts[2] === undefined || field(parts[2], 0, 59, true));
}

const ZONE_LIKE = /^[A-Za-z][A-Za-z0-9_+-]*(\/[A-Za-z0-9_+-]+)*$/;

/** This host's zoneinfo directory, if it has one (looked up once). */
let zoneDir: string | null | undefined;
function zoneinfo(): string | null {
  if (zoneDir === undefined) {
    zoneDir = null;
    for (const d of [process.env['TZDIR'], '/usr/share/zoneinfo', '/etc/zoneinfo']) {
      if (d === undefined || d === '' || !d.startsWith('/')) continue;
      try {
        if (statSync(`${d}/UTC`).isFile()) {
          zoneDir = d;
          break;
        }
      } catch {
        // not this one
      }
    }
  }
  return zoneDir;
}

/** A zone-like word (UTC, GMT, EST5EDT, Europe/Berlin, America/Argentina/Buenos_Aires, Etc/GMT+2) that names a zone
 *  of this host's zoneinfo where it has one. */
function isTimezone(s: string): boolean {
  if (!ZONE_LIKE.test(s) || weekdays(s) || SHORTHANDS.has(s.toLowerCase())) return false;
  if (s.toUpperCase() === 'UTC') return true;
  const dir = zoneinfo();
  if (dir === null) return true;
  try {
    return statSync(`${dir}/${s}`).isFile();
  } catch {
    return false;
  }
}

/** Whether systemd accepts `expr` as OnCalendar=; the reason when not (a short phrase). */
export function calendarProblem(expr: string): string | undefined {
  // Leading and trailing blanks are trimmed from a unit file's value, and so here.
  const trimmed = expr.trim();
  const tokens = trimmed.split(/\s+/).filter(Boolean);
  if (tokens.length === 0) return 'empty';
  // systemd splits at spaces only, and the zone off at the last one: "Mon  12:00" runs, "12:00  UTC" does not.
  if (/[^\S ]/.test(trimmed)) return 'a tab or line break between its parts (separate them with spaces)';
  const isZoneAt = (i: number) => i === tokens.length - 1 && isTimezone(tokens[i]!) && !trimmed.endsWith(`  ${tokens[i]}`);
  // A UNIX time ("@1700000000"), alone or with a zone.
  if (/^@\d+$/.test(tokens[0]!)) return tokens.length === 1 || (tokens.length === 2 && isZoneAt(1)) ? undefined : `unexpected "${tokens[1]}"`;
  // A shorthand, alone or with a zone ("daily", "monthly UTC").
  if (SHORTHANDS.has(tokens[0]!.toLowerCase())) return tokens.length === 1 || (tokens.length === 2 && isZoneAt(1)) ? undefined : `unexpected "${tokens[1]}"`;
  let i = 0;
  let sawWeekday = false;
  if (/^[A-Za-z]/.test(tokens[0]!)) {
    if (weekdays(tokens[0]!)) {
      sawWeekday = true;
      i++;
    } else if (tokens.length > 1) return `"${tokens[0]}" is not a weekday list like Mon,Wed..Fri or Mon-Fri`;
  }
  let sawDate = false;
  let sawTime = false;
  if (i < tokens.length && /^[0-9*]/.test(tokens[i]!) && !tokens[i]!.includes(':')) {
    if (!date(tokens[i]!)) return `"${tokens[i]}" is not a date like 2027-01-31, *-*-01 or *-02~1`;
    sawDate = true;
    i++;
  }
  if (i < tokens.length && tokens[i]!.includes(':')) {
    if (!time(tokens[i]!)) return `"${tokens[i]}" is not a time like 02:30 or 23:00:00 (hours 0-23, minutes and seconds 0-59)`;
    sawTime = true;
    i++;
  }
  if (i < tokens.length && isZoneAt(i)) i++;
  if (i === tokens.length - 1 && ZONE_LIKE.test(tokens[i]!) && zoneinfo() !== null)
    return `"${tokens[i]}" is no time zone of this host (no ${zoneinfo()}/${tokens[i]}; e.g. UTC or Europe/Berlin)`;
  if (i < tokens.length) return `unexpected "${tokens[i]}"`;
  // A lone weekday list is fine too ("Mon": Mondays at midnight).
  if (!sawWeekday && !sawDate && !sawTime) return 'names no weekday, date or time';
  return undefined;
}
