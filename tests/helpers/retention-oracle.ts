// The retention tests' oracle (tests/integration/retention.test.ts on zfs-fuse, tests/openzfs/retention.test.ts):
// which snapshots a daily/weekly/monthly policy keeps, by receive time, written independently of agent/retention.ts.
const DAY = 86_400;

/** UTC calendar keys. */
const dayKey = (t: number) => new Date(t * 1000).toISOString().slice(0, 10);
const monthKey = (t: number) => new Date(t * 1000).toISOString().slice(0, 7);
/** Monday of the ISO week, as a date key. */
const weekKey = (t: number) => dayKey(t - ((new Date(t * 1000).getUTCDay() + 6) % 7) * DAY);

/** The newest snapshot of each of the last `daily` days, `weekly` ISO weeks and `monthly` months of `received`
 *  (name → receive time, unix s), and the newest of all: the names a prune must keep. */
export function expectedKept(
  received: readonly { readonly name: string; readonly t: number }[],
  policy: { readonly daily: number; readonly weekly: number; readonly monthly: number },
): Set<string> {
  const newestFirst = [...received].sort((a, b) => b.t - a.t);
  const expected = new Set<string>(newestFirst.length > 0 ? [newestFirst[0]!.name] : []);
  for (const [key, n] of [
    [dayKey, policy.daily],
    [weekKey, policy.weekly],
    [monthKey, policy.monthly],
  ] as const) {
    const seen = new Set<string>();
    for (const s of newestFirst) {
      if (seen.has(key(s.t))) continue;
      if (seen.size >= n) break;
      seen.add(key(s.t));
      expected.add(s.name);
    }
  }
  return expected;
}
