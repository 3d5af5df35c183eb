// systemd calendar expressions (OnCalendar=, systemd.time(7)) checked before the NixOS timer ever sees one: a
// `schedule` systemd would refuse is a config error at `hozo config check`, not a unit that fails at switch time.
// Grammar: a shorthand (daily, weekly, …), or `[weekdays] [date] [time] [timezone]` naming at least one of the first three:
//   weekdays  Mon,Wed..Fri or Mon-Fri (names in full or three letters, any case)
//   date      [year-]month-day, or month~day (the day counted from the month's end); each part *, a number, a..b,
//             or x/step, comma-separated lists of those
//   time      hour:minute[:second], the same parts (seconds may have a fraction)
//   timezone  the last word, after a shorthand or the rest: UTC, GMT, Europe/Berlin, EST5EDT (systemd checks it against
//             the zoneinfo of the host the timer runs on; this check cannot know that one, so any zone-like word passes)
// Where in doubt this check lets an expression through: it must never refuse what systemd runs (a config that
// worked would stop working), so what it refuses is malformed for certain.
// tests/unit/calendar.test.ts compares this with `systemd-analyze calendar` on the same expressions.

const SHORTHANDS = new Set(['minutely', 'hourly', 'daily', 'weekly', 'monthly', 'yearly', 'annually', 'quarterly', 'semiannually']);
const WEEKDAYS = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'];
const WEEKDAY_FULL = ['monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday', 'sunday'];

/** 0 for Monday … 6 for Sunday; -1 for a word that is no weekday. */
const weekdayIndex = (s: string): number => {
  const l = s.toLowerCase();
  return WEEKDAYS.includes(l) ? WEEKDAYS.indexOf(l) : WEEKDAY_FULL.indexOf(l);
};

function weekdays(token: string): boolean {
  return token.split(',').every((part) => {
    const r = part.includes('..') ? part.split('..') : part.split('-');
    // A range runs forwards within the week (Mon..Fri; Fri..Mon is refused).
    return r.length <= 2 && r.every((w) => weekdayIndex(w) >= 0) && (r.length === 1 || weekdayIndex(r[0]!) <= weekdayIndex(r[1]!));
  });
}

/** One numeric field: `*`, or comma-separated `n` and `a..b`, each with an optional `/step` (step > 0; systemd
 *  refuses `*` with a step: write 0/15). With `fraction` (seconds) values and steps may have decimals. */
function field(token: string, min: number, max: number, fraction = false, inRange = (n: number) => n >= min && n < max + 1): boolean {
  if (token === '*') return true;
  const num = fraction ? /^\d{1,2}(\.\d+)?$/ : /^\d{1,4}$/;
  const ok = (s: string) => num.test(s) && inRange(Number(s));
  return token.split(',').every((part) => {
    const [value, step, extra] = part.split('/');
    if (extra !== undefined || value === undefined || value === '') return false;
    if (step !== undefined && !((fraction ? /^\d{1,4}(\.\d+)?$/ : /^\d{1,4}$/).test(step) && Number(step) > 0)) return false;
    const r = value.split('..');
    if (r.length === 1) return ok(r[0]!);
    return r.length === 2 && ok(r[0]!) && ok(r[1]!) && Number(r[0]) <= Number(r[1]);
  });
}

/** Years: 1970–2199, or up to 99 however zero-padded (systemd reads 25 and 0025 as 2025). */
const year = (t: string) => field(t, 0, 2199, false, (n) => n <= 99 || (n >= 1970 && n <= 2199));

function date(token: string): boolean {
  // month~day: the day counted back from the end of the month.
  const tilde = /^([^-~]+)-([^-~]+)~([^-~]+)$|^([^-~]+)~([^-~]+)$/.exec(token);
  if (tilde !== null) {
    const [y, month, day] = tilde[1] !== undefined ? [tilde[1], tilde[2]!, tilde[3]!] : [undefined, tilde[4]!, tilde[5]!];
    return (y === undefined || year(y)) && field(month, 1, 12) && field(day, 1, 31);
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

/** A zone-like word: UTC, GMT, EST5EDT, Europe/Berlin, America/Argentina/Buenos_Aires, Etc/GMT+2. */
const isTimezone = (s: string): boolean => /^[A-Za-z][A-Za-z0-9_+-]*(\/[A-Za-z0-9_+-]+)*$/.test(s) && !weekdays(s) && !SHORTHANDS.has(s.toLowerCase());

/** Whether systemd accepts `expr` as OnCalendar=; the reason when not (a short phrase). */
export function calendarProblem(expr: string): string | undefined {
  const tokens = expr.trim().split(/\s+/).filter(Boolean);
  if (tokens.length === 0) return 'empty';
  const isZoneAt = (i: number) => i === tokens.length - 1 && isTimezone(tokens[i]!);
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
  if (i < tokens.length) return `unexpected "${tokens[i]}"`;
  // A lone weekday list is fine too ("Mon": Mondays at midnight).
  if (!sawWeekday && !sawDate && !sawTime) return 'names no weekday, date or time';
  return undefined;
}
