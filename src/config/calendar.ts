// systemd calendar expressions (OnCalendar=, systemd.time(7)) checked before the NixOS timer ever sees one: a
// `schedule` systemd would refuse is a config error at `hozo config check`, not a unit that fails at switch time.
// Grammar: a shorthand (daily, weekly, …), or `[weekdays] [date] [time] [timezone]` with at least a date or a time:
//   weekdays  Mon,Wed..Fri (names in full or three letters, any case)
//   date      [year-]month-day, or month~day (the day counted from the month's end); each part *, a number, a..b,
//             or x/step, comma-separated lists of those
//   time      hour:minute[:second], the same parts (seconds may have a fraction)
//   timezone  UTC or a zone name such as Europe/Berlin
// tests/unit/calendar.test.ts compares this with `systemd-analyze calendar` on the same expressions.

const SHORTHANDS = new Set(['minutely', 'hourly', 'daily', 'weekly', 'monthly', 'yearly', 'annually', 'quarterly', 'semiannually']);
const WEEKDAYS = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'];
const WEEKDAY_FULL = ['monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday', 'sunday'];

const isWeekday = (s: string): boolean => {
  const l = s.toLowerCase();
  return WEEKDAYS.includes(l) || WEEKDAY_FULL.includes(l);
};

const weekdayIndex = (s: string): number => {
  const l = s.toLowerCase();
  return WEEKDAYS.includes(l) ? WEEKDAYS.indexOf(l) : WEEKDAY_FULL.indexOf(l);
};

function weekdays(token: string): boolean {
  return token.split(',').every((part) => {
    const r = part.split('..');
    // A range runs forwards within the week (Mon..Fri; Fri..Mon is refused).
    return r.length <= 2 && r.every(isWeekday) && (r.length === 1 || weekdayIndex(r[0]!) <= weekdayIndex(r[1]!));
  });
}

/** One numeric field: `*`, or comma-separated `n` and `a..b`, each with an optional `/step` (step ≥ 1; systemd
 *  refuses `*` with a step: write 0/15). With `fraction` (seconds) a value may have up to six decimals. */
function field(token: string, min: number, max: number, fraction = false): boolean {
  if (token === '*') return true;
  const num = fraction ? /^\d{1,2}(\.\d{1,6})?$/ : /^\d{1,4}$/;
  const inRange = (s: string) => num.test(s) && Number(s) >= min && Number(s) < max + 1;
  return token.split(',').every((part) => {
    const [value, step, extra] = part.split('/');
    if (extra !== undefined || value === undefined || value === '') return false;
    if (step !== undefined && !(/^\d{1,4}$/.test(step) && Number(step) >= 1)) return false;
    const r = value.split('..');
    if (r.length === 1) return inRange(r[0]!);
    return r.length === 2 && inRange(r[0]!) && inRange(r[1]!) && Number(r[0]) <= Number(r[1]);
  });
}

function date(token: string): boolean {
  // month~day: the day counted back from the end of the month.
  const tilde = /^([^-~]+)-([^-~]+)~([^-~]+)$|^([^-~]+)~([^-~]+)$/.exec(token);
  if (tilde !== null) {
    const [year, month, day] = tilde[1] !== undefined ? [tilde[1], tilde[2]!, tilde[3]!] : [undefined, tilde[4]!, tilde[5]!];
    return (year === undefined || field(year, 1970, 2199)) && field(month, 1, 12) && field(day, 1, 31);
  }
  const parts = token.split('-');
  if (parts.length === 3) return field(parts[0]!, 1970, 2199) && field(parts[1]!, 1, 12) && field(parts[2]!, 1, 31);
  if (parts.length === 2) return field(parts[0]!, 1, 12) && field(parts[1]!, 1, 31);
  return false;
}

function time(token: string): boolean {
  const parts = token.split(':');
  if (parts.length !== 2 && parts.length !== 3) return false;
  return field(parts[0]!, 0, 23) && field(parts[1]!, 0, 59) && (parts[2] === undefined || field(parts[2], 0, 59, true));
}

/** UTC (any case), or a zone of the tz database spelled as it is there (Europe/Berlin; systemd refuses europe/berlin). */
function isTimezone(s: string): boolean {
  if (s.toUpperCase() === 'UTC') return true;
  if (!/^[A-Z][A-Za-z_+-]*(\/[A-Za-z0-9_+-]+)+$/.test(s)) return false;
  try {
    return new Intl.DateTimeFormat('en', { timeZone: s }).resolvedOptions().timeZone === s;
  } catch {
    return false;
  }
}

/** Whether systemd accepts `expr` as OnCalendar=; the reason when not (a short phrase). */
export function calendarProblem(expr: string): string | undefined {
  const e = expr.trim();
  if (SHORTHANDS.has(e.toLowerCase())) return undefined;
  const tokens = e.split(/\s+/).filter(Boolean);
  if (tokens.length === 0) return 'empty';
  let i = 0;
  let sawWeekday = false;
  if (/^[A-Za-z]/.test(tokens[0]!) && !isTimezone(tokens[0]!)) {
    if (!weekdays(tokens[0]!)) return `"${tokens[0]}" is not a weekday list like Mon,Wed..Fri`;
    sawWeekday = true;
    i++;
  }
  let sawDate = false;
  let sawTime = false;
  if (i < tokens.length && !tokens[i]!.includes(':') && !isTimezone(tokens[i]!)) {
    if (!date(tokens[i]!)) return `"${tokens[i]}" is not a date like 2027-01-31, *-*-01 or *-02~1`;
    sawDate = true;
    i++;
  }
  if (i < tokens.length && tokens[i]!.includes(':')) {
    if (!time(tokens[i]!)) return `"${tokens[i]}" is not a time like 02:30 or 23:00:00 (hours 0-23, minutes and seconds 0-59)`;
    sawTime = true;
    i++;
  }
  if (i < tokens.length && isTimezone(tokens[i]!)) i++;
  if (i < tokens.length) return `unexpected "${tokens[i]}"`;
  // A lone weekday list is fine too ("Mon": Mondays at midnight).
  if (!sawWeekday && !sawDate && !sawTime) return 'names no weekday, date or time';
  return undefined;
}
