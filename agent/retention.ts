// The box's own retention for received snapshots: pure, no I/O. Like sanoid's hourly/daily/weekly/monthly/yearly: for
// each period keep the newest snapshot of each of the N most recent buckets that have one. A snapshot's time is when
// THIS box received it (the agent's stamp, agent/stamp.ts), not its `creation`, which the sender's clock wrote: a
// stolen controller with its clock set months ahead must not make the real history look old. Without a stamp
// (received by an older agent) `creation` counts, but never later than now. "Newest" is by createtxg (the order ZFS
// wrote them), never by a clock. The newest snapshot of a dataset (the next incremental's base) and held snapshots
// (userrefs > 0) are always kept.

export interface RetentionPolicy {
  readonly hourly?: number;
  readonly daily: number;
  readonly weekly: number;
  readonly monthly: number;
  readonly yearly?: number;
}

export interface RetentionSnapshot {
  /** Short name (after '@'). */
  readonly name: string;
  /** Unix seconds (the sender's clock). */
  readonly creation: number;
  /** Unix seconds when this box received it (its own clock), when stamped. */
  readonly received?: number;
  /** ZFS's order of creation on this pool: what "newest" means. */
  readonly createtxg?: number;
  readonly userrefs?: number;
}

export type KeepReason = 'newest' | 'held' | 'hourly' | 'daily' | 'weekly' | 'monthly' | 'yearly';

export interface RetentionDecision {
  /** Kept snapshots (newest first) with every reason that keeps them. */
  readonly keep: readonly { readonly name: string; readonly reasons: readonly KeepReason[] }[];
  /** Snapshots to destroy, oldest first. */
  readonly destroy: readonly string[];
}

export interface RetentionOptions {
  /** Buckets follow the box's local calendar (default) or UTC. */
  readonly timeZone?: 'local' | 'utc';
  /** Unix seconds; default the system clock. Times after it count as it. */
  readonly now?: number;
}

/** The time a snapshot is bucketed by: the box's receive stamp, else its creation; never in the future. */
export function retentionTime(s: RetentionSnapshot, now: number): number {
  return Math.min(s.received ?? s.creation, now);
}

const PERIODS = ['hourly', 'daily', 'weekly', 'monthly', 'yearly'] as const;
type Period = (typeof PERIODS)[number];

interface Parts {
  y: number;
  m: number;
  d: number;
  h: number;
}

function partsOf(seconds: number, tz: 'local' | 'utc'): Parts {
  const t = new Date(seconds * 1000);
  return tz === 'utc'
    ? { y: t.getUTCFullYear(), m: t.getUTCMonth(), d: t.getUTCDate(), h: t.getUTCHours() }
    : { y: t.getFullYear(), m: t.getMonth(), d: t.getDate(), h: t.getHours() };
}

/** ISO 8601 week "2026-W47" (weeks start on Monday; week 1 holds the year's first Thursday). */
function isoWeek(p: Parts): string {
  // Calendar arithmetic in UTC on the date parts: no time-zone effects once the parts are known.
  const d = new Date(Date.UTC(p.y, p.m, p.d));
  const weekday = d.getUTCDay() || 7; // Monday 1 … Sunday 7
  d.setUTCDate(d.getUTCDate() + 4 - weekday); // the Thursday of this week decides the year
  const yearStart = Date.UTC(d.getUTCFullYear(), 0, 1);
  const week = Math.ceil(((d.getTime() - yearStart) / 86_400_000 + 1) / 7);
  return `${d.getUTCFullYear()}-W${String(week).padStart(2, '0')}`;
}

export function bucketOf(period: Period, seconds: number, tz: 'local' | 'utc' = 'local'): string {
  const p = partsOf(seconds, tz);
  const mm = String(p.m + 1).padStart(2, '0');
  const dd = String(p.d).padStart(2, '0');
  switch (period) {
    case 'hourly':
      return `${p.y}-${mm}-${dd}T${String(p.h).padStart(2, '0')}`;
    case 'daily':
      return `${p.y}-${mm}-${dd}`;
    case 'weekly':
      return isoWeek(p);
    case 'monthly':
      return `${p.y}-${mm}`;
    case 'yearly':
      return String(p.y);
  }
}

function newestFirst(now: number) {
  return (a: RetentionSnapshot, b: RetentionSnapshot): number => {
    if (a.createtxg !== undefined && b.createtxg !== undefined && a.createtxg !== b.createtxg) return b.createtxg - a.createtxg;
    return retentionTime(b, now) - retentionTime(a, now) || (a.name < b.name ? 1 : a.name > b.name ? -1 : 0);
  };
}

/** Decides which snapshots of ONE dataset to keep. */
export function selectRetention(snapshots: readonly RetentionSnapshot[], policy: RetentionPolicy, opts: RetentionOptions = {}): RetentionDecision {
  const tz = opts.timeZone ?? 'local';
  const now = opts.now ?? Date.now() / 1000;
  const sorted = [...snapshots].sort(newestFirst(now));
  const reasons = new Map<string, KeepReason[]>();
  const keep = (name: string, why: KeepReason) => reasons.set(name, [...(reasons.get(name) ?? []), why]);
  if (sorted[0] !== undefined) keep(sorted[0].name, 'newest');
  for (const s of sorted) if ((s.userrefs ?? 0) > 0) keep(s.name, 'held');
  for (const period of PERIODS) {
    const n = policy[period] ?? 0;
    if (n <= 0) continue;
    const seen = new Set<string>();
    for (const s of sorted) {
      const b = bucketOf(period, retentionTime(s, now), tz);
      if (seen.has(b)) continue;
      if (seen.size >= n) break;
      seen.add(b);
      keep(s.name, period);
    }
  }
  return {
    keep: sorted.filter((s) => reasons.has(s.name)).map((s) => ({ name: s.name, reasons: reasons.get(s.name)! })),
    destroy: sorted
      .filter((s) => !reasons.has(s.name))
      .reverse()
      .map((s) => s.name),
  };
}
